//! Out-of-distribution detection metrics with the in-distribution set as the
//! positive class: a score is "how in-distribution" a sample looks, so a
//! good detector gives in-distribution samples higher scores (e.g. JEM's
//! `log p(x)` = logsumexp of the logits).
//!
//! All metrics treat equal scores as one threshold, as scikit-learn does:
//!
//! * AUROC = `P(s_in > s_out) + ½ P(s_in = s_out)`, the Mann–Whitney U
//!   statistic over `n·m` (equal to `sklearn.metrics.roc_auc_score`).
//! * AUPR = average precision `Σ_k (R_k − R_{k−1}) P_k` over the distinct
//!   thresholds (equal to `sklearn.metrics.average_precision_score`).
//! * FPR at `t` TPR = the smallest false-positive rate among the ROC points
//!   (one per distinct threshold, no interpolation, none dropped) whose
//!   true-positive rate is at least `t`; i.e. the fraction of OOD samples
//!   scoring `>=` the highest threshold that accepts at least `t·n` of the
//!   in-distribution samples.

use ndarray::ArrayView1;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::input::{check_finite, check_min_len, Real};

/// The three threshold-free OOD metrics of one (in, out) pair of score sets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OodMetrics {
    /// Area under the ROC curve, in `[0, 1]`; 0.5 is chance.
    pub auroc: f64,
    /// Average precision with in-distribution as positive, in `(0, 1]`.
    pub aupr: f64,
    /// False-positive rate at 95 % true-positive rate, in `[0, 1]`.
    pub fpr_at_95_tpr: f64,
    /// Number of in-distribution scores.
    pub num_in: usize,
    /// Number of out-of-distribution scores.
    pub num_out: usize,
}

/// Settings of [`auroc_bootstrap`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapConfig {
    /// Number of bootstrap resamples (at least 1).
    pub num_resamples: usize,
    /// Coverage of the percentile interval, strictly between 0 and 1.
    pub confidence_level: f64,
    /// Seed of the `Pcg64` generator; equal seeds give equal intervals.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    /// 1000 resamples, a 95 % interval, seed 0.
    fn default() -> Self {
        Self {
            num_resamples: 1000,
            confidence_level: 0.95,
            seed: 0,
        }
    }
}

/// A bootstrap percentile confidence interval for AUROC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapInterval {
    /// AUROC of the original (not resampled) scores.
    pub estimate: f64,
    /// Lower percentile bound.
    pub lower: f64,
    /// Upper percentile bound.
    pub upper: f64,
    /// The coverage that was requested.
    pub confidence_level: f64,
    /// Number of resamples used.
    pub num_resamples: usize,
    /// The seed used.
    pub seed: u64,
}

/// Both score sets merged, sorted ascending and grouped into runs of equal
/// score; the groups are the distinct thresholds of every curve below.
struct Ranked {
    /// Per group (ascending score): number of in- and out-scores in it.
    in_counts: Vec<u64>,
    out_counts: Vec<u64>,
    /// Group of each original sample, for re-weighting when bootstrapping.
    in_group: Vec<u32>,
    out_group: Vec<u32>,
}

