//! Integration tests of jem-sampler, in one binary to link libtorch once.

mod buffer;
mod config;
mod init;
mod langevin;
mod refine;
mod sgld;

use jem_sampler::Pcg64;
use rand::SeedableRng;
use tch::{Kind, Tensor};

pub(crate) fn rng(seed: u64) -> Pcg64 {
    Pcg64::seed_from_u64(seed)
}

/// Independent-dimension Gaussian log-density `-1/2 Σ_j (x_j - μ_j)² / s²_j`, one value per row.
pub(crate) struct Gaussian {
    pub(crate) mu: Vec<f64>,
    pub(crate) var: Vec<f64>,
}

impl Gaussian {
    pub(crate) fn log_density(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let mu = Tensor::from_slice(&self.mu).to_kind(kind);
        let inv_var = Tensor::from_slice(&self.var).reciprocal().to_kind(kind);
        let d = x - mu;
        (&d * &d * inv_var).sum_dim_intlist(1, false, kind) * -0.5
    }
}

pub(crate) fn to_vec2(t: &Tensor) -> Vec<Vec<f64>> {
    Vec::<Vec<f64>>::try_from(t.to_kind(Kind::Double)).unwrap()
}

pub(crate) fn to_vec1(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double)).unwrap()
}
