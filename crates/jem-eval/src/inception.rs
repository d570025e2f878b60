//! Inception Score from class probabilities `p(y|x)` of generated samples:
//! `IS = exp(E_x KL(p(y|x) ‖ p(y)))`, with `p(y)` the mean prediction.
//!
//! As in the original implementation (Salimans et al., 2016), the samples are
//! cut into `splits` consecutive chunks — chunk `k` is rows
//! `k·n/splits .. (k+1)·n/splits` (integer division) — the score is computed
//! per chunk with that chunk's own `p(y)`, and the mean and population
//! standard deviation (`numpy.std`, `ddof = 0`) over chunks are reported.

use ndarray::{ArrayView1, ArrayView2};
use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::input::{check_probs, Real};

/// Number of splits of the original implementation and of the JEM paper.
pub const DEFAULT_SPLITS: usize = 10;

/// Inception Score over the splits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InceptionScore {
    /// Mean of the per-split scores.
    pub mean: f64,
    /// Population standard deviation of the per-split scores.
    pub std: f64,
    /// The score of each split, in order.
    pub per_split: Vec<f64>,
}

/// Inception Score of `probs` (`n × K`) with `splits` consecutive chunks.
///
/// Each row is divided by its sum first (rows may sum to 1 only within
/// [`crate::ROW_SUM_TOLERANCE`]), as `scipy.stats.entropy` does, and
/// `0 · ln 0 = 0`. Every split score lies in `[1, K]`.
///
/// Errors if `probs` is not a matrix of probability rows, or if `splits` is
/// 0 or exceeds the number of samples (a split would be empty).
///
/// # Examples
///
/// ```
/// use jem_eval::inception_score;
/// use ndarray::array;
///
/// // Confident predictions spread evenly over K = 2 classes score K ...
/// let diverse = array![[1.0, 0.0], [0.0, 1.0]];
/// assert!((inception_score(diverse.view(), 1)?.mean - 2.0).abs() < 1e-12);
/// // ... identical predictions score 1.
/// let same = array![[0.3, 0.7], [0.3, 0.7]];
/// assert!((inception_score(same.view(), 1)?.mean - 1.0).abs() < 1e-12);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn inception_score<T: Real>(probs: ArrayView2<'_, T>, splits: usize) -> Result<InceptionScore> {
    check_probs(probs)?;
    let n = probs.nrows();
    if splits == 0 || splits > n {
        return Err(EvalError::InvalidParameter {
            arg: "splits",
            value: splits.to_string(),
            reason: if splits == 0 {
                "at least one split is needed"
            } else {
                "more splits than samples would leave a split empty"
            },
        });
    }
    let k = probs.ncols();
    let mut row = vec![0.0f64; k];
    let mut marginal = vec![0.0f64; k];
    let per_split: Vec<f64> = (0..splits)
        .map(|s| {
            let (start, end) = (s * n / splits, (s + 1) * n / splits);
            marginal.fill(0.0);
            for i in start..end {
                normalised_row(probs.row(i), &mut row);
                marginal.iter_mut().zip(&row).for_each(|(m, p)| *m += p);
            }
            let count = (end - start) as f64;
            marginal.iter_mut().for_each(|m| *m /= count);

            let mut kl_sum = 0.0;
            for i in start..end {
                normalised_row(probs.row(i), &mut row);
                // p > 0 implies marginal > 0, so the log is finite.
                kl_sum += row
                    .iter()
                    .zip(&marginal)
                    .filter(|(&p, _)| p > 0.0)
                    .map(|(&p, &m)| p * (p / m).ln())
                    .sum::<f64>();
            }
            (kl_sum / count).exp()
        })
        .collect();

    let mean = per_split.iter().sum::<f64>() / splits as f64;
    let variance = per_split
        .iter()
        .map(|s| (s - mean) * (s - mean))
        .sum::<f64>()
        / splits as f64;
    Ok(InceptionScore {
        mean,
        std: variance.sqrt(),
        per_split,
    })
}

fn normalised_row<T: Real>(source: ArrayView1<'_, T>, target: &mut [f64]) {
    // `check_probs` guarantees the sum is within 1e-3 of 1, so it is never zero.
    let sum: f64 = source.iter().map(|&p| p.into()).sum();
    for (t, &p) in target.iter_mut().zip(source) {
        *t = p.into() / sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::{array, Array2};

    #[test]
    fn confident_and_diverse_predictions_score_k() {
        // One-hot predictions spread evenly over K = 4 classes: IS = K.
        let p = Array2::from_shape_fn((8, 4), |(i, k)| f64::from(u8::from(k == i % 4)));
        let is = inception_score(p.view(), 2).unwrap();
        assert_relative_eq!(is.mean, 4.0, max_relative = 1e-12);
        assert_relative_eq!(is.std, 0.0, epsilon = 1e-12);
        assert_eq!(is.per_split.len(), 2);
    }

    #[test]
    fn identical_predictions_score_one() {
        let p = array![[0.2, 0.3, 0.5]]
            .broadcast((5, 3))
            .unwrap()
            .to_owned();
        let is = inception_score(p.view(), 1).unwrap();
        assert_relative_eq!(is.mean, 1.0, max_relative = 1e-12);
    }

    #[test]
    fn std_is_population_std_over_splits() {
        // Split 1: one-hot over 2 classes -> 2. Split 2: identical rows -> 1.
        let p = array![[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]];
        let is = inception_score(p.view(), 2).unwrap();
        assert_relative_eq!(is.per_split[0], 2.0, max_relative = 1e-12);
        assert_relative_eq!(is.per_split[1], 1.0, max_relative = 1e-12);
        assert_relative_eq!(is.mean, 1.5, max_relative = 1e-12);
        assert_relative_eq!(is.std, 0.5, max_relative = 1e-12);
    }

    #[test]
    fn too_many_or_zero_splits_are_errors() {
        let p = array![[0.5, 0.5], [0.5, 0.5]];
        let err = inception_score(p.view(), 3).unwrap_err();
        assert!(err.to_string().contains("`splits` = 3"), "{err}");
        assert!(inception_score(p.view(), 0).is_err());
        assert!(inception_score(p.view(), DEFAULT_SPLITS).is_err());
        // Unnormalised rows are rejected, naming the row.
        let logits = array![[0.5, 0.5], [2.0, 1.0]];
        assert!(matches!(
            inception_score(logits.view(), 1),
            Err(crate::EvalError::NotAProbabilityEntry { row: 1, col: 0, .. })
        ));
    }
}
