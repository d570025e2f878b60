//! Persistent replay buffer for PCD training (Algorithm 1, lines 4 and 11).
//!
//! The buffer holds `size` chains. A draw picks slots uniformly with replacement (as the
//! reference does) and restarts each picked chain from fresh `U(-1, 1)` noise with probability
//! `ρ`; after SGLD the refined chains are written back to their slots. In the class-conditional
//! layout the buffer is split into `C` equal slices and a chain of class `y` lives in slot
//! `y · (size / C) + u`, `u` uniform in `0..size / C`.
//!
//! Each slot also records its **age**: how many times the chain stored in it has been refined and
//! written back since it was last initialised from noise. The paper (Appendix H.2) observed that
//! the model encodes semantics in chain length, so the age distribution is a useful diagnostic.

use std::path::Path;

use rand::Rng;
use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

use crate::chains::{
    check_n_classes, check_sample_shape, draw_labels, labels_tensor, ChainBatch, SampleSource,
};
use crate::config::BufferConfig;
use crate::error::{Result, SamplerError};
use crate::init::{ChainStart, ClassGaussians};

/// Summary of the slots' ages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgeStats {
    /// Mean age over all slots.
    pub mean: f64,
    /// Oldest slot.
    pub max: u64,
}

/// A persistent replay buffer of SGLD chains.
#[derive(Debug)]
pub struct ReplayBuffer {
    /// `[size, ...sample_shape]`, float32, on the buffer's device.
    samples: Tensor,
    ages: Vec<u64>,
    sample_shape: Vec<i64>,
    n_classes: Option<i64>,
    class_conditional: bool,
    reinit_prob: f64,
    start: ChainStart,
}

/// Everything needed to restore a [`ReplayBuffer`] exactly, e.g. from a checkpoint.
#[derive(Debug)]
pub struct BufferState {
    /// The stored chains `[size, ...sample_shape]`.
    pub samples: Tensor,
    /// Age of each slot.
    pub ages: Vec<u64>,
    /// Class count used to draw labels, if any.
    pub n_classes: Option<i64>,
    /// Whether slots are split per class.
    pub class_conditional: bool,
    /// Re-initialisation probability `ρ`.
    pub reinit_prob: f64,
    /// Where re-initialised chains start.
    pub start: ChainStart,
}

/// Prefix of the Gaussian start's entries inside the buffer's named tensors.
const KEY_INIT: &str = "init_";

const KEY_SAMPLES: &str = "samples";
const KEY_AGES: &str = "ages";
const KEY_N_CLASSES: &str = "n_classes";
const KEY_CLASS_CONDITIONAL: &str = "class_conditional";
const KEY_REINIT_PROB: &str = "reinit_prob";
/// Stored only for a [`ChainStart::Mixture`]; absent means the Gaussians alone.
const KEY_INIT_UNIFORM: &str = "init_uniform_fraction";

impl BufferState {
    /// The state as named tensors (`{prefix}samples`, `{prefix}ages`, ...), for storing inside a
    /// larger checkpoint with [`Tensor::save_multi`]. Keep `prefix` free of dots.
    pub fn to_named_tensors(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let ages: Vec<i64> = self.ages.iter().map(|&a| a as i64).collect();
        let mut named = vec![
            (
                format!("{prefix}{KEY_SAMPLES}"),
                self.samples.shallow_clone(),
            ),
            (format!("{prefix}{KEY_AGES}"), Tensor::f_from_slice(&ages)?),
            (
                format!("{prefix}{KEY_N_CLASSES}"),
                // 0 encodes "no class count"; real counts are >= 1.
                Tensor::f_from_slice(&[self.n_classes.unwrap_or(0)])?,
            ),
            (
                format!("{prefix}{KEY_CLASS_CONDITIONAL}"),
                Tensor::f_from_slice(&[i64::from(self.class_conditional)])?,
            ),
            (
                format!("{prefix}{KEY_REINIT_PROB}"),
                Tensor::f_from_slice(&[self.reinit_prob])?,
            ),
        ];
        if let Some(g) = self.start.gaussians() {
            named.extend(g.to_named_tensors(&format!("{prefix}{KEY_INIT}"))?);
        }
        if let ChainStart::Mixture {
            uniform_fraction, ..
        } = &self.start
        {
            named.push((
                format!("{prefix}{KEY_INIT_UNIFORM}"),
                Tensor::f_from_slice(&[*uniform_fraction])?,
            ));
        }
        Ok(named)
    }

