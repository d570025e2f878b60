//! `jem generative` and `jem extremes` end to end on a tiny Fashion-MNIST run trained here.
//!
//! Needs Fashion-MNIST where jem-data finds it (`/usr/share/datasets/fashion-mnist` on CI).

mod common;

use common::{json, png_size, tiny_config};
use jem_eval::features::{top_percentile_by_confidence, CLASSIFIER_FEATURES_LABEL};
use jem_eval::ndarray::ArrayView2;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn jem(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jem"))
        .args(["--threads", "2"])
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "jem {args:?} failed:\n{stderr}");
    (stdout, stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Side of a grid of `cells` along one axis: 28-pixel images, 2 pixels of padding.
fn side(cells: u32) -> u32 {
    cells * 30 + 2
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn generative_and_extremes_on_a_tiny_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    // 6 JEM iterations of batch 8 (seconds).
    let train = "max_iterations = 6\nwarmup_iters = 0\nlog_every = 2\nsample_every = 0";
    std::fs::write(&config, tiny_config(8, 200, "", train)).unwrap();
    let run = dir.path().join("run");
    jem(&["train", "--config", s(&config), "--out", s(&run), "--quiet"]);

    // Unconditional samples, top half by p(y|x), classifier features.
    let out = dir.path().join("gen");
    let (stdout, _) = jem(&[
        "generative",
        "--checkpoint",
        s(&run),
        "--n",
        "20",
        "--steps",
        "2",
        "--top-percentile",
        "50",
        "--n-reference",
        "50",
        "--splits",
        "2",
        "--out",
        s(&out),
    ]);
    assert!(stdout.contains(CLASSIFIER_FEATURES_LABEL), "{stdout}");
    let report = json(&out.join("generative.json"));
    assert_eq!(report["extractor"], CLASSIFIER_FEATURES_LABEL);
    assert_eq!(report["n_sampled"], 20);
    assert_eq!(report["n_generated"], 10);
    assert_eq!(report["n_reference"], 50);
    assert_eq!(report["feature_dim"], 64);
    assert_eq!(report["num_classes"], 10);
    assert_eq!(report["is_splits"], 2);
    assert_eq!(report["reference_data"], "fashion-mnist");
    let is = report["is_mean"].as_f64().unwrap();
    assert!((1.0..=10.0).contains(&is), "IS = {is}");
    let fid = report["fid"].as_f64().unwrap();
    assert!(fid.is_finite() && fid > 0.0, "FID = {fid}");
    // The kept samples are the 10 most confident under the checkpoint's own p(y|x).
    let kept = indices(&report["kept_indices"]);
    let samples = jem_data::read_npy(&out.join("unconditional.npy"))
        .unwrap()
        .to_tensor()
        .unwrap();
    assert_eq!(samples.size(), [20, 1, 28, 28]);
    let checkpoint = Path::new(report["checkpoint"].as_str().unwrap());
    let (_, _vs, model) = jem_train::load_model(checkpoint, tch::Device::Cpu).unwrap();
    let logits = tch::no_grad(|| model.f_forward_t(&samples, false)).unwrap();
    let probs: Vec<f32> =
        Vec::try_from(logits.softmax(1, tch::Kind::Float).flatten(0, -1)).unwrap();
    let expected = top_percentile_by_confidence(
        ArrayView2::from_shape((20, 10), &probs).unwrap(),
        None,
        50.0,
    )
    .unwrap();
    assert_eq!(kept, expected);
    // 20 samples in rows of 5; 10 selected in rows of 4.
    assert_eq!(png_size(&out.join("unconditional.png")), (side(5), side(4)));
    assert_eq!(png_size(&out.join("selected.png")), (side(4), side(3)));

    // Class-conditional samples, top third per class, features of a TorchScript network
    // (jem-eval's tiny fixture: 8 features, 5 classes) behind the default 299x299 resize.
    let net = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../jem-eval/tests/fixtures/torchscript/tiny_inception.pt");
    let out = dir.path().join("gen-cond");
    let features = format!("inception:{}", s(&net));
    let (stdout, _) = jem(&[
        "generative",
        "--checkpoint",
        s(&run),
        "--conditional",
        "--n",
        "3",
        "--steps",
        "1",
        "--top-percentile",
        "34",
        "--features",
        &features,
        "--n-reference",
        "30",
        "--splits",
        "2",
        "--out",
        s(&out),
    ]);
    assert!(!stdout.contains("not Inception"), "{stdout}");
    let report = json(&out.join("generative.json"));
    assert!(
        report["extractor"]
            .as_str()
            .unwrap()
            .ends_with("tiny_inception.pt"),
        "{report}"
    );
    assert_eq!(report["classifier"], Value::Null);
    assert_eq!(
        (report["feature_dim"].clone(), report["num_classes"].clone()),
        (8.into(), 5.into())
    );
    assert_eq!(report["n_sampled"], 30);
    assert_eq!(report["n_generated"], 20);
    let is = report["is_mean"].as_f64().unwrap();
    assert!((1.0..=5.0).contains(&is), "IS = {is}");
    // ⌈3 · 34 %⌉ = 2 of the 3 samples of each class (sample i is of class i / 3).
    let kept = indices(&report["kept_indices"]);
    for class in 0..10 {
        assert_eq!(
            kept.iter().filter(|&&i| i / 3 == class).count(),
            2,
            "{kept:?}"
        );
    }
    assert_eq!(png_size(&out.join("conditional.png")), (side(3), side(10)));
    // Fig 9: the same grid with each class row ordered by log p(x).
    assert_eq!(
        png_size(&out.join("conditional_by_logpx.png")),
        (side(3), side(10))
    );
    assert_eq!(png_size(&out.join("selected.png")), (side(2), side(10)));

    // Extremes of 60 test images, 9 per grid.
    let out = dir.path().join("extremes");
    jem(&[
        "extremes",
        "--checkpoint",
        s(&run),
        "--k",
        "9",
        "--n",
        "60",
        "--out",
        s(&out),
    ]);
    let report = json(&out.join("extremes.json"));
    assert_eq!(
        (report["n_images"].clone(), report["k"].clone()),
        (60.into(), 9.into())
    );
    for key in ["logpx", "maxpy"] {
        let scores = |side: &str| -> Vec<(usize, f64)> {
            report[key][side]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    assert!(e["label"].as_u64().unwrap() < 10);
                    (
                        e["index"].as_u64().unwrap() as usize,
                        e["score"].as_f64().unwrap(),
                    )
                })
                .collect()
        };
        let (high, low) = (scores("highest"), scores("lowest"));
        assert_eq!((high.len(), low.len()), (9, 9));
        assert!(high.windows(2).all(|w| w[0].1 >= w[1].1), "{key}: {high:?}");
        assert!(low.windows(2).all(|w| w[0].1 <= w[1].1), "{key}: {low:?}");
        // 18 distinct images out of 60: the worst of the top is above the best of the bottom.
        assert!(high[8].1 > low[8].1, "{key}: {high:?} {low:?}");
        let mut all: Vec<usize> = high.iter().chain(&low).map(|e| e.0).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 18);
        assert!(all.iter().all(|&i| i < 60));
        if key == "maxpy" {
            assert!(high.iter().chain(&low).all(|e| (0.1..=1.0).contains(&e.1)));
        }
        for side_name in ["highest", "lowest"] {
            let png = out.join(format!("{key}_{side_name}.png"));
            assert_eq!(png_size(&png), (side(3), side(3)), "{}", png.display());
        }
    }

    // Fig 10: log p(x) of the test images, one histogram per class.
    assert_eq!(png_size(&out.join("logpx_by_class.png")), (640, 480));

    // Extremes of generated samples (Figs 11, 12): the 20 unconditional samples drawn above,
    // scored as they are (model range, no evaluation noise).
    let samples_path = dir.path().join("gen").join("unconditional.npy");
    let out = dir.path().join("extremes-samples");
    jem(&[
        "extremes",
        "--checkpoint",
        s(&run),
        "--samples",
        s(&samples_path),
        "--k",
        "4",
        "--out",
        s(&out),
    ]);
    let report = json(&out.join("extremes.json"));
    assert_eq!(report["n_images"], 20);
    let samples = jem_data::read_npy(&samples_path)
        .unwrap()
        .to_tensor()
        .unwrap();
    let checkpoint = jem_train::files::BEST;
    let (_, _vs, model) = jem_train::load_model(&run.join(checkpoint), tch::Device::Cpu)
        .or_else(|_| jem_train::load_model(&run.join(jem_train::files::LAST), tch::Device::Cpu))
        .unwrap();
    let log_px: Vec<f32> = Vec::try_from(
        tch::no_grad(|| jem_model::JointEnergyModel::log_px(&model, &samples, false)).unwrap(),
    )
    .unwrap();
    let mut sorted: Vec<f32> = log_px.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let top = report["logpx"]["highest"][0]["score"].as_f64().unwrap();
    let bottom = report["logpx"]["lowest"][0]["score"].as_f64().unwrap();
    assert!(
        (top - f64::from(sorted[0])).abs() < 1e-4,
        "{top} vs {}",
        sorted[0]
    );
    assert!(
        (bottom - f64::from(sorted[19])).abs() < 1e-4,
        "{bottom} vs {}",
        sorted[19]
    );
    assert_eq!(png_size(&out.join("logpx_highest.png")), (side(2), side(2)));
    // Samples carry no labels: no per-class histogram.
    assert!(!out.join("logpx_by_class.png").exists());

    // A TorchScript file that is not there is named in the error.
    let missing = dir.path().join("no-such-inception.pt");
    let out = Command::new(env!("CARGO_BIN_EXE_jem"))
        .args([
            "generative",
            "--checkpoint",
            s(&run),
            "--n",
            "4",
            "--steps",
            "1",
        ])
        .args(["--n-reference", "10", "--splits", "1", "--out"])
        .arg(dir.path().join("gen-missing"))
        .arg("--features")
        .arg(format!("inception:{}", s(&missing)))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-inception.pt"), "{stderr}");
}

#[test]
fn bad_feature_source_is_rejected_before_any_work() {
    let out = Command::new(env!("CARGO_BIN_EXE_jem"))
        .args(["generative", "--checkpoint", "nowhere", "--features", "vgg"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`vgg`") && stderr.contains("inception:PATH"),
        "{stderr}"
    );
}
