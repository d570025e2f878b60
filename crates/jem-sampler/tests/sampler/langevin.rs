//! Proper Langevin dynamics samples a known Gaussian.
//!
//! Target: independent dimensions, `μ = (1, -0.5)`, `s² = (1, 0.25)`. With step `α` the
//! unadjusted chain along a dimension is AR(1) with coefficient `a = 1 - α/s²` and stationary
//! law `N(μ, s² / (1 - α/(2 s²)))`: the mean is exact, the variance biased upwards by
//! `O(α)`. The accepted variance interval therefore runs from the chi-squared lower quantile
//! around `s²` to the upper quantile around the biased variance. Chains start at `U(-1, 1)`, so
//! after `T` steps the mean carries a leftover `a^T · |μ - 0|`, added to the mean tolerance.

use approx::assert_relative_eq;
use jem_sampler::{sample, ChainInit, Energy, SgldConfig, SgldMode, ShortRun, StepDecay};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use tch::{Device, Kind, Tensor};

use crate::{rng, to_vec1, Gaussian};

const CHAINS: usize = 4000;
const STEPS: usize = 500;
const ALPHA: f64 = 0.02;
/// Error probability of each of the four checks (the run itself is seeded, so deterministic).
const DELTA: f64 = 1e-4;

fn target() -> Gaussian {
    Gaussian {
        mu: vec![1.0, -0.5],
        var: vec![1.0, 0.25],
    }
}

fn run(cfg: &SgldConfig) -> (Vec<f64>, Vec<f64>) {
    let g = target();
    let density = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(g.log_density(x)) };
    let mut source = ChainInit::ShortRun(ShortRun::new(&[2], None, Device::Cpu).unwrap());
    let out = sample(
        &mut source,
        Energy::Marginal(&density),
        CHAINS,
        None,
        cfg,
        &mut rng(2024),
    )
    .unwrap();
    let mean = to_vec1(&out.x.mean_dim(0, false, Kind::Double));
    let var = to_vec1(&out.x.to_kind(Kind::Double).var_dim(0, true, false));
    (mean, var)
}

/// Checks the sample moments against the confidence bounds; returns the failures.
fn moment_failures(mean: &[f64], var: &[f64], alpha: f64, steps: usize) -> Vec<String> {
    let g = target();
    let n = CHAINS as f64;
    let z = Normal::new(0.0, 1.0)
        .unwrap()
        .inverse_cdf(1.0 - DELTA / 2.0);
    let chi = ChiSquared::new(n - 1.0).unwrap();
    let (chi_lo, chi_hi) = (
        chi.inverse_cdf(DELTA / 2.0),
        chi.inverse_cdf(1.0 - DELTA / 2.0),
    );
    let mut failures = Vec::new();
    for j in 0..2 {
        let (mu, s2) = (g.mu[j], g.var[j]);
        let biased = s2 / (1.0 - alpha / (2.0 * s2));
        let leftover = (1.0 - alpha / s2).powi(steps as i32) * mu.abs();
        let mean_tol = z * (biased / n).sqrt() + leftover;
        if (mean[j] - mu).abs() > mean_tol {
            failures.push(format!(
                "dim {j}: mean {} not within {mu} ± {mean_tol}",
                mean[j]
            ));
        }
        let (lo, hi) = (s2 * chi_lo / (n - 1.0), biased * chi_hi / (n - 1.0));
        if !(lo..=hi).contains(&var[j]) {
            failures.push(format!("dim {j}: variance {} not in [{lo}, {hi}]", var[j]));
        }
    }
    failures
}

#[test]
fn langevin_samples_a_gaussian() {
    let cfg = SgldConfig::langevin(ALPHA, STEPS);
    let (mean, var) = run(&cfg);
    let failures = moment_failures(&mean, &var, ALPHA, STEPS);
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn relaxed_sgld_does_not_sample_the_gaussian() {
    // The paper's σ = 0.01 noise collapses the chains onto the mode: the test above must fail.
    let cfg = SgldConfig {
        steps: STEPS,
        step_size: ALPHA,
        noise: 0.01,
        mode: SgldMode::Relaxed,
        ..SgldConfig::default()
    };
    let (mean, var) = run(&cfg);
    let failures = moment_failures(&mean, &var, ALPHA, STEPS);
    assert!(
        failures.len() >= 2,
        "relaxed SGLD passed the Langevin check: {mean:?} {var:?}"
    );
    assert!(var.iter().all(|&v| v < 0.01), "{var:?}");
}

#[test]
fn langevin_noise_follows_the_decayed_step() {
    let cfg = SgldConfig {
        decay: StepDecay::Geometric { rate: 0.5 },
        ..SgldConfig::langevin(0.08, 10)
    };
    assert_relative_eq!(cfg.step_size_at(2), 0.02, max_relative = 1e-12);
    assert_relative_eq!(cfg.noise_at(2), 0.2, max_relative = 1e-12);
    let poly = SgldConfig {
        decay: StepDecay::Polynomial {
            power: 1.0,
            t0: 10.0,
        },
        ..SgldConfig::langevin(0.08, 10)
    };
    assert_relative_eq!(poly.step_size_at(10), 0.04, max_relative = 1e-12);
    // Relaxed noise ignores the schedule.
    let relaxed = SgldConfig {
        decay: StepDecay::Geometric { rate: 0.5 },
        ..SgldConfig::default()
    };
    assert_relative_eq!(relaxed.noise_at(3), 0.01, max_relative = 1e-12);
}
