//! JEM-k under attack: the classifier that refines its input by `k` SGLD steps before
//! classifying, with the paper's expectation over transformations (EOT, Appendix G.1, Eq. 11):
//!
//! ```text
//! log p_k^n(y | x) = (1/n) Σ_i log p(y | x_i),   x_i ~ SGLD(x + ε_i, k),   ε_i ~ N(0, σ_eot² I)
//! ```
//!
//! As the reference (`attack_model.py`), each of the `n` chains starts from its own noisy copy of
//! the input (σ_eot = [`DEFAULT_EOT_NOISE`] = 0.03) before the refinement. The refinement's
//! SGLD settings are the caller's (the paper's are `SgldConfig::default()`: α = 1, σ = 0.01, no
//! clamp), never a training sampler's.
//!
//! Averaging the log-probabilities of `n` independent refinements makes the stochastic defence
//! nearly deterministic, so a gradient attack sees the expected gradient rather than one noisy
//! draw; the gradient flows through every SGLD step (second-order autograd).

use jem_model::JointEnergyModel;
use jem_sampler::{refine, SgldConfig};
use rand_pcg::Pcg64;
use tch::Tensor;

use crate::error::{AttackError, Result};
use crate::rng::standard_normal;
use crate::target::AttackTarget;

/// The paper's number of EOT chains (Appendix G.1: 10 gave the same results as 5).
pub const DEFAULT_CHAINS: usize = 5;

/// Standard deviation of the Gaussian noise the reference adds to each EOT chain's copy of the
/// input before refining it.
pub const DEFAULT_EOT_NOISE: f64 = 0.03;

/// A JEM classifier that refines inputs by `refine_steps` SGLD steps on log p(x) and averages
/// log p(y | x) over `chains` independent refinements (JEM-k with EOT).
///
/// The model is always run in eval mode (`train = false`), as the paper samples and attacks it.
/// All `chains` refinements of a batch run as one batch of `chains · N` inputs (rows
/// `i·N .. (i+1)·N` are chain `i`); in eval mode the samples do not interact, so this only saves
/// time.
pub struct RefinedClassifier<'a> {
    model: &'a dyn JointEnergyModel,
    num_classes: i64,
    refine_steps: usize,
    chains: usize,
    sgld: SgldConfig,
    eot_noise: f64,
}

impl<'a> RefinedClassifier<'a> {
    /// JEM-`refine_steps` over `model` (which outputs `num_classes` logits), averaging `chains`
    /// refinements, with SGLD settings `sgld` (its `steps` field is ignored; the paper refines
    /// with its sampling settings, `SgldConfig::default()`). Each chain starts from the input
    /// plus N(0, [`DEFAULT_EOT_NOISE`]²) noise; see [`with_eot_noise`](Self::with_eot_noise).
    pub fn new(
        model: &'a dyn JointEnergyModel,
        num_classes: i64,
        refine_steps: usize,
        chains: usize,
        sgld: SgldConfig,
    ) -> Result<Self> {
        if num_classes < 1 {
            return Err(AttackError::from(jem_params::InvalidParam::new(
                "RefinedClassifier",
                "num_classes",
                num_classes.to_string(),
                ">= 1",
            )));
        }
        if chains == 0 {
            return Err(AttackError::from(jem_params::InvalidParam::new(
                "RefinedClassifier",
                "chains",
                chains.to_string(),
                ">= 1",
            )));
        }
        sgld.check()?;
        Ok(Self {
            model,
            num_classes,
            refine_steps,
            chains,
            sgld,
            eot_noise: DEFAULT_EOT_NOISE,
        })
    }

    /// Sets the standard deviation of the Gaussian noise added to each chain's copy of the input
    /// before refinement (0: the chains start at the input itself). Only refined classifiers
    /// (`refine_steps > 0`) add it: JEM-0 is the plain model.
    pub fn with_eot_noise(mut self, eot_noise: f64) -> Result<Self> {
        if !(eot_noise.is_finite() && eot_noise >= 0.0) {
            return Err(AttackError::from(jem_params::InvalidParam::new(
                "RefinedClassifier",
                "eot_noise",
                eot_noise.to_string(),
                "finite and >= 0",
            )));
        }
        self.eot_noise = eot_noise;
        Ok(self)
    }

