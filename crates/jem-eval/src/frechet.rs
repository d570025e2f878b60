//! Fréchet distance between two feature sets modelled as Gaussians (the
//! "FID" when the features are Inception pool activations):
//!
//! `FD = ‖μ₁ − μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2·Tr((Σ₁Σ₂)^{1/2})`.
//!
//! Means and unbiased covariances (`n − 1`, as `numpy.cov` and pytorch-fid)
//! are accumulated in `f64`. `Σ₁Σ₂` is not symmetric, and a general matrix
//! square root (as `scipy.linalg.sqrtm`) is fragile when the covariances are
//! singular, which they are whenever there are fewer samples than
//! dimensions. Instead we use that `Σ₁Σ₂` is similar to the symmetric PSD
//! matrix `A = Σ₁^{1/2} Σ₂ Σ₁^{1/2}`, so `Tr((Σ₁Σ₂)^{1/2}) = Σᵢ √λᵢ(A)`;
//! both steps need only symmetric eigendecompositions, and eigenvalues that
//! rounding pushed slightly below zero are clamped to 0.

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::Serialize;

use crate::error::{check_finite, check_min_len, EvalError, Result};
use crate::probs::Real;

/// Mean and covariance of a feature set: the sufficient statistics of FD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureStats {
    dim: usize,
    num_samples: Option<usize>,
    mean: Vec<f64>,
    covariance: Vec<f64>,
}

impl FeatureStats {
    /// Statistics of `features`, an `n × dim` row-major matrix (one sample
    /// per row) with `n >= 2`; the covariance is unbiased (divides by `n − 1`).
    ///
    /// Errors on `dim == 0`, a length that is not a multiple of `dim`,
    /// fewer than two rows, or a non-finite entry.
    pub fn from_features<T: Real>(features: &[T], dim: usize) -> Result<Self> {
        Self::from_named_features("features", features, dim)
    }

    fn from_named_features<T: Real>(arg: &'static str, features: &[T], dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(EvalError::ZeroWidth { arg: "dim" });
        }
        if features.len() % dim != 0 {
            return Err(EvalError::RaggedRows {
                arg,
                len: features.len(),
                width: dim,
            });
        }
        let n = features.len() / dim;
        check_min_len(arg, n, 2)?;
        check_finite(arg, features)?;

        let mut mean = vec![0.0f64; dim];
        for row in features.chunks_exact(dim) {
            for (m, &x) in mean.iter_mut().zip(row) {
                *m += x.into();
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);

        // Two passes (centre, then multiply) avoid the cancellation of the
        // one-pass E[xxᵀ] − μμᵀ formula when |μ| is large relative to spread.
        let centred_t = DMatrix::from_fn(dim, n, |j, i| features[i * dim + j].into() - mean[j]);
        let covariance = (&centred_t * centred_t.transpose()) / (n - 1) as f64;
        Ok(Self {
            dim,
            num_samples: Some(n),
            mean,
            covariance: row_major(&covariance),
        })
    }

    /// Precomputed statistics (e.g. from a reference-set file): `mean` of
    /// length `d` and `covariance` as a `d × d` row-major matrix. Only the
    /// symmetric part `(Σ + Σᵀ)/2` of the covariance is used.
    ///
    /// Errors on an empty mean, a covariance of the wrong length, or a
    /// non-finite entry.
    pub fn new(mean: Vec<f64>, covariance: Vec<f64>) -> Result<Self> {
        let dim = mean.len();
        if dim == 0 {
            return Err(EvalError::ZeroWidth { arg: "mean.len()" });
        }
        if covariance.len() != dim * dim {
            return Err(EvalError::LengthMismatch {
                arg_a: "covariance",
                len_a: covariance.len(),
                arg_b: "mean.len()²",
                len_b: dim * dim,
            });
        }
        check_finite("mean", &mean)?;
        check_finite("covariance", &covariance)?;
        Ok(Self {
            dim,
            num_samples: None,
            mean,
            covariance,
        })
    }

