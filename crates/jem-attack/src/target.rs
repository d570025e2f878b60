//! What an attack attacks: a (possibly randomised) classifier over inputs in [-1, 1].

use rand_pcg::Pcg64;
use tch::{Kind, Tensor};

use crate::error::{AttackError, Result};

/// A classifier under attack. Inputs are `[N, C, H, W]` `f32` batches in [-1, 1].
///
/// Randomised classifiers (JEM-k with SGLD refinement noise) draw all their randomness from
/// `rng`, so an attack is deterministic given its seed.
pub trait AttackTarget {
    /// Number of classes C.
    fn num_classes(&self) -> i64;

    /// log p(y | x), `[N, C]`. Differentiable with respect to `x` when `x` requires grad, so
    /// gradient attacks can backpropagate through it (for JEM-k: through the refinement).
    fn log_probs(&self, x: &Tensor, rng: &mut Pcg64) -> Result<Tensor>;

    /// Predicted labels `[N]` (int64), computed without gradients.
    fn predict(&self, x: &Tensor, rng: &mut Pcg64) -> Result<Tensor> {
        let log_probs = tch::no_grad(|| self.log_probs(&x.detach(), rng))?;
        Ok(log_probs.f_argmax(1, false)?)
    }
}

/// A deterministic classifier given as a logits function `x [N, ...] -> [N, C]`
/// (a plain network, or a JEM model without refinement).
pub struct LogitsFn<F> {
    logits: F,
    num_classes: i64,
}

impl<F> LogitsFn<F>
where
    F: Fn(&Tensor) -> Tensor,
{
    /// Wraps `logits`, which returns `num_classes` logits per input.
    pub fn new(logits: F, num_classes: i64) -> Self {
        Self {
            logits,
            num_classes,
        }
    }
}

impl<F> AttackTarget for LogitsFn<F>
where
    F: Fn(&Tensor) -> Tensor,
{
    fn num_classes(&self) -> i64 {
        self.num_classes
    }

    fn log_probs(&self, x: &Tensor, _rng: &mut Pcg64) -> Result<Tensor> {
        Ok((self.logits)(x).f_log_softmax(1, tch::Kind::Float)?)
    }
}

/// A reference to a target is a target, so attacks can take `&dyn AttackTarget` or owned targets.
impl<T: AttackTarget + ?Sized> AttackTarget for &T {
    fn num_classes(&self) -> i64 {
        (**self).num_classes()
    }

    fn log_probs(&self, x: &Tensor, rng: &mut Pcg64) -> Result<Tensor> {
        (**self).log_probs(x, rng)
    }

    fn predict(&self, x: &Tensor, rng: &mut Pcg64) -> Result<Tensor> {
        (**self).predict(x, rng)
    }
}

/// How far outside [-1, 1] an input may lie before it is rejected (float round-off of the
/// data pipeline's scaling).
pub const BOX_TOLERANCE: f64 = 1e-5;

/// Validates an attack batch and returns its size N.
///
/// `x` must be a floating-point `[N, ...]` tensor (at least two dimensions) with values in
/// [-1, 1] (up to [`BOX_TOLERANCE`]); `labels` a 1-D integer tensor of length N with values in
/// `0..num_classes`. Errors name the offending argument.
pub fn check_batch(x: &Tensor, labels: &Tensor, num_classes: i64) -> Result<i64> {
    let shape = x.size();
    if shape.len() < 2 {
        return Err(AttackError::InvalidArgument(format!(
            "inputs `x`: expected a batch [N, ...] with at least 2 dimensions, got shape {shape:?}"
        )));
    }
    if !x.f_is_floating_point()? {
        return Err(AttackError::InvalidArgument(format!(
            "inputs `x`: expected a floating-point tensor, got {:?}",
            x.f_kind()?
        )));
    }
    let n = shape[0];
    if n > 0 {
        let lo = x.f_min()?.f_double_value(&[])?;
        let hi = x.f_max()?.f_double_value(&[])?;
        if !(lo >= -1.0 - BOX_TOLERANCE && hi <= 1.0 + BOX_TOLERANCE) {
            return Err(AttackError::InvalidArgument(format!(
                "inputs `x`: values must lie in [-1, 1], found range [{lo}, {hi}]"
            )));
        }
    }
    check_labels(labels, n, num_classes)?;
    Ok(n)
}

/// Validates labels: a 1-D integer tensor of length `n` with values in `0..num_classes`.
pub fn check_labels(labels: &Tensor, n: i64, num_classes: i64) -> Result<()> {
    if labels.size() != [n] {
        return Err(AttackError::InvalidArgument(format!(
            "`labels`: expected shape [{n}] (one label per input), got {:?}",
            labels.size()
        )));
    }
    if !matches!(
        labels.f_kind()?,
        Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8
    ) {
        return Err(AttackError::InvalidArgument(format!(
            "`labels`: expected an integer tensor, got {:?}",
            labels.f_kind()?
        )));
    }
    if n > 0 {
        let lo = labels.f_min()?.f_int64_value(&[])?;
        let hi = labels.f_max()?.f_int64_value(&[])?;
        if lo < 0 || hi >= num_classes {
            return Err(AttackError::InvalidArgument(format!(
                "`labels`: values must lie in 0..{num_classes}, found range [{lo}, {hi}]"
            )));
        }
    }
    Ok(())
}

/// Checks that a target returned `[n, num_classes]` log-probabilities.
pub(crate) fn check_log_probs(log_probs: &Tensor, n: i64, num_classes: i64) -> Result<()> {
    if log_probs.size() != [n, num_classes] {
        return Err(AttackError::InvalidArgument(format!(
            "target output: expected log-probabilities of shape [{n}, {num_classes}], got {:?}",
            log_probs.size()
        )));
    }
    Ok(())
}