impl Ranked {
    fn new<T: Real>(in_scores: ArrayView1<'_, T>, out_scores: ArrayView1<'_, T>) -> Result<Self> {
        check_min_len("in_scores", in_scores.len(), 1)?;
        check_min_len("out_scores", out_scores.len(), 1)?;
        check_finite("in_scores", in_scores)?;
        check_finite("out_scores", out_scores)?;
        let total = in_scores.len() + out_scores.len();
        if u32::try_from(total).is_err() {
            return Err(EvalError::InvalidParameter {
                arg: "in_scores.len() + out_scores.len()",
                value: total.to_string(),
                reason: "more than u32::MAX scores are not supported",
            });
        }

        // (score, is_in, index in its own set)
        let mut merged: Vec<(f64, bool, u32)> = Vec::with_capacity(total);
        merged.extend(
            in_scores
                .iter()
                .enumerate()
                .map(|(i, &s)| (s.into(), true, i as u32)),
        );
        merged.extend(
            out_scores
                .iter()
                .enumerate()
                .map(|(i, &s)| (s.into(), false, i as u32)),
        );
        merged.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));

        let mut ranked = Self {
            in_counts: Vec::new(),
            out_counts: Vec::new(),
            in_group: vec![0; in_scores.len()],
            out_group: vec![0; out_scores.len()],
        };
        let mut previous = f64::NAN;
        for &(score, is_in, index) in &merged {
            // `==` rather than bit equality so that -0.0 and 0.0 (adjacent
            // in `total_cmp` order) form one group, i.e. count as a tie.
            if score != previous || ranked.in_counts.is_empty() {
                ranked.in_counts.push(0);
                ranked.out_counts.push(0);
                previous = score;
            }
            let group = ranked.in_counts.len() - 1;
            if is_in {
                ranked.in_counts[group] += 1;
                ranked.in_group[index as usize] = group as u32;
            } else {
                ranked.out_counts[group] += 1;
                ranked.out_group[index as usize] = group as u32;
            }
        }
        Ok(ranked)
    }

    fn auroc(&self) -> f64 {
        auroc_from_group_counts(&self.in_counts, &self.out_counts)
    }

    /// (TP, FP) after accepting each group, walking thresholds downwards.
    fn roc_points(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.in_counts
            .iter()
            .rev()
            .zip(self.out_counts.iter().rev())
            .scan((0u64, 0u64), |(tp, fp), (&i, &o)| {
                *tp += i;
                *fp += o;
                Some((*tp, *fp))
            })
    }

    fn num_in(&self) -> u64 {
        self.in_group.len() as u64
    }

    fn num_out(&self) -> u64 {
        self.out_group.len() as u64
    }

    fn aupr(&self) -> f64 {
        let positives = self.num_in() as f64;
        let mut previous_tp = 0u64;
        // Σ Δtp · precision, divided by the positives once at the end.
        let mut weighted = 0.0;
        for (tp, fp) in self.roc_points() {
            if tp > previous_tp {
                weighted += (tp - previous_tp) as f64 * (tp as f64 / (tp + fp) as f64);
                previous_tp = tp;
            }
        }
        // Exactly at most 1; rounding in the sum could otherwise give 1 + 1 ulp for a
        // perfect separation.
        (weighted / positives).min(1.0)
    }

    fn fpr_at_tpr(&self, target_tpr: f64) -> f64 {
        // The ROC curve starts at (0, 0), before any threshold accepts.
        if target_tpr <= 0.0 {
            return 0.0;
        }
        let (positives, negatives) = (self.num_in() as f64, self.num_out() as f64);
        // FPR only grows along the walk, so the first point reaching the
        // target TPR has the smallest FPR; the last point has TPR = 1.
        self.roc_points()
            .find(|&(tp, _)| tp as f64 / positives >= target_tpr)
            .map_or(1.0, |(_, fp)| fp as f64 / negatives)
    }
}

/// Mann–Whitney AUROC from per-group counts in ascending score order.
///
/// Walking the groups upwards, each in-sample of a group beats every
/// out-sample below the group and ties with those inside it. This is the
/// average-rank formula `U = R_in − n(n+1)/2` evaluated group by group; it is
/// kept in integers (twice U) so the statistic is exact for any tie pattern.
fn auroc_from_group_counts(in_counts: &[u64], out_counts: &[u64]) -> f64 {
    let mut out_below: u128 = 0;
    let mut twice_u: u128 = 0;
    let (mut n, mut m) = (0u128, 0u128);
    for (&i, &o) in in_counts.iter().zip(out_counts) {
        let (i, o) = (u128::from(i), u128::from(o));
        twice_u += i * (2 * out_below + o);
        out_below += o;
        n += i;
        m += o;
    }
    twice_u as f64 / (2 * n * m) as f64
}

/// AUROC with in-distribution positive: `P(s_in > s_out) + ½ P(s_in = s_out)`.
///
/// `O((n+m) log(n+m))`. Errors if either set is empty or holds NaN/±inf
/// (naming `in_scores` or `out_scores` and the index).
///
/// # Examples
///
/// ```
/// use jem_eval::auroc;
/// use ndarray::array;
///
/// // Of the 3·2 pairs, (0.9 > 0.1), (0.9 > 0.4), (0.4 > 0.1), (0.7 > 0.1)
/// // and (0.7 > 0.4) are won and (0.4 = 0.4) is a tie counted one half.
/// let value = auroc(array![0.9, 0.4, 0.7].view(), array![0.1, 0.4].view())?;
/// assert!((value - 5.5 / 6.0).abs() < 1e-12);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn auroc<T: Real>(in_scores: ArrayView1<'_, T>, out_scores: ArrayView1<'_, T>) -> Result<f64> {
    Ranked::new(in_scores, out_scores).map(|r| r.auroc())
}

