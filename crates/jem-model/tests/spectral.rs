//! Spectral normalisation: the estimate against LAPACK's singular values, the buffer's
//! behaviour in training and eval mode, and checkpoints.

use jem_model::spectral::{SpectralNorm, INIT_POWER_ITERATIONS};
use jem_model::{load_safetensors, parameter_count, save_safetensors, JointEnergyModel, WrnConfig};
use tch::nn::{Init, VarStore};
use tch::{Device, Kind, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

/// The largest singular value of `w` seen as `[out, rest]`, from LAPACK (not power iteration).
fn svd_max(w: &Tensor) -> f64 {
    let m = w.reshape([w.size()[0], -1]).to_kind(Kind::Double);
    m.svd(true, false).1.double_value(&[0])
}

fn sn_config() -> WrnConfig {
    WrnConfig {
        in_channels: 1,
        spectral_norm: true,
        ..WrnConfig::new(10, 1)
    }
}

fn u_of(vs: &VarStore, name: &str) -> Vec<f32> {
    let vars = vs.variables();
    Vec::<f32>::try_from(vars[name].detach().flatten(0, -1)).unwrap()
}

#[test]
fn sigma_converges_to_the_largest_singular_value() {
    tch::manual_seed(3);
    for shape in [vec![8i64, 4, 3, 3], vec![16, 16, 3, 3], vec![10, 64]] {
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let w = root.var(
            "weight",
            &shape,
            Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        );
        let sn = SpectralNorm::new(&root, &w).unwrap();
        let want = svd_max(&w);
        // Power iteration only ever underestimates: uᵀWv ≤ σ_max for unit u, v.
        let after_init = sn.sigma(&w).unwrap().double_value(&[]);
        assert!(after_init <= want * (1.0 + 1e-5), "{after_init} > {want}");
        for _ in 0..200 {
            let _ = sn.apply(&w, true).unwrap();
        }
        let got = sn.sigma(&w).unwrap().double_value(&[]);
        assert!(
            (got - want).abs() <= 1e-4 * want,
            "shape {shape:?}: power iteration {got} vs svd {want} ({INIT_POWER_ITERATIONS} + 200 steps)"
        );
        // The normalised weight has spectral norm 1.
        let normalised = sn.apply(&w, false).unwrap();
        assert!((svd_max(&normalised) - 1.0).abs() < 1e-4);
    }
}

#[test]
fn gradient_flows_through_sigma() {
    // d/dW of sum(W / σ(W)) with u, v held fixed, against the same formula by hand:
    // d(W/σ)/dW · 1 = 1/σ − (ΣW / σ²) u vᵀ.
    tch::manual_seed(5);
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let w = root.var(
        "weight",
        &[6, 5],
        Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        },
    );
    let sn = SpectralNorm::new(&root, &w).unwrap();
    let sigma = sn.sigma(&w).unwrap().double_value(&[]);
    let u = vs.variables()["weight_u"].detach().to_kind(Kind::Double);
    let v = w.detach().to_kind(Kind::Double).tr().mv(&u);
    let v = &v / v.norm();
    let total = w
        .detach()
        .to_kind(Kind::Double)
        .sum(Kind::Double)
        .double_value(&[]);
    let want = Tensor::ones([6, 5], (Kind::Double, Device::Cpu)) / sigma
        - u.outer(&v) * (total / (sigma * sigma));
    let out = sn.apply(&w, false).unwrap().sum(Kind::Float);
    let grad = Tensor::run_backward(&[out], &[&w], false, false)
        .pop()
        .unwrap()
        .to_kind(Kind::Double);
    let err = (&grad - &want).abs().max().double_value(&[]);
    assert!(err < 1e-5, "gradient off by {err}");
}

#[test]
fn eval_mode_keeps_u_and_training_mode_advances_it() {
    tch::manual_seed(7);
    let vs = VarStore::new(Device::Cpu);
    let model = sn_config().init(&vs.root()).unwrap();
    // Move one layer's weights so its u is no longer converged.
    tch::no_grad(|| {
        let mut w = vs.variables()["f.conv1.weight"].shallow_clone();
        let _ = w.f_mul_(&(Tensor::rand([16, 1, 3, 3], CPU) * 3.0)).unwrap();
    });
    let x = Tensor::rand([4, 1, 28, 28], CPU) * 2.0 - 1.0;
    let u0 = u_of(&vs, "f.conv1.weight_u");
    let a = model.logits(&x, false).unwrap();
    let b = model.logits(&x, false).unwrap();
    assert_eq!(u_of(&vs, "f.conv1.weight_u"), u0, "eval mode changed u");
    assert!(a.equal(&b), "eval-mode forwards are deterministic");
    let _ = model.logits(&x, true).unwrap();
    assert_ne!(
        u_of(&vs, "f.conv1.weight_u"),
        u0,
        "training mode left u alone"
    );
}

#[test]
fn buffers_not_parameters_and_saved_with_the_weights() {
    let plain_vs = VarStore::new(Device::Cpu);
    let plain = WrnConfig {
        spectral_norm: false,
        ..sn_config()
    }
    .init(&plain_vs.root())
    .unwrap();
    let vs = VarStore::new(Device::Cpu);
    let model = sn_config().init(&vs.root()).unwrap();
    assert_eq!(parameter_count(&vs), parameter_count(&plain_vs));
    assert_eq!(model.num_parameters(), plain.num_parameters());
    let vars = vs.variables();
    let plain_vars = plain_vs.variables();
    // One `weight_u` of length `out` per weight of the plain model.
    let weights: Vec<_> = plain_vars
        .keys()
        .filter(|n| n.ends_with(".weight"))
        .collect();
    assert_eq!(vars.len(), plain_vars.len() + weights.len());
    for name in weights {
        let u = &vars[&name.replace(".weight", ".weight_u")];
        assert_eq!(u.size(), vec![plain_vars[name].size()[0]]);
        assert!(!u.requires_grad());
    }

    // A checkpoint carries u: a loaded model gives the same logits, in eval and training mode.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sn.safetensors");
    let x = Tensor::rand([3, 1, 28, 28], CPU) * 2.0 - 1.0;
    for _ in 0..3 {
        let _ = model.logits(&x, true).unwrap();
    }
    save_safetensors(&vs, &path).unwrap();
    let vs_b = VarStore::new(Device::Cpu);
    let b = sn_config().init(&vs_b.root()).unwrap();
    load_safetensors(&vs_b, &path).unwrap();
    assert!(model
        .logits(&x, false)
        .unwrap()
        .equal(&b.logits(&x, false).unwrap()));
    assert!(model
        .logits(&x, true)
        .unwrap()
        .equal(&b.logits(&x, true).unwrap()));
}
