//! Robustness curves (the paper's Fig. 5, 14, 15, 17): accuracy under attack as a function of ε,
//! from the minimal ε of every input.
//!
//! An input counts as correct at budget ε when its minimal adversarial distance exceeds ε:
//! `accuracy(ε) = |{i : min_eps_i > ε}| / N`. Inputs misclassified without attack have minimal
//! ε 0 and count as wrong at every ε (so `accuracy(0)` is the clean accuracy); inputs no attack
//! broke have minimal ε `+∞` and count as correct at every ε.

use serde::{Deserialize, Serialize};

use crate::error::{AttackError, Result};
use crate::norm::{Norm, PIXEL_SCALE};

/// One point of a robustness curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Budget ε, internal units (inputs in [-1, 1]).
    pub eps: f64,
    /// The same budget on the [0, 255] pixel scale (the paper's axes).
    pub eps_pixels: f64,
    /// Fraction of inputs whose minimal ε exceeds `eps`, in [0, 1].
    pub accuracy: f64,
}

/// Accuracy as a function of ε for one model and norm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustnessCurve {
    /// The norm the distances are measured in.
    pub norm: Norm,
    /// Number of inputs the curve is computed over.
    pub num_inputs: usize,
    /// Points in increasing ε.
    pub points: Vec<CurvePoint>,
}

fn check_min_eps(min_eps: &[f64]) -> Result<()> {
    if min_eps.is_empty() {
        return Err(AttackError::InvalidArgument(
            "`min_eps`: a robustness curve needs at least one input".into(),
        ));
    }
    if let Some((i, e)) = min_eps
        .iter()
        .enumerate()
        .find(|(_, e)| e.is_nan() || **e < 0.0)
    {
        return Err(AttackError::InvalidArgument(format!(
            "`min_eps`: entry {i} is {e}; distances must be >= 0 (or +inf)"
        )));
    }
    Ok(())
}

/// `accuracy(eps)`: the fraction of `min_eps` strictly greater than `eps`.
pub fn accuracy_at(min_eps: &[f64], eps: f64) -> Result<f64> {
    check_min_eps(min_eps)?;
    let robust = min_eps.iter().filter(|&&e| e > eps).count();
    Ok(robust as f64 / min_eps.len() as f64)
}

/// `count` evenly spaced budgets from 0 to `max_eps` inclusive (internal units).
pub fn eps_grid(max_eps: f64, count: usize) -> Result<Vec<f64>> {
    if !(max_eps.is_finite() && max_eps > 0.0) {
        return Err(AttackError::InvalidArgument(format!(
            "`max_eps`: must be finite and > 0, got {max_eps}"
        )));
    }
    if count < 2 {
        return Err(AttackError::InvalidArgument(format!(
            "`count`: a grid needs at least 2 points, got {count}"
        )));
    }
    Ok((0..count)
        .map(|i| max_eps * i as f64 / (count - 1) as f64)
        .collect())
}

impl RobustnessCurve {
    /// The curve sampled at the budgets `grid` (internal units, sorted into increasing order).
    pub fn on_grid(norm: Norm, min_eps: &[f64], grid: &[f64]) -> Result<Self> {
        check_min_eps(min_eps)?;
        if let Some(bad) = grid.iter().find(|e| !(e.is_finite() && **e >= 0.0)) {
            return Err(AttackError::InvalidArgument(format!(
                "`grid`: budgets must be finite and >= 0, got {bad}"
            )));
        }
        let mut grid = grid.to_vec();
        grid.sort_by(f64::total_cmp);
        let points = grid
            .into_iter()
            .map(|eps| {
                Ok(CurvePoint {
                    eps,
                    eps_pixels: eps * PIXEL_SCALE,
                    accuracy: accuracy_at(min_eps, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            norm,
            num_inputs: min_eps.len(),
            points,
        })
    }

    /// The exact step curve: one point at ε = 0 and one at every distinct finite positive
    /// minimal ε (where the accuracy drops), in increasing order.
    pub fn exact(norm: Norm, min_eps: &[f64]) -> Result<Self> {
        check_min_eps(min_eps)?;
        let mut steps: Vec<f64> = min_eps
            .iter()
            .copied()
            .filter(|e| e.is_finite() && *e > 0.0)
            .collect();
        steps.push(0.0);
        steps.sort_by(f64::total_cmp);
        steps.dedup();
        Self::on_grid(norm, min_eps, &steps)
    }

    /// The accuracy at `eps` read off the sampled points (step interpolation: the value at the
    /// largest sampled budget `<= eps`; `None` below the first point).
    pub fn accuracy_at(&self, eps: f64) -> Option<f64> {
        self.points
            .iter()
            .take_while(|p| p.eps <= eps)
            .last()
            .map(|p| p.accuracy)
    }
}
