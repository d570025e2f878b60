//! Expected Calibration Error and reliability-diagram data, as defined in
//! Appendix E.1 of the JEM paper (after Guo et al., 2017).
//!
//! Confidence is the maximum class probability `max_y p(y|x)`; a sample is
//! correct when the arg-max class (first index on ties) equals its label.
//! Confidences are grouped into `M` equal-width bins `B_m` covering
//! `((m-1)/M, m/M]` for `m = 1..=M`, and
//!
//! `ECE = Σ_m |B_m|/n · |acc(B_m) − conf(B_m)|`.
//!
//! Bins are half-open on the left, so a confidence lying exactly on an edge
//! `m/M` belongs to the lower bin. Confidence exactly `0` (impossible for a
//! normalised row, but allowed by [`reliability_from_confidences`]) is put in
//! the first bin, which therefore is `[0, 1/M]`. Edges are the `f64` values
//! `m as f64 / M as f64`, and membership is decided by comparing against
//! them, not by rounding `c · M`.

use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::probs::{Probs, Real};

/// Number of bins the paper uses throughout (`M = 20`).
pub const PAPER_NUM_BINS: usize = 20;

/// One confidence bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReliabilityBin {
    /// Lower edge (exclusive, except 0 for the first bin).
    pub lo: f64,
    /// Upper edge (inclusive).
    pub hi: f64,
    /// Number of samples whose confidence falls in the bin.
    pub count: usize,
    /// Fraction of those samples classified correctly; `None` if empty.
    pub accuracy: Option<f64>,
    /// Mean confidence of those samples; `None` if empty.
    pub mean_confidence: Option<f64>,
}

/// Everything needed to draw a reliability diagram, plus the ECE it implies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReliabilityDiagram {
    /// Number of samples binned.
    pub num_samples: usize,
    /// Expected Calibration Error, in `[0, 1]`.
    pub ece: f64,
    /// The `M` bins in increasing confidence order.
    pub bins: Vec<ReliabilityBin>,
}

/// Index (0-based) of the bin `((m-1)/M, m/M]` that holds `confidence`,
/// for a confidence in `[0, 1]` and `num_bins >= 1`. See the module docs
/// for the edge convention.
pub fn bin_index(confidence: f64, num_bins: usize) -> usize {
    let m = num_bins as f64;
    let mut idx = ((confidence * m).ceil() as usize)
        .saturating_sub(1)
        .min(num_bins - 1);
    // `confidence * m` can round across an edge; settle membership against
    // the edges themselves so the documented (lo, hi] rule holds exactly.
    while idx > 0 && confidence <= idx as f64 / m {
        idx -= 1;
    }
    while idx + 1 < num_bins && confidence > (idx + 1) as f64 / m {
        idx += 1;
    }
    idx
}

fn check_num_bins(num_bins: usize) -> Result<()> {
    if num_bins == 0 {
        return Err(EvalError::InvalidParameter {
            arg: "num_bins",
            value: "0".into(),
            reason: "at least one bin is needed",
        });
    }
    Ok(())
}

/// Reliability diagram (and ECE) from per-sample confidences and
/// correctness flags, for callers that already reduced their predictions.
///
/// Errors if the slices are empty or differ in length, if `num_bins` is 0,
/// or if a confidence is NaN, infinite or outside `[0, 1]`.
pub fn reliability_from_confidences(
    confidences: &[f64],
    correct: &[bool],
    num_bins: usize,
) -> Result<ReliabilityDiagram> {
    check_num_bins(num_bins)?;
    crate::error::check_min_len("confidences", confidences.len(), 1)?;
    if confidences.len() != correct.len() {
        return Err(EvalError::LengthMismatch {
            arg_a: "confidences",
            len_a: confidences.len(),
            arg_b: "correct",
            len_b: correct.len(),
        });
    }
    crate::error::check_finite("confidences", confidences)?;
    if let Some(index) = confidences.iter().position(|c| !(0.0..=1.0).contains(c)) {
        return Err(EvalError::NotAProbability {
            arg: "confidences",
            index,
            value: confidences[index],
        });
    }
    Ok(bin_samples(
        confidences.iter().copied().zip(correct.iter().copied()),
        confidences.len(),
        num_bins,
    ))
}

/// Reliability diagram (and ECE) of a classifier's probabilities against the
/// true labels, with `num_bins` bins ([`PAPER_NUM_BINS`] in the paper).
///
/// Errors if `labels` does not have one label in `0..K` per row or if
/// `num_bins` is 0.
pub fn reliability_diagram<T: Real>(
    probs: &Probs<'_, T>,
    labels: &[usize],
    num_bins: usize,
) -> Result<ReliabilityDiagram> {
    check_num_bins(num_bins)?;
    probs.check_labels(labels)?;
    let samples = labels.iter().enumerate().map(|(i, &label)| {
        let (predicted, confidence) = probs.prediction(i);
        (confidence, predicted == label)
    });
    Ok(bin_samples(samples, labels.len(), num_bins))
}

