//! `jem attack` end to end on tiny Fashion-MNIST runs (a JEM and a baseline) trained here.

mod common;

use common::{jem, json, ok, png_size, s, tiny_config};
use std::path::Path;

#[test]
fn attack_writes_monotone_curves_tables_and_plots_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        tiny_config(16, 100, "", "max_iterations = 40\nlr = 1e-3"),
    )
    .unwrap();
    let jem_run = dir.path().join("jem");
    let base_run = dir.path().join("base");
    for (run, mode) in [(&jem_run, "jem"), (&base_run, "baseline")] {
        ok(&[
            "train",
            "--quiet",
            "--config",
            &s(&config),
            "--set",
            &format!("train.mode=\"{mode}\""),
            "--out",
            &s(run),
        ]);
    }
    let models = format!("jem={},base={}", s(&jem_run), s(&base_run));
    let attack = |out: &Path| {
        ok(&[
            "attack",
            "--quiet",
            "--checkpoint",
            &models,
            "--attack",
            "pgd-linf",
            "--refine-steps",
            "0,1",
            "--eot",
            "2",
            "--n",
            "6",
            "--iterations",
            "4",
            "--restarts",
            "2",
            "--bisection-steps",
            "3",
            "--batch-size",
            "4",
            "--out",
            &s(out),
        ])
    };
    let out = dir.path().join("attack");
    let table = attack(&out);
    for row in ["| jem JEM-0 |", "| jem JEM-1 |", "| base |", "ε = 8 |"] {
        assert!(table.contains(row), "{row} missing from\n{table}");
    }
    let report = json(&out.join("pgd-linf.json"));
    // Refinement follows the attack's flags with the paper's defaults, not the training
    // sampler: the tiny config clamps its SGLD to [-1, 1], the refinement does not.
    assert_eq!(
        report["refinement"],
        serde_json::json!({"step_size": 1.0, "noise": 0.01, "clamp": null, "eot_noise": 0.03})
    );
    assert_eq!(report["pgd"]["bisection_steps"], 3);
    let models = report["models"].as_array().unwrap();
    assert_eq!(
        models.len(),
        3,
        "JEM-0, JEM-1 and the baseline at k = 0 only"
    );
    assert_eq!(report["test_indices"].as_array().unwrap().len(), 6);
    for m in models {
        let points = m["curve"]["points"].as_array().unwrap();
        let acc: Vec<f64> = points
            .iter()
            .map(|p| p["accuracy"].as_f64().unwrap())
            .collect();
        // Accuracy can only fall as the budget grows, and starts at the clean accuracy.
        assert!(acc.windows(2).all(|w| w[1] <= w[0]), "{acc:?}");
        assert_eq!(acc[0], m["clean_accuracy"].as_f64().unwrap());
        for p in points {
            let (e, px) = (
                p["eps"].as_f64().unwrap(),
                p["eps_pixels"].as_f64().unwrap(),
            );
            assert!((px - 127.5 * e).abs() <= 1e-9 * px.max(1.0));
        }
        // Every broken input's distance lies within the box's L∞ diameter; 6 inputs in all.
        let distances = m["distances"].as_array().unwrap();
        assert_eq!(distances.len(), 6);
        for d in distances.iter().filter_map(|d| d.as_f64()) {
            assert!((0.0..=2.0 + 1e-6).contains(&d), "{d}");
        }
    }
    let csv = std::fs::read_to_string(out.join("pgd-linf.csv")).unwrap();
    assert!(csv.starts_with("model,refine_steps,eps,eps_pixels,accuracy\n"));
    assert_eq!(csv.lines().count(), 1 + 3 * 101);
    let (w, h) = png_size(&out.join("pgd-linf.png"));
    assert!(w > 200 && h > 150, "{w}x{h}");

    // Same seed, same everything.
    let again = dir.path().join("again");
    attack(&again);
    assert_eq!(
        report["models"],
        json(&again.join("pgd-linf.json"))["models"]
    );

    // The refinement's own settings, when given, are what the report records; without the
    // EOT noise JEM-1 attacks a different (noise-free-start) classifier.
    let custom = dir.path().join("custom");
    ok(&[
        "attack",
        "--quiet",
        "--checkpoint",
        &s(&jem_run),
        "--attack",
        "pgd-linf",
        "--refine-steps",
        "1",
        "--eot",
        "2",
        "--eot-noise",
        "0",
        "--refine-step-size",
        "0.5",
        "--refine-noise",
        "0",
        "--refine-clamp",
        "-1,1",
        "--n",
        "6",
        "--iterations",
        "2",
        "--restarts",
        "1",
        "--bisection-steps",
        "1",
        // Below foolbox's start (76.5 pixel levels): the search starts at the cap instead.
        "--max-eps",
        "40",
        "--out",
        &s(&custom),
    ]);
    let r = json(&custom.join("pgd-linf.json"));
    assert_eq!(
        r["refinement"],
        serde_json::json!({"step_size": 0.5, "noise": 0.0, "clamp": [-1.0, 1.0], "eot_noise": 0.0})
    );
    // The ε search starts at foolbox 2.4's ε = 0.3 unless told otherwise.
    assert_eq!(r["pgd"]["initial_eps_fraction"], serde_json::json!(0.3));

    // Distal adversarials: one grid row per class.
    let distal = dir.path().join("distal");
    ok(&[
        "attack",
        "--quiet",
        "--checkpoint",
        &s(&jem_run),
        "--attack",
        "distal",
        "--per-class",
        "2",
        "--distal-steps",
        "100",
        "--out",
        &s(&distal),
    ]);
    let report = json(&distal.join("distal.json"));
    let classes = report["models"][0]["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 10);
    for c in classes {
        let probs = c["probabilities"].as_array().unwrap();
        let reached = c["reached"].as_array().unwrap();
        assert_eq!(probs.len(), 2);
        for (p, r) in probs.iter().zip(reached) {
            assert_eq!(p.as_f64().unwrap() > 0.9, r.as_bool().unwrap());
        }
    }
    let grid = report["models"][0]["grid"].as_str().unwrap();
    // 2 columns x 10 rows of 28-pixel cells with 2-pixel padding.
    assert_eq!(png_size(&distal.join(grid)), (2 + 2 * 30, 2 + 10 * 30));
}

#[test]
fn attack_rejects_bad_input_with_a_clear_message() {
    let missing = "/nonexistent/run-dir";
    let out = jem(&["attack", "--checkpoint", missing, "--attack", "pgd-l2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(missing), "{err}");

    let out = jem(&["attack", "--checkpoint", missing, "--attack", "fgsm"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fgsm") && err.contains("pgd-linf"), "{err}");

    // Refinement settings are checked before any model is loaded.
    for (flag, value, named) in [
        ("--refine-clamp", "1,-1", "1,-1"),
        ("--eot-noise", "-0.5", "--eot-noise"),
        ("--refine-step-size", "0", "step_size"),
        ("--initial-eps-fraction", "0", "--initial-eps-fraction"),
    ] {
        let out = jem(&[
            "attack",
            "--checkpoint",
            missing,
            "--attack",
            "pgd-l2",
            flag,
            value,
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(named) && !err.contains(missing),
            "{flag}: {err}"
        );
    }
}
