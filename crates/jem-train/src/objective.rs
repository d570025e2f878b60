//! The training objective of each mode: the JEM loss of Algorithm 1 and its relatives, in one
//! function.
//!
//! With `f` the classifier's logits, a labelled batch `(x, y)`, a data batch `x_d` and SGLD
//! samples `x̂`:
//!
//! | mode | loss |
//! |---|---|
//! | `jem` | `w_ce · CE(f(x), y) + w_px · (mean E(x̂) − mean E(x_d)) + λ · (mean E(x_d)² + mean E(x̂)²)` with `E = LogSumExp_y f(·)[y] = log p(x) + log Z` |
//! | `baseline` | `w_ce · CE(f(x), y)` |
//! | `factored` | `w_px · (mean f(x̂)[ŷ] − mean f(x)[y]) + λ · (mean f(x)[y]² + mean f(x̂)[ŷ]²)`; CE is reported, not optimised |
//!
//! The middle term is the contrastive estimate of `−∇ log p(x)` (Eq. 2): its gradient is the data
//! term's minus the samples' (Sec. 3). The last is IGEBM's energy L2 regulariser (off in the paper,
//! `λ = 0`).

use tch::{Kind, Reduction, Tensor};

use crate::config::{Mode, TrainConfig};
use crate::error::Result;

/// Weights of the objective's terms (from `[train]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectiveWeights {
    /// `train.ce_weight`.
    pub ce: f64,
    /// `train.px_weight`.
    pub px: f64,
    /// `train.energy_l2`.
    pub energy_l2: f64,
}

impl From<&TrainConfig> for ObjectiveWeights {
    fn from(t: &TrainConfig) -> Self {
        Self {
            ce: t.ce_weight,
            px: t.px_weight,
            energy_l2: t.energy_l2,
        }
    }
}

/// The energies the generative term compares, one value per example: data and samples.
#[derive(Debug)]
pub struct Energies<'a> {
    /// `log p(x_d)` (jem) or `f(x)[y]` (factored) of the data batch, with gradients.
    pub data: &'a Tensor,
    /// The same quantity for the SGLD samples.
    pub samples: &'a Tensor,
}

/// The objective's value and its terms (scalar tensors; `loss` carries the graph).
#[derive(Debug)]
pub struct ObjectiveTerms {
    /// The loss to minimise.
    pub loss: Tensor,
    /// Mean cross-entropy of the labelled batch (in the loss unless `factored`).
    pub ce: Tensor,
    /// `mean E(x̂) − mean E(x_d)`, unweighted (sampling modes).
    pub px: Option<Tensor>,
    /// The energy L2 term, weighted (sampling modes).
    pub reg: Option<Tensor>,
}

