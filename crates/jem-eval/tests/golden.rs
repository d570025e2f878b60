//! Golden values computed once with scikit-learn, scipy and numpy by
//! `tests/fixtures/make_golden.py` (inputs are stored in the fixtures too).

use approx::assert_relative_eq;
use jem_eval::{
    accuracy, aupr, auroc, fpr_at_95_tpr, frechet_distance, frechet_distance_from_stats,
    inception_score, nll, ood_metrics, reliability_diagram, FeatureStats,
};
use ndarray::{Array2, ArrayView1};
use serde::Deserialize;

/// Relative tolerance required by the spec for everything but FID.
const REL: f64 = 1e-6;
/// FID goes through different square-root algorithms (scipy's Schur-based
/// `sqrtm` vs our symmetric eigendecompositions), hence a looser bound.
const FID_REL: f64 = 1e-4;
/// Absolute floor so that expected zeros compare sensibly.
const ABS: f64 = 1e-12;

/// A fixture's row-major `rows × cols` list as a matrix.
fn matrix(values: &[f64], cols: usize) -> Array2<f64> {
    Array2::from_shape_vec((values.len() / cols, cols), values.to_vec()).unwrap()
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[derive(Deserialize)]
struct Cases<T> {
    cases: Vec<T>,
}

#[derive(Deserialize)]
struct OodCase {
    name: String,
    in_scores: Vec<f64>,
    out_scores: Vec<f64>,
    auroc: f64,
    aupr: f64,
    fpr95: f64,
}

#[test]
fn ood_metrics_match_sklearn() {
    let fixture: Cases<OodCase> = load("ood.json");
    assert_eq!(fixture.cases.len(), 6);
    for case in &fixture.cases {
        let (i, o) = (
            ArrayView1::from(&case.in_scores),
            ArrayView1::from(&case.out_scores),
        );
        let name = &case.name;
        assert_relative_eq!(
            auroc(i, o).unwrap(),
            case.auroc,
            max_relative = REL,
            epsilon = ABS
        );
        assert_relative_eq!(
            aupr(i, o).unwrap(),
            case.aupr,
            max_relative = REL,
            epsilon = ABS
        );
        let fpr = fpr_at_95_tpr(i, o).unwrap();
        assert_relative_eq!(fpr, case.fpr95, max_relative = REL, epsilon = ABS);
        let all = ood_metrics(i, o).unwrap();
        assert_eq!(all.auroc, auroc(i, o).unwrap(), "{name}");
        assert_eq!(all.aupr, aupr(i, o).unwrap(), "{name}");
        assert_eq!(all.fpr_at_95_tpr, fpr, "{name}");
    }
}

#[derive(Deserialize)]
struct GoldenBin {
    count: usize,
    accuracy: Option<f64>,
    mean_confidence: Option<f64>,
}

#[derive(Deserialize)]
struct CalibrationCase {
    name: String,
    num_classes: usize,
    num_bins: usize,
    probs: Vec<f64>,
    labels: Vec<usize>,
    accuracy: f64,
    nll: f64,
    ece: f64,
    bins: Vec<GoldenBin>,
}

fn assert_option_close(got: Option<f64>, want: Option<f64>, what: &str) {
    match (got, want) {
        (None, None) => {}
        (Some(g), Some(w)) => assert_relative_eq!(g, w, max_relative = REL, epsilon = ABS),
        _ => panic!("{what}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn classification_and_calibration_match_numpy() {
    let fixture: Cases<CalibrationCase> = load("calibration.json");
    assert_eq!(fixture.cases.len(), 4);
    for case in &fixture.cases {
        let name = &case.name;
        let probs = matrix(&case.probs, case.num_classes);
        let labels = ArrayView1::from(&case.labels);
        let acc = accuracy(probs.view(), labels).unwrap();
        assert_relative_eq!(acc, case.accuracy, max_relative = REL, epsilon = ABS);
        let loss = nll(probs.view(), labels).unwrap();
        assert_relative_eq!(loss, case.nll, max_relative = REL, epsilon = ABS);

        let diagram = reliability_diagram(probs.view(), labels, case.num_bins).unwrap();
        assert_relative_eq!(diagram.ece, case.ece, max_relative = REL, epsilon = ABS);
        assert_eq!(diagram.bins.len(), case.bins.len(), "{name}");
        for (b, (got, want)) in diagram.bins.iter().zip(&case.bins).enumerate() {
            let what = format!("{name} bin {b}");
            assert_eq!(got.count, want.count, "{what}");
            assert_option_close(got.accuracy, want.accuracy, &what);
            assert_option_close(got.mean_confidence, want.mean_confidence, &what);
        }
    }
}

#[derive(Deserialize)]
struct FrechetCase {
    name: String,
    dim: usize,
    features_1: Vec<f64>,
    features_2: Vec<f64>,
    fid: f64,
}

#[test]
fn frechet_distance_matches_scipy_sqrtm() {
    let fixture: Cases<FrechetCase> = load("frechet.json");
    assert_eq!(fixture.cases.len(), 3);
    for case in &fixture.cases {
        let (f1, f2) = (
            matrix(&case.features_1, case.dim),
            matrix(&case.features_2, case.dim),
        );
        let fd = frechet_distance(f1.view(), f2.view()).unwrap();
        assert!(fd.is_finite(), "{}", case.name);
        assert_relative_eq!(fd, case.fid, max_relative = FID_REL);

        // Going through serialisable precomputed statistics changes nothing.
        let s1 = FeatureStats::from_features(f1.view()).unwrap();
        let s2 = FeatureStats::from_features(f2.view()).unwrap();
        let s1 = FeatureStats::new(s1.mean(), s1.covariance()).unwrap();
        let s2 = FeatureStats::new(s2.mean(), s2.covariance()).unwrap();
        let from_stats = frechet_distance_from_stats(&s1, &s2).unwrap();
        assert_relative_eq!(from_stats, fd, max_relative = 1e-12);
    }
}

#[test]
fn frechet_distance_accepts_f32_features() {
    let fixture: Cases<FrechetCase> = load("frechet.json");
    let case = &fixture.cases[0];
    let f1 = matrix(&case.features_1, case.dim).mapv(|x| x as f32);
    let f2 = matrix(&case.features_2, case.dim).mapv(|x| x as f32);
    // Rounding the inputs to f32 perturbs FD by roughly f32 epsilon.
    let fd = frechet_distance(f1.view(), f2.view()).unwrap();
    assert_relative_eq!(fd, case.fid, max_relative = 1e-5);
}

#[derive(Deserialize)]
struct InceptionCase {
    name: String,
    num_classes: usize,
    splits: usize,
    probs: Vec<f64>,
    mean: f64,
    std: f64,
    per_split: Vec<f64>,
}

#[test]
fn inception_score_matches_scipy_entropy() {
    let fixture: Cases<InceptionCase> = load("inception.json");
    assert_eq!(fixture.cases.len(), 2);
    for case in &fixture.cases {
        let probs = matrix(&case.probs, case.num_classes);
        let is = inception_score(probs.view(), case.splits).unwrap();
        assert_relative_eq!(is.mean, case.mean, max_relative = REL, epsilon = ABS);
        assert_relative_eq!(is.std, case.std, max_relative = REL, epsilon = ABS);
        assert_eq!(is.per_split.len(), case.per_split.len(), "{}", case.name);
        for (got, want) in is.per_split.iter().zip(&case.per_split) {
            assert_relative_eq!(*got, *want, max_relative = REL, epsilon = ABS);
        }
    }
}
