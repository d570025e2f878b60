//! Agreement with an independent PyTorch implementation (tests/golden/make_golden.py):
//! parameter counts and forward outputs on deterministic weights.
//!
//! Regenerating the fixtures:
//! 1. `cargo test -p jem-model --test golden -- --ignored export_golden_weights`
//!    writes tests/golden/out/<case>.safetensors with this crate's names;
//! 2. `python tests/golden/make_golden.py` loads them with `strict=True` into its own
//!    WRN (reference state_dict names), checks they equal its deterministic weights,
//!    runs the inputs and writes tests/golden/golden.json.
//!
//! The weights are a closed-form function of (sorted name index, element index) that
//! both sides implement, because a WRN-10-1 checkpoint (~310 KB) is too big to commit.

use std::path::PathBuf;

use approx::assert_relative_eq;
use jem_model::{
    load_safetensors, parameter_count, save_safetensors, JointEnergyModel, WideResNet, WrnConfig,
};
use serde::Deserialize;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[derive(Deserialize)]
struct Cases {
    forward_cases: Vec<ForwardCase>,
}

#[derive(Deserialize)]
struct ForwardCase {
    name: String,
    config: WrnConfig,
    input_shape: Vec<i64>,
    train_mode: bool,
}

#[derive(Deserialize)]
struct Golden {
    forward: Vec<ForwardGolden>,
    parameter_counts: Vec<CountGolden>,
}

#[derive(Deserialize)]
struct ForwardGolden {
    name: String,
    config: WrnConfig,
    input_shape: Vec<i64>,
    input: Vec<f32>,
    logits_eval: Vec<f32>,
    log_px_eval: Vec<f32>,
    logits_train: Option<Vec<f32>>,
    log_px_train: Option<Vec<f32>>,
    /// `f.bn1.running_var` after one train-mode forward (batch norm only).
    bn1_running_var_after_train: Option<Vec<f32>>,
}

#[derive(Deserialize)]
struct CountGolden {
    config: WrnConfig,
    /// Parameters of the independent PyTorch model (this crate's set of modules).
    count: i64,
    /// Parameters of the reference CCF/F state_dict, which also holds the unused
    /// `f.linear` and (when class-conditional) `energy_output`.
    reference_count: i64,
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn golden() -> Golden {
    serde_json::from_str(include_str!("golden/golden.json")).expect("golden.json parses")
}

/// Deterministic value of element `i` of the `k`-th variable (sorted by name).
/// Must stay identical to `det_values` in make_golden.py.
fn det_values(name: &str, shape: &[i64], k: usize) -> Vec<f32> {
    let numel: i64 = shape.iter().product();
    let (base, amp) = if shape.len() >= 2 {
        let fan_in = (numel / shape[0]) as f64;
        (0.0, (3.0 / fan_in).sqrt())
    } else if name.ends_with("running_var") {
        (1.0, 0.5)
    } else if name.ends_with("running_mean") {
        (0.0, 0.2)
    } else if name.ends_with("weight") {
        (1.0, 0.2)
    } else {
        (0.0, 0.1)
    };
    (0..numel)
        .map(|i| (base + amp * (0.731 * i as f64 + 1.37 * k as f64 + 0.5).sin()) as f32)
        .collect()
}

fn fill_deterministic(vs: &VarStore) {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (k, (name, mut var)) in vars.into_iter().enumerate() {
            let shape = var.size();
            let values = Tensor::from_slice(&det_values(&name, &shape, k)).view(shape.as_slice());
            var.copy_(&values);
        }
    });
}

fn build(config: &WrnConfig) -> (VarStore, WideResNet) {
    let vs = VarStore::new(Device::Cpu);
    let model = config.init(&vs.root()).expect("valid config");
    (vs, model)
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            approx::relative_eq!(*g, *w, epsilon = 1e-5, max_relative = 1e-5),
            "{what}[{i}]: got {g}, PyTorch {w}"
        );
    }
}

