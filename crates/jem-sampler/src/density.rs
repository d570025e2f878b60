//! What the samplers sample: unnormalised log-densities over inputs.
//!
//! The sampler never sees a model, only a function from a batch of inputs to one log-density per
//! input, so it works with any classifier (or any differentiable energy). For JEM the marginal
//! log-density is `log p(x) = LogSumExp_y f(x)[y]` (the paper's sampling "method 2", used for all
//! its results) and the class-conditional one is `f(x)[y]` ("method 1"); [`FromLogits`] builds both
//! from a logits function.
//!
//! The paper samples with the model in **eval mode**: callers should switch the model to eval
//! before sampling and back afterwards. Besides making dropout deterministic, this matters because
//! SGLD differentiates `Σ_i log p(x_i)` once for the whole batch, which equals the per-sample
//! gradients only if the samples do not interact (as they do through train-mode batch norm).

use tch::Tensor;

use crate::error::Result;

/// Unnormalised log-density over inputs: given `x` of shape `[N, ...]` returns `[N]`.
///
/// Fallible, so a model or libtorch error (out of memory, a wrong input shape) reaches the
/// sampler's caller as [`SamplerError::Density`](crate::SamplerError::Density) instead of a panic
/// inside a closure.
pub trait LogDensity {
    /// `log p(x)` up to a constant, one value per sample.
    fn log_density(&self, x: &Tensor) -> Result<Tensor>;
}

impl<F> LogDensity for F
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    fn log_density(&self, x: &Tensor) -> Result<Tensor> {
        self(x)
    }
}

/// Class-conditional unnormalised log-density: given `x` `[N, ...]` and labels `y` `[N]` (int64)
/// returns `[N]` (for JEM `f(x)[y]`).
pub trait ConditionalLogDensity {
    /// `log p(x | y)` up to a per-class constant, one value per sample.
    fn log_density_given(&self, x: &Tensor, y: &Tensor) -> Result<Tensor>;
}

impl<F> ConditionalLogDensity for F
where
    F: Fn(&Tensor, &Tensor) -> Result<Tensor>,
{
    fn log_density_given(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        self(x, y)
    }
}

/// A conditional density with its labels fixed, usable wherever a [`LogDensity`] is expected.
pub struct Conditioned<'a> {
    density: &'a dyn ConditionalLogDensity,
    labels: &'a Tensor,
}

impl<'a> Conditioned<'a> {
    /// Fixes `labels` (`[N]`, int64, on the inputs' device) for `density`.
    pub fn new(density: &'a dyn ConditionalLogDensity, labels: &'a Tensor) -> Self {
        Self { density, labels }
    }
}

impl LogDensity for Conditioned<'_> {
    fn log_density(&self, x: &Tensor) -> Result<Tensor> {
        self.density.log_density_given(x, self.labels)
    }
}

/// Wraps a logits function `x [N, ...] -> [N, C]` as JEM's energies: the marginal
/// `LogSumExp_y logits[y]` and the conditional `logits[y]`.
pub struct FromLogits<F>(pub F);

impl<F> LogDensity for FromLogits<F>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    fn log_density(&self, x: &Tensor) -> Result<Tensor> {
        Ok((self.0)(x)?.f_logsumexp(1, false)?)
    }
}

impl<F> ConditionalLogDensity for FromLogits<F>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    fn log_density_given(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        Ok((self.0)(x)?
            .f_gather(1, &y.f_unsqueeze(1)?, false)?
            .f_squeeze_dim(1)?)
    }
}

/// Which of JEM's two energies drives the chains.
#[derive(Clone, Copy)]
pub enum Energy<'a> {
    /// `log p(x)` (the paper's "method 2", its default).
    Marginal(&'a dyn LogDensity),
    /// `log p(x | y)` with `y` taken from the chains' labels ("method 1").
    Conditional(&'a dyn ConditionalLogDensity),
}