    /// The plain classifier (JEM-0): no refinement, one chain.
    pub fn plain(model: &'a dyn JointEnergyModel, num_classes: i64) -> Result<Self> {
        Self::new(model, num_classes, 0, 1, SgldConfig::default())
    }

    /// Number of SGLD refinement steps k.
    pub fn refine_steps(&self) -> usize {
        self.refine_steps
    }

    /// Number of EOT chains n.
    pub fn chains(&self) -> usize {
        self.chains
    }

    /// The SGLD settings of the refinement.
    pub fn sgld(&self) -> &SgldConfig {
        &self.sgld
    }

    /// Standard deviation of the noise added to each chain before refinement.
    pub fn eot_noise(&self) -> f64 {
        self.eot_noise
    }

    /// The chains' starting points for the batch `x` (`[N, ...]`): `chains` stacked copies
    /// (`[chains · N, ...]`, chain `i` in rows `i·N .. (i+1)·N`) plus N(0, σ_eot²) noise drawn
    /// from `rng`. The copies stay in `x`'s graph, so gradients reach `x`.
    pub fn eot_starts(&self, x: &Tensor, rng: &mut Pcg64) -> Result<Tensor> {
        let shape = x.size();
        let mut repeats = vec![1i64; shape.len()];
        repeats[0] = self.chains as i64;
        let stacked = if self.chains == 1 {
            x.shallow_clone()
        } else {
            x.f_repeat(repeats.as_slice())?
        };
        if self.eot_noise == 0.0 {
            return Ok(stacked);
        }
        let noise = standard_normal(&stacked.size(), stacked.device(), rng)?
            .f_to_kind(stacked.kind())?
            .f_mul_scalar(self.eot_noise)?;
        Ok(stacked.f_add(&noise)?)
    }

    /// `log_softmax(logits(x))` in eval mode, shape-checked.
    fn log_softmax(&self, x: &Tensor) -> Result<Tensor> {
        let logits = self.model.logits(x, false)?;
        let n = x.size().first().copied().unwrap_or(0);
        if logits.size() != [n, self.num_classes] {
            return Err(AttackError::InvalidArgument(format!(
                "model logits: expected shape [{n}, {}], got {:?}",
                self.num_classes,
                logits.size()
            )));
        }
        Ok(logits.f_log_softmax(1, tch::Kind::Float)?)
    }

    /// Runs the refinement of `x` (possibly the chains' stacked copies), keeping the graph when
    /// `x` requires grad.
    fn refined(&self, x: &Tensor, rng: &mut Pcg64) -> Result<Tensor> {
        let density = |x: &Tensor| {
            self.model
                .log_px(x, false)
                .map_err(jem_sampler::SamplerError::density)
        };
        let create_graph = x.requires_grad();
        let (refined, _) = refine(
            &density,
            x,
            self.refine_steps,
            &self.sgld,
            create_graph,
            rng,
        )?;
        Ok(refined)
    }
}

impl AttackTarget for RefinedClassifier<'_> {
    fn num_classes(&self) -> i64 {
        self.num_classes
    }

    /// Eq. 11. With `refine_steps = 0` the transformation is the identity (no EOT noise either, as
    /// the reference), so the model is evaluated once whatever `chains` is, which makes JEM-0
    /// exactly the plain model.
    fn log_probs(&self, x: &Tensor, rng: &mut Pcg64) -> Result<Tensor> {
        let shape = x.size();
        let Some(&n) = shape.first() else {
            return Err(AttackError::InvalidArgument(
                "inputs `x`: expected a batch [N, ...], got a scalar".into(),
            ));
        };
        if self.refine_steps == 0 || n == 0 {
            return self.log_softmax(x);
        }
        let chains = self.chains as i64;
        // [n·N, ...]: chain i occupies rows i·N..(i+1)·N; `repeat` keeps x in the graph.
        let stacked = self.eot_starts(x, rng)?;
        let refined = self.refined(&stacked, rng)?;
        let log_probs = self.log_softmax(&refined)?;
        Ok(log_probs
            .f_view([chains, n, self.num_classes])?
            .f_mean_dim([0i64].as_slice(), false, tch::Kind::Float)?)
    }
}