    /// Feature dimension `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of samples the statistics came from, if computed here.
    pub fn num_samples(&self) -> Option<usize> {
        self.num_samples
    }

    /// The mean vector (length `d`).
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The covariance matrix, `d × d` row-major.
    pub fn covariance(&self) -> &[f64] {
        &self.covariance
    }

    fn covariance_matrix(&self) -> DMatrix<f64> {
        let c = DMatrix::from_row_slice(self.dim, self.dim, &self.covariance);
        (&c + c.transpose()) * 0.5
    }
}

fn row_major(m: &DMatrix<f64>) -> Vec<f64> {
    // nalgebra stores column-major; the transpose's storage is our row-major.
    m.transpose().as_slice().to_vec()
}

/// Fréchet distance between the Gaussian fits of two `n × dim` row-major
/// feature sets (`n` may differ between them, each at least 2).
///
/// Errors as [`FeatureStats::from_features`], naming `features_1` or
/// `features_2`.
pub fn frechet_distance<T: Real>(features_1: &[T], features_2: &[T], dim: usize) -> Result<f64> {
    let stats_1 = FeatureStats::from_named_features("features_1", features_1, dim)?;
    let stats_2 = FeatureStats::from_named_features("features_2", features_2, dim)?;
    frechet_distance_from_stats(&stats_1, &stats_2)
}

/// Fréchet distance between two sets of precomputed statistics.
///
/// The result is clamped at 0: the exact value is non-negative (it is the
/// squared 2-Wasserstein distance of the Gaussians), so a negative result can
/// only be rounding error. Errors if the dimensions differ or an
/// eigendecomposition fails to converge.
pub fn frechet_distance_from_stats(stats_1: &FeatureStats, stats_2: &FeatureStats) -> Result<f64> {
    if stats_1.dim != stats_2.dim {
        return Err(EvalError::LengthMismatch {
            arg_a: "stats_1.dim",
            len_a: stats_1.dim,
            arg_b: "stats_2.dim",
            len_b: stats_2.dim,
        });
    }
    let mean_term: f64 = stats_1
        .mean
        .iter()
        .zip(&stats_2.mean)
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    let sigma_1 = stats_1.covariance_matrix();
    let sigma_2 = stats_2.covariance_matrix();
    let cross = trace_sqrt_product(&sigma_1, &sigma_2)?;
    let fd = mean_term + sigma_1.trace() + sigma_2.trace() - 2.0 * cross;
    Ok(fd.max(0.0))
}

/// `Tr((Σ₁Σ₂)^{1/2})` for symmetric PSD `Σ₁`, `Σ₂` via symmetric
/// eigendecompositions (see the module docs).
fn trace_sqrt_product(sigma_1: &DMatrix<f64>, sigma_2: &DMatrix<f64>) -> Result<f64> {
    let eigen_1 = symmetric_eigen(sigma_1.clone(), "the first covariance")?;
    let root_eigenvalues = clamped_roots(&eigen_1.eigenvalues);
    let vectors = &eigen_1.eigenvectors;
    let sqrt_1 = vectors * DMatrix::from_diagonal(&root_eigenvalues) * vectors.transpose();
    let a = &sqrt_1 * sigma_2 * &sqrt_1;
    // Symmetric in exact arithmetic; remove the rounding asymmetry before the
    // symmetric solver, which reads only one triangle.
    let a = (&a + a.transpose()) * 0.5;
    let eigenvalues = symmetric_eigen(a, "Σ₁^½ Σ₂ Σ₁^½")?.eigenvalues;
    Ok(clamped_roots(&eigenvalues).sum())
}

/// Square roots of the eigenvalues of a symmetric PSD matrix, with those at
/// or below the solver's noise floor (`d · ε · λ_max`) taken as exactly 0.
///
/// Why: a singular covariance (fewer samples than dimensions) has zero
/// eigenvalues that come back as ±1e-14-ish noise, and `√` amplifies that
/// noise to ~1e-7, which would make FD visibly asymmetric in its arguments.
/// Values below the floor carry no information, so zeroing them loses none.
fn clamped_roots(eigenvalues: &DVector<f64>) -> DVector<f64> {
    let largest = eigenvalues.iter().fold(0.0f64, |m, &l| m.max(l));
    let floor = largest * eigenvalues.len() as f64 * f64::EPSILON;
    eigenvalues.map(|l| if l > floor { l.sqrt() } else { 0.0 })
}

