//! Preprocessing as in the JEM paper: images in `[0, 1]` are scaled to the
//! model range `[-1, 1]` (`x * 2 - 1`) and get additive Gaussian noise
//! (sigma 0.03, at training *and* evaluation time). Training images are
//! first augmented: reflect-pad by 4, random crop back to the original
//! size, and a random horizontal flip (off for digit sets, MNIST and SVHN,
//! where a mirrored digit is a different symbol or none).
//!
//! Randomness comes from a caller-owned [`rand_pcg::Pcg64`], never from
//! libtorch's global generator, so results depend only on the seed and are
//! reproducible even when tests run in parallel.

use rand::Rng;
use rand_distr::StandardNormal;
use rand_pcg::Pcg64;
use tch::{Kind, Tensor};

use crate::error::{DataError, Result};

/// The paper's noise standard deviation (in model units).
pub const DEFAULT_SIGMA: f64 = 0.03;
/// The paper's reflect padding before the random crop.
pub const DEFAULT_PAD: usize = 4;

/// `[0, 1]` → `[-1, 1]`: `x * 2 - 1`.
pub fn to_model_range(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?)
}

/// `[-1, 1]` → `[0, 1]`: `(x + 1) / 2` (for saving samples as images).
pub fn from_model_range(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_add_scalar(1.0)?.f_div_scalar(2.0)?)
}

/// `x + sigma * N(0, 1)`, the noise drawn from `rng` on the CPU and moved
/// to `x`'s device and kind. `sigma = 0` returns `x` unchanged.
pub fn add_gaussian_noise(x: &Tensor, sigma: f64, rng: &mut Pcg64) -> Result<Tensor> {
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(DataError::InvalidArgument(format!(
            "noise sigma must be finite and >= 0, got {sigma}"
        )));
    }
    if sigma == 0.0 {
        return Ok(x.shallow_clone());
    }
    let numel = x.numel();
    let noise: Vec<f32> = (0..numel)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    let noise = Tensor::f_from_slice(&noise)?
        .f_reshape(x.size())?
        .f_to_kind(x.kind())?
        .f_to_device(x.device())?;
    Ok(x.f_add(&noise.f_mul_scalar(sigma)?)?)
}

/// Training-time augmentation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Reflect padding on each side before the random crop (0: no crop).
    pub pad: usize,
    /// Flip each image left-right with probability 1/2.
    pub hflip: bool,
}

impl Default for Augment {
    fn default() -> Self {
        Augment {
            pad: DEFAULT_PAD,
            hflip: true,
        }
    }
}

/// Augments a `[N, C, H, W]` float batch: per image, reflect-pad by
/// `pad`, crop an `H x W` window at a random offset, then maybe flip
/// horizontally. Offsets and flips are drawn from `rng` image by image.
pub fn augment_batch(x: &Tensor, augment: &Augment, rng: &mut Pcg64) -> Result<Tensor> {
    let size = x.size();
    let &[n, _, h, w] = size.as_slice() else {
        return Err(DataError::InvalidArgument(format!(
            "augmentation needs a [N, C, H, W] batch, got {size:?}"
        )));
    };
    let pad = augment.pad as i64;
    if pad > 0 && (pad >= h || pad >= w) {
        return Err(DataError::InvalidArgument(format!(
            "reflect padding {pad} must be smaller than the image side ({h}x{w})"
        )));
    }
    if n == 0 || (pad == 0 && !augment.hflip) {
        return Ok(x.shallow_clone());
    }
    let padded = if pad > 0 {
        x.f_reflection_pad2d([pad, pad, pad, pad])?
    } else {
        x.shallow_clone()
    };
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let dy = rng.random_range(0..=2 * pad);
        let dx = rng.random_range(0..=2 * pad);
        let flip = augment.hflip && rng.random_bool(0.5);
        let mut img = padded.f_get(i)?.f_narrow(1, dy, h)?.f_narrow(2, dx, w)?;
        if flip {
            img = img.f_flip([2])?;
        }
        out.push(img);
    }
    Ok(Tensor::f_stack(&out, 0)?)
}

/// The full pipeline for one split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    /// Standard deviation of the additive noise, in model units.
    pub sigma: f64,
    /// Augmentation for training batches (`None`: no augmentation).
    pub augment: Option<Augment>,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            sigma: DEFAULT_SIGMA,
            augment: Some(Augment::default()),
        }
    }
}

impl Preprocess {
    /// Training: augment (if configured), scale to `[-1, 1]`, add noise.
    /// `x` is a `[0, 1]` batch.
    pub fn train(&self, x: &Tensor, rng: &mut Pcg64) -> Result<Tensor> {
        let x = x.f_to_kind(Kind::Float)?;
        let x = match &self.augment {
            Some(a) => augment_batch(&x, a, rng)?,
            None => x,
        };
        add_gaussian_noise(&to_model_range(&x)?, self.sigma, rng)
    }

