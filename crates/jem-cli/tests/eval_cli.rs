//! `jem eval` and `jem calibrate` end to end on a tiny Fashion-MNIST run trained here.

mod common;

use common::{jem, json, ok, png_size, s, tiny_config};

#[test]
fn eval_and_calibrate_write_consistent_tables_json_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        tiny_config(16, 100, "", "max_iterations = 30\nlr = 1e-3"),
    )
    .unwrap();
    let run = dir.path().join("run");
    ok(&[
        "train",
        "--quiet",
        "--config",
        &s(&config),
        "--out",
        &s(&run),
    ]);

    let out = dir.path().join("eval");
    let stdout = ok(&[
        "eval",
        "--checkpoint",
        &s(&run),
        "--ood",
        "uniform,constant,interp",
        "--n",
        "200",
        "--out",
        &s(&out),
    ]);
    assert!(
        stdout.contains("| score | uniform | constant | interp |"),
        "{stdout}"
    );
    let report = json(&out.join("ood.json"));
    let rows = report.as_array().unwrap();
    assert_eq!(rows.len(), 9, "3 scores x 3 OOD sets");
    for row in rows {
        for key in ["auroc", "aupr", "fpr_at_95_tpr"] {
            let v = row["metrics"][key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{key} = {v}");
        }
        assert_eq!(row["metrics"]["num_in"], 200);
    }
    // Uniform noise is far from clothes: even a barely trained JEM's log p(x) tells them apart.
    let px_uniform = rows
        .iter()
        .find(|r| r["score"] == "px" && r["ood"] == "uniform")
        .unwrap();
    assert!(
        px_uniform["metrics"]["auroc"].as_f64().unwrap() > 0.9,
        "{px_uniform}"
    );
    for score in ["px", "py", "pxgrad"] {
        assert_eq!(png_size(&out.join(format!("hist_{score}.png"))), (640, 480));
    }
    assert_eq!(std::fs::read_to_string(out.join("ood.md")).unwrap(), stdout);

    let out = dir.path().join("calibration");
    ok(&[
        "calibrate",
        "--checkpoint",
        &s(&run),
        "--n",
        "500",
        "--out",
        &s(&out),
    ]);
    let report = json(&out.join("calibration.json"));
    let bins = report["reliability"]["bins"].as_array().unwrap();
    assert_eq!(bins.len(), 20);
    let n: u64 = bins.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(n, 500);
    // ECE recomputed from the bins: sum of |B|/n |acc - conf|.
    let ece: f64 = bins
        .iter()
        .filter(|b| b["count"].as_u64().unwrap() > 0)
        .map(|b| {
            b["count"].as_f64().unwrap() / 500.0
                * (b["accuracy"].as_f64().unwrap() - b["mean_confidence"].as_f64().unwrap()).abs()
        })
        .sum();
    assert!((ece - report["ece"].as_f64().unwrap()).abs() < 1e-9);
    // Accuracy recomputed from the bins: sum of |B| acc / n.
    let acc: f64 = bins
        .iter()
        .filter(|b| b["count"].as_u64().unwrap() > 0)
        .map(|b| b["count"].as_f64().unwrap() * b["accuracy"].as_f64().unwrap() / 500.0)
        .sum();
    assert!((acc - report["classification"]["accuracy"].as_f64().unwrap()).abs() < 1e-9);
    assert_eq!(png_size(&out.join("reliability.png")), (640, 480));

    // The trainer's last evaluation logged the test split's ECE and NLL: the numbers `jem
    // calibrate` measures on the whole test split of the final model, up to float noise (other
    // batch sizes; this barely trained model's near-tied logits flip an image or two).
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last_eval: serde_json::Value = log
        .lines()
        .rev()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "epoch")
        .expect("an evaluation line");
    let out = dir.path().join("calibration-all");
    ok(&[
        "calibrate",
        "--checkpoint",
        &s(&run.join("last.ckpt")),
        "--out",
        &s(&out),
    ]);
    let full = json(&out.join("calibration.json"));
    let logged_ece = last_eval["test_ece"].as_f64().expect("test_ece logged");
    let logged_nll = last_eval["test_nll"].as_f64().expect("test_nll logged");
    assert!(logged_ece > 0.0 && logged_ece < 1.0, "{last_eval}");
    assert!(
        (logged_ece - full["ece"].as_f64().unwrap()).abs() < 1e-3,
        "{last_eval} vs {full}"
    );
    assert!(
        (logged_nll - full["classification"]["nll"].as_f64().unwrap()).abs() < 1e-3,
        "{last_eval} vs {full}"
    );
    assert!(
        (last_eval["test_acc"].as_f64().unwrap()
            - full["classification"]["accuracy"].as_f64().unwrap())
        .abs()
            <= 5e-4,
        "{last_eval} vs {full}"
    );
}

#[test]
fn eval_errors_name_what_is_wrong() {
    let out = jem(&["eval", "--checkpoint", "/nonexistent/run"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/run: no checkpoint found"));
    let dir = tempfile::tempdir().unwrap();
    let out = jem(&[
        "eval",
        "--checkpoint",
        dir.path().to_str().unwrap(),
        "--scores",
        "nope",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("px, py or pxgrad"));
}