    /// Inverse of [`BufferState::to_named_tensors`]; other entries are ignored.
    pub fn from_named_tensors(named: &[(String, Tensor)], prefix: &str) -> Result<Self> {
        let get = |key: &str| -> Result<&Tensor> {
            let name = format!("{prefix}{key}");
            named
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| SamplerError::InvalidState(format!("missing entry `{name}`")))
        };
        let ints = |key: &str| -> Result<Vec<i64>> {
            Ok(Vec::<i64>::try_from(
                &get(key)?.f_to_device(Device::Cpu)?.f_flatten(0, -1)?,
            )?)
        };
        let first = |key: &str| -> Result<i64> {
            ints(key)?.first().copied().ok_or_else(|| {
                SamplerError::InvalidState(format!("entry `{prefix}{key}` is empty"))
            })
        };
        let ages = ints(KEY_AGES)?
            .into_iter()
            .map(|a| {
                u64::try_from(a)
                    .map_err(|_| SamplerError::InvalidState(format!("negative age {a}")))
            })
            .collect::<Result<Vec<u64>>>()?;
        let n_classes = match first(KEY_N_CLASSES)? {
            0 => None,
            c => Some(c),
        };
        let reinit_prob = get(KEY_REINIT_PROB)?
            .f_to_device(Device::Cpu)?
            .f_double_value(&[0])?;
        Ok(Self {
            samples: get(KEY_SAMPLES)?.shallow_clone(),
            ages,
            n_classes,
            class_conditional: first(KEY_CLASS_CONDITIONAL)? != 0,
            reinit_prob,
            start: match ClassGaussians::from_named_tensors(named, &format!("{prefix}{KEY_INIT}"))?
            {
                Some(g) => match get(KEY_INIT_UNIFORM) {
                    Ok(t) => {
                        let f = t.f_to_device(Device::Cpu)?.f_double_value(&[0])?;
                        if !(0.0..=1.0).contains(&f) {
                            return Err(SamplerError::InvalidState(format!(
                                "entry `{prefix}{KEY_INIT_UNIFORM}` = {f}, outside [0, 1]"
                            )));
                        }
                        ChainStart::Mixture {
                            gaussians: g,
                            uniform_fraction: f,
                        }
                    }
                    Err(_) => ChainStart::Gaussians(g),
                },
                None => ChainStart::Uniform,
            },
        })
    }

    /// A copy whose chains do not alias these (the start is shared: it never changes), e.g. to
    /// restore a snapshot more than once.
    pub fn deep_copy(&self) -> Result<Self> {
        Ok(Self {
            samples: self.samples.f_detach_copy()?,
            ages: self.ages.clone(),
            n_classes: self.n_classes,
            class_conditional: self.class_conditional,
            reinit_prob: self.reinit_prob,
            start: self.start.shallow_clone(),
        })
    }
}

impl ReplayBuffer {
    /// A buffer of `cfg.size` chains of `sample_shape` (without the batch dimension), initialised
    /// `U(-1, 1)` from `rng`, on `device`.
    ///
    /// `n_classes` makes draws carry uniformly drawn labels (needed for class-conditional
    /// sampling) and is required when `cfg.class_conditional`, in which case `cfg.size` must be a
    /// multiple of it.
    pub fn new(
        cfg: &BufferConfig,
        sample_shape: &[i64],
        n_classes: Option<i64>,
        device: Device,
        rng: &mut Pcg64,
    ) -> Result<Self> {
        Self::with_start(
            cfg,
            sample_shape,
            n_classes,
            ChainStart::Uniform,
            device,
            rng,
        )
    }

