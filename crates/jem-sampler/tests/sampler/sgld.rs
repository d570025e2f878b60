use approx::assert_relative_eq;
use jem_sampler::{refine, sgld, Conditioned, FromLogits, LogDensity, SamplerError, SgldConfig};
use proptest::prelude::*;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::{rng, to_vec1, to_vec2, Gaussian};

fn noiseless(step_size: f64, steps: usize) -> SgldConfig {
    SgldConfig {
        steps,
        step_size,
        noise: 0.0,
        ..SgldConfig::default()
    }
}

#[test]
fn sgld_moves_samples_towards_the_mode() {
    let g = Gaussian {
        mu: vec![2.0, -1.0],
        var: vec![4.0, 4.0],
    };
    let density = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(g.log_density(x)) };
    let x0 = Tensor::rand([64, 2], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let cfg = SgldConfig {
        steps: 10,
        ..SgldConfig::default()
    };
    let (x, stats) = sgld(&density, &x0, &cfg, &mut rng(1)).unwrap();

    // Mean log-density starts near -0.7 and ends near the maximum 0 (σ = 0.01 noise keeps it just below).
    assert!(stats.log_density_before < -0.3, "{stats:?}");
    assert!(
        stats.log_density_after.unwrap() > -0.01 && stats.log_density_after.unwrap() < 0.0,
        "{stats:?}"
    );
    assert_eq!(stats.log_density_per_step.len(), 10);
    assert_eq!(stats.grad_norm_per_step.len(), 10);
    // With α/s² = 1/4 the distance to the mode shrinks by 3/4 per step (plus σ = 0.01 noise).
    let mu = Tensor::from_slice(&[2.0f32, -1.0]);
    let dist = |t: &Tensor| (t - &mu).norm().double_value(&[]);
    assert!(dist(&x) < 0.1 * dist(&x0), "{} vs {}", dist(&x), dist(&x0));
    assert!(!x.requires_grad());
    // The gradient norms shrink as the chains approach the mode.
    assert!(stats.last_grad_norm().unwrap() < stats.grad_norm_per_step[0]);
    assert!(stats.log_density_gain().unwrap() > 0.0);
}

#[test]
fn one_noiseless_step_is_gradient_ascent() {
    let g = Gaussian {
        mu: vec![0.5, -0.25, 1.0],
        var: vec![1.0, 2.0, 0.5],
    };
    let density = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(g.log_density(x)) };
    let x0 = Tensor::from_slice(&[0.1f64, 0.2, -0.3, -0.7, 0.9, 0.4]).view([2, 3]);
    let alpha = 0.3;
    let (x1, stats) = sgld(&density, &x0, &noiseless(alpha, 1), &mut rng(0)).unwrap();

    let x0v = to_vec2(&x0);
    let x1v = to_vec2(&x1);
    let mut norms = Vec::new();
    for (row0, row1) in x0v.iter().zip(&x1v) {
        let mut sq = 0.0;
        for j in 0..3 {
            let grad = (g.mu[j] - row0[j]) / g.var[j];
            sq += grad * grad;
            assert_relative_eq!(
                row1[j],
                row0[j] + alpha * grad,
                epsilon = 1e-12,
                max_relative = 1e-12
            );
        }
        norms.push(f64::sqrt(sq));
    }
    let mean_norm = norms.iter().sum::<f64>() / 2.0;
    assert_relative_eq!(stats.grad_norm_per_step[0], mean_norm, max_relative = 1e-12);
    let logp0 = to_vec1(&g.log_density(&x0)).iter().sum::<f64>() / 2.0;
    assert_relative_eq!(stats.log_density_before, logp0, max_relative = 1e-12);
}

/// logits = x Wᵀ with W `[3, 2]`.
const W: [[f64; 2]; 3] = [[1.0, -2.0], [0.5, 0.25], [-1.5, 1.0]];

fn linear_logits(x: &Tensor) -> jem_sampler::Result<Tensor> {
    let w = Tensor::from_slice(&W.concat())
        .view([3, 2])
        .to_kind(x.kind());
    Ok(x.matmul(&w.tr()))
}

