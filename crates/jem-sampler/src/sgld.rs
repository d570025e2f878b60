//! Stochastic gradient Langevin dynamics on the inputs.
//!
//! One step, for step `t` of a run:
//!
//! ```text
//! x ← clamp( x + clamp_δ(α_t · clip(∂ log p(x)/∂x)) + s_t · ε ),   ε ~ N(0, I)
//! ```
//!
//! with `s_t = σ` in the paper's relaxed mode and `s_t = sqrt(2 α_t)` in proper Langevin mode
//! (see [`SgldMode`](crate::SgldMode)). Gradients are taken with respect to the input only
//! (`torch.autograd.grad` semantics through [`Tensor::f_run_backward`]), so the parameters of the
//! network behind the density never accumulate a `.grad` while sampling.
//!
//! # Discretisation bias of proper Langevin
//!
//! Unadjusted Langevin with a fixed step does not sample `p` exactly. For a Gaussian target with
//! variance `s²` along a direction, the chain is the AR(1) process
//! `x' = (1 - α/s²) x + ... + sqrt(2α) ε`, whose stationary variance is `s² / (1 - α/(2s²))`,
//! i.e. inflated by a relative `α/(2s²) + O(α²)`, while its mean is exact. A decaying step size
//! ([`StepDecay`](crate::StepDecay)) removes the bias asymptotically (Welling & Teh, 2011).

use rand_pcg::Pcg64;
use tch::{Kind, Tensor};

use crate::config::SgldConfig;
use crate::density::LogDensity;
use crate::error::{Result, SamplerError};
use crate::noise;

/// Diagnostics of one chain run, all averaged over the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SgldStats {
    /// Mean `log p(x)` at the start of each step (`steps` entries).
    pub log_density_per_step: Vec<f64>,
    /// Mean per-sample L2 norm of `∂ log p(x)/∂x` at each step, before clipping.
    pub grad_norm_per_step: Vec<f64>,
    /// Mean `log p(x)` of the initial batch.
    pub log_density_before: f64,
    /// Mean `log p(x)` of the returned batch: one extra forward pass without gradients, taken by
    /// [`sgld()`] and [`refine()`](crate::refine()); `None` from the training-time
    /// [`sample()`](crate::sample()), whose caller evaluates the samples anyway.
    pub log_density_after: Option<f64>,
}

impl SgldStats {
    /// Mean input-gradient norm at the last step (`None` for a zero-step run).
    pub fn last_grad_norm(&self) -> Option<f64> {
        self.grad_norm_per_step.last().copied()
    }

    /// How much the chains raised the mean log-density (when the final density was evaluated).
    pub fn log_density_gain(&self) -> Option<f64> {
        self.log_density_after.map(|a| a - self.log_density_before)
    }
}

/// Runs `cfg.steps` SGLD steps from `x0` (`[N, ...]`, floating point) and returns the detached
/// samples (on `x0`'s device, with its dtype) and their diagnostics.
///
/// Works inside [`tch::no_grad`] too: gradient recording is switched on for the input gradients.
pub fn sgld(
    density: &dyn LogDensity,
    x0: &Tensor,
    cfg: &SgldConfig,
    rng: &mut Pcg64,
) -> Result<(Tensor, SgldStats)> {
    run_chain(density, x0, cfg.steps, cfg, false, true, rng)
}

/// [`sgld()`] without the final evaluation of the density (`log_density_after` is `None`): the
/// training loop's sampling step, which evaluates the samples itself.
pub(crate) fn sgld_unscored(
    density: &dyn LogDensity,
    x0: &Tensor,
    cfg: &SgldConfig,
    rng: &mut Pcg64,
) -> Result<(Tensor, SgldStats)> {
    run_chain(density, x0, cfg.steps, cfg, false, false, rng)
}