    /// Like [`ReplayBuffer::new`], with chains (the first fill and every re-initialisation)
    /// starting from `start`. In the class-conditional layout a slot of class `y` starts from
    /// class `y`'s Gaussian; otherwise each fresh chain draws its class uniformly.
    pub fn with_start(
        cfg: &BufferConfig,
        sample_shape: &[i64],
        n_classes: Option<i64>,
        start: ChainStart,
        device: Device,
        rng: &mut Pcg64,
    ) -> Result<Self> {
        cfg.check()?;
        check_sample_shape(sample_shape)?;
        check_layout(cfg.size, n_classes, cfg.class_conditional)?;
        check_memory(cfg.size, sample_shape)?;
        let labels: Option<Vec<i64>> = match (cfg.class_conditional, n_classes) {
            (true, Some(c)) => {
                let per_class = cfg.size as i64 / c;
                Some((0..cfg.size as i64).map(|slot| slot / per_class).collect())
            }
            _ => None,
        };
        let samples = start.draw(cfg.size, sample_shape, labels.as_deref(), device, rng)?;
        Ok(Self {
            samples,
            ages: vec![0; cfg.size],
            sample_shape: sample_shape.to_vec(),
            n_classes,
            class_conditional: cfg.class_conditional,
            reinit_prob: cfg.reinit_prob,
            start,
        })
    }

    /// Where fresh chains start.
    pub fn start(&self) -> &ChainStart {
        &self.start
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.ages.len()
    }

    /// Always false: a buffer has at least one slot.
    pub fn is_empty(&self) -> bool {
        self.ages.is_empty()
    }

    /// Shape of one sample.
    pub fn sample_shape(&self) -> &[i64] {
        &self.sample_shape
    }

    /// Class count used for labels, if any.
    pub fn n_classes(&self) -> Option<i64> {
        self.n_classes
    }

    /// Whether the slots are split per class.
    pub fn is_class_conditional(&self) -> bool {
        self.class_conditional
    }

    /// Re-initialisation probability `ρ`.
    pub fn reinit_prob(&self) -> f64 {
        self.reinit_prob
    }

    /// Device holding the chains.
    pub fn device(&self) -> Device {
        self.samples.device()
    }

    /// The stored chains `[size, ...sample_shape]` (e.g. for sample grids or FID on the buffer,
    /// as the paper computes its scores on the training buffer).
    pub fn samples(&self) -> &Tensor {
        &self.samples
    }

    /// Age of every slot: write-backs since the chain in it was last initialised from noise.
    pub fn ages(&self) -> &[u64] {
        &self.ages
    }

    /// Mean and maximum slot age.
    pub fn age_stats(&self) -> AgeStats {
        let max = self.ages.iter().copied().max().unwrap_or(0);
        let mean = self.ages.iter().sum::<u64>() as f64 / self.ages.len().max(1) as f64;
        AgeStats { mean, max }
    }

    /// Range of slots holding class `y` (the whole buffer when not class-conditional).
    pub fn class_slots(&self, y: i64) -> std::ops::Range<i64> {
        match (self.class_conditional, self.n_classes) {
            (true, Some(c)) => {
                let per_class = self.len() as i64 / c;
                y * per_class..(y + 1) * per_class
            }
            _ => 0..self.len() as i64,
        }
    }

    /// Draws `n` chains with uniformly drawn labels (when the buffer has a class count).
    pub fn sample_batch(&self, n: usize, rng: &mut Pcg64) -> Result<ChainBatch> {
        self.draw_inner(n, None, rng)
    }

    /// Draws one chain per given label (requires a class count).
    pub fn sample_batch_with_labels(&self, labels: &[i64], rng: &mut Pcg64) -> Result<ChainBatch> {
        self.draw_inner(labels.len(), Some(labels), rng)
    }