fn symmetric_eigen(
    m: DMatrix<f64>,
    what: &'static str,
) -> Result<SymmetricEigen<f64, nalgebra::Dyn>> {
    // A generous cap (QR sweeps typically need ~2 per eigenvalue) turns a
    // pathological non-convergence into an error instead of a hang.
    let max_iterations = 1000 + 100 * m.nrows();
    SymmetricEigen::try_new(m, f64::EPSILON, max_iterations)
        .ok_or(EvalError::NoConvergence { what })
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn statistics_match_hand_computation() {
        // Rows (1,2), (3,6), (5,4): mean (3,4); cov [[4,2],[2,4]].
        let s = FeatureStats::from_features(&[1.0, 2.0, 3.0, 6.0, 5.0, 4.0], 2).unwrap();
        assert_eq!(s.mean(), &[3.0, 4.0]);
        for (got, want) in s.covariance().iter().zip([4.0, 2.0, 2.0, 4.0]) {
            assert_relative_eq!(*got, want, max_relative = 1e-12);
        }
        assert_eq!(s.num_samples(), Some(3));
    }

    #[test]
    fn one_dimensional_closed_form() {
        // In 1-D, FD = (μ₁−μ₂)² + (σ₁ − σ₂)².
        let s1 = FeatureStats::new(vec![1.0], vec![4.0]).unwrap();
        let s2 = FeatureStats::new(vec![3.0], vec![9.0]).unwrap();
        let fd = frechet_distance_from_stats(&s1, &s2).unwrap();
        assert_relative_eq!(fd, 4.0 + 1.0, max_relative = 1e-12);
    }

    #[test]
    fn diagonal_closed_form() {
        // Diagonal covariances: FD = ‖Δμ‖² + Σ (√a − √b)².
        let s1 = FeatureStats::new(vec![0.0, 0.0, 1.0], diag(&[1.0, 4.0, 0.0])).unwrap();
        let s2 = FeatureStats::new(vec![1.0, 0.0, 1.0], diag(&[9.0, 1.0, 16.0])).unwrap();
        let fd = frechet_distance_from_stats(&s1, &s2).unwrap();
        assert_relative_eq!(fd, 1.0 + 4.0 + 1.0 + 16.0, max_relative = 1e-12);
    }

    fn diag(values: &[f64]) -> Vec<f64> {
        let d = values.len();
        let mut m = vec![0.0; d * d];
        for (i, v) in values.iter().enumerate() {
            m[i * d + i] = *v;
        }
        m
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(matches!(
            frechet_distance(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], 2),
            Err(EvalError::TooFewSamples {
                arg: "features_1",
                got: 1,
                min: 2
            })
        ));
        assert!(matches!(
            frechet_distance(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0], 2),
            Err(EvalError::RaggedRows {
                arg: "features_2",
                ..
            })
        ));
        assert!(matches!(
            frechet_distance(&[1.0, f64::NAN, 3.0, 4.0], &[1.0, 2.0, 3.0, 4.0], 2),
            Err(EvalError::NonFinite {
                arg: "features_1",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            frechet_distance::<f32>(&[], &[], 0),
            Err(EvalError::ZeroWidth { .. })
        ));
        assert!(FeatureStats::new(vec![0.0, 0.0], vec![1.0]).is_err());
        let s1 = FeatureStats::new(vec![0.0], vec![1.0]).unwrap();
        let s2 = FeatureStats::new(vec![0.0, 0.0], diag(&[1.0, 1.0])).unwrap();
        assert!(matches!(
            frechet_distance_from_stats(&s1, &s2),
            Err(EvalError::LengthMismatch { .. })
        ));
    }
}
