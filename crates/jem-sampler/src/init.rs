//! Where fresh chains start: uniform noise (the paper) or class-conditional Gaussians fitted to
//! the training data (JEM++'s "informative initialisation", Yang & Ji, 2021).
//!
//! [`ClassGaussians`] fits one Gaussian per class and samples it as probabilistic PCA (Tipping &
//! Bishop, 1999): for class `c` with mean `μ_c` and covariance eigen-pairs `(λ_i, u_i)` in
//! decreasing order, keeping `k` components,
//!
//! ```text
//! x = μ_c + W_c z + s_c ε,   W_c = U_k (Λ_k − s_c² I)^½,   s_c² = mean of the discarded λ_i,
//! z ~ N(0, I_k),  ε ~ N(0, I_D)
//! ```
//!
//! which is the maximum-likelihood Gaussian whose covariance is rank `k` plus isotropic noise.
//! With `k = D` it is the full-covariance Gaussian of JEM++ (`s_c = 0`). Samples are clamped to
//! the data range `[-1, 1]`, as JEM++ does.
//!
//! Every random number comes from the caller's [`Pcg64`], like the rest of this crate.

use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

use crate::error::{Result, SamplerError};
use crate::noise;

/// The data range samples are clamped to.
const DATA_RANGE: (f64, f64) = (-1.0, 1.0);

/// Class-conditional Gaussians fitted to data, the informative chain initialisation.
#[derive(Debug)]
pub struct ClassGaussians {
    /// Per-class means `[C, D]`, float32.
    means: Tensor,
    /// Per-class factors `W_c` `[C, D, k]`, float32.
    factors: Tensor,
    /// Per-class isotropic residual standard deviations `s_c` `[C]`, float32.
    residual_std: Tensor,
    sample_shape: Vec<i64>,
}

const KEY_MEANS: &str = "means";
const KEY_FACTORS: &str = "factors";
const KEY_RESIDUAL: &str = "residual_std";
const KEY_SHAPE: &str = "sample_shape";

