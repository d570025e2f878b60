//! Behaviour of the Wide-ResNet and its energy view: shapes, names, the JEM
//! identities, normalisation modes, input checks and checkpoint round trips.

use std::collections::BTreeMap;

use approx::assert_relative_eq;
use jem_model::{
    energy, load_safetensors, parameter_count, save_safetensors, JointEnergyModel, ModelError,
    Norm, WideResNet, WrnConfig,
};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

fn cfg(depth: usize, widen_factor: usize) -> WrnConfig {
    WrnConfig::new(depth, widen_factor)
}

fn build(config: &WrnConfig) -> (VarStore, WideResNet) {
    let vs = VarStore::new(Device::Cpu);
    let model = config.init(&vs.root()).expect("valid config");
    (vs, model)
}

/// A batch uniformly drawn from [-1, 1], like the data the model is trained on.
fn batch(n: i64, c: i64, hw: i64) -> Tensor {
    Tensor::rand([n, c, hw, hw], CPU) * 2.0 - 1.0
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.detach().flatten(0, -1)).unwrap()
}

fn assert_all_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            approx::relative_eq!(*g, *w, epsilon = tol, max_relative = tol),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

fn shapes(vs: &VarStore) -> BTreeMap<String, Vec<i64>> {
    vs.variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect()
}

#[test]
fn forward_shapes_for_mnist_and_cifar_sizes() {
    for (in_channels, hw) in [(1usize, 28i64), (3, 32)] {
        for (depth, widen) in [(10, 1), (10, 2), (16, 1), (16, 2), (28, 1)] {
            let config = WrnConfig {
                in_channels,
                num_classes: 7,
                ..cfg(depth, widen)
            };
            let (_vs, model) = build(&config);
            let x = batch(2, in_channels as i64, hw);
            let feats = model.f_features(&x, false).unwrap();
            assert_eq!(
                feats.size(),
                [2, 64 * widen as i64],
                "WRN-{depth}-{widen} {in_channels}x{hw}"
            );
            let (logits, log_px) = model.logits_and_log_px(&x, false).unwrap();
            assert_eq!(logits.size(), [2, 7]);
            assert_eq!(log_px.size(), [2]);
            assert!(to_vec(&logits).iter().all(|v| v.is_finite()));
        }
    }
    // Odd and tiny spatial sizes work thanks to the global pooling.
    let (_vs, model) = build(&cfg(10, 1));
    for hw in [1, 7, 13] {
        assert_eq!(model.forward_t(&batch(1, 3, hw), false).size(), [1, 10]);
    }
}

#[test]
fn variable_names_follow_the_reference_state_dict() {
    let (vs, _) = build(&cfg(16, 2));
    let s = shapes(&vs);
    // Stem, first block of each stage (with projection), second block (without).
    assert_eq!(s["f.conv1.weight"], [16, 3, 3, 3]);
    assert_eq!(s["f.conv1.bias"], [16]);
    assert_eq!(s["f.layer1.0.conv1.weight"], [32, 16, 3, 3]);
    assert_eq!(s["f.layer1.0.shortcut.0.weight"], [32, 16, 1, 1]);
    assert_eq!(s["f.layer1.0.shortcut.0.bias"], [32]);
    assert_eq!(s["f.layer2.0.conv2.weight"], [64, 64, 3, 3]);
    assert_eq!(s["f.layer2.0.shortcut.0.weight"], [64, 32, 1, 1]);
    assert_eq!(s["f.layer3.1.conv2.bias"], [128]);
    assert_eq!(s["class_output.weight"], [10, 128]);
    assert_eq!(s["class_output.bias"], [10]);
    for absent in [
        "f.layer1.1.shortcut.0.weight",
        "f.layer3.2.conv1.weight",
        "f.linear.weight",
        "energy_output.weight",
    ] {
        assert!(!s.contains_key(absent), "{absent} must not exist");
    }
    // No norm: no bn variables at all.
    assert!(s.keys().all(|k| !k.contains("bn")), "{s:?}");
    // (16 - 4) / 6 = 2 blocks per stage, each with two convs.
    assert_eq!(s.keys().filter(|k| k.ends_with("conv2.weight")).count(), 6);

    // WRN-10-1: the first stage keeps 16 channels at stride 1, so no projection there.
    let (vs, _) = build(&WrnConfig {
        norm: Norm::Batch,
        uncond: true,
        ..cfg(10, 1)
    });
    let s = shapes(&vs);
    assert!(!s.contains_key("f.layer1.0.shortcut.0.weight"));
    assert!(s.contains_key("f.layer2.0.shortcut.0.weight"));
    assert_eq!(s["energy_output.weight"], [1, 64]);
    assert_eq!(s["energy_output.bias"], [1]);
    for name in ["weight", "bias", "running_mean", "running_var"] {
        assert_eq!(s[&format!("f.layer1.0.bn1.{name}")], [16]);
        assert_eq!(s[&format!("f.layer3.0.bn2.{name}")], [64]);
        assert_eq!(s[&format!("f.bn1.{name}")], [64]);
    }
    assert_eq!(jem_model::variable_shapes(&vs).len(), s.len());
}

