//! Sampler configuration: SGLD hyper-parameters and replay-buffer settings.
//!
//! Both structs deserialize with `deny_unknown_fields`, so a misspelled key in a config file is an
//! error instead of a silently ignored setting, and every field has the paper's default (Table 4),
//! so a config file only lists what it changes. [`SgldConfig::check`] and [`BufferConfig::check`]
//! validate ranges and name the offending field.

use jem_params::InvalidParam;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SamplerError};

/// How the noise of an SGLD step relates to its step size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SgldMode {
    /// The paper's "relaxed" SGLD (Appendix H.1): `x += α ∇log p(x) + σ ε` with `σ` chosen
    /// independently of `α` (JEM: `α = 1`, `σ = 0.01`). Not a valid MCMC sampler, but the noise no
    /// longer drowns the gradient signal at informative step sizes.
    #[default]
    Relaxed,
    /// Unadjusted Langevin dynamics: `x += α ∇log p(x) + sqrt(2α) ε`. `noise` is ignored. For small
    /// `α` (or a decaying schedule) the chain samples `p(x)` up to an `O(α)` discretisation bias.
    Langevin,
}

/// Per-step schedule for the step size `α_t`, `t = 0, 1, ...` within one chain run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepDecay {
    /// `α_t = α` (the paper).
    #[default]
    Constant,
    /// `α_t = α · rate^t`.
    Geometric {
        /// Multiplier per step, in `(0, 1]`.
        rate: f64,
    },
    /// `α_t = α · (1 + t / t0)^(-power)`, the polynomial decay of Welling & Teh (2011); the
    /// asymptotic guarantees need `power ∈ (0.5, 1]`.
    Polynomial {
        /// Decay exponent, in `(0, 1]`.
        power: f64,
        /// Number of steps over which `α` roughly halves (for `power = 1`); `> 0`.
        t0: f64,
    },
}

impl StepDecay {
    /// Multiplier applied to the base step size at step `t`.
    pub fn factor(&self, t: usize) -> f64 {
        match *self {
            StepDecay::Constant => 1.0,
            StepDecay::Geometric { rate } => rate.powf(t as f64),
            StepDecay::Polynomial { power, t0 } => (1.0 + t as f64 / t0).powf(-power),
        }
    }
}

/// Most SGLD steps per chain run accepted (the paper uses 20; 10^5 is hours per iteration).
pub const MAX_SGLD_STEPS: usize = 100_000;

/// SGLD hyper-parameters. `Default` is the paper's Table 4 (20 steps, `α = 1`, `σ = 0.01`,
/// relaxed, no clamp, no gradient clipping).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgldConfig {
    /// Number of SGLD steps per chain run (`η` in Algorithm 1).
    pub steps: usize,
    /// Step size `α` multiplying `∂ log p(x)/∂x`.
    pub step_size: f64,
    /// Standard deviation `σ` of the Gaussian noise in [`SgldMode::Relaxed`]; ignored by
    /// [`SgldMode::Langevin`], whose noise is `sqrt(2 α_t)`.
    pub noise: f64,
    /// Relaxed (paper) or proper Langevin noise.
    pub mode: SgldMode,
    /// Step-size schedule within a chain run.
    pub decay: StepDecay,
    /// Clamp every coordinate to `[lo, hi]` after each step (the data range is `[-1, 1]`);
    /// the paper does not clamp.
    pub clamp: Option<(f64, f64)>,
    /// Rescale each sample's gradient to at most this L2 norm before the step. Per sample rather
    /// than per batch, so one runaway chain (Appendix H.3) does not shrink every other chain's step.
    pub grad_clip: Option<f64>,
    /// Clamp every coordinate of the gradient step `α_t · ∂ log p(x)/∂x` to `[-δ, δ]` (clamping
    /// the step, as JEM++'s proximal SGLD, rather than only the chain with `clamp`).
    pub step_clamp: Option<f64>,
}

impl Default for SgldConfig {
    fn default() -> Self {
        Self {
            steps: 20,
            step_size: 1.0,
            noise: 0.01,
            mode: SgldMode::Relaxed,
            decay: StepDecay::Constant,
            clamp: None,
            grad_clip: None,
            step_clamp: None,
        }
    }
}

fn invalid(config: &str, field: &str, value: impl std::fmt::Debug, allowed: &str) -> SamplerError {
    InvalidParam::debug(config, field, value, allowed).into()
}

impl SgldConfig {
    /// Proper Langevin dynamics with step size `step_size` for `steps` steps, otherwise defaults.
    pub fn langevin(step_size: f64, steps: usize) -> Self {
        Self {
            steps,
            step_size,
            mode: SgldMode::Langevin,
            ..Self::default()
        }
    }

