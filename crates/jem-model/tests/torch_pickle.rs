//! Reading `torch.save` files (fixtures written by torch 2.13 with
//! `tests/fixtures/make_torch_files.py` and `crates/jem-cli/tests/fixtures/make_reference_ckpt.py`)
//! and mapping the official JEM checkpoint layout onto jem's WRN.

use std::path::PathBuf;

use jem_model::reference::{self, from_torch_file, map_state_dict};
use jem_model::torch_pickle::read_torch_file;
use jem_model::{ModelError, Norm, WrnConfig};
use tch::{Device, Kind, Tensor};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../jem-cli/tests/fixtures/reference_wrn10_1.pt")
}

fn floats(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

/// The fixture's network: WRN-10-1, batch norm, 1 channel, 10 classes.
fn fixture_config() -> WrnConfig {
    WrnConfig {
        in_channels: 1,
        norm: Norm::Batch,
        ..WrnConfig::new(10, 1)
    }
}

#[test]
fn nested_containers_integer_keys_views_and_gpu_storages_are_read() {
    let file = read_torch_file(fixture("torch_save_features.pt")).unwrap();
    let names: Vec<&str> = file.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "model_state_dict.w",
            "model_state_dict.b",
            "optimizer.state.0.step",
            "history.0",
            "history.1.0",
            "view",
            "half"
        ]
    );
    for (name, t) in &file.tensors {
        assert_eq!(t.device(), Device::Cpu, "{name} was saved tagged cuda:0");
    }
    let w = file.tensor("model_state_dict.w").unwrap();
    assert_eq!(w.size(), [2, 3]);
    assert_eq!(floats(w), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let b = file.tensor("model_state_dict.b").unwrap();
    assert_eq!(b.kind(), Kind::Double);
    assert_eq!(floats(b), [0.5, -1.25]);
    assert_eq!(
        file.tensor("optimizer.state.0.step")
            .unwrap()
            .int64_value(&[]),
        3
    );
    // base = arange(12).reshape(3, 4); base.t()[1:] is rows 1..4 of the transpose.
    let view = file.tensor("view").unwrap();
    assert_eq!(view.size(), [3, 3]);
    assert_eq!(
        floats(view),
        [1.0, 5.0, 9.0, 2.0, 6.0, 10.0, 3.0, 7.0, 11.0]
    );
    assert_eq!(file.tensor("half").unwrap().kind(), Kind::BFloat16);
    assert_eq!(floats(file.tensor("half").unwrap()), [1.5, -2.0]);
    let others: Vec<(&str, &str)> = file
        .others
        .iter()
        .map(|(n, k)| (n.as_str(), k.as_str()))
        .collect();
    assert!(others.contains(&("epoch", "int 7")), "{others:?}");
    assert!(others.contains(&("best", "None")), "{others:?}");
    assert!(
        others.contains(&("history.1.1", "str \"tag\"")),
        "{others:?}"
    );
    assert!(
        others
            .iter()
            .any(|(n, k)| *n == "optimizer.lr" && k.starts_with("float 0.0001")),
        "{others:?}"
    );
    assert_eq!(
        file.top_level_keys(),
        [
            "model_state_dict",
            "optimizer",
            "history",
            "view",
            "half",
            "epoch",
            "note",
            "best"
        ]
    );
}

