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

/// Runs `jem` and returns its standard error, asserting it failed.
fn fails(args: &[&str]) -> String {
    let out = common::jem(args);
    assert!(!out.status.success(), "jem {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What an image file would hold: `round((x + 1) / 2 · 255)` of `x` clipped to [-1, 1], computed
/// here in f64, independently of the command.
fn levels_of(x: &tch::Tensor) -> Vec<u8> {
    let v: Vec<f32> = Vec::try_from(x.to_kind(tch::Kind::Float).flatten(0, -1)).unwrap();
    v.iter()
        .map(|&x| ((f64::from(x).clamp(-1.0, 1.0) + 1.0) * 127.5 + 0.5).floor() as u8)
        .collect()
}

fn scored_levels(dir: &Path) -> (Vec<usize>, Vec<u8>) {
    let array = jem_data::read_npy(&dir.join("scored.npy")).unwrap();
    let jem_data::NpyData::U8(levels) = array.data else {
        panic!("scored.npy is not uint8");
    };
    (array.shape, levels)
}

fn buffer_of(checkpoint: &Path) -> tch::Tensor {
    jem_train::load_buffer(checkpoint, tch::Device::Cpu)
        .unwrap()
        .expect("a replay buffer")
        .samples()
        .shallow_clone()
}

#[test]
fn from_buffer_scores_the_last_buffer_and_ensemble_lumps_the_kept_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    // 8 JEM iterations, a checkpoint every 2 kept 3 deep: ckpt 4, 6 and 8 remain.
    let train = "max_iterations = 8\nwarmup_iters = 0\nlog_every = 4\nsample_every = 0\n\
                 checkpoint_every = 2\nkeep_checkpoints = 3";
    std::fs::write(&config, tiny_config(8, 40, "", train)).unwrap();
    let run = dir.path().join("run");
    jem(&["train", "--config", s(&config), "--out", s(&run), "--quiet"]);
    let last = run.join(jem_train::files::LAST);
    let kept: Vec<_> = [4, 6, 8]
        .iter()
        .map(|i| run.join("checkpoints").join(format!("ckpt_{i:08}.ckpt")))
        .collect();
    assert!(kept.iter().all(|p| p.is_file()));

    // `jem generative --from-buffer` with `extra` flags into `out`: its stdout and report.
    let from_buffer = |out: &Path, extra: &[&str]| -> (String, Value) {
        let mut args = vec!["generative", "--checkpoint", s(&run), "--from-buffer"];
        args.extend(["--n-reference", "30", "--splits", "2", "--save-scored"]);
        args.extend(extra);
        args.extend(["--out", s(out)]);
        let (stdout, _) = jem(&args);
        (stdout, json(&out.join("generative.json")))
    };

    // "single": the whole buffer of last.ckpt, as it stands, 8-bit.
    let out = dir.path().join("single");
    let (stdout, report) = from_buffer(&out, &[]);
    assert!(stdout.contains("not Inception"), "{stdout}");
    assert_eq!(report["source"], "buffer");
    assert_eq!(report["checkpoint"], s(&last));
    assert_eq!(report["buffers"], serde_json::json!([s(&last)]));
    assert_eq!(report["steps"], 0);
    assert_eq!(report["n_sampled"], 40);
    assert_eq!(report["n_generated"], 40);
    assert_eq!(report["kept_indices"].as_array().unwrap().len(), 40);
    assert_eq!(report["reference_split"], "train");
    assert_eq!(report["n_reference"], 30);
    let (shape, levels) = scored_levels(&out);
    assert_eq!(shape, [40, 1, 28, 28]);
    assert_eq!(levels, levels_of(&buffer_of(&last)));
    assert_eq!(png_size(&out.join("buffer.png")), (side(7), side(6)));

    // The test split as the reference instead.
    let (_, test_report) = from_buffer(&dir.path().join("single-test"), &["--reference", "test"]);
    assert_eq!(test_report["reference_split"], "test");
    assert_ne!(test_report["fid"], report["fid"]);

    // "ensemble": the 3 newest kept buffers, oldest first, lumped.
    let out = dir.path().join("ensemble");
    let (_, report) = from_buffer(&out, &["--ensemble", "3"]);
    assert_eq!(report["source"], "ensemble");
    let buffers: Vec<&str> = report["buffers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert_eq!(buffers, kept.iter().map(|p| s(p)).collect::<Vec<_>>());
    assert_eq!(report["n_sampled"], 120);
    let (shape, levels) = scored_levels(&out);
    assert_eq!(shape, [120, 1, 28, 28]);
    let expected: Vec<u8> = kept.iter().flat_map(|p| levels_of(&buffer_of(p))).collect();
    assert_eq!(levels, expected);
    // The buffers differ from each other (they are three moments of training, not one copy).
    assert_ne!(levels[..40 * 784], levels[80 * 784..]);

    // Table 5's "conditional": the top 10% of the buffer by the JEM's own max p(y|x).
    let out = dir.path().join("top10");
    let (_, report) = from_buffer(&out, &["--top-percentile", "10"]);
    let kept_idx = indices(&report["kept_indices"]);
    let samples = buffer_of(&last);
    let (_, _vs, model) = jem_train::load_model(&last, tch::Device::Cpu).unwrap();
    let logits = tch::no_grad(|| model.f_forward_t(&samples, false)).unwrap();
    let probs: Vec<f32> =
        Vec::try_from(logits.softmax(1, tch::Kind::Float).flatten(0, -1)).unwrap();
    let probs = ArrayView2::from_shape((probs.len() / 10, 10), &probs).unwrap();
    let expected = top_percentile_by_confidence(probs, None, 10.0).unwrap();
    assert_eq!(kept_idx, expected);
    assert_eq!(report["n_generated"], 4);
    let (_, levels) = scored_levels(&out);
    let all = levels_of(&samples);
    let expected: Vec<u8> = expected
        .iter()
        .flat_map(|&i| all[i * 784..(i + 1) * 784].to_vec())
        .collect();
    assert_eq!(levels, expected);

    // More kept checkpoints than the run has: a clear error naming the directory.
    let err = fails(&[
        "generative",
        "--checkpoint",
        s(&run),
        "--from-buffer",
        "--ensemble",
        "5",
        "--out",
        s(&dir.path().join("x")),
    ]);
    let kept_dir = run.join("checkpoints");
    assert!(
        err.contains(s(&kept_dir)) && err.contains("holds 3") && err.contains("keep_checkpoints"),
        "{err}"
    );
    // A run that keeps none names the missing directory.
    std::fs::remove_dir_all(&kept_dir).unwrap();
    let err = fails(&[
        "generative",
        "--checkpoint",
        s(&run),
        "--from-buffer",
        "--ensemble",
        "2",
    ]);
    assert!(
        err.contains(s(&kept_dir)) && err.contains("does not exist"),
        "{err}"
    );
    // --ensemble without --from-buffer, --from-buffer with re-sampling flags: usage errors.
    let err = fails(&["generative", "--checkpoint", s(&run), "--ensemble", "2"]);
    assert!(err.contains("--from-buffer"), "{err}");
    let err = fails(&[
        "generative",
        "--checkpoint",
        s(&run),
        "--from-buffer",
        "--steps",
        "3",
    ]);
    assert!(err.contains("--steps"), "{err}");
}

/// The row of `set` in the `rows` of a judge report.
fn row<'a>(rows: &'a Value, set: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["set"] == set)
        .unwrap_or_else(|| panic!("no row {set} in {rows}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[test]
fn judge_scores_samples_against_trivial_references_with_an_independent_classifier() {
    use jem_report::judge_sets as sets;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    let train = "max_iterations = 40\nlr = 1e-3\nwarmup_iters = 0\nsample_every = 0";
    std::fs::write(&config, tiny_config(16, 60, "", train)).unwrap();
    let train_run = |run: &Path, sets: &[&str]| {
        let mut args = vec!["train", "--config", s(&config), "--out", s(run), "--quiet"];
        for set in sets {
            args.extend(["--set", set]);
        }
        jem(&args);
    };
    // A JEM whose chains start from rank-5 class-conditional Gaussians, and the baseline judge.
    let jem_run = dir.path().join("jem");
    train_run(
        &jem_run,
        &[
            "sampler.buffer.init=\"gaussian\"",
            "sampler.buffer.init_rank=5",
        ],
    );
    let base_run = dir.path().join("base");
    train_run(&base_run, &["train.mode=\"baseline\""]);

    let out = dir.path().join("judge");
    let (stdout, _) = jem(&[
        "generative",
        "--checkpoint",
        s(&jem_run),
        "--judge",
        s(&base_run),
        "--n",
        "50",
        "--per-class",
        "3",
        "--steps",
        "2",
        "--out",
        s(&out),
    ]);
    assert!(stdout.contains("not Inception"), "{stdout}");
    let md = std::fs::read_to_string(out.join("judge.md")).unwrap();
    assert!(
        md.contains("not Inception") && md.contains(sets::GAUSSIAN),
        "{md}"
    );
    let report = json(&out.join("judge.json"));
    // Also through the shared struct, as xtask would read it.
    let typed: jem_report::JudgeReport =
        jem_report::read_json(&out.join(jem_report::files::JUDGE)).unwrap();
    assert_eq!(typed.n, 50);
    assert_eq!(typed.per_class, 3);
    assert_eq!(typed.steps, 2);
    assert!(typed.extractor.contains("not Inception"));
    // The run's own chain start, as its checkpoint stores it.
    assert!(
        typed.gaussian_source.contains("stored") && typed.gaussian_source.contains("rank 5"),
        "{}",
        typed.gaussian_source
    );
    assert!(
        typed.samples_source.contains("replay buffer"),
        "{}",
        typed.samples_source
    );
    assert!(
        typed.conditional_source.contains("f(x)[y]")
            && typed.conditional_source.contains("Gaussians"),
        "{}",
        typed.conditional_source
    );

    // Real test images judged by the baseline: the agreement is its accuracy on them, per
    // class too, and the confidence its mean max p(y|x) — computed here from the checkpoint.
    let judge_ckpt = Path::new(report["judge"].as_str().unwrap());
    let (_, _vs, base) = jem_train::load_model(judge_ckpt, tch::Device::Cpu).unwrap();
    let test = jem_data::load(
        jem_data::DatasetKind::FashionMnist,
        jem_data::Split::Test,
        None,
        &Default::default(),
    )
    .unwrap()
    .subset(&(0..50).collect::<Vec<_>>())
    .unwrap();
    let x = jem_data::preprocess::to_model_range(&test.images.to_kind(tch::Kind::Float)).unwrap();
    let probs = tch::no_grad(|| base.f_forward_t(&x, false))
        .unwrap()
        .softmax(1, tch::Kind::Float);
    let (conf, pred) = probs.max_dim(1, false);
    let pred: Vec<i64> = Vec::try_from(pred).unwrap();
    let conf: Vec<f32> = Vec::try_from(conf).unwrap();
    let labels = test.labels_vec().unwrap();
    let real = row(&report["agreement"], sets::TEST);
    let correct = pred.iter().zip(&labels).filter(|(p, y)| p == y).count();
    assert_eq!(real["overall"]["n"], 50);
    assert!((num(&real["overall"]["agreement"]) - correct as f64 / 50.0).abs() < 1e-12);
    let mean_conf = conf.iter().map(|&c| f64::from(c)).sum::<f64>() / 50.0;
    assert!((num(&real["overall"]["confidence"]) - mean_conf).abs() < 1e-5);
    for (c, a) in real["per_class"].as_array().unwrap().iter().enumerate() {
        let of_c: Vec<usize> = (0..50).filter(|&i| labels[i] == c as i64).collect();
        assert_eq!(a["n"].as_u64().unwrap() as usize, of_c.len());
        if !of_c.is_empty() {
            let right = of_c.iter().filter(|&&i| pred[i] == labels[i]).count();
            assert!((num(&a["agreement"]) - right as f64 / of_c.len() as f64).abs() < 1e-12);
        }
    }
    // The samples and the Gaussian initialisation: 3 per class.
    for set in [sets::CONDITIONAL, sets::GAUSSIAN] {
        let r = row(&report["agreement"], set);
        assert_eq!(r["overall"]["n"], 30);
        assert!(r["per_class"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["n"] == 3));
        let a = num(&r["overall"]["agreement"]);
        assert!((0.0..=1.0).contains(&a));
        assert!((0.1..=1.0).contains(&num(&r["overall"]["confidence"])));
    }

    // FID in the baseline's features: the reference against itself is ~0, and the references
    // rank as they must even on a tiny model: noise worst, real held-out images best.
    let fid = |set: &str| num(&row(&report["fid"], set)["fid"]);
    for set in [
        sets::SAMPLES,
        sets::UNIFORM,
        sets::GAUSSIAN,
        sets::HELD_OUT,
        sets::TEST,
    ] {
        assert_eq!(row(&report["fid"], set)["n"], 50, "{set}");
    }
    assert_eq!(row(&report["fid"], sets::CONDITIONAL)["n"], 30);
    let (uniform, gaussian, held_out) =
        (fid(sets::UNIFORM), fid(sets::GAUSSIAN), fid(sets::HELD_OUT));
    assert!(
        fid(sets::TEST).abs() < 1e-3 * uniform,
        "{}",
        fid(sets::TEST)
    );
    assert!(
        uniform > gaussian && gaussian > held_out,
        "{uniform} {gaussian} {held_out}"
    );
    assert!(held_out > fid(sets::TEST));
    let ratio = num(&report["fid_ratio_to_gaussian"]);
    assert!((ratio - fid(sets::SAMPLES) / gaussian).abs() < 1e-9 * ratio.abs().max(1.0));

    // Grids a person can look at: 50 samples in rows of 8; 10 class rows of 3.
    let grids = &report["grids"];
    let png = |key: &str| png_size(Path::new(grids[key].as_str().unwrap()));
    assert_eq!(png("samples"), (side(8), side(7)));
    for key in ["per_class", "per_class_by_logpx", "gaussian"] {
        assert_eq!(png(key), (side(3), side(10)), "{key}");
    }

    // A class-conditional buffer supplies the class-conditional samples itself: no SGLD.
    let cond_run = dir.path().join("jem-cond");
    train_run(
        &cond_run,
        &[
            "sampler.buffer.class_conditional=true",
            "sampler.buffer.init_rank=5",
            "train.max_iterations=4",
        ],
    );
    let out = dir.path().join("judge-cond");
    jem(&[
        "generative",
        "--checkpoint",
        s(&cond_run),
        "--judge",
        s(&base_run),
        "--n",
        "20",
        "--per-class",
        "4",
        "--out",
        s(&out),
    ]);
    let typed: jem_report::JudgeReport = jem_report::read_json(&out.join("judge.json")).unwrap();
    assert_eq!(typed.steps, 0);
    assert!(
        typed.conditional_source.contains("class slice"),
        "{}",
        typed.conditional_source
    );
    // A uniform-start run stores no Gaussians: they are fitted, with the run's rank.
    assert!(
        typed.gaussian_source.contains("fitted") && typed.gaussian_source.contains("rank 5"),
        "{}",
        typed.gaussian_source
    );
    // 6 slots per class: asking for more is a clear error.
    let err = fails(&[
        "generative",
        "--checkpoint",
        s(&cond_run),
        "--judge",
        s(&base_run),
        "--n",
        "20",
        "--per-class",
        "7",
        "--out",
        s(&dir.path().join("x")),
    ]);
    assert!(
        err.contains("class") && err.contains("--per-class 7"),
        "{err}"
    );
    // IS/FID flags do not mix with --judge.
    let err = fails(&[
        "generative",
        "--checkpoint",
        s(&cond_run),
        "--judge",
        s(&base_run),
        "--top-percentile",
        "10",
    ]);
    assert!(err.contains("--top-percentile"), "{err}");
}

#[test]
fn conditional_samples_start_in_their_class_slice_of_a_class_conditional_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    // A class-conditional buffer of 200 slots: class y holds slots 20y..20y+20.
    let text = tiny_config(8, 200, "", "max_iterations = 4\nwarmup_iters = 0").replace(
        "size = 200",
        "size = 200\nclass_conditional = true\ninit = \"gaussian\"",
    );
    std::fs::write(&config, text).unwrap();
    let run = dir.path().join("run");
    jem(&["train", "--config", s(&config), "--out", s(&run), "--quiet"]);
    // No SGLD step: each sample is the buffer slot it started from.
    let out = dir.path().join("cond");
    jem(&[
        "sample",
        "--checkpoint",
        s(&run),
        "--conditional",
        "--n",
        "3",
        "--steps",
        "0",
        "--out",
        s(&out),
    ]);
    let samples = match jem_data::read_npy(&out.join("conditional.npy"))
        .unwrap()
        .data
    {
        jem_data::NpyData::F32(v) => v,
        other => panic!("conditional.npy holds {other:?}"),
    };
    let ckpt = jem_train::checkpoint::read_checkpoint(&run.join("best.ckpt")).unwrap();
    let buffer = &ckpt
        .tensors
        .iter()
        .find(|(n, _)| n == "buffer.samples")
        .expect("the checkpoint holds its buffer")
        .1;
    let slots: Vec<f32> = Vec::try_from(buffer.flatten(0, -1)).unwrap();
    let pixels = 28 * 28;
    assert_eq!(samples.len(), 30 * pixels);
    for (i, sample) in samples.chunks(pixels).enumerate() {
        let class = i / 3;
        let slot = slots
            .chunks(pixels)
            .position(|slot| slot == sample)
            .unwrap_or_else(|| panic!("sample {i} is no buffer slot"));
        assert_eq!(
            slot / 20,
            class,
            "sample {i} of class {class} started in slot {slot}"
        );
    }
}