impl ClassGaussians {
    /// Fits one Gaussian per class to `x` (`[N, ...]`, the data in the chains' range) with labels
    /// `labels` (`N` values in `0..n_classes`), keeping `rank` principal components per class
    /// (`None`: the full covariance). Every class needs at least two examples.
    ///
    /// The moments and the eigendecomposition are computed in float64 on the CPU.
    pub fn fit(x: &Tensor, labels: &[i64], n_classes: i64, rank: Option<usize>) -> Result<Self> {
        let size = x.size();
        let Some((&n, sample_shape)) = size.split_first() else {
            return Err(SamplerError::InvalidArgument(
                "fitting Gaussians needs a batch of samples, got a scalar".into(),
            ));
        };
        if n as usize != labels.len() {
            return Err(SamplerError::ShapeMismatch {
                context: "labels vs samples when fitting Gaussians",
                expected: vec![n],
                actual: vec![labels.len() as i64],
            });
        }
        if n_classes < 1 {
            return Err(SamplerError::InvalidArgument(format!(
                "the class count must be >= 1, got {n_classes}"
            )));
        }
        if let Some(&bad) = labels.iter().find(|&&y| !(0..n_classes).contains(&y)) {
            return Err(SamplerError::InvalidArgument(format!(
                "label {bad} is outside 0..{n_classes}"
            )));
        }
        let d: i64 = sample_shape.iter().product();
        let k = match rank {
            None => d,
            Some(0) => {
                return Err(SamplerError::InvalidArgument(
                    "the Gaussian initialisation's rank must be >= 1 (or unset for full)".into(),
                ))
            }
            Some(r) => (r as i64).min(d),
        };
        let flat = x
            .f_detach()?
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Double)?
            .f_reshape([n, d])?;
        let mut means = Vec::with_capacity(n_classes as usize);
        let mut factors = Vec::with_capacity(n_classes as usize);
        let mut residual = Vec::with_capacity(n_classes as usize);
        for c in 0..n_classes {
            let rows: Vec<i64> = (0..n).filter(|&i| labels[i as usize] == c).collect();
            if rows.len() < 2 {
                return Err(SamplerError::InvalidArgument(format!(
                    "class {c} has {} example(s); fitting its Gaussian needs at least 2",
                    rows.len()
                )));
            }
            let xc = flat.f_index_select(0, &Tensor::f_from_slice(&rows)?)?;
            let mean = xc.f_mean_dim(0, false, Kind::Double)?;
            let centred = xc.f_sub(&mean)?;
            let cov = centred
                .f_transpose(0, 1)?
                .f_matmul(&centred)?
                .f_div_scalar((rows.len() - 1) as f64)?;
            // Ascending eigenvalues; round-off can make the smallest slightly negative.
            let (evals, evecs) = cov.f_linalg_eigh("L")?;
            let evals = evals.f_clamp_min(0.0)?;
            let top = evals.f_flip([0])?;
            let vecs = evecs.f_flip([1])?;
            let s2 = if k < d {
                top.f_narrow(0, k, d - k)?.f_mean(Kind::Double)?
            } else {
                Tensor::f_zeros([], (Kind::Double, Device::Cpu))?
            };
            let scale = top
                .f_narrow(0, 0, k)?
                .f_sub(&s2)?
                .f_clamp_min(0.0)?
                .f_sqrt()?;
            let w = vecs.f_narrow(1, 0, k)?.f_mul(&scale.f_unsqueeze(0)?)?;
            means.push(mean);
            factors.push(w);
            residual.push(s2.f_sqrt()?);
        }
        let f32 = |t: Tensor| t.f_to_kind(Kind::Float);
        Ok(Self {
            means: f32(Tensor::f_stack(&means, 0)?)?,
            factors: f32(Tensor::f_stack(&factors, 0)?)?,
            residual_std: f32(Tensor::f_stack(&residual, 0)?)?,
            sample_shape: sample_shape.to_vec(),
        })
    }

    /// Number of classes.
    pub fn n_classes(&self) -> i64 {
        self.means.size()[0]
    }

    /// Principal components kept per class.
    pub fn rank(&self) -> i64 {
        self.factors.size()[2]
    }

    /// Shape of one sample.
    pub fn sample_shape(&self) -> &[i64] {
        &self.sample_shape
    }

    /// Per-class means `[C, ...sample_shape]`.
    pub fn means(&self) -> Result<Tensor> {
        let mut shape = vec![self.n_classes()];
        shape.extend_from_slice(&self.sample_shape);
        Ok(self.means.f_reshape(shape.as_slice())?)
    }

    /// Per-class residual standard deviations `s_c` `[C]`.
    pub fn residual_std(&self) -> &Tensor {
        &self.residual_std
    }

    /// One sample per label (`[N, ...sample_shape]`, float32, on `device`), clamped to `[-1, 1]`.
    pub fn sample(&self, labels: &[i64], device: Device, rng: &mut Pcg64) -> Result<Tensor> {
        let c = self.n_classes();
        if let Some(&bad) = labels.iter().find(|&&y| !(0..c).contains(&y)) {
            return Err(SamplerError::InvalidArgument(format!(
                "label {bad} is outside 0..{c} of the fitted Gaussians"
            )));
        }
        let n = labels.len() as i64;
        let d = self.means.size()[1];
        let k = self.rank();
        let mut shape = vec![n];
        shape.extend_from_slice(&self.sample_shape);
        if n == 0 {
            return Ok(Tensor::f_zeros(shape.as_slice(), (Kind::Float, device))?);
        }
        // Fixed draw order: the component draws, then the residual noise.
        let z = noise::standard_normal(&[n, k], Kind::Float, Device::Cpu, rng)?;
        let eps = noise::standard_normal(&[n, d], Kind::Float, Device::Cpu, rng)?;
        let idx = Tensor::f_from_slice(labels)?;
        let s = self.residual_std.f_index_select(0, &idx)?.f_unsqueeze(1)?;
        let mut x = self.means.f_index_select(0, &idx)?.f_add(&eps.f_mul(&s)?)?;
        // W_c z per class present: one [D, k] x [k, n_c] product each, never a [n, D, k] copy.
        for class in 0..c {
            let rows: Vec<i64> = (0..n).filter(|&i| labels[i as usize] == class).collect();
            if rows.is_empty() {
                continue;
            }
            let rows = Tensor::f_from_slice(&rows)?;
            let zc = z.f_index_select(0, &rows)?;
            let wz = zc.f_matmul(&self.factors.f_get(class)?.f_transpose(0, 1)?)?;
            x = x.f_index_add(0, &rows, &wz)?;
        }
        let x = x.f_clamp(DATA_RANGE.0, DATA_RANGE.1)?;
        Ok(x.f_reshape(shape.as_slice())?.f_to_device(device)?)
    }

    /// The fit as named tensors (`{prefix}means`, ...), for checkpoints.
    pub fn to_named_tensors(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        Ok(vec![
            (format!("{prefix}{KEY_MEANS}"), self.means.shallow_clone()),
            (
                format!("{prefix}{KEY_FACTORS}"),
                self.factors.shallow_clone(),
            ),
            (
                format!("{prefix}{KEY_RESIDUAL}"),
                self.residual_std.shallow_clone(),
            ),
            (
                format!("{prefix}{KEY_SHAPE}"),
                Tensor::f_from_slice(&self.sample_shape)?,
            ),
        ])
    }

    /// Inverse of [`ClassGaussians::to_named_tensors`]; other entries are ignored. `None` when
    /// the entries are absent altogether (a uniform start).
    pub fn from_named_tensors(named: &[(String, Tensor)], prefix: &str) -> Result<Option<Self>> {
        let find = |key: &str| {
            let name = format!("{prefix}{key}");
            named.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
        };
        let Some(means) = find(KEY_MEANS) else {
            return Ok(None);
        };
        let get = |key: &str| {
            find(key)
                .ok_or_else(|| SamplerError::InvalidState(format!("missing entry `{prefix}{key}`")))
        };
        let cpu = |t: &Tensor| -> Result<Tensor> {
            Ok(t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?)
        };
        let means = cpu(means)?;
        let factors = cpu(get(KEY_FACTORS)?)?;
        let residual_std = cpu(get(KEY_RESIDUAL)?)?;
        let sample_shape = Vec::<i64>::try_from(&get(KEY_SHAPE)?.f_to_device(Device::Cpu)?)?;
        let (ms, fs, rs) = (means.size(), factors.size(), residual_std.size());
        let d: i64 = sample_shape.iter().product();
        let consistent = ms.len() == 2
            && fs.len() == 3
            && rs.len() == 1
            && ms[1] == d
            && fs[0] == ms[0]
            && fs[1] == d
            && rs[0] == ms[0]
            && ms[0] >= 1
            && fs[2] >= 1
            && sample_shape.iter().all(|&v| v > 0);
        if !consistent {
            return Err(SamplerError::InvalidState(format!(
                "inconsistent Gaussian initialisation: means {ms:?}, factors {fs:?}, residual {rs:?}, sample shape {sample_shape:?}"
            )));
        }
        Ok(Some(Self {
            means,
            factors,
            residual_std,
            sample_shape,
        }))
    }

    /// Another handle to the same fitted tensors (a fit is never modified after [`fit`](Self::fit)).
    pub fn shallow_clone(&self) -> Self {
        Self {
            means: self.means.shallow_clone(),
            factors: self.factors.shallow_clone(),
            residual_std: self.residual_std.shallow_clone(),
            sample_shape: self.sample_shape.clone(),
        }
    }
}

