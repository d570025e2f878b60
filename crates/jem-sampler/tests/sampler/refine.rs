use approx::assert_relative_eq;
use jem_sampler::{refine, SgldConfig};
use tch::{Device, Kind, Tensor};

use crate::{rng, to_vec1, to_vec2};

/// A smooth, non-quadratic density, so the refinement's Jacobian is not constant:
/// `log p(x) = Σ_j a_j sin(x_j) - 1/2 ‖x‖² + 0.1 x_0 x_1`.
fn smooth(x: &Tensor) -> jem_sampler::Result<Tensor> {
    let a = Tensor::from_slice(&[1.5f64, -0.7, 0.3]).to_kind(x.kind());
    let quad = (x * x).sum_dim_intlist(1, false, x.kind()) * -0.5;
    let cross = x.select(1, 0) * x.select(1, 1) * 0.1;
    Ok((x.sin() * a).sum_dim_intlist(1, false, x.kind()) + quad + cross)
}

fn deterministic_cfg() -> SgldConfig {
    SgldConfig {
        step_size: 0.2,
        noise: 0.0,
        ..SgldConfig::default()
    }
}

#[test]
fn refinement_gradients_match_finite_differences() {
    let k = 4;
    let cfg = deterministic_cfg();
    let x = Tensor::from_slice(&[0.3f64, -0.6, 0.9, -0.2, 0.4, 0.1])
        .view([2, 3])
        .set_requires_grad(true);
    let (refined, _) = refine(&smooth, &x, k, &cfg, true, &mut rng(0)).unwrap();
    assert!(refined.requires_grad());
    let grad = Tensor::run_backward(&[refined.sum(Kind::Double)], &[&x], false, false)
        .pop()
        .unwrap();
    assert!(grad.defined());
    let analytic = to_vec2(&grad);

    // Central differences of sum(refine(x)) through the graph-free path.
    let h = 1e-6;
    let total = |x: &Tensor| -> f64 {
        let (r, _) = refine(&smooth, x, k, &cfg, false, &mut rng(0)).unwrap();
        r.sum(Kind::Double).double_value(&[])
    };
    let base = x.detach();
    for i in 0..2 {
        for j in 0..3 {
            let bump = Tensor::zeros([2, 3], (Kind::Double, Device::Cpu));
            let _ = bump.get(i).get(j).fill_(h);
            let fd = (total(&(&base + &bump)) - total(&(&base - &bump))) / (2.0 * h);
            assert_relative_eq!(
                analytic[i as usize][j as usize],
                fd,
                epsilon = 1e-7,
                max_relative = 1e-6
            );
        }
    }
    // The refinement is not the identity: the Jacobian differs from I.
    let identity_sum = 1.0;
    assert!(analytic
        .iter()
        .flatten()
        .any(|g| (g - identity_sum).abs() > 1e-3));
}

#[test]
fn refinement_without_graph_is_detached_and_moves_uphill() {
    let x = Tensor::from_slice(&[2.0f64, -2.0, 2.0])
        .view([1, 3])
        .set_requires_grad(true);
    let (refined, stats) =
        refine(&smooth, &x, 5, &deterministic_cfg(), false, &mut rng(0)).unwrap();
    assert!(!refined.requires_grad());
    assert!(stats.log_density_after.unwrap() > stats.log_density_before);
    let logp = to_vec1(&smooth(&refined).unwrap());
    assert_relative_eq!(
        logp[0],
        stats.log_density_after.unwrap(),
        max_relative = 1e-12
    );
}

#[test]
fn zero_step_refinement_is_the_identity() {
    let x = Tensor::from_slice(&[0.25f32, -0.5, 0.75]).view([1, 3]);
    let (refined, stats) =
        refine(&smooth, &x, 0, &SgldConfig::default(), false, &mut rng(0)).unwrap();
    assert!(refined.equal(&x));
    assert!(stats.grad_norm_per_step.is_empty());
    assert_eq!(Some(stats.log_density_before), stats.log_density_after);
}