#[test]
fn builds_wide_models_without_running_them() {
    // WRN-28-10 itself is checked against PyTorch in tests/golden.rs.
    for widen in [1usize, 2, 10] {
        for depth in [10usize, 16, 28] {
            let (vs, model) = build(&cfg(depth, widen));
            assert_eq!(
                model.num_parameters(),
                parameter_count(&vs),
                "WRN-{depth}-{widen}"
            );
            assert_eq!(model.config().blocks_per_stage(), (depth - 4) / 6);
        }
    }
}

#[test]
fn energy_identities_hold() {
    let (_vs, model) = build(&cfg(10, 1));
    let x = batch(4, 3, 16);
    let logits = model.logits(&x, false).unwrap();
    let log_px = model.log_px(&x, false).unwrap();
    let log_py = model.log_py_given_x(&x, false).unwrap();
    let energy = model.energy(&x, false).unwrap();
    assert_eq!(log_py.size(), [4, 10]);

    let l = to_vec(&logits);
    let lp = to_vec(&log_px);
    let lpy = to_vec(&log_py);
    let e = to_vec(&energy);
    for row in 0..4 {
        // logsumexp by hand: max + ln(sum(exp(l - max))).
        let r: Vec<f64> = l[row * 10..(row + 1) * 10]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let max = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + r.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        assert_relative_eq!(lp[row] as f64, lse, max_relative = 1e-5, epsilon = 1e-5);
        assert_relative_eq!(e[row], -lp[row], max_relative = 1e-6);

        let mut total = 0.0;
        for y in 0..10 {
            let labels = Tensor::from_slice(&[y as i64; 4]);
            let log_pxy = to_vec(&model.log_pxy(&x, &labels, false).unwrap());
            assert_relative_eq!(log_pxy[row], l[row * 10 + y], max_relative = 1e-6);
            // p(y|x) = exp(log p(x,y) - log p(x)) must equal the softmax.
            let p = ((log_pxy[row] - lp[row]) as f64).exp();
            assert_relative_eq!(
                p,
                (lpy[row * 10 + y] as f64).exp(),
                max_relative = 1e-5,
                epsilon = 1e-6
            );
            total += p;
        }
        assert_relative_eq!(total, 1.0, max_relative = 1e-5);
    }
    // The free functions give the same numbers on the logits.
    assert_all_close(
        "free log_px",
        &to_vec(&energy::log_px_from_logits(&logits).unwrap()),
        &lp,
        1e-6,
    );
    let probs = energy::py_given_x_from_logits(&logits).unwrap();
    let sums = to_vec(&probs.sum_dim_intlist([1i64].as_slice(), false, Kind::Float));
    assert_all_close("softmax rows", &sums, &[1.0; 4], 1e-5);
    let mixed = Tensor::from_slice(&[0i64, 3, 9, 5]);
    let want: Vec<f32> = (0..4).map(|r| l[r * 10 + [0, 3, 9, 5][r]]).collect();
    assert_all_close(
        "log_pxy mixed",
        &to_vec(&model.log_pxy(&x, &mixed, false).unwrap()),
        &want,
        1e-6,
    );
}

