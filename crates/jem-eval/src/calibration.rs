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

use ndarray::{ArrayView1, ArrayView2};
use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::input::{argmax, check_finite, check_labels, check_min_len, check_probs, Real};

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
///
/// # Examples
///
/// ```
/// use jem_eval::bin_index;
///
/// // With 20 bins, 0.05 is the upper edge of the first bin (0, 0.05] ...
/// assert_eq!(bin_index(0.05, 20), 0);
/// // ... anything above it starts the second, and 1 is in the last.
/// assert_eq!(bin_index(0.0501, 20), 1);
/// assert_eq!(bin_index(1.0, 20), 19);
/// ```
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
/// Errors if the arrays are empty or differ in length, if `num_bins` is 0,
/// or if a confidence is NaN, infinite or outside `[0, 1]`.
///
/// # Examples
///
/// ```
/// use jem_eval::reliability_from_confidences;
/// use ndarray::array;
///
/// // Two samples at confidence 0.9, one right and one wrong: the bin
/// // (0.8, 0.9] has accuracy 0.5 against confidence 0.9, so ECE = 0.4.
/// let d = reliability_from_confidences(array![0.9, 0.9].view(), array![true, false].view(), 10)?;
/// assert_eq!(d.bins[8].count, 2);
/// assert_eq!(d.bins[8].accuracy, Some(0.5));
/// assert!((d.ece - 0.4).abs() < 1e-12);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn reliability_from_confidences<T: Real>(
    confidences: ArrayView1<'_, T>,
    correct: ArrayView1<'_, bool>,
    num_bins: usize,
) -> Result<ReliabilityDiagram> {
    check_num_bins(num_bins)?;
    check_min_len("confidences", confidences.len(), 1)?;
    if confidences.len() != correct.len() {
        return Err(EvalError::LengthMismatch {
            arg_a: "confidences",
            len_a: confidences.len(),
            arg_b: "correct",
            len_b: correct.len(),
        });
    }
    check_finite("confidences", confidences)?;
    if let Some(index) = confidences
        .iter()
        .position(|&c| !(0.0..=1.0).contains(&c.into()))
    {
        return Err(EvalError::NotAProbability {
            arg: "confidences",
            index,
            value: confidences[index].into(),
        });
    }
    Ok(bin_samples(
        confidences
            .iter()
            .map(|&c| c.into())
            .zip(correct.iter().copied()),
        confidences.len(),
        num_bins,
    ))
}

/// Reliability diagram (and ECE) of a classifier's probabilities `probs`
/// (`n × K`, row `i` is `p(y | x_i)`) against the true labels, with
/// `num_bins` bins ([`PAPER_NUM_BINS`] in the paper).
///
/// Errors if `probs` is not a matrix of probability rows (see
/// [`crate::ROW_SUM_TOLERANCE`]), if `labels` does not have one label in
/// `0..K` per row, or if `num_bins` is 0.
///
/// # Examples
///
/// ```
/// use jem_eval::reliability_diagram;
/// use ndarray::array;
///
/// let probs = array![[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]];
/// let labels = array![0, 1, 0];
/// let d = reliability_diagram(probs.view(), labels.view(), 5)?;
/// // Confidences 0.9, 0.8, 0.6: bins (0.8, 1], (0.6, 0.8], (0.4, 0.6].
/// let counts: Vec<usize> = d.bins.iter().map(|b| b.count).collect();
/// assert_eq!(counts, [0, 0, 1, 1, 1]);
/// assert_eq!(d.bins[2].accuracy, Some(0.0)); // 0.6 predicted class 1, label 0
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn reliability_diagram<T: Real>(
    probs: ArrayView2<'_, T>,
    labels: ArrayView1<'_, usize>,
    num_bins: usize,
) -> Result<ReliabilityDiagram> {
    check_num_bins(num_bins)?;
    check_probs(probs)?;
    check_labels(probs, labels)?;
    let samples = probs.rows().into_iter().zip(labels).map(|(row, &label)| {
        let (predicted, confidence) = argmax(row);
        (confidence, predicted == label)
    });
    Ok(bin_samples(samples, labels.len(), num_bins))
}

/// Expected Calibration Error of `probs` (`n × K`) against `labels` with
/// `num_bins` bins; see the module docs. Errors as [`reliability_diagram`].
///
/// # Examples
///
/// ```
/// use jem_eval::{ece, PAPER_NUM_BINS};
/// use ndarray::array;
///
/// // Confidences 0.9, 0.9, 0.6, 0.6; the first three are correct. Bin
/// // (0.85, 0.9] has accuracy 1 against confidence 0.9, bin (0.55, 0.6]
/// // accuracy 0.5 against 0.6: ECE = 2/4 · 0.1 + 2/4 · 0.1 = 0.1.
/// let probs = array![[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]];
/// let labels = array![0, 1, 0, 0];
/// let value = ece(probs.view(), labels.view(), PAPER_NUM_BINS)?;
/// assert!((value - 0.1).abs() < 1e-12);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn ece<T: Real>(
    probs: ArrayView2<'_, T>,
    labels: ArrayView1<'_, usize>,
    num_bins: usize,
) -> Result<f64> {
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
    use ndarray::array;

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
        let d = reliability_from_confidences(
            array![0.6, 0.9, 0.6, 0.9].view(),
            array![true, true, false, true].view(),
            20,
        )
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
        let p = array![[0.6, 0.4], [0.2, 0.8], [0.9, 0.1]];
        let labels = array![0, 0, 0];
        let d = reliability_diagram(p.view(), labels.view(), 10).unwrap();
        let e = reliability_from_confidences(
            array![0.6, 0.8, 0.9].view(),
            array![true, false, true].view(),
            10,
        )
        .unwrap();
        assert_eq!(d, e);
        assert_relative_eq!(ece(p.view(), labels.view(), 10).unwrap(), e.ece);
        // f32 confidences (off the bin edges) give the same bins.
        let correct = array![true, false, true];
        let e64 = reliability_from_confidences(array![0.65, 0.85, 0.95].view(), correct.view(), 10);
        let e32 =
            reliability_from_confidences(array![0.65f32, 0.85, 0.95].view(), correct.view(), 10);
        let counts = |d: ReliabilityDiagram| d.bins.iter().map(|b| b.count).collect::<Vec<_>>();
        assert_eq!(counts(e32.unwrap()), counts(e64.unwrap()));
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(matches!(
            reliability_from_confidences(array![0.5].view(), array![true].view(), 0),
            Err(EvalError::InvalidParameter {
                arg: "num_bins",
                ..
            })
        ));
        assert!(matches!(
            reliability_from_confidences(
                ndarray::Array1::<f64>::zeros(0).view(),
                ndarray::Array1::from(vec![]).view(),
                20
            ),
            Err(EvalError::TooFewSamples { .. })
        ));
        assert!(matches!(
            reliability_from_confidences(array![0.5, 1.2].view(), array![true, true].view(), 20),
            Err(EvalError::NotAProbability { index: 1, .. })
        ));
        assert!(matches!(
            reliability_from_confidences(array![f64::NAN].view(), array![true].view(), 20),
            Err(EvalError::NonFinite { index: 0, .. })
        ));
        assert!(matches!(
            reliability_from_confidences(array![0.5].view(), array![true, false].view(), 20),
            Err(EvalError::LengthMismatch { .. })
        ));
    }
}