/// Average precision with in-distribution positive, as
/// `sklearn.metrics.average_precision_score` (step-wise, no interpolation).
/// Errors as [`auroc`].
///
/// # Examples
///
/// ```
/// use jem_eval::aupr;
/// use ndarray::array;
///
/// // Descending: 0.9 in, 0.8 out, 0.7 in. Precision is 1 at the first
/// // in-sample and 2/3 at the second: AP = ½ · 1 + ½ · 2/3.
/// let value = aupr(array![0.9, 0.7].view(), array![0.8].view())?;
/// assert!((value - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn aupr<T: Real>(in_scores: ArrayView1<'_, T>, out_scores: ArrayView1<'_, T>) -> Result<f64> {
    Ranked::new(in_scores, out_scores).map(|r| r.aupr())
}

/// Smallest FPR among the ROC points with TPR `>= target_tpr` (see the
/// module docs). Errors as [`auroc`], and if `target_tpr` is not in `[0, 1]`.
///
/// # Examples
///
/// ```
/// use jem_eval::fpr_at_tpr;
/// use ndarray::array;
///
/// let (inside, outside) = (array![0.9, 0.7], array![0.8, 0.6]);
/// // Accepting only 0.9 gives TPR ½ with no false positive; TPR 1 needs
/// // the threshold 0.7, which also accepts 0.8: FPR ½.
/// assert_eq!(fpr_at_tpr(inside.view(), outside.view(), 0.5)?, 0.0);
/// assert_eq!(fpr_at_tpr(inside.view(), outside.view(), 1.0)?, 0.5);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn fpr_at_tpr<T: Real>(
    in_scores: ArrayView1<'_, T>,
    out_scores: ArrayView1<'_, T>,
    target_tpr: f64,
) -> Result<f64> {
    check_target_tpr(target_tpr)?;
    Ranked::new(in_scores, out_scores).map(|r| r.fpr_at_tpr(target_tpr))
}

/// [`fpr_at_tpr`] at 95 % TPR, the usual "FPR95".
///
/// # Examples
///
/// ```
/// use jem_eval::fpr_at_95_tpr;
/// use ndarray::Array1;
///
/// // 100 in-scores 1..=100 and 10 out-scores 91..=100: reaching 95 in-samples
/// // needs the threshold 6, which accepts all 10 out-samples.
/// let inside = Array1::from_iter((1..=100).map(f64::from));
/// let outside = Array1::from_iter((91..=100).map(f64::from));
/// assert_eq!(fpr_at_95_tpr(inside.view(), outside.view())?, 1.0);
/// // Out-scores below every in-score are never accepted.
/// let low = Array1::from_elem(10, 0.0);
/// assert_eq!(fpr_at_95_tpr(inside.view(), low.view())?, 0.0);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn fpr_at_95_tpr<T: Real>(
    in_scores: ArrayView1<'_, T>,
    out_scores: ArrayView1<'_, T>,
) -> Result<f64> {
    fpr_at_tpr(in_scores, out_scores, 0.95)
}

fn check_target_tpr(target_tpr: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&target_tpr) {
        return Err(EvalError::InvalidParameter {
            arg: "target_tpr",
            value: target_tpr.to_string(),
            reason: "must be a rate in [0, 1]",
        });
    }
    Ok(())
}

/// AUROC, AUPR and FPR95 from one sort of the scores. Errors as [`auroc`].
///
/// # Examples
///
/// ```
/// use jem_eval::ood_metrics;
/// use ndarray::array;
///
/// let m = ood_metrics(array![3.0f32, 4.0].view(), array![1.0, 2.0].view())?;
/// assert_eq!((m.auroc, m.aupr, m.fpr_at_95_tpr), (1.0, 1.0, 0.0));
/// assert_eq!((m.num_in, m.num_out), (2, 2));
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn ood_metrics<T: Real>(
    in_scores: ArrayView1<'_, T>,
    out_scores: ArrayView1<'_, T>,
) -> Result<OodMetrics> {
    let ranked = Ranked::new(in_scores, out_scores)?;
    Ok(OodMetrics {
        auroc: ranked.auroc(),
        aupr: ranked.aupr(),
        fpr_at_95_tpr: ranked.fpr_at_tpr(0.95),
        num_in: in_scores.len(),
        num_out: out_scores.len(),
    })
}

