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
use ndarray::{ArrayView1, ArrayView2};
use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::input::{check_finite, check_finite_matrix, check_min_len, Real};

/// Mean and covariance of a feature set: the sufficient statistics of FD.
///
/// Serialises as `dim`, `num_samples`, `mean` and the row-major
/// `covariance` as flat lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureStats {
    dim: usize,
    num_samples: Option<usize>,
    mean: Vec<f64>,
    covariance: Vec<f64>,
}

impl FeatureStats {
    /// Statistics of `features`, an `n × d` matrix (one sample per row) with
    /// `n >= 2`; the covariance is unbiased (divides by `n − 1`).
    ///
    /// Errors on `d == 0`, fewer than two rows, or a non-finite entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use jem_eval::FeatureStats;
    /// use ndarray::array;
    ///
    /// let stats = FeatureStats::from_features(array![[1.0, 2.0], [3.0, 6.0], [5.0, 4.0]].view())?;
    /// assert_eq!(stats.mean(), array![3.0, 4.0]);
    /// assert_eq!(stats.covariance(), array![[4.0, 2.0], [2.0, 4.0]]);
    /// # Ok::<(), jem_eval::EvalError>(())
    /// ```
    pub fn from_features<T: Real>(features: ArrayView2<'_, T>) -> Result<Self> {
        Self::from_named_features("features", features)
    }