/// Expected Calibration Error with `num_bins` bins; see the module docs.
pub fn ece<T: Real>(probs: &Probs<'_, T>, labels: &[usize], num_bins: usize) -> Result<f64> {
    reliability_diagram(probs, labels, num_bins).map(|d| d.ece)
}

/// Bins validated `(confidence, correct)` pairs; `n >= 1` is their count.
fn bin_samples(
    samples: impl Iterator<Item = (f64, bool)>,
    n: usize,
    num_bins: usize,
) -> ReliabilityDiagram {
    let mut counts = vec![0usize; num_bins];
    let mut hits = vec![0usize; num_bins];
    let mut confidence_sums = vec![0.0f64; num_bins];
    for (confidence, correct) in samples {
        let b = bin_index(confidence, num_bins);
        counts[b] += 1;
        hits[b] += usize::from(correct);
        confidence_sums[b] += confidence;
    }

    let m = num_bins as f64;
    let mut ece = 0.0;
    let bins = (0..num_bins)
        .map(|b| {
            let count = counts[b];
            let (accuracy, mean_confidence) = if count == 0 {
                (None, None)
            } else {
                let acc = hits[b] as f64 / count as f64;
                let conf = confidence_sums[b] / count as f64;
                ece += count as f64 / n as f64 * (acc - conf).abs();
                (Some(acc), Some(conf))
            };
            ReliabilityBin {
                lo: b as f64 / m,
                hi: (b + 1) as f64 / m,
                count,
                accuracy,
                mean_confidence,
            }
        })
        .collect();

    ReliabilityDiagram {
        num_samples: n,
        ece,
        bins,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn bin_edges_are_left_open_right_closed() {
        assert_eq!(bin_index(0.0, 20), 0);
        assert_eq!(bin_index(0.05, 20), 0);
        assert_eq!(bin_index(0.050_000_000_000_001, 20), 1);
        assert_eq!(bin_index(0.4, 20), 7);
        assert_eq!(bin_index(0.5, 20), 9);
        assert_eq!(bin_index(0.95, 20), 18);
        assert_eq!(bin_index(1.0, 20), 19);
        assert_eq!(bin_index(0.3, 1), 0);
        // Every edge m/M lands in bin m-1 for many M (rounding of c·M aside).
        for m in 1..=64usize {
            for k in 1..=m {
                assert_eq!(bin_index(k as f64 / m as f64, m), k - 1, "k={k} M={m}");
            }
        }
    }

    #[test]
    fn hand_computed_ece() {
        // Bin (0.55, 0.6]: confidences 0.6, 0.6, one correct -> |0.5-0.6|·2/4.
        // Bin (0.85, 0.9]: confidences 0.9, 0.9, both correct -> |1-0.9|·2/4.
        let d = reliability_from_confidences(&[0.6, 0.9, 0.6, 0.9], &[true, true, false, true], 20)
            .unwrap();
        assert_relative_eq!(d.ece, 0.1, max_relative = 1e-12);
        assert_eq!(d.bins.len(), 20);
        assert_eq!(d.bins[11].count, 2);
        assert_eq!(d.bins[11].accuracy, Some(0.5));
        assert_relative_eq!(d.bins[11].mean_confidence.unwrap(), 0.6);
        assert_eq!(d.bins[0].accuracy, None);
        assert_relative_eq!(d.bins[19].lo, 0.95);
        assert_relative_eq!(d.bins[19].hi, 1.0);
    }

    #[test]
    fn from_probs_matches_from_confidences() {
        let data = [0.6, 0.4, 0.2, 0.8, 0.9, 0.1];
        let p = Probs::new(&data, 2).unwrap();
        let labels = [0, 0, 0];
        let d = reliability_diagram(&p, &labels, 10).unwrap();
        let e = reliability_from_confidences(&[0.6, 0.8, 0.9], &[true, false, true], 10).unwrap();
        assert_eq!(d, e);
        assert_relative_eq!(ece(&p, &labels, 10).unwrap(), e.ece);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(matches!(
            reliability_from_confidences(&[0.5], &[true], 0),
            Err(EvalError::InvalidParameter {
                arg: "num_bins",
                ..
            })
        ));
        assert!(matches!(
            reliability_from_confidences(&[], &[], 20),
            Err(EvalError::TooFewSamples { .. })
        ));
        assert!(matches!(
            reliability_from_confidences(&[0.5, 1.2], &[true, true], 20),
            Err(EvalError::NotAProbability { index: 1, .. })
        ));
        assert!(matches!(
            reliability_from_confidences(&[f64::NAN], &[true], 20),
            Err(EvalError::NonFinite { index: 0, .. })
        ));
        assert!(matches!(
            reliability_from_confidences(&[0.5], &[true, false], 20),
            Err(EvalError::LengthMismatch { .. })
        ));
    }
}
