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
        std::fs::write(
            f.inputs().run_dir(id, 1).unwrap().join("metrics.jsonl"),
            METRICS,
        )
        .unwrap();
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

/// A `metrics.jsonl` as jem-train writes it: a train line, two evaluations (the first from a
/// jem that did not log ECE yet), a recovery line.
const METRICS: &str = concat!(
    r#"{"kind":"train","iteration":10,"epoch":0,"lr":0.1,"loss":1.0,"ce":1.0,"px_term":0.0,"#,
    r#""energy_reg":0.0,"logpx_data":null,"logpx_sample":null,"energy_gap":null,"#,
    r#""sgld_grad_norm":null,"sgld_steps":0,"buffer_age_mean":null,"buffer_age_max":null,"#,
    r#""param_grad_norm":1.0,"train_acc":0.5,"its_per_sec":3.0,"elapsed_s":1.0}"#,
    "\n",
    r#"{"kind":"epoch","epoch":1,"iteration":1875,"valid_acc":0.8,"test_acc":0.81,"#,
    r#""train_acc":0.7,"best_valid_acc":0.8,"is_best":true,"elapsed_s":60.0}"#,
    "\n",
    r#"{"kind":"epoch","epoch":2,"iteration":3750,"valid_acc":0.85,"test_acc":0.8512,"#,
    r#""test_ece":0.0345,"test_nll":0.41234,"train_acc":0.9,"best_valid_acc":0.85,"#,
    r#""is_best":true,"elapsed_s":120.0}"#,
    "\n",
);

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
    // The note says how the converged baseline's epochs were chosen.
    assert!(
        a.notes
            .iter()
            .any(|n| n.contains("20 epochs, chosen on the ECE by epoch")),
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

#[test]
fn the_converged_baselines_ece_by_epoch_comes_from_its_metrics_log() {
    let a = fake(&rows(0.012, 0.034)).assemble(&fig4::TARGET);
    assert!(a
        .body
        .contains("### ECE against epochs: baseline (trained to convergence)"));
    assert!(
        a.body.contains(
            "\n| epoch | iteration | train accuracy | test accuracy | test ECE | test NLL |\n\
             |---|---|---|---|---|---|\n| 1 |"
        ),
        "{}",
        a.body
    );
    // Epoch 1 had no ECE logged: its cells say so; epoch 2's are the logged numbers.
    assert!(
        a.body.contains("| 1 | 1875 | 70.00% | 81.00% | - | - |"),
        "{}",
        a.body
    );
    assert!(
        a.body
            .contains("| 2 | 3750 | 90.00% | 85.12% | 3.45% | 0.4123 |"),
        "{}",
        a.body
    );
    let epochs = &a.numbers["ece_by_epoch"]["epochs"];
    assert_eq!(epochs.as_array().unwrap().len(), 2);
    assert_eq!(epochs[1]["test_ece"], 0.0345);
    assert!(epochs[0]["test_ece"].is_null());
}

#[test]
fn a_log_without_ece_says_so_and_a_broken_line_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    std::fs::write(
        &path,
        METRICS.lines().take(2).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let points = fig4::epoch_curve(dir.path()).unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].test_ece, None);
    std::fs::write(&path, "{\"kind\":\"epoch\",\"epoch\":\"one\"}\n").unwrap();
    let e = format!("{:#}", fig4::epoch_curve(dir.path()).unwrap_err());
    assert!(e.contains("metrics.jsonl line 1"), "{e}");
}