#[test]
fn marginal_and_conditional_gradients_match_the_analytic_ones() {
    let x0 = Tensor::from_slice(&[0.3f64, -0.2, -0.8, 0.6, 0.05, 0.9, 1.0, -1.0]).view([4, 2]);
    let energy = FromLogits(linear_logits);
    let cfg = noiseless(1.0, 1);

    // Marginal: ∂/∂x LogSumExp_y (W x)_y = Σ_y softmax_y(W x) W_y.
    let (x1, _) = sgld(&energy, &x0, &cfg, &mut rng(0)).unwrap();
    let step = to_vec2(&(&x1 - &x0));
    for (row, s) in to_vec2(&x0).iter().zip(&step) {
        let logits: Vec<f64> = W.iter().map(|w| w[0] * row[0] + w[1] * row[1]).collect();
        let z: f64 = logits.iter().map(|l| l.exp()).sum();
        for j in 0..2 {
            let expected: f64 = W.iter().zip(&logits).map(|(w, l)| l.exp() / z * w[j]).sum();
            assert_relative_eq!(s[j], expected, epsilon = 1e-12, max_relative = 1e-10);
        }
    }

    // Conditional: ∂/∂x (W x)_y = W_y.
    let labels = [2i64, 0, 1, 2];
    let y = Tensor::from_slice(&labels);
    let conditional = Conditioned::new(&energy, &y);
    let (x1, _) = sgld(&conditional, &x0, &cfg, &mut rng(0)).unwrap();
    for (s, &label) in to_vec2(&(&x1 - &x0)).iter().zip(&labels) {
        for j in 0..2 {
            assert_relative_eq!(
                s[j],
                W[label as usize][j],
                epsilon = 1e-12,
                max_relative = 1e-12
            );
        }
    }
    // A two-argument closure is a conditional density too, with the same gradients.
    let closure = |x: &Tensor, y: &Tensor| -> jem_sampler::Result<Tensor> {
        Ok(linear_logits(x)?
            .gather(1, &y.unsqueeze(1), false)
            .squeeze_dim(1))
    };
    let (x1_closure, _) = sgld(&Conditioned::new(&closure, &y), &x0, &cfg, &mut rng(0)).unwrap();
    assert!(x1_closure.allclose(&x1, 1e-12, 1e-12, false));
}

#[test]
fn gradient_clipping_bounds_each_step() {
    let g = Gaussian {
        mu: vec![10.0, 10.0],
        var: vec![1.0, 1.0],
    };
    let density = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(g.log_density(x)) };
    let x0 = Tensor::from_slice(&[0.0f64, 0.0, 9.95, 10.0]).view([2, 2]);
    let cfg = SgldConfig {
        grad_clip: Some(0.5),
        ..noiseless(1.0, 1)
    };
    let (x1, stats) = sgld(&density, &x0, &cfg, &mut rng(0)).unwrap();
    let steps = to_vec1(&(&x1 - &x0).norm_scalaropt_dim(2, [1], false));
    // Far from the mode the gradient (norm 14.1) is clipped to 0.5; near it (norm 0.05) it is not.
    assert_relative_eq!(steps[0], 0.5, max_relative = 1e-9);
    assert_relative_eq!(steps[1], 0.05, max_relative = 1e-9);
    // Diagnostics report the unclipped norm.
    assert_relative_eq!(
        stats.grad_norm_per_step[0],
        (200f64.sqrt() + 0.05) / 2.0,
        max_relative = 1e-9
    );
}

#[test]
fn step_clamp_bounds_each_coordinate_of_the_gradient_step() {
    // Mode at (10, 0.02): the first coordinate's step (α · 10 = 5) is clamped to δ = 0.1, the
    // second (α · 0.02 = 0.01) is not.
    let g = Gaussian {
        mu: vec![10.0, 0.02],
        var: vec![1.0, 1.0],
    };
    let density = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(g.log_density(x)) };
    let x0 = Tensor::zeros([3, 2], (Kind::Double, Device::Cpu));
    let cfg = SgldConfig {
        step_clamp: Some(0.1),
        ..noiseless(0.5, 1)
    };
    let (x1, _) = sgld(&density, &x0, &cfg, &mut rng(0)).unwrap();
    for row in to_vec2(&(&x1 - &x0)) {
        assert_relative_eq!(row[0], 0.1, max_relative = 1e-12);
        assert_relative_eq!(row[1], 0.01, max_relative = 1e-12);
    }
    let bad = SgldConfig {
        step_clamp: Some(0.0),
        ..SgldConfig::default()
    };
    assert!(bad.check().unwrap_err().to_string().contains("step_clamp"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn clamp_is_respected(lo in -2.0f64..0.0, width in 0.1f64..3.0, step in 0.01f64..5.0, seed in 0u64..1000) {
        let hi = lo + width;
        // A strongly off-centre mode pushes chains against the upper bound.
        let g = Gaussian { mu: vec![5.0, -5.0], var: vec![0.5, 0.5] };
        let density = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(g.log_density(x)) };
        let x0 = Tensor::rand([16, 2], (Kind::Float, Device::Cpu)) * 4.0 - 2.0;
        let cfg = SgldConfig { steps: 5, step_size: step, noise: 0.1, clamp: Some((lo, hi)), ..SgldConfig::default() };
        let (x, _) = sgld(&density, &x0, &cfg, &mut rng(seed)).unwrap();
        let min = x.min().double_value(&[]);
        let max = x.max().double_value(&[]);
        prop_assert!(min >= lo - 1e-6 && max <= hi + 1e-6, "[{min}, {max}] outside [{lo}, {hi}]");
    }
}