    fn draw_inner(&self, n: usize, given: Option<&[i64]>, rng: &mut Pcg64) -> Result<ChainBatch> {
        // Fixed draw order (labels, then slots and coins, then fresh noise) keeps runs reproducible.
        let labels = draw_labels(n, self.n_classes, given, rng)?;
        let mut indices = Vec::with_capacity(n);
        let mut reinitialised = Vec::with_capacity(n);
        for i in 0..n {
            let slots = match &labels {
                Some(y) => self.class_slots(y[i]),
                None => self.class_slots(0),
            };
            indices.push(rng.random_range(slots));
            reinitialised.push(rng.random_bool(self.reinit_prob));
        }
        let start_ages = indices
            .iter()
            .zip(&reinitialised)
            .map(|(&slot, &fresh)| if fresh { 0 } else { self.ages[slot as usize] })
            .collect();

        let device = self.device();
        let index = Tensor::f_from_slice(&indices)?.f_to_device(device)?;
        let mut x0 = self.samples.f_index_select(0, &index)?;
        let fresh_rows: Vec<i64> = (0..n as i64)
            .filter(|&i| reinitialised[i as usize])
            .collect();
        if !fresh_rows.is_empty() {
            let fresh_labels: Option<Vec<i64>> = match (&labels, self.class_conditional) {
                (Some(y), true) => Some(fresh_rows.iter().map(|&i| y[i as usize]).collect()),
                _ => None,
            };
            let fresh = self.start.draw(
                fresh_rows.len(),
                &self.sample_shape,
                fresh_labels.as_deref(),
                device,
                rng,
            )?;
            let rows = Tensor::f_from_slice(&fresh_rows)?.f_to_device(device)?;
            let _ = x0.f_index_copy_(0, &rows, &fresh)?;
        }
        Ok(ChainBatch {
            x0,
            labels: labels_tensor(labels.as_deref(), device)?,
            indices,
            reinitialised,
            start_ages,
        })
    }

    /// Writes the refined chains `x` (`[N, ...sample_shape]`, in `batch` order) back to the slots
    /// they were drawn from, detached and moved to the buffer's device and dtype.
    ///
    /// A slot drawn twice in one batch keeps its last chain: duplicates are resolved here rather
    /// than by a scatter, whose winner on CUDA is unspecified, so the buffer stays reproducible.
    pub fn push_back(&mut self, batch: &ChainBatch, x: &Tensor) -> Result<()> {
        let n = batch.indices.len();
        if batch.reinitialised.len() != n || batch.start_ages.len() != n {
            return Err(SamplerError::InvalidArgument(
                "the batch was not drawn from a replay buffer (indices missing)".into(),
            ));
        }
        let mut expected = vec![n as i64];
        expected.extend_from_slice(&self.sample_shape);
        let actual = x.size();
        if actual != expected {
            return Err(SamplerError::ShapeMismatch {
                context: "refined chains vs replay-buffer batch",
                expected,
                actual,
            });
        }
        if let Some(&bad) = batch
            .indices
            .iter()
            .find(|&&i| !(0..self.len() as i64).contains(&i))
        {
            return Err(SamplerError::InvalidArgument(format!(
                "slot {bad} is outside this buffer of {} slots",
                self.len()
            )));
        }
        // Last occurrence of each slot wins.
        let mut last = std::collections::HashMap::with_capacity(n);
        for (pos, &slot) in batch.indices.iter().enumerate() {
            last.insert(slot, pos);
        }
        let mut pairs: Vec<(i64, usize)> = last.into_iter().collect();
        pairs.sort_unstable();
        let slots: Vec<i64> = pairs.iter().map(|&(slot, _)| slot).collect();
        let positions: Vec<i64> = pairs.iter().map(|&(_, pos)| pos as i64).collect();

        let device = self.device();
        let src = x
            .detach()
            .f_to_device(device)?
            .f_to_kind(Kind::Float)?
            .f_index_select(0, &Tensor::f_from_slice(&positions)?.f_to_device(device)?)?;
        tch::no_grad(|| -> Result<()> {
            let _ = self.samples.f_index_copy_(
                0,
                &Tensor::f_from_slice(&slots)?.f_to_device(device)?,
                &src,
            )?;
            Ok(())
        })?;
        for &(slot, pos) in &pairs {
            self.ages[slot as usize] = batch.start_ages[pos] + 1;
        }
        Ok(())
    }