#[test]
fn uncond_head_changes_log_px_but_not_logits() {
    let (vs_c, cond) = build(&cfg(10, 1));
    let (vs_u, uncond) = build(&WrnConfig {
        uncond: true,
        ..cfg(10, 1)
    });
    // Share every backbone and class-head weight.
    let src = vs_c.variables();
    let mut extra = Vec::new();
    tch::no_grad(|| {
        for (name, mut var) in vs_u.variables() {
            match src.get(&name) {
                Some(t) => {
                    var.copy_(t);
                }
                None => extra.push(name),
            }
        }
    });
    extra.sort();
    assert_eq!(extra, ["energy_output.bias", "energy_output.weight"]);
    assert_eq!(parameter_count(&vs_u) - parameter_count(&vs_c), 64 + 1);

    let x = batch(3, 3, 12);
    let logits_c = to_vec(&cond.logits(&x, false).unwrap());
    let logits_u = to_vec(&uncond.logits(&x, false).unwrap());
    assert_eq!(logits_c, logits_u);

    let lse = to_vec(&cond.log_px(&x, false).unwrap());
    let head = to_vec(&uncond.log_px(&x, false).unwrap());
    assert!(
        lse.iter().zip(&head).all(|(a, b)| (a - b).abs() > 1e-4),
        "{lse:?} vs {head:?}"
    );
    // The uncond log p(x) is exactly the linear energy head on the features.
    let vars = vs_u.variables();
    let feats = uncond.f_features(&x, false).unwrap();
    let manual = feats.matmul(&vars["energy_output.weight"].tr()) + &vars["energy_output.bias"];
    assert_all_close("energy head", &head, &to_vec(&manual), 1e-6);
    let energy = to_vec(&uncond.energy(&x, false).unwrap());
    assert_all_close(
        "energy",
        &energy,
        &head.iter().map(|v| -v).collect::<Vec<_>>(),
        1e-7,
    );
}

#[test]
fn log_px_is_differentiable_in_the_input() {
    // SGLD needs d log p(x) / dx.
    let (_vs, model) = build(&cfg(10, 1));
    let x = batch(2, 3, 8).set_requires_grad(true);
    let log_px = model.log_px(&x, false).unwrap();
    let grad = Tensor::run_backward(&[log_px.sum(Kind::Float)], &[&x], false, false);
    assert_eq!(grad[0].size(), [2, 3, 8, 8]);
    assert!(grad[0].abs().sum(Kind::Float).double_value(&[]) > 0.0);
}

#[test]
fn batch_norm_differs_between_train_and_eval() {
    let (vs, model) = build(&WrnConfig {
        norm: Norm::Batch,
        ..cfg(10, 1)
    });
    let x = batch(4, 3, 16) * 3.0 + 0.5;
    let eval_a = to_vec(&model.logits(&x, false).unwrap());
    let running_before = to_vec(&vs.variables()["f.layer2.0.bn1.running_mean"]);
    let eval_b = to_vec(&model.logits(&x, false).unwrap());
    assert_eq!(
        eval_a, eval_b,
        "eval mode must be deterministic and not touch the statistics"
    );
    assert_eq!(
        running_before,
        to_vec(&vs.variables()["f.layer2.0.bn1.running_mean"])
    );

    let train = to_vec(&model.logits(&x, true).unwrap());
    let max_diff = train
        .iter()
        .zip(&eval_a)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        max_diff > 1e-3,
        "train/eval outputs should differ, max diff {max_diff}"
    );
    let running_after = to_vec(&vs.variables()["f.layer2.0.bn1.running_mean"]);
    assert_ne!(
        running_before, running_after,
        "train mode updates running statistics"
    );
    // Running stats are buffers, not parameters.
    let trainable: i64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    assert_eq!(parameter_count(&vs), trainable);
    let all: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
    assert!(all > trainable);

    // In train mode a sample's output depends on the rest of the batch.
    let single = to_vec(&model.logits(&x.narrow(0, 0, 2), true).unwrap());
    let diff = single
        .iter()
        .zip(&train[..20])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff > 1e-4);
}

#[test]
fn instance_and_layer_norm_are_per_sample() {
    for norm in [Norm::Instance, Norm::Layer] {
        let (vs, model) = build(&WrnConfig {
            norm,
            num_classes: 5,
            ..cfg(10, 1)
        });
        assert!(
            vs.variables().keys().all(|k| !k.contains("running")),
            "{norm:?} has no running stats"
        );
        let x = batch(4, 3, 12);
        let train = model.logits(&x, true).unwrap();
        let eval = model.logits(&x, false).unwrap();
        assert_eq!(train.size(), [4, 5]);
        assert_all_close(
            &format!("{norm:?} train/eval"),
            &to_vec(&train),
            &to_vec(&eval),
            1e-6,
        );
        let alone = model.logits(&x.narrow(0, 1, 1), false).unwrap();
        assert_all_close(
            &format!("{norm:?} batch independence"),
            &to_vec(&alone),
            &to_vec(&eval.narrow(0, 1, 1)),
            1e-5,
        );
    }
}

#[test]
fn dropout_is_active_only_in_train_mode() {
    let (_vs, model) = build(&WrnConfig {
        dropout: 0.5,
        ..cfg(10, 1)
    });
    let x = batch(2, 3, 8);
    let e1 = to_vec(&model.logits(&x, false).unwrap());
    let e2 = to_vec(&model.logits(&x, false).unwrap());
    assert_eq!(e1, e2);
    let t1 = to_vec(&model.logits(&x, true).unwrap());
    let t2 = to_vec(&model.logits(&x, true).unwrap());
    assert_ne!(t1, t2);
    assert_ne!(t1, e1);
}