    /// Validates every field, naming the first one out of range.
    pub fn check(&self) -> Result<()> {
        const C: &str = "sampler.sgld";
        if self.steps > MAX_SGLD_STEPS {
            return Err(invalid(C, "steps", self.steps, "at most 100000"));
        }
        if !(self.step_size.is_finite() && self.step_size > 0.0) {
            return Err(invalid(C, "step_size", self.step_size, "finite and > 0"));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(invalid(C, "noise", self.noise, "finite and >= 0"));
        }
        match self.decay {
            StepDecay::Constant => {}
            StepDecay::Geometric { rate } => {
                if !(rate > 0.0 && rate <= 1.0) {
                    return Err(invalid(C, "decay.rate", rate, "in (0, 1]"));
                }
            }
            StepDecay::Polynomial { power, t0 } => {
                if !(power > 0.0 && power <= 1.0) {
                    return Err(invalid(C, "decay.power", power, "in (0, 1]"));
                }
                if !(t0.is_finite() && t0 > 0.0) {
                    return Err(invalid(C, "decay.t0", t0, "finite and > 0"));
                }
            }
        }
        if let Some((lo, hi)) = self.clamp {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(invalid(C, "clamp", (lo, hi), "finite bounds with lo < hi"));
            }
        }
        if let Some(c) = self.grad_clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(invalid(C, "grad_clip", c, "finite and > 0"));
            }
        }
        if let Some(d) = self.step_clamp {
            if !(d.is_finite() && d > 0.0) {
                return Err(invalid(C, "step_clamp", d, "finite and > 0"));
            }
        }
        Ok(())
    }

    /// Step size at step `t` after the decay schedule.
    pub fn step_size_at(&self, t: usize) -> f64 {
        self.step_size * self.decay.factor(t)
    }

    /// Noise standard deviation at step `t`: `σ` when relaxed, `sqrt(2 α_t)` for Langevin.
    pub fn noise_at(&self, t: usize) -> f64 {
        match self.mode {
            SgldMode::Relaxed => self.noise,
            SgldMode::Langevin => (2.0 * self.step_size_at(t)).sqrt(),
        }
    }
}

/// Where fresh chains start (the buffer's first fill, its re-initialisations and short-run chains).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitKind {
    /// `U(-1, 1)` noise (the paper).
    #[default]
    Uniform,
    /// Class-conditional Gaussians fitted to the training data (JEM++'s informative
    /// initialisation); see [`ClassGaussians`](crate::ClassGaussians).
    Gaussian,
}

/// Largest replay buffer accepted: 10^7 chains (at 3x32x32 floats, 123 GB; beyond any use).
pub const MAX_BUFFER_SIZE: usize = 10_000_000;

/// Persistent replay-buffer settings. `Default` is the paper's (10 000 samples, `ρ = 0.05`,
/// unconditional, uniform start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Number of stored chains.
    pub size: usize,
    /// Probability `ρ` that a drawn chain restarts from fresh `U(-1, 1)` noise.
    pub reinit_prob: f64,
    /// Split the buffer into one equal slice per class (the reference's
    /// `--class_cond_p_x_sample`); `size` must then be a multiple of the class count.
    pub class_conditional: bool,
    /// Where fresh chains start: `uniform` (the paper) or `gaussian` (JEM++). Short-run chains
    /// use this too.
    pub init: InitKind,
    /// Principal components kept per class by the Gaussian start (probabilistic PCA); unset means
    /// the full covariance.
    pub init_rank: Option<usize>,
    /// With `init = "gaussian"`: the probability in `[0, 1]` that a fresh chain starts from
    /// `U(-1, 1)` noise instead of its class's Gaussian (0: the Gaussians only).
    pub init_uniform_fraction: f64,
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            size: 10_000,
            reinit_prob: 0.05,
            class_conditional: false,
            init: InitKind::Uniform,
            init_rank: None,
            init_uniform_fraction: 0.0,
        }
    }
}

impl BufferConfig {
    /// Validates every field, naming the first one out of range.
    pub fn check(&self) -> Result<()> {
        const C: &str = "sampler.buffer";
        // Slot indices travel as i64 tensors.
        if self.size == 0 || self.size > MAX_BUFFER_SIZE {
            return Err(invalid(C, "size", self.size, "in 1..=10000000"));
        }
        if self.init_rank == Some(0) {
            return Err(invalid(
                C,
                "init_rank",
                0,
                ">= 1, or unset for the full covariance",
            ));
        }
        if !(0.0..=1.0).contains(&self.reinit_prob) {
            return Err(invalid(C, "reinit_prob", self.reinit_prob, "in [0, 1]"));
        }
        let f = self.init_uniform_fraction;
        if !(0.0..=1.0).contains(&f) {
            return Err(invalid(C, "init_uniform_fraction", f, "in [0, 1]"));
        }
        if f > 0.0 && self.init == InitKind::Uniform {
            return Err(invalid(
                C,
                "init_uniform_fraction",
                f,
                "0 with init = \"uniform\" (every chain starts from noise already)",
            ));
        }
        Ok(())
    }
}