    /// A deep copy of the buffer's state (the chains are copied on their device).
    pub fn state(&self) -> Result<BufferState> {
        Ok(BufferState {
            samples: self.samples.f_detach_copy()?,
            ages: self.ages.clone(),
            n_classes: self.n_classes,
            class_conditional: self.class_conditional,
            reinit_prob: self.reinit_prob,
            start: self.start.shallow_clone(),
        })
    }

    /// Restores a buffer from `state`, moving its chains to `device`.
    pub fn from_state(state: BufferState, device: Device) -> Result<Self> {
        let size = state.samples.size();
        let Some((&len, sample_shape)) = size.split_first() else {
            return Err(SamplerError::InvalidState(
                "samples tensor is a scalar".into(),
            ));
        };
        if len as usize != state.ages.len() {
            return Err(SamplerError::InvalidState(format!(
                "{} ages for {len} samples",
                state.ages.len()
            )));
        }
        BufferConfig {
            size: state.ages.len(),
            reinit_prob: state.reinit_prob,
            class_conditional: state.class_conditional,
            ..BufferConfig::default()
        }
        .check()?;
        check_sample_shape(sample_shape)?;
        check_layout(state.ages.len(), state.n_classes, state.class_conditional)?;
        Ok(Self {
            samples: state
                .samples
                .f_to_device(device)?
                .f_to_kind(Kind::Float)?
                .f_detach()?,
            sample_shape: sample_shape.to_vec(),
            ages: state.ages,
            n_classes: state.n_classes,
            class_conditional: state.class_conditional,
            reinit_prob: state.reinit_prob,
            start: state.start,
        })
    }

    /// Saves the buffer to `path` (torch's named-tensor format) without an intermediate copy.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        Tensor::save_multi(&self.state()?.to_named_tensors("")?, path)?;
        Ok(())
    }

    /// Loads a buffer written by [`ReplayBuffer::save`] onto `device`.
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<Self> {
        let named = Tensor::load_multi(path)?;
        Self::from_state(BufferState::from_named_tensors(&named, "")?, device)
    }
}

impl SampleSource for ReplayBuffer {
    fn draw(&mut self, n: usize, labels: Option<&[i64]>, rng: &mut Pcg64) -> Result<ChainBatch> {
        self.draw_inner(n, labels, rng)
    }

    fn store(&mut self, batch: &ChainBatch, x: &Tensor) -> Result<()> {
        self.push_back(batch, x)
    }
}

/// Largest buffer, in float32 elements, accepted before allocating: 2^32 (16 GiB).
const MAX_BUFFER_ELEMENTS: u64 = 1 << 32;

/// Refuses buffers whose chains would not fit in memory, naming the setting.
fn check_memory(size: usize, sample_shape: &[i64]) -> Result<()> {
    let per_sample = sample_shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let total = per_sample.and_then(|p| p.checked_mul(size as u64));
    match total {
        Some(t) if t <= MAX_BUFFER_ELEMENTS => Ok(()),
        _ => Err(jem_params::InvalidParam::new(
            "sampler.buffer",
            "size",
            format_args!("{size} (x {sample_shape:?} per chain)"),
            "at most 2^32 float elements in all (16 GiB)",
        )
        .into()),
    }
}

fn check_layout(size: usize, n_classes: Option<i64>, class_conditional: bool) -> Result<()> {
    check_n_classes(n_classes)?;
    if class_conditional {
        let Some(c) = n_classes else {
            return Err(SamplerError::InvalidArgument(
                "a class-conditional buffer needs the class count".into(),
            ));
        };
        if size as i64 % c != 0 {
            return Err(SamplerError::InvalidArgument(format!(
                "a class-conditional buffer needs a size divisible by the class count, got {size} slots for {c} classes"
            )));
        }
    }
    Ok(())
}