#[test]
fn bad_inputs_give_errors_not_panics() {
    let (_vs, model) = build(&cfg(10, 1));
    let err = model.f_forward_t(&batch(2, 1, 28), false).unwrap_err();
    assert!(
        matches!(err, ModelError::InputShape { expected_channels: 3, ref got } if got == &[2, 1, 28, 28])
    );
    let msg = err.to_string();
    assert!(
        msg.contains("[N, 3, H, W]") && msg.contains("[2, 1, 28, 28]"),
        "{msg}"
    );

    let err = model
        .log_px(&Tensor::rand([3, 32, 32], CPU), false)
        .unwrap_err();
    assert!(err.to_string().contains("[3, 32, 32]"), "{err}");

    let err = model
        .logits(&batch(1, 3, 8).to_kind(Kind::Double), false)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::InputKind {
                expected: Kind::Float,
                got: Kind::Double
            }
        ),
        "{err}"
    );

    let err = model
        .log_pxy(&batch(2, 3, 8), &Tensor::from_slice(&[0i64, 10]), false)
        .unwrap_err();
    assert!(err.to_string().contains("0..10"), "{err}");
}

#[test]
#[should_panic(expected = "expected [N, 3, H, W]")]
fn module_forward_panics_with_the_error_message() {
    let (_vs, model) = build(&cfg(10, 1));
    let _ = model.forward_t(&batch(1, 2, 8), false);
}

#[test]
fn save_load_round_trip_reproduces_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrn.safetensors");
    let config = WrnConfig {
        norm: Norm::Batch,
        uncond: true,
        ..cfg(10, 1)
    };
    let (vs_a, a) = build(&config);
    let x = batch(3, 3, 10);
    // Move the running statistics away from their init so buffers are checked too.
    let _ = a.logits(&batch(4, 3, 10), true).unwrap();
    save_safetensors(&vs_a, &path).unwrap();

    let (vs_b, b) = build(&config);
    let before = to_vec(&b.logits(&x, false).unwrap());
    let (la, pa) = a.logits_and_log_px(&x, false).unwrap();
    assert_ne!(before, to_vec(&la), "fresh init should differ");
    load_safetensors(&vs_b, &path).unwrap();
    let (lb, pb) = b.logits_and_log_px(&x, false).unwrap();
    assert_eq!(to_vec(&la), to_vec(&lb));
    assert_eq!(to_vec(&pa), to_vec(&pb));
    // Loaded variables stay trainable parameters.
    assert_eq!(parameter_count(&vs_b), b.num_parameters());
    assert!(vs_b.trainable_variables().iter().all(|t| t.requires_grad()));
}

fn mismatch_of(err: ModelError) -> (Vec<String>, Vec<String>, Vec<String>) {
    match err {
        ModelError::CheckpointMismatch {
            missing,
            unexpected,
            mismatched,
            ..
        } => (
            missing.into_iter().map(|m| m.0).collect(),
            unexpected.into_iter().map(|m| m.0).collect(),
            mismatched.into_iter().map(|m| m.0).collect(),
        ),
        other => panic!("expected CheckpointMismatch, got {other}"),
    }
}

