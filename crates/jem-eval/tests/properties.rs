//! Property tests of the metric definitions (modest case counts to keep the
//! suite within a few seconds).

use approx::assert_relative_eq;
use jem_eval::{
    aupr, auroc, auroc_bootstrap, ece, fpr_at_tpr, frechet_distance, inception_score,
    reliability_from_confidences, BootstrapConfig, PAPER_NUM_BINS,
};
use ndarray::{Array1, Array2, ArrayView1, Axis};
use proptest::prelude::*;

/// Scores on a coarse grid so that ties between and within sets are common.
fn scores(max_len: usize) -> impl Strategy<Value = Array1<f64>> {
    prop::collection::vec((-40i32..40).prop_map(|k| f64::from(k) / 4.0), 1..max_len)
        .prop_map(Array1::from)
}

/// Mann–Whitney U / (n·m) by comparing every pair.
fn naive_auroc(in_scores: ArrayView1<'_, f64>, out_scores: ArrayView1<'_, f64>) -> f64 {
    let mut u = 0.0;
    for &a in in_scores {
        for &b in out_scores {
            u += if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    u / (in_scores.len() * out_scores.len()) as f64
}

/// Smallest FPR over every threshold `s >= t` (including "accept nothing")
/// whose TPR reaches `target`, by scanning all candidate thresholds.
fn naive_fpr_at_tpr(
    in_scores: ArrayView1<'_, f64>,
    out_scores: ArrayView1<'_, f64>,
    target: f64,
) -> f64 {
    let rate = |set: ArrayView1<'_, f64>, t: f64| {
        set.iter().filter(|&&s| s >= t).count() as f64 / set.len() as f64
    };
    in_scores
        .iter()
        .chain(out_scores.iter())
        .copied()
        .chain([f64::INFINITY])
        .filter(|&t| rate(in_scores, t) >= target)
        .map(|t| rate(out_scores, t))
        .fold(f64::INFINITY, f64::min)
}

/// Row-wise softmax of `logits` (row-major, `k` per row) as an `n × k` matrix.
fn softmax_rows(logits: &[f64], k: usize) -> Array2<f64> {
    let mut probs = Array2::from_shape_vec((logits.len() / k, k), logits.to_vec()).unwrap();
    for mut row in probs.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |m, &x| m.max(x));
        row.mapv_inplace(|x| (x - max).exp());
        let sum = row.sum();
        row /= sum;
    }
    probs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn auroc_equals_naive_mann_whitney(i in scores(40), o in scores(40)) {
        let fast = auroc(i.view(), o.view()).unwrap();
        assert_relative_eq!(fast, naive_auroc(i.view(), o.view()), max_relative = 1e-12, epsilon = 1e-15);
        prop_assert!((0.0..=1.0).contains(&fast));
    }

    #[test]
    fn auroc_is_antisymmetric(i in scores(40), o in scores(40)) {
        let forward = auroc(i.view(), o.view()).unwrap();
        let backward = auroc(o.view(), i.view()).unwrap();
        assert_relative_eq!(forward, 1.0 - backward, max_relative = 1e-12, epsilon = 1e-15);
    }

    #[test]
    fn ood_metrics_ignore_strictly_increasing_transforms(i in scores(40), o in scores(40)) {
        // Strictly increasing on the grid, and distinct grid points stay
        // distinct in f64, so orders and ties are preserved exactly.
        let transforms: [fn(f64) -> f64; 3] = [
            |x| 3.0 * x - 7.0,
            |x| x * x * x + x,
            |x| (x / 3.0).exp(),
        ];
        for f in transforms {
            let (ti, to) = (i.mapv(f), o.mapv(f));
            prop_assert_eq!(auroc(ti.view(), to.view()).unwrap(), auroc(i.view(), o.view()).unwrap());
            prop_assert_eq!(aupr(ti.view(), to.view()).unwrap(), aupr(i.view(), o.view()).unwrap());
            prop_assert_eq!(fpr_at_tpr(ti.view(), to.view(), 0.95).unwrap(), fpr_at_tpr(i.view(), o.view(), 0.95).unwrap());
        }
    }

    #[test]
    fn fpr_at_tpr_equals_threshold_scan(i in scores(30), o in scores(30), target in 0.0f64..=1.0) {
        let fast = fpr_at_tpr(i.view(), o.view(), target).unwrap();
        prop_assert_eq!(fast, naive_fpr_at_tpr(i.view(), o.view(), target));
        let ap = aupr(i.view(), o.view()).unwrap();
        prop_assert!(ap > 0.0 && ap <= 1.0, "aupr {}", ap);
    }

    #[test]
    fn bootstrap_interval_is_ordered_and_in_range(i in scores(30), o in scores(30), seed in any::<u64>()) {
        let config = BootstrapConfig { num_resamples: 50, confidence_level: 0.9, seed };
        let ci = auroc_bootstrap(i.view(), o.view(), &config).unwrap();
        prop_assert!(0.0 <= ci.lower && ci.lower <= ci.upper && ci.upper <= 1.0, "{:?}", ci);
    }

    #[test]
    fn ece_lies_in_unit_interval(
        samples in prop::collection::vec((0.0f64..=1.0, any::<bool>()), 1..200),
        num_bins in 1usize..40,
    ) {
        let (conf, correct): (Vec<f64>, Vec<bool>) = samples.into_iter().unzip();
        let d = reliability_from_confidences(ArrayView1::from(&conf), ArrayView1::from(&correct), num_bins).unwrap();
        prop_assert!((0.0..=1.0).contains(&d.ece), "ece {}", d.ece);
        prop_assert_eq!(d.bins.iter().map(|b| b.count).sum::<usize>(), conf.len());
    }

    #[test]
    fn ece_is_zero_when_each_group_is_calibrated(
        groups in prop::collection::vec((0usize..6, 1usize..4), 1..6),
        seed in any::<u64>(),
    ) {
        // A group of 20·r two-class rows [c, 1 − c] (predicting class 0)
        // with exactly c·20·r labels 0: accuracy equals confidence.
        let levels = [0.5, 0.6, 0.75, 0.8, 0.9, 1.0];
        let mut rows = Vec::new();
        for (level, r) in groups {
            let c = levels[level];
            let n = 20 * r;
            let hits = (c * n as f64).round() as usize;
            for j in 0..n {
                rows.push((c, usize::from(j >= hits)));
            }
        }
        // Order must not matter: shuffle deterministically by the seed.
        let mut state = seed | 1;
        for k in (1..rows.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            rows.swap(k, (state % (k as u64 + 1)) as usize);
        }
        let probs = Array2::from_shape_fn((rows.len(), 2), |(i, k)| if k == 0 { rows[i].0 } else { 1.0 - rows[i].0 });
        let labels: Array1<usize> = rows.iter().map(|&(_, l)| l).collect();
        let value = ece(probs.view(), labels.view(), PAPER_NUM_BINS).unwrap();
        prop_assert!(value.abs() < 1e-12, "ece {}", value);
    }

    #[test]
    fn ece_ignores_sample_order(
        logits in prop::collection::vec(-4.0f64..4.0, 3 * 60),
        labels in prop::collection::vec(0usize..3, 60),
        permutation in Just((0..60).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let probs = softmax_rows(&logits, 3);
        let labels = Array1::from(labels);
        let permuted = probs.select(Axis(0), &permutation);
        let permuted_labels = labels.select(Axis(0), &permutation);
        let a = ece(probs.view(), labels.view(), PAPER_NUM_BINS).unwrap();
        let b = ece(permuted.view(), permuted_labels.view(), PAPER_NUM_BINS).unwrap();
        assert_relative_eq!(a, b, max_relative = 1e-12, epsilon = 1e-15);
        prop_assert!((0.0..=1.0).contains(&a));
    }
}