/// Bootstrap percentile confidence interval for AUROC.
///
/// Each resample draws `n` in-scores and `m` out-scores with replacement,
/// independently from each set (the two sets are separate samples), using a
/// `Pcg64` seeded with `config.seed`. The bounds are the `α/2` and `1 − α/2`
/// quantiles (`α = 1 − confidence_level`) of the resampled AUROCs, with
/// linear interpolation between order statistics like `numpy.percentile`.
/// The scores are sorted once; each resample costs `O(n + m)`.
///
/// Errors as [`auroc`], and if `num_resamples` is 0 or `confidence_level`
/// is not strictly between 0 and 1.
///
/// # Examples
///
/// ```
/// use jem_eval::{auroc_bootstrap, BootstrapConfig};
/// use ndarray::Array1;
///
/// let inside = Array1::from_iter((0..200).map(|k| (f64::from(k) * 0.37).sin() + 0.5));
/// let outside = Array1::from_iter((0..150).map(|k| (f64::from(k) * 0.61).cos()));
/// let config = BootstrapConfig { num_resamples: 200, ..Default::default() };
/// let ci = auroc_bootstrap(inside.view(), outside.view(), &config)?;
/// assert!(ci.lower < ci.estimate && ci.estimate < ci.upper);
/// // Equal seeds give equal intervals.
/// assert_eq!(ci, auroc_bootstrap(inside.view(), outside.view(), &config)?);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn auroc_bootstrap<T: Real>(
    in_scores: ArrayView1<'_, T>,
    out_scores: ArrayView1<'_, T>,
    config: &BootstrapConfig,
) -> Result<BootstrapInterval> {
    if config.num_resamples == 0 {
        return Err(EvalError::InvalidParameter {
            arg: "num_resamples",
            value: "0".into(),
            reason: "at least one resample is needed",
        });
    }
    let level = config.confidence_level;
    if !(level > 0.0 && level < 1.0) {
        return Err(EvalError::InvalidParameter {
            arg: "confidence_level",
            value: level.to_string(),
            reason: "must be strictly between 0 and 1",
        });
    }
    let ranked = Ranked::new(in_scores, out_scores)?;
    let num_groups = ranked.in_counts.len();
    let mut rng = Pcg64::seed_from_u64(config.seed);
    let mut in_counts = vec![0u64; num_groups];
    let mut out_counts = vec![0u64; num_groups];
    let mut resampled = Vec::with_capacity(config.num_resamples);
    for _ in 0..config.num_resamples {
        in_counts.fill(0);
        out_counts.fill(0);
        for _ in 0..ranked.in_group.len() {
            let pick = rng.random_range(0..ranked.in_group.len());
            in_counts[ranked.in_group[pick] as usize] += 1;
        }
        for _ in 0..ranked.out_group.len() {
            let pick = rng.random_range(0..ranked.out_group.len());
            out_counts[ranked.out_group[pick] as usize] += 1;
        }
        resampled.push(auroc_from_group_counts(&in_counts, &out_counts));
    }
    resampled.sort_unstable_by(f64::total_cmp);
    let alpha = 1.0 - level;
    Ok(BootstrapInterval {
        estimate: ranked.auroc(),
        lower: percentile_sorted(&resampled, alpha / 2.0),
        upper: percentile_sorted(&resampled, 1.0 - alpha / 2.0),
        confidence_level: level,
        num_resamples: config.num_resamples,
        seed: config.seed,
    })
}

