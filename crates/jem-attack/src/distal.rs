//! Distal adversarials (Sec. 5.4, Fig. 6, after Schott et al. 2018): starting from uniform noise,
//! climb `log p(y = c | x)` inside the [-1, 1] box until the classifier is confident,
//! `p(c | x) > 0.9`. A non-robust classifier gets there with images that still look like noise;
//! JEM's images grow class features on the way.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{AttackError, Result};
use crate::norm::{clip_to_box, Norm};
use crate::target::AttackTarget;

/// Settings of the distal-adversarial search. `Default`: class 0, threshold 0.9 (the paper),
/// signed-gradient steps of 0.01 (L∞ direction), at most 1000 steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistalConfig {
    /// The class c whose probability is raised (the paper: "car", class 1 of CIFAR-10).
    pub class: i64,
    /// Stop a sample once `p(c | x)` exceeds this.
    pub threshold: f64,
    /// Length of one step under `direction`'s norm, internal units.
    pub step_size: f64,
    /// Steepest-ascent geometry: `Linf` steps along `sign(∇)`, `L2` along `∇/‖∇‖₂`.
    pub direction: Norm,
    /// Most gradient steps per sample.
    pub max_steps: usize,
    /// Seed of the starting noise and of the target's randomness.
    pub seed: u64,
}

impl Default for DistalConfig {
    fn default() -> Self {
        Self {
            class: 0,
            threshold: 0.9,
            step_size: 0.01,
            direction: Norm::Linf,
            max_steps: 1000,
            seed: 0,
        }
    }
}

impl DistalConfig {
    /// Validates every field, naming the first one out of range (`num_classes` bounds `class`).
    pub fn check(&self, num_classes: i64) -> Result<()> {
        let invalid = |field, value: String, allowed| {
            AttackError::from(jem_params::InvalidParam::new(
                "DistalConfig",
                field,
                value,
                allowed,
            ))
        };
        if !(0..num_classes).contains(&self.class) {
            return Err(invalid(
                "class",
                self.class.to_string(),
                "a class index of the target",
            ));
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(invalid(
                "threshold",
                self.threshold.to_string(),
                "in (0, 1)",
            ));
        }
        if !(self.step_size.is_finite() && self.step_size > 0.0) {
            return Err(invalid(
                "step_size",
                self.step_size.to_string(),
                "finite and > 0",
            ));
        }
        Ok(())
    }
}

/// Distal adversarials and how far each got.
#[derive(Debug)]
pub struct DistalOutcome {
    /// The final images, `[count, ...image_shape]`, in [-1, 1].
    pub images: Tensor,
    /// `p(c | image)` at each image's last evaluation.
    pub probabilities: Vec<f64>,
    /// Whether the probability exceeded the threshold.
    pub reached: Vec<bool>,
    /// Gradient steps taken per image.
    pub steps: Vec<usize>,
}

/// Generates `count` distal adversarials of shape `image_shape` (e.g. `[3, 32, 32]`) on `device`.
pub fn distal_adversarials(
    target: &dyn AttackTarget,
    count: usize,
    image_shape: &[i64],
    device: Device,
    cfg: &DistalConfig,
) -> Result<DistalOutcome> {
    let classes = target.num_classes();
    cfg.check(classes)?;
    if image_shape.is_empty() || image_shape.iter().any(|&d| d < 1) {
        return Err(AttackError::InvalidArgument(format!(
            "`image_shape`: expected positive dimensions, got {image_shape:?}"
        )));
    }
    let mut shape = vec![count as i64];
    shape.extend_from_slice(image_shape);
    let numel: usize = shape.iter().map(|&d| d as usize).product();
    let mut rng = Pcg64::seed_from_u64(cfg.seed);
    let noise: Vec<f32> = (0..numel).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let start = Tensor::f_from_slice(&noise)?
        .f_reshape(shape.as_slice())?
        .f_to_device(device)?;

    let mut images = start.copy();
    let mut probabilities = vec![0.0; count];
    let mut steps = vec![0usize; count];
    let mut reached = vec![false; count];
    // Rows still climbing, and their current images.
    let mut rows: Vec<i64> = (0..count as i64).collect();
    let mut current = start;
    let threshold_log = cfg.threshold.ln();

    for t in 0..=cfg.max_steps {
        if rows.is_empty() {
            break;
        }
        let n = rows.len() as i64;
        let leaf = current.detach().set_requires_grad(true);
        let (log_pc, grad) = tch::with_grad(|| -> Result<(Tensor, Tensor)> {
            let log_probs = target.log_probs(&leaf, &mut rng)?;
            if log_probs.size() != [n, classes] {
                return Err(AttackError::InvalidArgument(format!(
                    "target output: expected log-probabilities of shape [{n}, {classes}], got {:?}",
                    log_probs.size()
                )));
            }
            let log_pc = log_probs.f_select(1, cfg.class)?;
            let grad =
                Tensor::f_run_backward(&[log_pc.f_sum(Kind::Float)?], &[&leaf], false, false)?
                    .pop()
                    .ok_or_else(|| {
                        AttackError::InvalidArgument("autograd returned no gradient".into())
                    })?;
            Ok((log_pc.detach(), grad))
        })?;
        let log_pc =
            Vec::<f64>::try_from(&log_pc.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?)?;
        if log_pc.iter().any(|v| v.is_nan()) {
            return Err(AttackError::NonFinite {
                attack: "distal",
                quantity: "class log-probability",
            });
        }
        let mut keep = Vec::with_capacity(rows.len());
        for (j, &row) in rows.iter().enumerate() {
            let i = row as usize;
            probabilities[i] = log_pc[j].exp();
            steps[i] = t;
            reached[i] = log_pc[j] > threshold_log;
            keep.push(!reached[i] && t < cfg.max_steps);
        }
        let idx = Tensor::f_from_slice(&rows)?.f_to_device(device)?;
        images = images.f_index_copy(0, &idx, &current.detach())?;
        if keep.iter().all(|k| !k) {
            break;
        }
        let local: Vec<i64> = (0..keep.len() as i64)
            .filter(|&j| keep[j as usize])
            .collect();
        let local_idx = Tensor::f_from_slice(&local)?.f_to_device(device)?;
        rows = local.iter().map(|&j| rows[j as usize]).collect();
        let grad = grad.f_index_select(0, &local_idx)?;
        if !bool::try_from(grad.f_isfinite()?.f_all()?)? {
            return Err(AttackError::NonFinite {
                attack: "distal",
                quantity: "input gradient",
            });
        }
        let direction = cfg.direction.steepest_direction(&grad)?;
        current = clip_to_box(
            &current
                .f_index_select(0, &local_idx)?
                .f_add(&direction.f_mul_scalar(cfg.step_size)?)?,
        )?;
    }
    tracing::debug!(
        count,
        reached = reached.iter().filter(|&&r| r).count(),
        "distal adversarials"
    );
    Ok(DistalOutcome {
        images,
        probabilities,
        reached,
        steps,
    })
}