/// Feature matrices: `n × d` with `n` in 2..24 (so often `n <= d`, i.e.
/// singular covariances) and values of mixed scale.
fn feature_pair() -> impl Strategy<Value = (usize, Array2<f64>, Array2<f64>)> {
    let matrix = |n: usize, d: usize| {
        prop::collection::vec(-10.0f64..10.0, n * d)
            .prop_map(move |v| Array2::from_shape_vec((n, d), v).unwrap())
    };
    (1usize..8, 2usize..24, 2usize..24)
        .prop_flat_map(move |(d, n1, n2)| (Just(d), matrix(n1, d), matrix(n2, d)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn frechet_distance_of_a_set_with_itself_is_zero((d, x, _y) in feature_pair()) {
        let fd = frechet_distance(x.view(), x.view()).unwrap();
        // Relative to the scale of the traces (values up to 10 → variances ~30·d).
        prop_assert!(fd.abs() < 1e-8 * (1.0 + 30.0 * d as f64), "fd {}", fd);
    }

    #[test]
    fn frechet_distance_is_symmetric_and_non_negative((d, x, y) in feature_pair()) {
        let xy = frechet_distance(x.view(), y.view()).unwrap();
        let yx = frechet_distance(y.view(), x.view()).unwrap();
        prop_assert!(xy >= 0.0);
        assert_relative_eq!(xy, yx, max_relative = 1e-8, epsilon = 1e-8 * (1.0 + 30.0 * d as f64));
    }

    #[test]
    fn inception_score_lies_between_one_and_k(
        (k, logits) in (1usize..12).prop_flat_map(|k| (Just(k), prop::collection::vec(-8.0f64..8.0, k * 30))),
        splits in 1usize..10,
    ) {
        let probs = softmax_rows(&logits, k);
        let is = inception_score(probs.view(), splits).unwrap();
        for s in is.per_split.iter().chain([&is.mean]) {
            prop_assert!(*s >= 1.0 - 1e-12 && *s <= k as f64 + 1e-12, "score {} k {}", s, k);
        }
        prop_assert!(is.std >= 0.0);
    }
}

/// A perfect separation of many scores: AUPR is exactly 1, never 1 + rounding.
#[test]
fn aupr_of_a_perfect_separation_is_not_above_one() {
    for n in [3usize, 200, 997] {
        let inside = Array1::from_iter((0..n).map(|i| 10.0 + i as f64 * 0.37));
        let outside = Array1::from_iter((0..n).map(|i| -(i as f64) * 0.11));
        let ap = aupr(inside.view(), outside.view()).unwrap();
        assert!(ap <= 1.0 && ap > 1.0 - 1e-12, "n = {n}: {ap}");
    }
}