/// The distribution fresh chains start from.
#[derive(Debug, Default)]
pub enum ChainStart {
    /// `U(-1, 1)` noise (the paper).
    #[default]
    Uniform,
    /// Class-conditional Gaussians fitted to the data (JEM++).
    Gaussians(ClassGaussians),
    /// Each fresh chain starts from `U(-1, 1)` noise with probability `uniform_fraction`, else
    /// from its class's Gaussian: near-data starts for the samples, noise starts so that the
    /// energy is also pushed up far from the data.
    Mixture {
        /// The Gaussians of the near-data starts.
        gaussians: ClassGaussians,
        /// Probability in `[0, 1]` that a fresh chain starts from noise instead.
        uniform_fraction: f64,
    },
}

impl ChainStart {
    /// `n` fresh starting points of `sample_shape` on `device`. With Gaussians, chain `i` starts
    /// from class `labels[i]`'s Gaussian, or from a uniformly drawn class when no labels are
    /// given (the mixture of the classes). With [`ChainStart::Mixture`], each chain then
    /// independently restarts from `U(-1, 1)` with probability `uniform_fraction`.
    pub fn draw(
        &self,
        n: usize,
        sample_shape: &[i64],
        labels: Option<&[i64]>,
        device: Device,
        rng: &mut Pcg64,
    ) -> Result<Tensor> {
        let mut shape = vec![n as i64];
        shape.extend_from_slice(sample_shape);
        match self {
            ChainStart::Uniform => noise::uniform_pm1(&shape, Kind::Float, device, rng),
            ChainStart::Mixture {
                gaussians,
                uniform_fraction,
            } => {
                use rand::Rng;
                let near = ChainStart::Gaussians(gaussians.shallow_clone()).draw(
                    n,
                    sample_shape,
                    labels,
                    device,
                    rng,
                )?;
                let from_noise: Vec<bool> =
                    (0..n).map(|_| rng.random_bool(*uniform_fraction)).collect();
                let noise = noise::uniform_pm1(&shape, Kind::Float, device, rng)?;
                let mut mask_shape = vec![n as i64];
                mask_shape.extend(std::iter::repeat_n(1, sample_shape.len()));
                let mask = Tensor::f_from_slice(&from_noise)?
                    .f_reshape(&mask_shape)?
                    .f_to_device(device)?;
                Ok(noise.f_where_self(&mask, &near)?)
            }
            ChainStart::Gaussians(g) => {
                if g.sample_shape() != sample_shape {
                    return Err(SamplerError::ShapeMismatch {
                        context: "Gaussian initialisation vs chain sample shape",
                        expected: sample_shape.to_vec(),
                        actual: g.sample_shape().to_vec(),
                    });
                }
                let drawn;
                let labels = match labels {
                    Some(y) => y,
                    None => {
                        use rand::Rng;
                        let c = g.n_classes();
                        drawn = (0..n).map(|_| rng.random_range(0..c)).collect::<Vec<_>>();
                        &drawn
                    }
                };
                if labels.len() != n {
                    return Err(SamplerError::ShapeMismatch {
                        context: "labels vs chains to initialise",
                        expected: vec![n as i64],
                        actual: vec![labels.len() as i64],
                    });
                }
                g.sample(labels, device, rng)
            }
        }
    }

