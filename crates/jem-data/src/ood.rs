//! The out-of-distribution sets of the JEM paper that are built rather than
//! loaded: Uniform, Constant and Interp.
//!
//! **Units.** Every set here is returned in the same `[0, 1]` pixel units as
//! the loaders, so it goes through the same evaluation preprocessing
//! ([`crate::preprocess::to_model_range`] then Gaussian noise) as the
//! in-distribution test set:
//!
//! | set      | in `[0, 1]` units (returned)   | in model units `[-1, 1]`       |
//! |----------|--------------------------------|--------------------------------|
//! | Uniform  | U(0, 1) per value              | U(-1, 1), as in the paper      |
//! | Constant | every value 0.5                | every value 0 ("all examples = 0") |
//! | Interp   | (x_k + x_{k-B}) / 2            | the same mix of scaled images  |
//!
//! Labels are all 0 (the sets have no classes).

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use tch::{Kind, Tensor};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// Batch size the reference code used when building "CIFAR10 Interp".
pub const INTERP_BATCH: usize = 100;

fn zero_labels(n: usize) -> Result<Tensor> {
    Ok(Tensor::f_zeros(
        [n as i64],
        (Kind::Int64, tch::Device::Cpu),
    )?)
}

fn check_shape(n: usize, shape: [usize; 3]) -> Result<i64> {
    let numel = shape
        .iter()
        .try_fold(n, |a, &d| a.checked_mul(d))
        .filter(|&v| i64::try_from(v).is_ok())
        .ok_or_else(|| {
            DataError::InvalidArgument(format!("{n} images of {shape:?} is too many"))
        })?;
    Ok(numel as i64)
}

/// `n` images of shape `[C, H, W]` with every value drawn from U(0, 1) in
/// `[0, 1]` units — U(-1, 1) once scaled to the model range. Deterministic
/// for a given `seed` (drawn with a PCG64 generator, independent of
/// libtorch's global RNG).
pub fn uniform(n: usize, shape: [usize; 3], seed: u64) -> Result<Dataset> {
    let numel = check_shape(n, shape)?;
    let mut rng = Pcg64::seed_from_u64(seed);
    let values: Vec<f32> = (0..numel).map(|_| rng.random::<f32>()).collect();
    let dims = [n as i64, shape[0] as i64, shape[1] as i64, shape[2] as i64];
    let images = Tensor::f_from_slice(&values)?.f_reshape(dims)?;
    Dataset::new(images, zero_labels(n)?, 1)
}

/// `n` images of shape `[C, H, W]` with every value 0.5 in `[0, 1]` units,
/// i.e. exactly 0 in the model's `[-1, 1]` range (the paper's "Constant"
/// set, "all examples = 0").
pub fn constant(n: usize, shape: [usize; 3]) -> Result<Dataset> {
    check_shape(n, shape)?;
    let dims = [n as i64, shape[0] as i64, shape[1] as i64, shape[2] as i64];
    let images = Tensor::f_full(dims, 0.5, (Kind::Float, tch::Device::Cpu))?;
    Dataset::new(images, zero_labels(n)?, 1)
}

/// The "Interp" set built from a test set as the reference code builds
/// "CIFAR10 Interp": the test set is cut, in order, into batches of
/// `batch` images; every image of batch `i > 0` is averaged with the image
/// at the same position of batch `i - 1`. Image `k >= batch` thus becomes
/// `(x[k] + x[k - batch]) / 2`, giving `N - batch` images (9,900 for a
/// 10,000-image test set with `batch = 100`).
///
/// Difference from the reference: it adds sigma-noise to both inputs and
/// again after mixing; here the clean images are mixed and noise is added
/// once, by the usual evaluation preprocessing.
pub fn interp(test: &Dataset, batch: usize) -> Result<Dataset> {
    if batch == 0 {
        return Err(DataError::InvalidArgument(
            "Interp batch size must be positive".into(),
        ));
    }
    let n = test.len();
    let out_n = n.saturating_sub(batch);
    let [c, h, w] = test.image_shape();
    if out_n == 0 {
        let images = Tensor::f_zeros(
            [0, c as i64, h as i64, w as i64],
            (test.images.kind(), test.images.device()),
        )?;
        return Dataset::new(images, zero_labels(0)?, 1);
    }
    let later = test.images.f_narrow(0, batch as i64, out_n as i64)?;
    let earlier = test.images.f_narrow(0, 0, out_n as i64)?;
    let images = later.f_add(&earlier)?.f_div_scalar(2.0)?;
    Dataset::new(images, zero_labels(out_n)?, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interp_count_and_mixing_formula() {
        // 7 single-pixel images with values 0..6, batches of 3:
        // batch 1 = [3, 4, 5] mixes with [0, 1, 2]; batch 2 = [6] with [3].
        let values: Vec<f32> = (0..7).map(|v| v as f32).collect();
        let images = Tensor::from_slice(&values).reshape([7, 1, 1, 1]);
        let labels = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6, 7]);
        let test = Dataset::new(images, labels, 10).unwrap();
        let mixed = interp(&test, 3).unwrap();
        assert_eq!(mixed.len(), 4);
        let got = Vec::<f32>::try_from(mixed.images.flatten(0, -1)).unwrap();
        assert_eq!(got, vec![1.5, 2.5, 3.5, 4.5]);
        assert_eq!(mixed.labels_vec().unwrap(), vec![0, 0, 0, 0]);

        // The paper-sized case: 10,000 images in batches of 100 give 9,900.
        let big = Dataset::new(
            Tensor::zeros([10_000, 1, 1, 1], (Kind::Float, tch::Device::Cpu)),
            Tensor::zeros([10_000], (Kind::Int64, tch::Device::Cpu)),
            10,
        )
        .unwrap();
        assert_eq!(interp(&big, INTERP_BATCH).unwrap().len(), 9_900);
        assert_eq!(interp(&test, 7).unwrap().len(), 0);
        assert!(interp(&test, 0).is_err());
    }

    #[test]
    fn uniform_range_and_determinism() {
        let a = uniform(50, [3, 8, 8], 7).unwrap();
        let b = uniform(50, [3, 8, 8], 7).unwrap();
        let c = uniform(50, [3, 8, 8], 8).unwrap();
        assert_eq!(a.images.size(), vec![50, 3, 8, 8]);
        assert!(a.images.equal(&b.images));
        assert!(!a.images.equal(&c.images));
        let min = a.images.min().double_value(&[]);
        let max = a.images.max().double_value(&[]);
        assert!(
            (0.0..0.01).contains(&min) && (0.99..1.0).contains(&max),
            "{min} {max}"
        );
        let mean = a.images.mean(Kind::Float).double_value(&[]);
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        // In model units the set spans (-1, 1).
        let model = crate::preprocess::to_model_range(&a.images).unwrap();
        assert!(model.min().double_value(&[]) < -0.98 && model.max().double_value(&[]) > 0.98);
    }

    #[test]
    fn constant_is_zero_in_model_units() {
        let k = constant(4, [3, 2, 2]).unwrap();
        assert_eq!(k.images.size(), vec![4, 3, 2, 2]);
        assert_eq!(k.images.min().double_value(&[]), 0.5);
        assert_eq!(k.images.max().double_value(&[]), 0.5);
        let model = crate::preprocess::to_model_range(&k.images).unwrap();
        assert_eq!(model.abs().max().double_value(&[]), 0.0);
        assert_eq!(k.labels_vec().unwrap(), vec![0; 4]);
    }
}
