//! Perturbation norms, ε-balls, the [-1, 1] input box and the two units distances are reported in.
//!
//! Inputs live in [-1, 1] (the data scaling of the whole workspace), so every ε and distance the
//! attacks compute is in this **internal** scale. The paper's Fig. 5 reports distances on the
//! [0, 255] **pixel** scale; one internal unit is [`PIXEL_SCALE`] = 127.5 pixel levels (for both
//! norms, since both are homogeneous of degree one).

use rand::Rng;
use rand_distr::StandardNormal;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{AttackError, Result};

/// Pixel levels per internal unit: [-1, 1] spans 2 internal units and 255 pixel levels.
pub const PIXEL_SCALE: f64 = 127.5;

/// Lower bound of the input box.
pub const BOX_MIN: f64 = -1.0;
/// Upper bound of the input box.
pub const BOX_MAX: f64 = 1.0;

/// Converts an ε or distance from the internal [-1, 1] scale to the [0, 255] pixel scale.
pub fn to_pixel_scale(internal: f64) -> f64 {
    internal * PIXEL_SCALE
}

/// Converts an ε or distance from the [0, 255] pixel scale to the internal [-1, 1] scale.
pub fn from_pixel_scale(pixels: f64) -> f64 {
    pixels / PIXEL_SCALE
}

/// Clips inputs into the [-1, 1] box.
pub fn clip_to_box(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_clamp(BOX_MIN, BOX_MAX)?)
}

/// The norm that measures a perturbation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Largest absolute coordinate.
    Linf,
    /// Euclidean norm over all coordinates of one input.
    L2,
}

impl std::fmt::Display for Norm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Norm::Linf => "linf",
            Norm::L2 => "l2",
        })
    }
}

/// Guards the division in the L2 normalisations against an exactly zero vector.
const TINY: f64 = 1e-12;

/// Shape `[N, 1, 1, ...]` that broadcasts one value per sample over a tensor of `shape`.
fn per_sample_shape(shape: &[i64]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len().max(1)];
    if let Some(&n) = shape.first() {
        s[0] = n;
    }
    s
}

/// One value per sample as a `[N, 1, 1, ...]` tensor matching `like`'s shape, kind and device.
pub(crate) fn per_sample(values: &[f64], like: &Tensor) -> Result<Tensor> {
    let shape = like.size();
    let n = shape.first().copied().unwrap_or(0);
    if values.len() as i64 != n {
        return Err(AttackError::InvalidArgument(format!(
            "expected one value per input ({n}), got {}",
            values.len()
        )));
    }
    Ok(Tensor::f_from_slice(values)?
        .f_to_kind(like.f_kind()?)?
        .f_to_device(like.device())?
        .f_reshape(per_sample_shape(&shape))?)
}

impl Norm {
    /// Per-sample norm of `delta` (`[N, ...]`), `[N]`, in the tensor's own units.
    pub fn magnitudes(&self, delta: &Tensor) -> Result<Tensor> {
        let flat = delta.f_flatten(1, -1)?;
        Ok(match self {
            Norm::Linf => flat.f_abs()?.f_amax([1i64], false)?,
            Norm::L2 => flat.f_norm_scalaropt_dim(2, [1i64], false)?,
        })
    }

    /// Per-sample distances between `a` and `b` (same shape `[N, ...]`), on the host as `f64`.
    pub fn distances(&self, a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
        if a.size() != b.size() {
            return Err(AttackError::InvalidArgument(format!(
                "distance between tensors of different shapes {:?} and {:?}",
                a.size(),
                b.size()
            )));
        }
        if a.size().first() == Some(&0) {
            return Ok(Vec::new());
        }
        let d = self
            .magnitudes(
                &a.f_to_kind(Kind::Double)?
                    .f_sub(&b.f_to_kind(Kind::Double)?)?,
            )?
            .f_to_device(Device::Cpu)?;
        Ok(Vec::<f64>::try_from(&d)?)
    }

    /// Projects each sample of `delta` onto its ε-ball (`eps` holds one radius per sample).
    ///
    /// L∞ clamps every coordinate to `[-ε, ε]`; L2 rescales samples whose norm exceeds ε.
    pub fn project(&self, delta: &Tensor, eps: &[f64]) -> Result<Tensor> {
        let eps = per_sample(eps, delta)?;
        Ok(match self {
            Norm::Linf => delta.f_minimum(&eps)?.f_maximum(&eps.f_neg()?)?,
            Norm::L2 => {
                let norms = self
                    .magnitudes(delta)?
                    .f_reshape(per_sample_shape(&delta.size()))?;
                // min(1, ε/‖δ‖): samples already inside the ball are left untouched.
                let scale = eps.f_div(&norms.f_clamp_min(TINY)?)?.f_clamp_max(1.0)?;
                delta.f_mul(&scale)?
            }
        })
    }

    /// The steepest-ascent direction for a gradient under this norm: `sign(g)` for L∞ (unit
    /// L∞ norm) and `g / ‖g‖₂` for L2 (unit L2 norm; zero gradients stay zero).
    pub fn steepest_direction(&self, grad: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Norm::Linf => grad.f_sign()?,
            Norm::L2 => {
                let norms = self
                    .magnitudes(grad)?
                    .f_reshape(per_sample_shape(&grad.size()))?;
                grad.f_div(&norms.f_clamp_min(TINY)?)?
            }
        })
    }

    /// A perturbation drawn uniformly from each sample's ε-ball, shaped like `like`, drawn from
    /// `rng` on the CPU and moved to `like`'s device.
    ///
    /// L∞: independent `U(-ε, ε)` coordinates. L2: a uniformly random direction (normalised
    /// Gaussian) times `ε · u^(1/d)` with `u ~ U(0, 1)` and `d` the number of coordinates, which
    /// is uniform in volume.
    pub fn random_in_ball(&self, like: &Tensor, eps: &[f64], rng: &mut Pcg64) -> Result<Tensor> {
        let shape = like.size();
        let n = shape.first().copied().unwrap_or(0).max(0) as usize;
        let numel: usize = shape.iter().map(|&d| d.max(0) as usize).product();
        let dim = numel.checked_div(n).unwrap_or(0);
        if eps.len() != n {
            return Err(AttackError::InvalidArgument(format!(
                "expected one radius per input ({n}), got {}",
                eps.len()
            )));
        }
        let kind = like.f_kind()?;
        let device = like.device();
        let to_tensor = |values: Vec<f32>| -> Result<Tensor> {
            Ok(Tensor::f_from_slice(&values)?
                .f_reshape(shape.as_slice())?
                .f_to_kind(kind)?
                .f_to_device(device)?)
        };
        match self {
            Norm::Linf => {
                let values: Vec<f32> = (0..numel).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                let unit = to_tensor(values)?;
                Ok(unit.f_mul(&per_sample(eps, like)?)?)
            }
            Norm::L2 => {
                let mut values = Vec::with_capacity(numel);
                for &eps_i in eps {
                    let gauss: Vec<f64> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
                    let norm = gauss.iter().map(|g| g * g).sum::<f64>().sqrt().max(TINY);
                    let u: f64 = rng.random_range(0.0..1.0);
                    let radius = eps_i * u.powf(1.0 / dim.max(1) as f64);
                    values.extend(gauss.iter().map(|g| (g / norm * radius) as f32));
                }
                to_tensor(values)
            }
        }
    }
}
