//! Top-1 accuracy and negative log-likelihood of a classifier.

use serde::Serialize;

use crate::error::Result;
use crate::probs::{Probs, Real};

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

/// Fraction of rows whose arg-max (first index on ties) equals the label.
///
/// Errors if `labels` does not have one label in `0..K` per row.
pub fn accuracy<T: Real>(probs: &Probs<'_, T>, labels: &[usize]) -> Result<f64> {
    probs.check_labels(labels)?;
    let correct = labels
        .iter()
        .enumerate()
        .filter(|&(i, &label)| probs.prediction(i).0 == label)
        .count();
    Ok(correct as f64 / labels.len() as f64)
}

/// Mean negative log-likelihood `-(1/n) Σ ln p(y_i | x_i)` in nats, with
/// probabilities below [`NLL_PROB_FLOOR`] clamped up to it (see there).
///
/// Errors if `labels` does not have one label in `0..K` per row.
pub fn nll<T: Real>(probs: &Probs<'_, T>, labels: &[usize]) -> Result<f64> {
    probs.check_labels(labels)?;
    let total: f64 = probs
        .rows()
        .zip(labels)
        .map(|(row, &label)| -row[label].into().max(NLL_PROB_FLOOR).ln())
        .sum();
    Ok(total / labels.len() as f64)
}

/// Both [`accuracy`] and [`nll`] in one serialisable record.
pub fn classification_metrics<T: Real>(
    probs: &Probs<'_, T>,
    labels: &[usize],
) -> Result<ClassificationMetrics> {
    Ok(ClassificationMetrics {
        accuracy: accuracy(probs, labels)?,
        nll: nll(probs, labels)?,
        num_samples: labels.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EvalError;
    use approx::assert_relative_eq;

    #[test]
    fn accuracy_counts_argmax_hits_with_first_index_ties() {
        let data = [0.7, 0.3, 0.4, 0.6, 0.5, 0.5, 0.1, 0.9];
        let p = Probs::new(&data, 2).unwrap();
        // Row 2 is a tie and predicts class 0, so label 1 there is a miss.
        assert_relative_eq!(accuracy(&p, &[0, 1, 1, 0]).unwrap(), 0.5);
        assert_relative_eq!(accuracy(&p, &[0, 1, 0, 1]).unwrap(), 1.0);
    }

    #[test]
    fn nll_is_mean_negative_log_of_true_class() {
        let data = [0.25, 0.75, 0.5, 0.5];
        let p = Probs::new(&data, 2).unwrap();
        let expected = -(0.75f64.ln() + 0.5f64.ln()) / 2.0;
        assert_relative_eq!(nll(&p, &[1, 0]).unwrap(), expected, epsilon = 1e-15);
    }

    #[test]
    fn nll_clamps_zero_probability_at_the_floor() {
        let data = [1.0, 0.0, 1.0, 0.0];
        let p = Probs::new(&data, 2).unwrap();
        let value = nll(&p, &[1, 0]).unwrap();
        assert!(value.is_finite());
        assert_relative_eq!(value, -NLL_PROB_FLOOR.ln() / 2.0, max_relative = 1e-12);
    }

    #[test]
    fn bad_labels_are_errors_not_panics() {
        let p = Probs::new(&[0.5, 0.5], 2).unwrap();
        assert!(matches!(
            nll(&p, &[3]),
            Err(EvalError::LabelOutOfRange { label: 3, .. })
        ));
        assert!(matches!(
            accuracy(&p, &[0, 1]),
            Err(EvalError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn metrics_record_serialises() {
        let p = Probs::new(&[0.5, 0.5], 2).unwrap();
        let m = classification_metrics(&p, &[0]).unwrap();
        assert_eq!(m.num_samples, 1);
        assert_relative_eq!(m.accuracy, 1.0);
        assert_relative_eq!(m.nll, std::f64::consts::LN_2, epsilon = 1e-15);
    }
}
