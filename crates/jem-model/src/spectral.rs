//! Spectral normalisation (Miyato et al., ICLR 2018), the Lipschitz control IGEBM and other
//! energy-based models train with: a layer uses `W / σ(W)`, with `σ(W)` the largest singular
//! value of the weight seen as a `[out, in · k · k]` matrix, estimated by power iteration.
//!
//! As PyTorch's `torch.nn.utils.parametrizations.spectral_norm`: the left singular vector
//! estimate `u` is a buffer (`<layer>.weight_u`, saved with the weights, not trained), advanced by
//! one power-iteration step on every training-mode forward and fifteen at construction; in
//! eval mode it is left as it is, so evaluation and SGLD passes are deterministic. The gradient
//! flows through `W` in `σ = uᵀ W v` with `u` and `v` held constant.

use tch::nn::Path;
use tch::Tensor;

use crate::error::Result;

/// Power-iteration steps run when a layer is created (PyTorch's parametrization does 15).
pub const INIT_POWER_ITERATIONS: usize = 15;
/// Guards the normalisation of the singular-vector estimates against a zero vector.
const EPS: f64 = 1e-12;

/// The spectral normalisation of one layer's weight: the persistent estimate `u`.
#[derive(Debug)]
pub struct SpectralNorm {
    u: Tensor,
}

fn normalize(t: &Tensor) -> Result<Tensor> {
    let norm = t.f_norm()?.f_clamp_min(EPS)?;
    Ok(t.f_div(&norm)?)
}

/// The weight as a `[out, in · k · k]` matrix.
fn matrix(weight: &Tensor) -> Result<Tensor> {
    Ok(weight.f_reshape([weight.size()[0], -1])?)
}

impl SpectralNorm {
    /// Creates the buffer `weight_u` under `vs` for `weight` (first dimension: outputs) and runs
    /// [`INIT_POWER_ITERATIONS`] steps on the weight as initialised. A checkpoint loaded later
    /// replaces `u` with the one saved.
    pub fn new(vs: &Path, weight: &Tensor) -> Result<Self> {
        let rows = weight.size()[0];
        let u = vs.f_ones_no_train("weight_u", &[rows])?;
        let sn = Self { u };
        tch::no_grad(|| -> Result<()> {
            sn.u.shallow_clone().f_copy_(&normalize(&sn.u)?)?;
            for _ in 0..INIT_POWER_ITERATIONS {
                sn.power_iteration(weight)?;
            }
            Ok(())
        })?;
        Ok(sn)
    }

    /// `v = W ᵀu / |W ᵀu|` for the current `u`, without gradient.
    fn right_vector(&self, w: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| {
            normalize(
                &w.f_detach()?
                    .f_transpose(0, 1)?
                    .f_mv(&self.u.f_to_kind(w.kind())?)?,
            )
        })
    }

    /// One power-iteration step: `v = Wᵀu / |Wᵀu|`, `u = Wv / |Wv|` (in place, no gradient).
    fn power_iteration(&self, weight: &Tensor) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            let w = matrix(&weight.f_detach()?)?.f_to_kind(self.u.kind())?;
            let v = self.right_vector(&w)?;
            let u = normalize(&w.f_mv(&v)?)?;
            self.u.shallow_clone().f_copy_(&u)?;
            Ok(())
        })
    }

    /// The estimate `σ = uᵀ W v` of the largest singular value of `weight` (differentiable in
    /// `weight`; `u` and `v` are constants).
    pub fn sigma(&self, weight: &Tensor) -> Result<Tensor> {
        let w = matrix(weight)?;
        let v = self.right_vector(&w)?;
        // A copy of u: a later training forward updates the buffer in place, and a graph that
        // still holds this pass (a second forward before backward) must keep the u it used.
        let u = self.u.f_detach_copy()?.f_to_kind(w.kind())?;
        Ok(u.f_dot(&w.f_mv(&v)?)?)
    }

    /// `weight / σ(weight)`; in training mode `u` first advances one power-iteration step.
    pub fn apply(&self, weight: &Tensor, train: bool) -> Result<Tensor> {
        if train {
            self.power_iteration(weight)?;
        }
        Ok(weight.f_div(&self.sigma(weight)?)?)
    }
}