    /// The Gaussians, if this start has them.
    pub fn gaussians(&self) -> Option<&ClassGaussians> {
        match self {
            ChainStart::Uniform => None,
            ChainStart::Gaussians(g) | ChainStart::Mixture { gaussians: g, .. } => Some(g),
        }
    }

    /// The probability that a fresh chain starts from `U(-1, 1)` noise: 1 for the uniform
    /// start, 0 for the Gaussians, `uniform_fraction` for the mixture.
    pub fn uniform_fraction(&self) -> f64 {
        match self {
            ChainStart::Uniform => 1.0,
            ChainStart::Gaussians(_) => 0.0,
            ChainStart::Mixture {
                uniform_fraction, ..
            } => *uniform_fraction,
        }
    }

    /// The start `init` and `uniform_fraction` name (`sampler.buffer.init` and
    /// `sampler.buffer.init_uniform_fraction`), on `gaussians` fitted beforehand (unused by the
    /// uniform start).
    pub fn from_kind<E>(
        init: crate::InitKind,
        uniform_fraction: f64,
        gaussians: impl FnOnce() -> std::result::Result<ClassGaussians, E>,
    ) -> std::result::Result<Self, E> {
        Ok(match init {
            crate::InitKind::Uniform => ChainStart::Uniform,
            crate::InitKind::Gaussian if uniform_fraction > 0.0 => ChainStart::Mixture {
                gaussians: gaussians()?,
                uniform_fraction,
            },
            crate::InitKind::Gaussian => ChainStart::Gaussians(gaussians()?),
        })
    }

    /// Another handle to the same start (its tensors are never modified, so sharing is safe).
    pub fn shallow_clone(&self) -> Self {
        match self {
            ChainStart::Uniform => ChainStart::Uniform,
            ChainStart::Gaussians(g) => ChainStart::Gaussians(g.shallow_clone()),
            ChainStart::Mixture {
                gaussians,
                uniform_fraction,
            } => ChainStart::Mixture {
                gaussians: gaussians.shallow_clone(),
                uniform_fraction: *uniform_fraction,
            },
        }
    }
}
