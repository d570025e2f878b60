use crate::reproduce::claims::Verdict;
use crate::reproduce::models::ModelId;
use crate::reproduce::preset;
use crate::reproduce::targets::{fig4, key};
use crate::reproduce::testkit::{self, Fake};
use jem_report::files;

/// Calibrations of the cpu preset's fig4 models: (model, ECE, accuracy, mean confidence).
fn fake(rows: &[(ModelId, f64, f64, f64)]) -> Fake {
    let mut f = Fake::new(preset::cpu(), &[1]);
    for &(id, ece, acc, conf) in rows {
        f.run(id, 1, acc);
        let k = key("calibrate", id, 1);
        f.job(
            &k,
            files::CALIBRATION,
            &testkit::calibration(ece, acc, conf),
        );
        f.png(&k, files::RELIABILITY_PNG);
    }
    f
}

fn rows(jem_ece: f64, base_ece: f64) -> Vec<(ModelId, f64, f64, f64)> {
    vec![
        (ModelId::Jem, jem_ece, 0.85, 0.86),
        (ModelId::BaselineConverged, base_ece, 0.90, 0.97),
        (ModelId::Baseline, 0.0096, 0.89, 0.895),
        (ModelId::Jem4k, 0.02, 0.75, 0.76),
        (ModelId::Baseline4k, 0.05, 0.78, 0.83),
    ]
}

#[test]
fn lower_ece_is_supported_when_jems_is_lower() {
    let a = fake(&rows(0.012, 0.034)).assemble(&fig4::TARGET);
    let ece = &a.claims[0];
    assert_eq!(ece.verdict, Verdict::Supported, "{ece:?}");
    assert!(ece.evidence.contains("JEM 1.20% <"), "{}", ece.evidence);
    assert!(ece.evidence.contains("3.40%"), "{}", ece.evidence);
    // The converged baseline: confidence 97% > accuracy 90%.
    assert_eq!(a.claims[1].verdict, Verdict::Supported);
    assert!(
        a.claims[1]
            .evidence
            .contains("confidence 97.00% > accuracy 90.00%"),
        "{}",
        a.claims[1].evidence
    );
    // JEM 85% < baseline 90%.
    assert_eq!(a.claims[2].verdict, Verdict::Supported);
    // 4000 labels: ECE 2% < 5%, accuracy 75% < 78%.
    assert_eq!(a.claims[3].verdict, Verdict::Supported);
    assert_eq!(a.claims[4].verdict, Verdict::Supported);
    // The cells: ECE, accuracy, mean confidence of the converged baseline.
    assert!(
        a.body
            .contains("| baseline (trained to convergence) | 3.40% | 90.00% | 97.00% | - |"),
        "{}",
        a.body
    );
    // The short-trained baseline is a labelled row of Fig 4 too.
    assert!(
        a.body
            .contains("| baseline (same network, classifier) | 0.96% |"),
        "{}",
        a.body
    );
    // The 4000-label paper accuracies stand beside ours.
    assert!(a.body.contains("| 78.0% |"), "{}", a.body);
    assert_eq!(a.images.len(), 5);
    assert_eq!(a.images[0].name, "reliability_jem.png");
}

#[test]
fn higher_ece_is_not_supported() {
    let a = fake(&rows(0.034, 0.012)).assemble(&fig4::TARGET);
    assert_eq!(a.claims[0].verdict, Verdict::NotSupported);
    assert!(
        a.claims[0].evidence.contains("JEM 3.40% ≥"),
        "{}",
        a.claims[0].evidence
    );
    // The note names the placeholder.
    assert!(
        a.notes.iter().any(|n| n.contains("placeholder")),
        "{:?}",
        a.notes
    );
}

#[test]
fn mean_confidence_weights_bins_by_count() {
    let mut r = testkit::calibration(0.1, 0.5, 0.9);
    r.reliability.bins[0].count = 300;
    r.reliability.bins[0].mean_confidence = Some(0.1);
    // (300 * 0.1 + 100 * 0.9) / 400.
    assert!((fig4::mean_confidence(&r).unwrap() - 0.3).abs() < 1e-12);
}