    /// Evaluation (test, validation and OOD sets): scale to `[-1, 1]` and
    /// add noise; no augmentation.
    pub fn eval(&self, x: &Tensor, rng: &mut Pcg64) -> Result<Tensor> {
        let x = x.f_to_kind(Kind::Float)?;
        add_gaussian_noise(&to_model_range(&x)?, self.sigma, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp(n: i64, c: i64, h: i64, w: i64) -> Tensor {
        Tensor::arange(n * c * h * w, (Kind::Float, tch::Device::Cpu)).reshape([n, c, h, w])
    }

    #[test]
    fn model_range_round_trip() {
        let x = Tensor::from_slice(&[0.0f32, 0.25, 1.0]);
        let y = to_model_range(&x).unwrap();
        assert_eq!(Vec::<f32>::try_from(&y).unwrap(), vec![-1.0, -0.5, 1.0]);
        let z = from_model_range(&y).unwrap();
        assert_eq!(Vec::<f32>::try_from(&z).unwrap(), vec![0.0, 0.25, 1.0]);
    }

    #[test]
    fn noise_is_seeded_and_has_the_right_scale() {
        let x = Tensor::zeros([20_000], (Kind::Float, tch::Device::Cpu));
        let a = add_gaussian_noise(&x, 0.03, &mut Pcg64::seed_from_u64(1)).unwrap();
        let b = add_gaussian_noise(&x, 0.03, &mut Pcg64::seed_from_u64(1)).unwrap();
        let c = add_gaussian_noise(&x, 0.03, &mut Pcg64::seed_from_u64(2)).unwrap();
        assert!(a.equal(&b));
        assert!(!a.equal(&c));
        let std = a.std(true).double_value(&[]);
        assert!((std - 0.03).abs() < 0.001, "{std}");
        assert!(a.mean(Kind::Float).double_value(&[]).abs() < 0.001);
        assert!(add_gaussian_noise(&x, -1.0, &mut Pcg64::seed_from_u64(1)).is_err());
    }

    #[test]
    fn augmentation_is_a_shifted_window_of_the_reflect_padded_image() {
        let x = ramp(16, 2, 6, 5);
        let aug = Augment {
            pad: 2,
            hflip: true,
        };
        let a = augment_batch(&x, &aug, &mut Pcg64::seed_from_u64(3)).unwrap();
        let b = augment_batch(&x, &aug, &mut Pcg64::seed_from_u64(3)).unwrap();
        assert!(a.equal(&b));
        assert_eq!(a.size(), x.size());

        // Replay the draws and check each image against a hand-made window.
        let mut rng = Pcg64::seed_from_u64(3);
        let mut flips = 0;
        for i in 0..16 {
            let dy = rng.random_range(0..=4i64);
            let dx = rng.random_range(0..=4i64);
            let flip = rng.random_bool(0.5);
            flips += usize::from(flip);
            for c in 0..2 {
                for y in 0..6 {
                    for xx in 0..5 {
                        // Reflect (without repeating the edge) into range.
                        let reflect = |v: i64, len: i64| {
                            let v = v - 2;
                            if v < 0 {
                                -v
                            } else if v >= len {
                                2 * (len - 1) - v
                            } else {
                                v
                            }
                        };
                        let src_x = if flip { 4 - xx } else { xx };
                        let sy = reflect(y + dy, 6);
                        let sx = reflect(src_x + dx, 5);
                        assert_eq!(
                            a.double_value(&[i, c, y, xx]),
                            x.double_value(&[i, c, sy, sx]),
                            "image {i} c {c} y {y} x {xx}"
                        );
                    }
                }
            }
        }
        assert!(flips > 0 && flips < 16);
    }

    #[test]
    fn no_flip_when_disabled_and_bad_padding_is_an_error() {
        let x = ramp(8, 1, 4, 4);
        let same = augment_batch(
            &x,
            &Augment {
                pad: 0,
                hflip: false,
            },
            &mut Pcg64::seed_from_u64(0),
        )
        .unwrap();
        assert!(same.equal(&x));
        assert!(augment_batch(
            &x,
            &Augment {
                pad: 4,
                hflip: false
            },
            &mut Pcg64::seed_from_u64(0)
        )
        .is_err());
    }

    #[test]
    fn pipeline_ranges() {
        let x = Tensor::full([4, 3, 8, 8], 1.0, (Kind::Float, tch::Device::Cpu));
        let p = Preprocess {
            sigma: 0.0,
            augment: Some(Augment::default()),
        };
        let t = p.train(&x, &mut Pcg64::seed_from_u64(0)).unwrap();
        assert_eq!(t.min().double_value(&[]), 1.0);
        let e = Preprocess::default()
            .eval(&x, &mut Pcg64::seed_from_u64(0))
            .unwrap();
        let d = (e - 1.0).abs().max().double_value(&[]);
        assert!(d > 0.0 && d < 0.2, "{d}");
    }
}
