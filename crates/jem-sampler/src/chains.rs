//! Where chains start: the persistent replay buffer or fresh noise (short-run), behind one
//! interface, and the training-time sampling step that ties a source to SGLD.

use rand::Rng;
use rand_pcg::Pcg64;
use tch::{Device, Tensor};

use crate::buffer::ReplayBuffer;
use crate::config::SgldConfig;
use crate::density::{Conditioned, Energy};
use crate::error::{Result, SamplerError};
use crate::init::ChainStart;
use crate::sgld::{sgld_unscored, SgldStats};

/// A batch of chain starting points drawn from a [`SampleSource`].
#[derive(Debug)]
pub struct ChainBatch {
    /// Starting points `[N, ...]` (float32, on the source's device).
    pub x0: Tensor,
    /// Class labels `[N]` (int64, on the source's device) when the source knows the class count.
    pub labels: Option<Tensor>,
    /// Buffer slot of each chain; empty for sources that store nothing (short-run).
    pub indices: Vec<i64>,
    /// Whether each chain starts from fresh `U(-1, 1)` noise.
    pub reinitialised: Vec<bool>,
    /// Age of each chain when drawn (0 for fresh noise); see [`ReplayBuffer::ages`].
    pub start_ages: Vec<u64>,
}

impl ChainBatch {
    /// Number of chains.
    pub fn len(&self) -> usize {
        self.reinitialised.len()
    }

    /// True for a batch without chains.
    pub fn is_empty(&self) -> bool {
        self.reinitialised.is_empty()
    }

    /// How many chains start from fresh noise.
    pub fn reinit_count(&self) -> usize {
        self.reinitialised.iter().filter(|&&r| r).count()
    }
}

/// A supply of chain starting points that may take the refined chains back.
pub trait SampleSource {
    /// Draws `n` starting points. `labels` (length `n`) fixes the chains' classes; otherwise
    /// sources that know the class count draw labels uniformly.
    fn draw(&mut self, n: usize, labels: Option<&[i64]>, rng: &mut Pcg64) -> Result<ChainBatch>;

    /// Hands the refined chains `x` (same order as `batch`) back to the source.
    fn store(&mut self, batch: &ChainBatch, x: &Tensor) -> Result<()>;
}

/// Short-run chains (Appendix H.2): every draw is fresh (`U(-1, 1)` noise unless another
/// [`ChainStart`] is given) and nothing is kept, so all chains have the same length (`steps` of
/// the SGLD config).
#[derive(Debug)]
pub struct ShortRun {
    sample_shape: Vec<i64>,
    n_classes: Option<i64>,
    device: Device,
    start: ChainStart,
}

impl ShortRun {
    /// Short-run source for samples of `sample_shape` (without the batch dimension). With
    /// `n_classes`, batches carry uniformly drawn labels (for class-conditional sampling).
    pub fn new(sample_shape: &[i64], n_classes: Option<i64>, device: Device) -> Result<Self> {
        check_sample_shape(sample_shape)?;
        check_n_classes(n_classes)?;
        Ok(Self {
            sample_shape: sample_shape.to_vec(),
            n_classes,
            device,
            start: ChainStart::Uniform,
        })
    }

    /// Fresh chains start from `start` instead of uniform noise.
    pub fn with_start(mut self, start: ChainStart) -> Self {
        self.start = start;
        self
    }

    /// Shape of one sample.
    pub fn sample_shape(&self) -> &[i64] {
        &self.sample_shape
    }
}

impl SampleSource for ShortRun {
    fn draw(&mut self, n: usize, labels: Option<&[i64]>, rng: &mut Pcg64) -> Result<ChainBatch> {
        let labels = draw_labels(n, self.n_classes, labels, rng)?;
        let x0 = self
            .start
            .draw(n, &self.sample_shape, labels.as_deref(), self.device, rng)?;
        Ok(ChainBatch {
            x0,
            labels: labels_tensor(labels.as_deref(), self.device)?,
            indices: Vec::new(),
            reinitialised: vec![true; n],
            start_ages: vec![0; n],
        })
    }

    fn store(&mut self, batch: &ChainBatch, x: &Tensor) -> Result<()> {
        // Nothing is kept, but a wrong batch is still a caller bug worth reporting.
        let expected = batch.x0.size();
        let actual = x.size();
        if actual != expected {
            return Err(SamplerError::ShapeMismatch {
                context: "refined chains vs drawn batch",
                expected,
                actual,
            });
        }
        Ok(())
    }
}

/// Persistent (PCD) or short-run chain initialisation.
#[derive(Debug)]
pub enum ChainInit {
    /// Chains persist in a replay buffer (the paper's choice, for 4x fewer steps).
    Persistent(ReplayBuffer),
    /// Fresh noise every iteration (the paper's recommendation when compute allows).
    ShortRun(ShortRun),
}