/// The training objective of `mode` (see the module docs). `energies` must be given exactly for
/// the sampling modes (`jem`, `factored`).
///
/// # Examples
///
/// ```
/// use jem_train::objective::{jem_objective, Energies, ObjectiveWeights};
/// use jem_train::Mode;
/// use tch::Tensor;
///
/// let logits = Tensor::from_slice2(&[[2.0f32, 0.0], [0.0, 1.0]]);
/// let y = Tensor::from_slice(&[0i64, 1]);
/// let (data, samples) = (Tensor::from_slice(&[1.0f32, 3.0]), Tensor::from_slice(&[0.0f32, 0.0]));
/// let w = ObjectiveWeights { ce: 1.0, px: 1.0, energy_l2: 0.0 };
/// let terms = jem_objective(Mode::Jem, &w, &logits, &y, Some(Energies { data: &data, samples: &samples }))?;
/// // px term: mean E(x̂) − mean E(x_d) = 0 − 2 = −2.
/// assert_eq!(terms.px.unwrap().double_value(&[]), -2.0);
/// # Ok::<(), jem_train::TrainError>(())
/// ```
pub fn jem_objective(
    mode: Mode,
    weights: &ObjectiveWeights,
    logits: &Tensor,
    labels: &Tensor,
    energies: Option<Energies<'_>>,
) -> Result<ObjectiveTerms> {
    let ce = logits.f_cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -100, 0.0)?;
    let supervised = if mode == Mode::Factored {
        Tensor::f_zeros([], (Kind::Float, logits.device()))?
    } else {
        ce.f_mul_scalar(weights.ce)?
    };
    match (mode.samples(), energies) {
        (false, None) => Ok(ObjectiveTerms {
            loss: supervised,
            ce,
            px: None,
            reg: None,
        }),
        (true, Some(e)) => {
            let mean_d = e.data.f_mean(Kind::Float)?;
            let mean_q = e.samples.f_mean(Kind::Float)?;
            let px = mean_q.f_sub(&mean_d)?;
            let reg = e
                .data
                .f_square()?
                .f_mean(Kind::Float)?
                .f_add(&e.samples.f_square()?.f_mean(Kind::Float)?)?
                .f_mul_scalar(weights.energy_l2)?;
            let loss = supervised
                .f_add(&px.f_mul_scalar(weights.px)?)?
                .f_add(&reg)?;
            Ok(ObjectiveTerms {
                loss,
                ce,
                px: Some(px),
                reg: Some(reg),
            })
        }
        (true, None) => Err(crate::TrainError::invalid(
            "train.mode",
            format!("{mode:?}"),
            "given the energies of data and samples (internal error: a sampling mode without them)",
        )),
        (false, Some(_)) => Err(crate::TrainError::invalid(
            "train.mode",
            format!("{mode:?}"),
            "a sampling mode to be given energies (internal error: the baseline has none)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(t: &Tensor, v: f64) {
        let got = t.double_value(&[]);
        assert!((got - v).abs() < 1e-6, "{got} != {v}");
    }

    /// Cross-entropy by hand: −log softmax(l)[y].
    fn ce(rows: &[[f64; 3]], y: &[usize]) -> f64 {
        rows.iter()
            .zip(y)
            .map(|(r, &k)| {
                let lse = r.iter().map(|v| v.exp()).sum::<f64>().ln();
                lse - r[k]
            })
            .sum::<f64>()
            / rows.len() as f64
    }

    const ROWS: [[f64; 3]; 2] = [[1.0, -0.5, 0.25], [0.0, 2.0, -1.0]];

    fn inputs() -> (Tensor, Tensor, Tensor, Tensor) {
        let logits = Tensor::from_slice(&ROWS.concat()).view([2, 3]);
        let y = Tensor::from_slice(&[2i64, 1]);
        let data = Tensor::from_slice(&[1.5f64, -0.5]);
        let samples = Tensor::from_slice(&[-2.0f64, 0.5]);
        (logits, y, data, samples)
    }

    #[test]
    fn jem_loss_is_weighted_ce_plus_contrastive_term_plus_l2() {
        let (logits, y, data, samples) = inputs();
        let w = ObjectiveWeights {
            ce: 0.7,
            px: 0.3,
            energy_l2: 0.1,
        };
        let e = Energies {
            data: &data,
            samples: &samples,
        };
        let t = jem_objective(Mode::Jem, &w, &logits, &y, Some(e)).unwrap();
        let ce_v = ce(&ROWS, &[2, 1]);
        // mean samples − mean data = −0.75 − 0.5 = −1.25; L2 = 0.1 · (1.25 + 2.125) = 0.3375.
        close(&t.ce, ce_v);
        close(t.px.as_ref().unwrap(), -1.25);
        close(t.reg.as_ref().unwrap(), 0.3375);
        close(&t.loss, 0.7 * ce_v + 0.3 * -1.25 + 0.3375);
    }

    #[test]
    fn baseline_is_cross_entropy_only() {
        let (logits, y, ..) = inputs();
        let w = ObjectiveWeights {
            ce: 2.0,
            px: 5.0,
            energy_l2: 5.0,
        };
        let t = jem_objective(Mode::Baseline, &w, &logits, &y, None).unwrap();
        close(&t.loss, 2.0 * ce(&ROWS, &[2, 1]));
        assert!(t.px.is_none() && t.reg.is_none());
    }

    #[test]
    fn factored_optimises_the_generative_term_only() {
        let (logits, y, data, samples) = inputs();
        let w = ObjectiveWeights {
            ce: 1.0,
            px: 1.0,
            energy_l2: 0.0,
        };
        let e = Energies {
            data: &data,
            samples: &samples,
        };
        let t = jem_objective(Mode::Factored, &w, &logits, &y, Some(e)).unwrap();
        close(&t.loss, -1.25);
        close(&t.ce, ce(&ROWS, &[2, 1]));
    }

    #[test]
    fn the_gradient_lowers_sample_energy_and_raises_data_energy() {
        let (logits, y, ..) = inputs();
        let data = Tensor::from_slice(&[1.5f64, -0.5]).set_requires_grad(true);
        let samples = Tensor::from_slice(&[-2.0f64, 0.5]).set_requires_grad(true);
        let w = ObjectiveWeights {
            ce: 1.0,
            px: 1.0,
            energy_l2: 0.0,
        };
        let e = Energies {
            data: &data,
            samples: &samples,
        };
        jem_objective(Mode::Jem, &w, &logits, &y, Some(e))
            .unwrap()
            .loss
            .backward();
        // d loss / d E(x_d)_i = −1/n, d loss / d E(x̂)_i = +1/n.
        assert_eq!(Vec::<f64>::try_from(data.grad()).unwrap(), vec![-0.5, -0.5]);
        assert_eq!(
            Vec::<f64>::try_from(samples.grad()).unwrap(),
            vec![0.5, 0.5]
        );
    }

    #[test]
    fn mismatched_modes_and_energies_are_errors() {
        let (logits, y, data, samples) = inputs();
        let w = ObjectiveWeights {
            ce: 1.0,
            px: 1.0,
            energy_l2: 0.0,
        };
        assert!(jem_objective(Mode::Jem, &w, &logits, &y, None).is_err());
        let e = Energies {
            data: &data,
            samples: &samples,
        };
        assert!(jem_objective(Mode::Baseline, &w, &logits, &y, Some(e)).is_err());
    }
}