/// Quantile `q ∈ [0, 1]` of non-empty sorted data, numpy's "linear" method.
fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::{array, Array1};

    fn v(values: &[f64]) -> Array1<f64> {
        Array1::from(values.to_vec())
    }

    #[test]
    fn auroc_hand_examples() {
        assert_relative_eq!(
            auroc(v(&[3.0, 4.0]).view(), v(&[1.0, 2.0]).view()).unwrap(),
            1.0
        );
        assert_relative_eq!(
            auroc(v(&[1.0, 2.0]).view(), v(&[3.0, 4.0]).view()).unwrap(),
            0.0
        );
        assert_relative_eq!(auroc(v(&[1.0, 1.0]).view(), v(&[1.0]).view()).unwrap(), 0.5);
        // Pairs: (2>1) win, (2=2) half, (3>1) win, (3>2) win -> 3.5 / 4.
        assert_relative_eq!(
            auroc(v(&[2.0, 3.0]).view(), v(&[1.0, 2.0]).view()).unwrap(),
            0.875
        );
        // -0.0 and 0.0 are the same score: a tie.
        assert_relative_eq!(auroc(v(&[0.0]).view(), v(&[-0.0]).view()).unwrap(), 0.5);
        assert_relative_eq!(
            auroc(array![2.0f32, 3.0].view(), array![1.0f32, 2.0].view()).unwrap(),
            0.875
        );
    }

    #[test]
    fn aupr_and_fpr_hand_examples() {
        // Descending: 0.9 in, 0.8 out, 0.7 in, 0.6 out.
        // AP = ½·1 + ½·(2/3).
        let (i, o) = (array![0.9, 0.7], array![0.8, 0.6]);
        assert_relative_eq!(
            aupr(i.view(), o.view()).unwrap(),
            0.5 + 1.0 / 3.0,
            max_relative = 1e-12
        );
        // TPR reaches 1 only after accepting 0.7, when 1 of 2 OOD is accepted.
        assert_relative_eq!(fpr_at_95_tpr(i.view(), o.view()).unwrap(), 0.5);
        assert_relative_eq!(fpr_at_tpr(i.view(), o.view(), 0.5).unwrap(), 0.0);
        assert_relative_eq!(fpr_at_tpr(i.view(), o.view(), 0.0).unwrap(), 0.0);
        // A tie at the top: precision of the shared threshold is ½.
        assert_relative_eq!(aupr(v(&[1.0]).view(), v(&[1.0]).view()).unwrap(), 0.5);
    }

    #[test]
    fn ood_metrics_agree_with_the_single_functions() {
        let (i, o) = (array![0.3, 0.9, 0.5, 0.5, 0.2], array![0.1, 0.5, 0.4]);
        let m = ood_metrics(i.view(), o.view()).unwrap();
        assert_eq!(m.auroc, auroc(i.view(), o.view()).unwrap());
        assert_eq!(m.aupr, aupr(i.view(), o.view()).unwrap());
        assert_eq!(m.fpr_at_95_tpr, fpr_at_95_tpr(i.view(), o.view()).unwrap());
        assert_eq!((m.num_in, m.num_out), (5, 3));
    }

    #[test]
    fn bad_scores_name_the_set_and_index() {
        let err = auroc(v(&[0.1, 0.2]).view(), v(&[0.3, f64::NAN]).view()).unwrap_err();
        assert!(matches!(
            err,
            EvalError::NonFinite {
                arg: "out_scores",
                index: 1,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "`out_scores[1]` is NaN, which is not finite"
        );
        let err = aupr(v(&[f64::INFINITY]).view(), v(&[0.3]).view()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`in_scores[0]` is inf, which is not finite"
        );
        assert!(matches!(
            auroc(v(&[]).view(), v(&[0.3]).view()),
            Err(EvalError::TooFewSamples {
                arg: "in_scores",
                ..
            })
        ));
        assert!(matches!(
            fpr_at_tpr(v(&[0.1]).view(), v(&[0.3]).view(), 1.5),
            Err(EvalError::InvalidParameter {
                arg: "target_tpr",
                ..
            })
        ));
    }

    #[test]
    fn bootstrap_is_reproducible_and_brackets_the_estimate() {
        let i = Array1::from_iter((0..200).map(|k| (k as f64 * 0.37).sin() + 0.5));
        let o = Array1::from_iter((0..150).map(|k| (k as f64 * 0.61).cos()));
        let config = BootstrapConfig {
            num_resamples: 300,
            confidence_level: 0.9,
            seed: 7,
        };
        let a = auroc_bootstrap(i.view(), o.view(), &config).unwrap();
        let b = auroc_bootstrap(i.view(), o.view(), &config).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.estimate, auroc(i.view(), o.view()).unwrap());
        assert!(a.lower < a.estimate && a.estimate < a.upper, "{a:?}");
        assert!(a.upper - a.lower < 0.2, "{a:?}");
        let c =
            auroc_bootstrap(i.view(), o.view(), &BootstrapConfig { seed: 8, ..config }).unwrap();
        assert_ne!(a.lower, c.lower);
    }

    #[test]
    fn bootstrap_rejects_bad_config() {
        let bad_level = BootstrapConfig {
            confidence_level: 1.0,
            ..Default::default()
        };
        assert!(auroc_bootstrap(v(&[1.0]).view(), v(&[0.0]).view(), &bad_level).is_err());
        let no_resamples = BootstrapConfig {
            num_resamples: 0,
            ..Default::default()
        };
        assert!(auroc_bootstrap(v(&[1.0]).view(), v(&[0.0]).view(), &no_resamples).is_err());
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        let data = [1.0, 2.0, 3.0, 4.0];
        assert_relative_eq!(percentile_sorted(&data, 0.0), 1.0);
        assert_relative_eq!(percentile_sorted(&data, 1.0), 4.0);
        // np.percentile([1,2,3,4], 25) == 1.75
        assert_relative_eq!(percentile_sorted(&data, 0.25), 1.75);
        assert_relative_eq!(percentile_sorted(&[5.0], 0.3), 5.0);
    }
}
