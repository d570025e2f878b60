//! Top-1 accuracy and negative log-likelihood of a classifier.

use ndarray::{ArrayView1, ArrayView2};
use serde::Serialize;

use crate::error::Result;
use crate::input::{argmax, check_labels, check_probs, Real};

/// Smallest true-class probability used by [`nll`]; smaller ones (including
/// exact zeros from an underflowed softmax) are raised to it, so one
/// sample costs at most `-ln(1e-12) ≈ 27.63` nats.
///
/// Why clamp instead of returning `+inf`: a single underflowed probability
/// would otherwise make the mean infinite, hide every other sample, and not
/// survive JSON serialisation. The clamped mean is a lower bound on the true
/// NLL; it is exact whenever no true-class probability is below the floor.
pub const NLL_PROB_FLOOR: f64 = 1e-12;

/// Accuracy and NLL of one evaluation set, for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassificationMetrics {
    /// Fraction of samples whose arg-max class equals the label.
    pub accuracy: f64,
    /// Mean `-ln p(label | x)` in nats, with [`NLL_PROB_FLOOR`] clamping.
    pub nll: f64,
    /// Number of samples evaluated.
    pub num_samples: usize,
}

fn checked<T: Real>(probs: ArrayView2<'_, T>, labels: ArrayView1<'_, usize>) -> Result<()> {
    check_probs(probs)?;
    check_labels(probs, labels)
}

fn accuracy_of<T: Real>(probs: ArrayView2<'_, T>, labels: ArrayView1<'_, usize>) -> f64 {
    let correct = probs
        .rows()
        .into_iter()
        .zip(labels)
        .filter(|(row, &label)| argmax(row.view()).0 == label)
        .count();
    correct as f64 / labels.len() as f64
}

fn nll_of<T: Real>(probs: ArrayView2<'_, T>, labels: ArrayView1<'_, usize>) -> f64 {
    let total: f64 = probs
        .rows()
        .into_iter()
        .zip(labels)
        .map(|(row, &label)| -row[label].into().max(NLL_PROB_FLOOR).ln())
        .sum();
    total / labels.len() as f64
}

/// Fraction of rows of `probs` (`n × K` class probabilities) whose arg-max
/// (first index on ties) equals the label.
///
/// Errors if `probs` is not a matrix of probability rows or `labels` does
/// not have one label in `0..K` per row.
///
/// # Examples
///
/// ```
/// use jem_eval::accuracy;
/// use ndarray::array;
///
/// // The middle row is a tie, which predicts the first class (0).
/// let probs = array![[0.7, 0.3], [0.5, 0.5], [0.1, 0.9]];
/// assert_eq!(accuracy(probs.view(), array![0, 1, 1].view())?, 2.0 / 3.0);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn accuracy<T: Real>(probs: ArrayView2<'_, T>, labels: ArrayView1<'_, usize>) -> Result<f64> {
    checked(probs, labels)?;
    Ok(accuracy_of(probs, labels))
}

/// Mean negative log-likelihood `-(1/n) Σ ln p(y_i | x_i)` in nats of the
/// rows of `probs` (`n × K`), with probabilities below [`NLL_PROB_FLOOR`]
/// clamped up to it (see there). Errors as [`accuracy`].
///
/// # Examples
///
/// ```
/// use jem_eval::nll;
/// use ndarray::array;
///
/// let probs = array![[0.25, 0.75], [0.5, 0.5]];
/// let value = nll(probs.view(), array![1, 0].view())?;
/// assert!((value - -(0.75f64.ln() + 0.5f64.ln()) / 2.0).abs() < 1e-15);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn nll<T: Real>(probs: ArrayView2<'_, T>, labels: ArrayView1<'_, usize>) -> Result<f64> {
    checked(probs, labels)?;
    Ok(nll_of(probs, labels))
}

/// Both [`accuracy`] and [`nll`] in one serialisable record (the input is
/// checked once). Errors as [`accuracy`].
///
/// # Examples
///
/// ```
/// use jem_eval::classification_metrics;
/// use ndarray::array;
///
/// let m = classification_metrics(array![[0.5, 0.5]].view(), array![0].view())?;
/// assert_eq!((m.accuracy, m.num_samples), (1.0, 1));
/// assert!((m.nll - std::f64::consts::LN_2).abs() < 1e-15);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn classification_metrics<T: Real>(
    probs: ArrayView2<'_, T>,
    labels: ArrayView1<'_, usize>,
) -> Result<ClassificationMetrics> {
    checked(probs, labels)?;
    Ok(ClassificationMetrics {
        accuracy: accuracy_of(probs, labels),
        nll: nll_of(probs, labels),
        num_samples: labels.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EvalError;
    use approx::assert_relative_eq;
    use ndarray::array;

    #[test]
    fn accuracy_counts_argmax_hits_with_first_index_ties() {
        let p = array![[0.7, 0.3], [0.4, 0.6], [0.5, 0.5], [0.1, 0.9]];
        // Row 2 is a tie and predicts class 0, so label 1 there is a miss.
        assert_relative_eq!(accuracy(p.view(), array![0, 1, 1, 0].view()).unwrap(), 0.5);
        assert_relative_eq!(accuracy(p.view(), array![0, 1, 0, 1].view()).unwrap(), 1.0);
    }

    #[test]
    fn nll_is_mean_negative_log_of_true_class() {
        let p = array![[0.25, 0.75], [0.5, 0.5]];
        let expected = -(0.75f64.ln() + 0.5f64.ln()) / 2.0;
        assert_relative_eq!(
            nll(p.view(), array![1, 0].view()).unwrap(),
            expected,
            epsilon = 1e-15
        );
    }

    #[test]
    fn nll_clamps_zero_probability_at_the_floor() {
        let p = array![[1.0, 0.0], [1.0, 0.0]];
        let value = nll(p.view(), array![1, 0].view()).unwrap();
        assert!(value.is_finite());
        assert_relative_eq!(value, -NLL_PROB_FLOOR.ln() / 2.0, max_relative = 1e-12);
    }

    #[test]
    fn bad_labels_are_errors_not_panics() {
        let p = array![[0.5, 0.5]];
        assert!(matches!(
            nll(p.view(), array![3].view()),
            Err(EvalError::LabelOutOfRange { label: 3, .. })
        ));
        assert!(matches!(
            accuracy(p.view(), array![0, 1].view()),
            Err(EvalError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn metrics_record_serialises() {
        let p = array![[0.5f32, 0.5]];
        let m = classification_metrics(p.view(), array![0].view()).unwrap();
        assert_eq!(m.num_samples, 1);
        assert_relative_eq!(m.accuracy, 1.0);
        assert_relative_eq!(m.nll, std::f64::consts::LN_2, epsilon = 1e-7);
        // Logits passed by mistake are an error, not a number.
        let logits = array![[2.0, -1.0]];
        assert!(matches!(
            classification_metrics(logits.view(), array![0].view()),
            Err(EvalError::NotAProbabilityEntry { row: 0, col: 0, .. })
        ));
    }
}