#[test]
#[ignore = "writes the weights make_golden.py reads; run by hand when regenerating"]
fn export_golden_weights() {
    let cases: Cases = serde_json::from_str(include_str!("golden/cases.json")).unwrap();
    let out = golden_dir().join("out");
    std::fs::create_dir_all(&out).unwrap();
    for case in cases.forward_cases {
        let (vs, _model) = build(&case.config);
        fill_deterministic(&vs);
        save_safetensors(&vs, out.join(format!("{}.safetensors", case.name))).unwrap();
        assert_eq!(
            case.input_shape[1], case.config.in_channels as i64,
            "{}",
            case.name
        );
    }
}

#[test]
fn golden_cases_cover_the_case_list() {
    let cases: Cases = serde_json::from_str(include_str!("golden/cases.json")).unwrap();
    let golden = golden();
    let names: Vec<&str> = golden.forward.iter().map(|g| g.name.as_str()).collect();
    for case in &cases.forward_cases {
        let g = golden
            .forward
            .iter()
            .find(|g| g.name == case.name)
            .unwrap_or_else(|| panic!("{names:?}"));
        assert_eq!(g.config, case.config);
        assert_eq!(g.input_shape, case.input_shape);
        assert_eq!(g.logits_train.is_some(), case.train_mode);
    }
}

#[test]
fn forward_matches_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    for g in golden().forward {
        // Export and strictly re-import, so the checked weights went through the I/O path.
        let (vs_src, _) = build(&g.config);
        fill_deterministic(&vs_src);
        let path = dir.path().join(format!("{}.safetensors", g.name));
        save_safetensors(&vs_src, &path).unwrap();
        let (vs, model) = build(&g.config);
        load_safetensors(&vs, &path).unwrap();

        let x = Tensor::from_slice(&g.input).view(g.input_shape.as_slice());
        let (logits, log_px) = model.logits_and_log_px(&x, false).unwrap();
        assert_eq!(
            logits.size(),
            [g.input_shape[0], g.config.num_classes as i64]
        );
        assert_close(
            &format!("{} logits (eval)", g.name),
            &to_vec(&logits),
            &g.logits_eval,
        );
        assert_close(
            &format!("{} log_px (eval)", g.name),
            &to_vec(&log_px),
            &g.log_px_eval,
        );

        if let (Some(want_logits), Some(want_log_px)) = (&g.logits_train, &g.log_px_train) {
            let (logits, log_px) = model.logits_and_log_px(&x, true).unwrap();
            assert_close(
                &format!("{} logits (train)", g.name),
                &to_vec(&logits),
                want_logits,
            );
            assert_close(
                &format!("{} log_px (train)", g.name),
                &to_vec(&log_px),
                want_log_px,
            );
        }
        if let Some(want) = &g.bn1_running_var_after_train {
            let running_var = vs.variables()["f.bn1.running_var"].shallow_clone();
            assert_close(
                &format!("{} f.bn1.running_var", g.name),
                &to_vec(&running_var),
                want,
            );
        }
    }
}

#[test]
fn parameter_counts_match_pytorch() {
    let counts = golden().parameter_counts;
    assert!(counts.len() >= 5);
    for c in counts {
        let (vs, model) = build(&c.config);
        assert_eq!(parameter_count(&vs), c.count, "{:?}", c.config);
        assert_eq!(model.num_parameters(), c.count, "{:?}", c.config);
        let feature_dim = c.config.feature_dim() as i64;
        let unused_linear = feature_dim * c.config.num_classes as i64 + c.config.num_classes as i64;
        let unused_energy = if c.config.uncond { 0 } else { feature_dim + 1 };
        assert_eq!(
            c.count + unused_linear + unused_energy,
            c.reference_count,
            "{:?}",
            c.config
        );
    }
}

#[test]
fn wrn_28_10_has_the_published_size() {
    // The paper's model: about 36.5M parameters. The exact number comes from PyTorch.
    let want = golden()
        .parameter_counts
        .into_iter()
        .find(|c| c.config == WrnConfig::default())
        .expect("golden count for the default WRN-28-10")
        .count;
    assert_relative_eq!(want as f64, 36.5e6, max_relative = 0.01);
    let (vs, _) = build(&WrnConfig::default());
    assert_eq!(parameter_count(&vs), want);
    // Dtype sanity: the whole store is f32 as libtorch's default.
    assert!(vs.variables().values().all(|t| t.kind() == Kind::Float));
}