#[test]
fn sampling_accumulates_no_parameter_gradients() {
    let vs = nn::VarStore::new(Device::Cpu);
    let linear = nn::linear(vs.root(), 4, 3, Default::default());
    let energy = FromLogits(|x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(linear.forward(x)) });
    let x0 = Tensor::rand([8, 4], (Kind::Float, Device::Cpu));
    let _ = sgld(&energy, &x0, &SgldConfig::default(), &mut rng(3)).unwrap();
    let _ = refine(&energy, &x0, 3, &SgldConfig::default(), true, &mut rng(3)).unwrap();
    let vars = vs.trainable_variables();
    assert_eq!(vars.len(), 2);
    for v in vars {
        let grad = v.grad();
        assert!(!grad.defined() || grad.abs().sum(Kind::Double).double_value(&[]) == 0.0);
    }
    // Control: a real backward through the energy does reach the parameters.
    energy.log_density(&x0).unwrap().sum(Kind::Float).backward();
    assert!(vs.trainable_variables().iter().all(|v| v.grad().defined()));
}

#[test]
fn sgld_works_inside_no_grad() {
    let g = Gaussian {
        mu: vec![1.0],
        var: vec![1.0],
    };
    let density = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(g.log_density(x)) };
    let x0 = Tensor::zeros([4, 1], (Kind::Double, Device::Cpu));
    let (x, _) = tch::no_grad(|| sgld(&density, &x0, &noiseless(0.5, 1), &mut rng(0))).unwrap();
    assert_relative_eq!(to_vec2(&x)[0][0], 0.5, max_relative = 1e-12);
}

#[test]
fn bad_densities_are_clear_errors() {
    let x0 = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
    let cfg = SgldConfig::default();

    let keepdim =
        |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(x.sum_dim_intlist(1, true, Kind::Float)) };
    match sgld(&keepdim, &x0, &cfg, &mut rng(0)) {
        Err(SamplerError::ShapeMismatch {
            expected, actual, ..
        }) => {
            assert_eq!((expected, actual), (vec![4], vec![4, 1]));
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }

    let constant = |_: &Tensor| -> jem_sampler::Result<Tensor> {
        Ok(Tensor::zeros([4], (Kind::Float, Device::Cpu)))
    };
    assert!(matches!(
        sgld(&constant, &x0, &cfg, &mut rng(0)),
        Err(SamplerError::InvalidArgument(_))
    ));

    let nan = |x: &Tensor| -> jem_sampler::Result<Tensor> {
        Ok(x.sum_dim_intlist(1, false, Kind::Float) * f64::NAN)
    };
    assert!(matches!(
        sgld(&nan, &x0, &cfg, &mut rng(0)),
        Err(SamplerError::NonFinite { step: 0, .. })
    ));

    let ints = Tensor::zeros([4, 2], (Kind::Int64, Device::Cpu));
    let sum = |x: &Tensor| -> jem_sampler::Result<Tensor> {
        Ok(x.sum_dim_intlist(1, false, Kind::Float))
    };
    assert!(matches!(
        sgld(&sum, &ints, &cfg, &mut rng(0)),
        Err(SamplerError::InvalidArgument(_))
    ));

    let bad_cfg = SgldConfig {
        step_size: -1.0,
        ..cfg
    };
    assert!(matches!(
        sgld(&sum, &x0, &bad_cfg, &mut rng(0)),
        Err(SamplerError::InvalidConfig(_))
    ));
}

#[test]
fn sgld_is_reproducible_from_the_seed() {
    let g = Gaussian {
        mu: vec![0.0, 0.0],
        var: vec![1.0, 1.0],
    };
    let density = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(g.log_density(x)) };
    let x0 = Tensor::zeros([32, 2], (Kind::Float, Device::Cpu));
    let cfg = SgldConfig {
        noise: 0.5,
        ..SgldConfig::default()
    };
    let run = |seed| sgld(&density, &x0, &cfg, &mut rng(seed)).unwrap().0;
    assert!(run(5).equal(&run(5)));
    assert!(!run(5).equal(&run(6)));
}