#[test]
fn legacy_foreign_and_missing_files_are_clear_errors_naming_the_file() {
    let e = read_torch_file(fixture("legacy_format.pt"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("legacy_format.pt") && e.contains("legacy (pre-1.6"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.pt");
    std::fs::write(&text, "hello").unwrap();
    let e = read_torch_file(&text).unwrap_err().to_string();
    assert!(
        e.contains("notes.pt") && e.contains("not a torch.save file"),
        "{e}"
    );
    // A zip archive that is not a torch.save file: libtorch's reader says why.
    let truncated = dir.path().join("cut.pt");
    let bytes = std::fs::read(reference_fixture()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = read_torch_file(&truncated).unwrap_err().to_string();
    assert!(e.contains("cut.pt") && e.contains("cannot unpickle"), "{e}");
    let e = read_torch_file(dir.path().join("absent.pt"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent.pt") && e.contains("cannot open"), "{e}");
}

#[test]
fn the_reference_layout_maps_onto_jems_variables() {
    let file = read_torch_file(reference_fixture()).unwrap();
    let ck = from_torch_file(&file, &fixture_config()).unwrap();
    // Every jem variable, nothing else: 59 reference tensors less f.linear (2), energy_output
    // (2) and one num_batches_tracked per batch norm (7).
    assert_eq!(ck.model.len(), 59 - 2 - 2 - 7);
    let mut dropped = ck.dropped.clone();
    dropped.sort();
    assert_eq!(dropped.len(), 11, "{dropped:?}");
    assert!(dropped.contains(&"f.linear.weight".to_string()));
    assert!(dropped.contains(&"energy_output.bias".to_string()));
    assert!(dropped.contains(&"f.layer2.0.bn1.num_batches_tracked".to_string()));
    assert!(ck.ignored.is_empty(), "{:?}", ck.ignored);
    let buffer = ck.replay_buffer.as_ref().unwrap();
    assert_eq!(buffer.size(), [20, 1, 28, 28]);
    // The mapped tensors are the file's, bit for bit.
    for (name, t) in &ck.model {
        let src = file
            .tensor(&format!("model_state_dict.{name}"))
            .unwrap_or_else(|| panic!("{name} is not a reference name"));
        assert!(t.equal(src), "{name}");
        assert_eq!(t.kind(), Kind::Float);
    }
    // With uncond the energy head is needed and kept.
    let uncond = WrnConfig {
        uncond: true,
        ..fixture_config()
    };
    let ck = from_torch_file(&file, &uncond).unwrap();
    assert!(ck.model.iter().any(|(n, _)| n == "energy_output.weight"));
    assert_eq!(
        reference::apparent_config(&reference::state_dict(&file).unwrap()).unwrap(),
        "depth = 10, widen_factor = 1, in_channels = 1, num_classes = 10, norm = \"batch\""
    );
}

fn mapping_error(state: &[(String, Tensor)], config: &WrnConfig) -> String {
    match map_state_dict(state, config, std::path::Path::new("ref.pt")) {
        Err(e @ ModelError::TorchFile { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(_) => panic!("a bad state dict was accepted"),
    }
}

#[test]
fn renamed_mis_shaped_and_foreign_tensors_are_named() {
    let file = read_torch_file(reference_fixture()).unwrap();
    let state = reference::state_dict(&file).unwrap();
    let config = fixture_config();

    // A renamed key: reported as unexpected, and its jem name as missing.
    let mut renamed: Vec<(String, Tensor)> = state
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let i = renamed
        .iter()
        .position(|(n, _)| n == "f.layer2.0.conv1.weight")
        .unwrap();
    renamed[i].0 = "f.layer2.0.conv_1.weight".into();
    let e = mapping_error(&renamed, &config);
    assert!(e.starts_with("ref.pt: "), "{e}");
    assert!(
        e.contains("missing tensors: `f.layer2.0.conv1.weight` [32, 16, 3, 3]"),
        "{e}"
    );
    assert!(
        e.contains("unexpected tensors: `f.layer2.0.conv_1.weight` [32, 16, 3, 3]"),
        "{e}"
    );

    // A mis-shaped tensor.
    let mut shaped: Vec<(String, Tensor)> = state
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let i = shaped
        .iter()
        .position(|(n, _)| n == "class_output.weight")
        .unwrap();
    shaped[i].1 = Tensor::zeros([9, 64], (Kind::Float, Device::Cpu));
    let e = mapping_error(&shaped, &config);
    assert!(
        e.contains("shape mismatches: `class_output.weight` expected [10, 64], found [9, 64]"),
        "{e}"
    );

    // The wrong config: every shape named, and what the file's network looks like.
    let wide = WrnConfig {
        widen_factor: 2,
        ..fixture_config()
    };
    let e = mapping_error(&state, &wide);
    assert!(
        e.contains("`f.layer1.0.conv1.weight` expected [32, 16, 3, 3], found [16, 16, 3, 3]"),
        "{e}"
    );
    assert!(e.contains("looks like depth = 10, widen_factor = 1"), "{e}");
    // No norm configured: the batch-norm tensors are foreign.
    let plain = WrnConfig {
        norm: Norm::None,
        ..fixture_config()
    };
    let e = mapping_error(&state, &plain);
    assert!(
        e.contains("unexpected tensors: ") && e.contains("`f.bn1.running_mean` [64]"),
        "{e}"
    );

    // An integer tensor where a weight belongs.
    let mut ints: Vec<(String, Tensor)> = state
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let i = ints.iter().position(|(n, _)| n == "f.conv1.bias").unwrap();
    ints[i].1 = Tensor::zeros([16], (Kind::Int64, Device::Cpu));
    let e = mapping_error(&ints, &config);
    assert!(
        e.contains("not floating-point tensors: `f.conv1.bias` (Int64)"),
        "{e}"
    );
    assert!(!e.contains("missing tensors"), "{e}");
}

#[test]
fn a_file_without_a_state_dict_names_its_keys() {
    let file = read_torch_file(fixture("torch_save_features.pt")).unwrap();
    // Its model_state_dict holds `w` and `b`: a state dict, but not a WRN's.
    let e = from_torch_file(&file, &fixture_config())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("torch_save_features.pt") && e.contains("unexpected tensors: `w` [2, 3]"),
        "{e}"
    );
    let legacy_free = jem_model::torch_pickle::TorchFile {
        path: "x.pt".into(),
        tensors: vec![(
            "weights".into(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        )],
        others: vec![("epoch".into(), "int 3".into())],
    };
    let e = from_torch_file(&legacy_free, &fixture_config())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("x.pt: no `model_state_dict` entry (top-level keys: `weights`, `epoch`)"),
        "{e}"
    );
}

/// The fixture's inputs and the logits PyTorch computed for them (written by
/// `make_reference_ckpt.py` next to the `.pt` file).
fn golden_cases() -> Vec<(Tensor, Tensor)> {
    let path = reference_fixture().with_extension("json");
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let shape: Vec<i64> = case["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_i64().unwrap())
                .collect();
            let x = Tensor::from_slice(&floats(&case["input"])).view(shape.as_slice());
            let logits = Tensor::from_slice(&floats(&case["logits"])).view([shape[0], -1]);
            (x, logits)
        })
        .collect()
}

#[test]
fn the_mapped_weights_give_pytorchs_logits() {
    use jem_model::{JointEnergyModel, WideResNet};

    let file = read_torch_file(reference_fixture()).unwrap();
    let ck = from_torch_file(&file, &fixture_config()).unwrap();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let model = WideResNet::new(&vs.root(), &fixture_config()).unwrap();
    let mut vars = vs.variables();
    assert_eq!(vars.len(), ck.model.len());
    tch::no_grad(|| {
        for (name, t) in &ck.model {
            vars.get_mut(name)
                .unwrap_or_else(|| panic!("{name} is no jem variable"))
                .copy_(t);
        }
    });
    let cases = golden_cases();
    // 32 x 32 (the reference's avg_pool2d(8)) and 28 x 28 (global pooling).
    assert_eq!(cases.len(), 2);
    for (x, want) in &cases {
        let got = tch::no_grad(|| model.logits(x, false)).unwrap();
        assert_eq!(got.size(), want.size());
        let diff = (&got - want).abs().max().double_value(&[]);
        assert!(
            diff <= 1e-5,
            "inputs {:?}: jem's logits differ from PyTorch's by {diff:e}",
            x.size()
        );
        // Not vacuous: the logits spread far beyond the tolerance.
        assert!(want.std(true).double_value(&[]) > 1e-2);
    }
    // The imported running statistics matter: train mode (batch statistics; it also updates
    // the running ones, so it comes last) gives other numbers.
    for (x, want) in &cases {
        let train = tch::no_grad(|| model.logits(x, true)).unwrap();
        assert!((&train - want).abs().max().double_value(&[]) > 1e-3);
    }
}
