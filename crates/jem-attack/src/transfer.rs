//! Transfer attacks (Appendix G.2, Fig. 17): adversarials found against one target (JEM-0) are
//! shown to other targets (JEM-1, JEM-10). An adversarial the other target classifies as the
//! true class no longer counts: its distance becomes `+∞`, so the other target's robustness curve
//! from the transferred distances measures how often refinement undoes the attack.

use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

use crate::error::{AttackError, Result};
use crate::target::{check_batch, AttackTarget};

/// The transferred adversarials as judged by another target.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferOutcome {
    /// Per input: the source distance if the adversarial still fools the other target,
    /// `f64::INFINITY` otherwise (or when the source attack found none).
    pub distances: Vec<f64>,
    /// Whether the adversarial still fools the other target.
    pub fooled: Vec<bool>,
}

/// Evaluates `adversarials` (`[N, ...]`, found against some source target, at distances
/// `source_distances`, `+∞` where the source attack failed) under `target`.
///
/// `labels` are the true classes. The other target's randomness (JEM-k refinement noise) comes
/// from `rng`.
pub fn transfer(
    target: &dyn AttackTarget,
    adversarials: &Tensor,
    labels: &Tensor,
    source_distances: &[f64],
    rng: &mut Pcg64,
) -> Result<TransferOutcome> {
    let n = check_batch(adversarials, labels, target.num_classes())? as usize;
    if source_distances.len() != n {
        return Err(AttackError::InvalidArgument(format!(
            "`source_distances`: expected one distance per adversarial ({n}), got {}",
            source_distances.len()
        )));
    }
    if let Some(bad) = source_distances.iter().find(|d| d.is_nan() || **d < 0.0) {
        return Err(AttackError::InvalidArgument(format!(
            "`source_distances`: distances must be >= 0 (or +inf), got {bad}"
        )));
    }
    if n == 0 {
        return Ok(TransferOutcome {
            distances: Vec::new(),
            fooled: Vec::new(),
        });
    }
    let predicted = target
        .predict(&adversarials.detach(), rng)?
        .f_to_device(Device::Cpu)?;
    let truth = labels.f_to_kind(Kind::Int64)?.f_to_device(Device::Cpu)?;
    let wrong = Vec::<bool>::try_from(&predicted.f_ne_tensor(&truth)?)?;
    let fooled: Vec<bool> = wrong
        .iter()
        .zip(source_distances)
        .map(|(&w, d)| w && d.is_finite())
        .collect();
    let distances = fooled
        .iter()
        .zip(source_distances)
        .map(|(&f, &d)| if f { d } else { f64::INFINITY })
        .collect();
    tracing::debug!(
        inputs = n,
        still_fooled = fooled.iter().filter(|&&f| f).count(),
        "transfer"
    );
    Ok(TransferOutcome { distances, fooled })
}