#[test]
fn loading_another_config_names_the_offending_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let save = |config: &WrnConfig, file: &str| {
        let (vs, _) = build(config);
        let path = dir.path().join(file);
        save_safetensors(&vs, &path).unwrap();
        path
    };
    let narrow = save(&cfg(10, 1), "wrn10_1.safetensors");
    let uncond = save(
        &WrnConfig {
            uncond: true,
            ..cfg(10, 1)
        },
        "uncond.safetensors",
    );
    let batch_norm = save(
        &WrnConfig {
            norm: Norm::Batch,
            ..cfg(10, 1)
        },
        "bn.safetensors",
    );

    // Wider model: same names, other shapes.
    let (vs_wide, wide) = build(&cfg(10, 2));
    let x = batch(1, 3, 8);
    let before = to_vec(&wide.logits(&x, false).unwrap());
    let err = load_safetensors(&vs_wide, &narrow).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("wrn10_1.safetensors"), "{msg}");
    assert!(
        msg.contains("`f.layer1.0.conv1.weight` expected [32, 16, 3, 3], found [16, 16, 3, 3]"),
        "{msg}"
    );
    let (missing, unexpected, mismatched) = mismatch_of(err);
    assert!(mismatched.contains(&"class_output.weight".to_string()));
    // The 16->32 first block needs a projection the 16->16 one lacks.
    assert_eq!(
        missing,
        ["f.layer1.0.shortcut.0.bias", "f.layer1.0.shortcut.0.weight"]
    );
    assert!(unexpected.is_empty());
    assert_eq!(
        before,
        to_vec(&wide.logits(&x, false).unwrap()),
        "a refused load must not modify the model"
    );

    let (vs_cond, _) = build(&cfg(10, 1));
    let (_, unexpected, _) = mismatch_of(load_safetensors(&vs_cond, &uncond).unwrap_err());
    assert_eq!(unexpected, ["energy_output.bias", "energy_output.weight"]);
    let (_, unexpected, _) = mismatch_of(load_safetensors(&vs_cond, &batch_norm).unwrap_err());
    assert!(
        unexpected.contains(&"f.bn1.running_var".to_string()),
        "{unexpected:?}"
    );

    let (vs_unc, _) = build(&WrnConfig {
        uncond: true,
        ..cfg(10, 1)
    });
    let err = load_safetensors(&vs_unc, &narrow).unwrap_err();
    assert!(
        err.to_string()
            .contains("missing tensors: `energy_output.bias` [1]"),
        "{err}"
    );
}

#[test]
fn unreadable_checkpoints_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (vs, _) = build(&cfg(10, 1));
    let absent = dir.path().join("absent.safetensors");
    let err = load_safetensors(&vs, &absent).unwrap_err();
    assert!(matches!(err, ModelError::Checkpoint { .. }));
    assert!(err.to_string().contains("absent.safetensors"), "{err}");

    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not a safetensors file").unwrap();
    let err = load_safetensors(&vs, &garbage).unwrap_err();
    assert!(err.to_string().contains("garbage.safetensors"), "{err}");

    let err = save_safetensors(&vs, dir.path().join("no/such/dir/w.safetensors")).unwrap_err();
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

/// WRN-10-1 without normalisation written out op by op from the variables (the reference's
/// layout), with `act` between the convolutions: an independent forward to compare with.
fn manual_wrn10(vs: &VarStore, x: &Tensor, act: impl Fn(&Tensor) -> Tensor) -> Tensor {
    let v = vs.variables();
    let conv = |x: &Tensor, name: &str, stride: i64, pad: i64| {
        x.conv2d(
            &v[&format!("{name}.weight")],
            Some(&v[&format!("{name}.bias")]),
            [stride, stride],
            [pad, pad],
            [1, 1],
            1,
        )
    };
    let mut h = conv(x, "f.conv1", 1, 1);
    for (layer, stride) in [("f.layer1.0", 1), ("f.layer2.0", 2), ("f.layer3.0", 2)] {
        let a = conv(&act(&h), &format!("{layer}.conv1"), 1, 1);
        let b = conv(&act(&a), &format!("{layer}.conv2"), stride, 1);
        let skip = if v.contains_key(&format!("{layer}.shortcut.0.weight")) {
            conv(&h, &format!("{layer}.shortcut.0"), stride, 0)
        } else {
            h.shallow_clone()
        };
        h = b + skip;
    }
    let pooled = act(&h).mean_dim([2i64, 3].as_slice(), false, Kind::Float);
    pooled.linear(&v["class_output.weight"], Some(&v["class_output.bias"]))
}

#[test]
fn activations_match_an_op_by_op_forward() {
    for activation in [
        jem_model::Activation::LeakyRelu,
        jem_model::Activation::Silu,
    ] {
        let config = WrnConfig {
            in_channels: 1,
            activation,
            ..cfg(10, 1)
        };
        let (vs, model) = build(&config);
        let x = batch(3, 1, 12);
        let got = to_vec(&model.logits(&x, false).unwrap());
        let want = match activation {
            jem_model::Activation::LeakyRelu => manual_wrn10(&vs, &x, |t| t.maximum(&(t * 0.2))),
            jem_model::Activation::Silu => manual_wrn10(&vs, &x, |t| t * t.sigmoid()),
        };
        assert_all_close(
            &format!("{activation:?} logits"),
            &got,
            &to_vec(&want),
            1e-5,
        );
    }
    let toml_cfg: WrnConfig = toml::from_str("activation = \"silu\"").unwrap();
    assert_eq!(toml_cfg.activation, jem_model::Activation::Silu);
    assert!(toml::from_str::<WrnConfig>("activation = \"relu6\"").is_err());
}
