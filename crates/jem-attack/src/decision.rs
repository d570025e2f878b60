//! What the decision-based attacks ([`boundary`](crate::boundary),
//! [`pointwise`](crate::pointwise)) share: their per-batch report, batch validation, label
//! queries and host copies of tensors.

use tch::{Device, Kind, Tensor};

use crate::error::{AttackError, Result};
use crate::target::AttackTarget;

/// What every decision-based attack reports for one input.
pub trait DecisionOutcome {
    /// The adversarial, `[C, H, W]` (the original where the attack failed or was not needed).
    fn adversarial(&self) -> &Tensor;
    /// L2 distance to the original in input units ([-1, 1] scale); infinite when it failed.
    fn l2_distance(&self) -> f64;
    /// Whether an adversarial was found.
    fn success(&self) -> bool;
}

/// Implements [`DecisionOutcome`] for an outcome struct with `adversarial`, `l2_distance` and
/// `success` fields.
macro_rules! decision_outcome {
    ($outcome:ty) => {
        impl $crate::decision::DecisionOutcome for $outcome {
            fn adversarial(&self) -> &tch::Tensor {
                &self.adversarial
            }

            fn l2_distance(&self) -> f64 {
                self.l2_distance
            }

            fn success(&self) -> bool {
                self.success
            }
        }
    };
}
pub(crate) use decision_outcome;

/// Results of a decision-based attack on a batch, one outcome per input in batch order
/// ([`BoundaryReport`](crate::BoundaryReport), [`PointwiseReport`](crate::PointwiseReport)).
#[derive(Debug)]
pub struct DecisionReport<O> {
    /// Per-input outcomes.
    pub outcomes: Vec<O>,
}

impl<O: DecisionOutcome> DecisionReport<O> {
    /// The adversarials stacked into `[N, C, H, W]` (originals where the attack failed).
    pub fn adversarials(&self) -> Result<Tensor> {
        let tensors: Vec<&Tensor> = self.outcomes.iter().map(|o| o.adversarial()).collect();
        if tensors.is_empty() {
            return Err(AttackError::InvalidArgument(
                "no outcomes to stack".to_string(),
            ));
        }
        Ok(Tensor::f_stack(&tensors, 0)?)
    }

    /// Per-input L2 distances in input units (infinite where the attack failed).
    pub fn l2_distances(&self) -> Vec<f64> {
        self.outcomes.iter().map(|o| o.l2_distance()).collect()
    }

    /// Per-input success flags.
    pub fn successes(&self) -> Vec<bool> {
        self.outcomes.iter().map(|o| o.success()).collect()
    }
}

/// What [`check_batch`] learned about a validated batch.
pub(crate) struct CheckedBatch {
    /// Per-input shape `[C, H, W]`.
    pub(crate) sample_shape: Vec<i64>,
    /// True labels, on the host.
    pub(crate) labels: Vec<i64>,
}

/// Validates an attack batch (the crate-wide rules of [`crate::target::check_batch`], plus four
/// dimensions `[N, C, H, W]`) and copies the labels to the host.
pub(crate) fn check_batch<T: AttackTarget + ?Sized>(
    target: &T,
    inputs: &Tensor,
    labels: &Tensor,
) -> Result<CheckedBatch> {
    crate::target::check_batch(inputs, labels, target.num_classes())?;
    let shape = inputs.size();
    if shape.len() != 4 {
        return Err(AttackError::InvalidArgument(format!(
            "inputs `x`: expected [N, C, H, W], got shape {shape:?}"
        )));
    }
    Ok(CheckedBatch {
        sample_shape: shape[1..].to_vec(),
        labels: to_i64_vec(labels)?,
    })
}

/// The target's labels for `batch`, on the host.
pub(crate) fn predict_labels<T: AttackTarget + ?Sized>(
    target: &T,
    batch: &Tensor,
    rng: &mut rand_pcg::Pcg64,
) -> Result<Vec<i64>> {
    let n = batch.size()[0];
    let predicted = target.predict(batch, rng)?;
    if predicted.size() != [n] {
        return Err(AttackError::InvalidArgument(format!(
            "target predicted shape {:?} for {n} inputs",
            predicted.size()
        )));
    }
    to_i64_vec(&predicted)
}

/// Row-wise L2 distances between `rows` `[K, D]` and `reference` `[1, D]`, on the host.
pub(crate) fn l2_rows(rows: &Tensor, reference: &Tensor) -> Result<Vec<f64>> {
    let norms = rows
        .f_sub(reference)?
        .f_to_kind(Kind::Double)?
        .f_norm_scalaropt_dim(2, [1i64], false)?;
    to_f64_vec(&norms)
}

/// A tensor's values, flattened, as `f32` on the host.
pub(crate) fn to_f32_vec(tensor: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(&host(tensor, Kind::Float)?)?)
}

fn to_f64_vec(tensor: &Tensor) -> Result<Vec<f64>> {
    Ok(Vec::<f64>::try_from(&host(tensor, Kind::Double)?)?)
}

pub(crate) fn to_i64_vec(tensor: &Tensor) -> Result<Vec<i64>> {
    Ok(Vec::<i64>::try_from(&host(tensor, Kind::Int64)?)?)
}

/// `tensor` flattened, contiguous, of `kind`, on the host.
fn host(tensor: &Tensor, kind: Kind) -> Result<Tensor> {
    Ok(tensor
        .f_to_device(Device::Cpu)?
        .f_to_kind(kind)?
        .f_contiguous()?
        .f_reshape([-1])?)
}