/// The SGLD loop shared by [`sgld`] and [`refine`](crate::refine()).
///
/// With `create_graph`, every step stays in the autograd graph (no detaching, gradients computed
/// with `create_graph = true`), so the result can be differentiated with respect to `x0` when `x0`
/// requires grad; otherwise each step starts from a fresh leaf and the graph is dropped per step.
/// With `final_eval` the returned batch's density is evaluated once more for the statistics.
pub(crate) fn run_chain(
    density: &dyn LogDensity,
    x0: &Tensor,
    steps: usize,
    cfg: &SgldConfig,
    create_graph: bool,
    final_eval: bool,
    rng: &mut Pcg64,
) -> Result<(Tensor, SgldStats)> {
    cfg.check()?;
    let shape = x0.size();
    let Some(&n) = shape.first() else {
        return Err(SamplerError::InvalidArgument(
            "SGLD inputs need a leading batch dimension, got a scalar".into(),
        ));
    };
    let kind = x0.f_kind()?;
    if !x0.f_is_floating_point()? {
        return Err(SamplerError::InvalidArgument(format!(
            "SGLD inputs must be floating point, got {kind:?}"
        )));
    }
    let device = x0.device();
    // Broadcast shape for per-sample factors: [N, 1, 1, ...].
    let mut per_sample = vec![1i64; shape.len()];
    per_sample[0] = n;

    let mut x = if create_graph && x0.requires_grad() {
        x0.shallow_clone()
    } else {
        x0.detach().set_requires_grad(true)
    };
    let mut logp_means = Vec::with_capacity(steps);
    let mut grad_norms = Vec::with_capacity(steps);

    tch::with_grad(|| -> Result<()> {
        for t in 0..steps {
            let logp = density.log_density(&x)?;
            check_log_density(&logp, n)?;
            if !logp.requires_grad() {
                return Err(SamplerError::InvalidArgument(
                    "the log-density does not depend differentiably on its input".into(),
                ));
            }
            let grad = Tensor::f_run_backward(
                &[logp.f_sum(logp.f_kind()?)?],
                &[&x],
                create_graph,
                create_graph,
            )?
            .pop()
            .ok_or_else(|| SamplerError::InvalidArgument("autograd returned no gradient".into()))?;

            let norms = grad
                .f_flatten(1, -1)?
                .f_norm_scalaropt_dim(2, [1i64], false)?;
            logp_means.push(logp.detach().f_mean(Kind::Double)?);
            grad_norms.push(norms.detach().f_mean(Kind::Double)?);

            let grad = match cfg.grad_clip {
                Some(max_norm) => {
                    // min(1, c/‖g‖) per sample; the epsilon only guards ‖g‖ = 0.
                    let scale = (norms + 1e-12)
                        .f_reciprocal()?
                        .f_mul_scalar(max_norm)?
                        .f_clamp_max(1.0)?;
                    grad.f_mul(&scale.f_reshape(per_sample.as_slice())?)?
                }
                None => grad,
            };

            let alpha = cfg.step_size_at(t);
            let sigma = cfg.noise_at(t);
            let base = if create_graph {
                x.shallow_clone()
            } else {
                x.detach()
            };
            let mut step = grad.f_mul_scalar(alpha)?;
            if let Some(d) = cfg.step_clamp {
                step = step.f_clamp(-d, d)?;
            }
            let mut next = base.f_add(&step)?;
            // Zero noise consumes no randomness, so noise-free runs leave the generator untouched.
            if sigma > 0.0 {
                let eps = noise::standard_normal(&shape, kind, device, rng)?;
                next = next.f_add(&eps.f_mul_scalar(sigma)?)?;
            }
            if let Some((lo, hi)) = cfg.clamp {
                next = next.f_clamp(lo, hi)?;
            }
            x = if create_graph {
                next
            } else {
                next.detach().set_requires_grad(true)
            };
        }
        Ok(())
    })?;

    let after = if final_eval {
        let after_tensor = tch::no_grad(|| -> Result<Tensor> {
            let logp = density.log_density(&x.detach())?;
            check_log_density(&logp, n)?;
            Ok(logp.f_mean(Kind::Double)?)
        })?;
        Some(scalar(&after_tensor)?)
    } else {
        None
    };
    let logp_per_step = to_vec(&logp_means)?;
    let grad_per_step = to_vec(&grad_norms)?;
    for (t, (&lp, &gn)) in logp_per_step.iter().zip(&grad_per_step).enumerate() {
        tracing::debug!(
            step = t,
            step_size = cfg.step_size_at(t),
            noise = cfg.noise_at(t),
            log_density = lp,
            grad_norm = gn,
            "sgld step"
        );
        if !lp.is_finite() {
            return Err(SamplerError::NonFinite {
                quantity: "log-density",
                step: t,
            });
        }
        if !gn.is_finite() {
            return Err(SamplerError::NonFinite {
                quantity: "input gradient",
                step: t,
            });
        }
    }
    if after.is_some_and(|a| !a.is_finite()) {
        return Err(SamplerError::NonFinite {
            quantity: "log-density",
            step: steps,
        });
    }
    // A zero-step run never evaluated the start; it is the end.
    let before = logp_per_step.first().copied().or(after).unwrap_or(f64::NAN);
    tracing::debug!(
        steps,
        log_density_before = before,
        log_density_after = after,
        "sgld run"
    );

    let x = if create_graph { x } else { x.detach() };
    Ok((
        x,
        SgldStats {
            log_density_per_step: logp_per_step,
            grad_norm_per_step: grad_per_step,
            log_density_before: before,
            log_density_after: after,
        },
    ))
}

/// The density must return exactly one value per sample.
fn check_log_density(logp: &Tensor, n: i64) -> Result<()> {
    let actual = logp.size();
    if actual != [n] {
        return Err(SamplerError::ShapeMismatch {
            context: "log-density output (one value per sample)",
            expected: vec![n],
            actual,
        });
    }
    Ok(())
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.f_to_device(tch::Device::Cpu)?.f_double_value(&[])?)
}

/// Brings a list of on-device scalars to the host with one synchronisation.
fn to_vec(scalars: &[Tensor]) -> Result<Vec<f64>> {
    if scalars.is_empty() {
        return Ok(Vec::new());
    }
    let stacked = Tensor::f_stack(scalars, 0)?.f_to_device(tch::Device::Cpu)?;
    Ok(Vec::<f64>::try_from(&stacked)?)
}