    fn from_named_features<T: Real>(
        arg: &'static str,
        features: ArrayView2<'_, T>,
    ) -> Result<Self> {
        let (n, dim) = features.dim();
        if dim == 0 {
            return Err(EvalError::ZeroWidth { arg });
        }
        check_min_len(arg, n, 2)?;
        check_finite_matrix(arg, features)?;

        let mut mean = vec![0.0f64; dim];
        for row in features.rows() {
            for (m, &x) in mean.iter_mut().zip(row) {
                *m += x.into();
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);

        // Two passes (centre, then multiply) avoid the cancellation of the
        // one-pass E[xxᵀ] − μμᵀ formula when |μ| is large relative to spread.
        let centred_t = DMatrix::from_fn(dim, n, |j, i| features[[i, j]].into() - mean[j]);
        let covariance = (&centred_t * centred_t.transpose()) / (n - 1) as f64;
        Ok(Self {
            dim,
            num_samples: Some(n),
            mean,
            covariance: row_major(&covariance),
        })
    }

    /// Precomputed statistics (e.g. from a reference-set file): `mean` of
    /// length `d` and the `d × d` `covariance`. Only the symmetric part
    /// `(Σ + Σᵀ)/2` of the covariance is used.
    ///
    /// Errors on an empty mean, a covariance of the wrong shape, or a
    /// non-finite entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use jem_eval::FeatureStats;
    /// use ndarray::{array, Array2};
    ///
    /// let stats = FeatureStats::new(array![0.0, 1.0].view(), Array2::eye(2).view())?;
    /// assert_eq!((stats.dim(), stats.num_samples()), (2, None));
    /// assert!(FeatureStats::new(array![0.0, 1.0].view(), Array2::eye(3).view()).is_err());
    /// # Ok::<(), jem_eval::EvalError>(())
    /// ```
    pub fn new(mean: ArrayView1<'_, f64>, covariance: ArrayView2<'_, f64>) -> Result<Self> {
        let dim = mean.len();
        if dim == 0 {
            return Err(EvalError::ZeroWidth { arg: "mean" });
        }
        if covariance.dim() != (dim, dim) {
            return Err(EvalError::ShapeMismatch {
                arg: "covariance",
                shape: covariance.shape().to_vec(),
                expected: vec![dim, dim],
            });
        }
        check_finite("mean", mean)?;
        check_finite_matrix("covariance", covariance)?;
        Ok(Self {
            dim,
            num_samples: None,
            mean: mean.to_vec(),
            // `iter` walks in logical row-major order whatever the layout.
            covariance: covariance.iter().copied().collect(),
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
    pub fn mean(&self) -> ArrayView1<'_, f64> {
        ArrayView1::from(&self.mean[..])
    }

    /// The `d × d` covariance matrix.
    pub fn covariance(&self) -> ArrayView2<'_, f64> {
        ArrayView2::from_shape((self.dim, self.dim), &self.covariance)
            .expect("the covariance holds d·d values")
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

/// Fréchet distance between the Gaussian fits of two feature sets, `n × d`
/// and `m × d` matrices (one sample per row, `n, m >= 2`).
///
/// Errors as [`FeatureStats::from_features`], naming `features_1` or
/// `features_2`, and if the column counts differ.
///
/// # Examples
///
/// ```
/// use jem_eval::frechet_distance;
/// use ndarray::array;
///
/// // Same spread, means 3 apart: FD = ‖μ₁ − μ₂‖² = 9.
/// let a = array![[0.0], [2.0]];
/// let b = array![[3.0], [5.0]];
/// let fd = frechet_distance(a.view(), b.view())?;
/// assert!((fd - 9.0).abs() < 1e-12);
/// assert!(frechet_distance(a.view(), a.view())? < 1e-12);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
pub fn frechet_distance<T: Real>(
    features_1: ArrayView2<'_, T>,
    features_2: ArrayView2<'_, T>,
) -> Result<f64> {
    if features_1.ncols() != features_2.ncols() {
        return Err(EvalError::LengthMismatch {
            arg_a: "features_1 (columns)",
            len_a: features_1.ncols(),
            arg_b: "features_2 (columns)",
            len_b: features_2.ncols(),
        });
    }
    let stats_1 = FeatureStats::from_named_features("features_1", features_1)?;
    let stats_2 = FeatureStats::from_named_features("features_2", features_2)?;
    frechet_distance_from_stats(&stats_1, &stats_2)
}

/// Fréchet distance between two sets of precomputed statistics.
///
/// The result is clamped at 0: the exact value is non-negative (it is the
/// squared 2-Wasserstein distance of the Gaussians), so a negative result can
/// only be rounding error. Errors if the dimensions differ or an
/// eigendecomposition fails to converge.
///
/// # Examples
///
/// ```
/// use jem_eval::{frechet_distance_from_stats, FeatureStats};
/// use ndarray::array;
///
/// // In 1-D, FD = (μ₁ − μ₂)² + (σ₁ − σ₂)² = 2² + (2 − 3)² = 5.
/// let s1 = FeatureStats::new(array![1.0].view(), array![[4.0]].view())?;
/// let s2 = FeatureStats::new(array![3.0].view(), array![[9.0]].view())?;
/// assert!((frechet_distance_from_stats(&s1, &s2)? - 5.0).abs() < 1e-12);
/// # Ok::<(), jem_eval::EvalError>(())
/// ```
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
    use ndarray::{array, Array1, Array2};

    #[test]
    fn statistics_match_hand_computation() {
        // Rows (1,2), (3,6), (5,4): mean (3,4); cov [[4,2],[2,4]].
        let s =
            FeatureStats::from_features(array![[1.0, 2.0], [3.0, 6.0], [5.0, 4.0]].view()).unwrap();
        assert_eq!(s.mean(), array![3.0, 4.0]);
        for (got, want) in s.covariance().iter().zip([4.0, 2.0, 2.0, 4.0]) {
            assert_relative_eq!(*got, want, max_relative = 1e-12);
        }
        assert_eq!(s.num_samples(), Some(3));
    }

    #[test]
    fn one_dimensional_closed_form() {
        // In 1-D, FD = (μ₁−μ₂)² + (σ₁ − σ₂)².
        let s1 = FeatureStats::new(array![1.0].view(), array![[4.0]].view()).unwrap();
        let s2 = FeatureStats::new(array![3.0].view(), array![[9.0]].view()).unwrap();
        let fd = frechet_distance_from_stats(&s1, &s2).unwrap();
        assert_relative_eq!(fd, 4.0 + 1.0, max_relative = 1e-12);
    }

    #[test]
    fn diagonal_closed_form() {
        // Diagonal covariances: FD = ‖Δμ‖² + Σ (√a − √b)².
        let s1 =
            FeatureStats::new(array![0.0, 0.0, 1.0].view(), diag(&[1.0, 4.0, 0.0]).view()).unwrap();
        let s2 = FeatureStats::new(array![1.0, 0.0, 1.0].view(), diag(&[9.0, 1.0, 16.0]).view())
            .unwrap();
        let fd = frechet_distance_from_stats(&s1, &s2).unwrap();
        assert_relative_eq!(fd, 1.0 + 4.0 + 1.0 + 16.0, max_relative = 1e-12);
    }

    fn diag(values: &[f64]) -> Array2<f64> {
        Array2::from_diag(&Array1::from(values.to_vec()))
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(matches!(
            frechet_distance(
                array![[1.0, 2.0]].view(),
                array![[1.0, 2.0], [3.0, 4.0]].view()
            ),
            Err(EvalError::TooFewSamples {
                arg: "features_1",
                got: 1,
                min: 2
            })
        ));
        assert!(matches!(
            frechet_distance(
                array![[1.0, 2.0], [3.0, 4.0]].view(),
                array![[1.0], [2.0]].view()
            ),
            Err(EvalError::LengthMismatch {
                arg_a: "features_1 (columns)",
                len_a: 2,
                len_b: 1,
                ..
            })
        ));
        assert!(matches!(
            frechet_distance(
                array![[1.0, f64::NAN], [3.0, 4.0]].view(),
                array![[1.0, 2.0], [3.0, 4.0]].view()
            ),
            Err(EvalError::NonFiniteEntry {
                arg: "features_1",
                row: 0,
                col: 1,
                ..
            })
        ));
        assert!(matches!(
            frechet_distance(
                Array2::<f32>::zeros((3, 0)).view(),
                Array2::<f32>::zeros((3, 0)).view()
            ),
            Err(EvalError::ZeroWidth { arg: "features_1" })
        ));
        assert!(matches!(
            FeatureStats::new(array![0.0, 0.0].view(), array![[1.0]].view()),
            Err(EvalError::ShapeMismatch {
                arg: "covariance",
                ..
            })
        ));
        let s1 = FeatureStats::new(array![0.0].view(), array![[1.0]].view()).unwrap();
        let s2 = FeatureStats::new(array![0.0, 0.0].view(), diag(&[1.0, 1.0]).view()).unwrap();
        assert!(matches!(
            frechet_distance_from_stats(&s1, &s2),
            Err(EvalError::LengthMismatch { .. })
        ));
    }
}