impl SampleSource for ChainInit {
    fn draw(&mut self, n: usize, labels: Option<&[i64]>, rng: &mut Pcg64) -> Result<ChainBatch> {
        match self {
            ChainInit::Persistent(buffer) => buffer.draw(n, labels, rng),
            ChainInit::ShortRun(short) => short.draw(n, labels, rng),
        }
    }

    fn store(&mut self, batch: &ChainBatch, x: &Tensor) -> Result<()> {
        match self {
            ChainInit::Persistent(buffer) => buffer.store(batch, x),
            ChainInit::ShortRun(short) => short.store(batch, x),
        }
    }
}

/// Result of one training-time sampling step.
#[derive(Debug)]
pub struct Samples {
    /// The refined chains `[N, ...]`, detached.
    pub x: Tensor,
    /// Their labels, when the source drew or was given them.
    pub labels: Option<Tensor>,
    /// SGLD diagnostics.
    pub stats: SgldStats,
    /// How many chains started from fresh noise.
    pub reinitialised: usize,
    /// Mean age of the chains when drawn.
    pub mean_start_age: f64,
}

/// One sampling step of Algorithm 1: draw starting points, run SGLD on `energy`, store the
/// refined chains back in the source, return them. The samples' final density is not evaluated
/// (`stats.log_density_after` is `None`): the training loop evaluates them itself.
///
/// [`Energy::Conditional`] uses the batch's labels, so the source must know the class count (or
/// `labels` must be given). Nothing is stored when SGLD fails (e.g. diverges to NaN), which keeps
/// a divergent batch out of the replay buffer.
pub fn sample(
    source: &mut dyn SampleSource,
    energy: Energy<'_>,
    n: usize,
    labels: Option<&[i64]>,
    cfg: &SgldConfig,
    rng: &mut Pcg64,
) -> Result<Samples> {
    let batch = source.draw(n, labels, rng)?;
    let (x, stats) = match energy {
        Energy::Marginal(density) => sgld_unscored(density, &batch.x0, cfg, rng)?,
        Energy::Conditional(density) => {
            let y = batch.labels.as_ref().ok_or_else(|| {
                SamplerError::InvalidArgument(
                    "class-conditional sampling needs labels: give them or a class count".into(),
                )
            })?;
            sgld_unscored(&Conditioned::new(density, y), &batch.x0, cfg, rng)?
        }
    };
    source.store(&batch, &x)?;
    let mean_start_age = if batch.is_empty() {
        0.0
    } else {
        batch.start_ages.iter().sum::<u64>() as f64 / batch.len() as f64
    };
    Ok(Samples {
        x,
        labels: batch.labels.as_ref().map(Tensor::shallow_clone),
        stats,
        reinitialised: batch.reinit_count(),
        mean_start_age,
    })
}

pub(crate) fn check_sample_shape(sample_shape: &[i64]) -> Result<()> {
    if sample_shape.iter().any(|&d| d <= 0) {
        return Err(SamplerError::InvalidArgument(format!(
            "sample shape {sample_shape:?} has a non-positive dimension"
        )));
    }
    Ok(())
}

pub(crate) fn check_n_classes(n_classes: Option<i64>) -> Result<()> {
    match n_classes {
        Some(c) if c < 1 => Err(SamplerError::InvalidArgument(format!(
            "the class count must be >= 1, got {c}"
        ))),
        _ => Ok(()),
    }
}

/// Given labels (validated against the class count) or uniform ones when the class count is known.
pub(crate) fn draw_labels(
    n: usize,
    n_classes: Option<i64>,
    given: Option<&[i64]>,
    rng: &mut Pcg64,
) -> Result<Option<Vec<i64>>> {
    match (given, n_classes) {
        (Some(labels), Some(c)) => {
            if labels.len() != n {
                return Err(SamplerError::ShapeMismatch {
                    context: "labels vs batch size",
                    expected: vec![n as i64],
                    actual: vec![labels.len() as i64],
                });
            }
            if let Some(&bad) = labels.iter().find(|&&y| !(0..c).contains(&y)) {
                return Err(SamplerError::InvalidArgument(format!(
                    "label {bad} is outside 0..{c}"
                )));
            }
            Ok(Some(labels.to_vec()))
        }
        (Some(_), None) => Err(SamplerError::InvalidArgument(
            "labels were given to a source without a class count".into(),
        )),
        (None, Some(c)) => Ok(Some((0..n).map(|_| rng.random_range(0..c)).collect())),
        (None, None) => Ok(None),
    }
}

pub(crate) fn labels_tensor(labels: Option<&[i64]>, device: Device) -> Result<Option<Tensor>> {
    labels
        .map(|y| Ok(Tensor::f_from_slice(y)?.f_to_device(device)?))
        .transpose()
}
