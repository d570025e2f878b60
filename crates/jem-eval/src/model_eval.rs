//! Scores and predictions of a JEM model over a data set (feature `torch`).
//!
//! These are the paper's OOD scores (Section 5.3): log p(x) = `LogSumExp_y f(x)[y]`,
//! max_y p(y|x), and the approximate-mass score −‖∂ log p(x)/∂x‖₂; each optionally
//! computed after k SGLD refinement steps of the input (JEM-k). Inputs are images
//! already scaled to the model's [-1, 1] range (and noised, if the protocol wants
//! it); the output is ndarray data (`Array1<f64>` scores, `Array2<f32>` probabilities) for
//! the libtorch-free metric math.

use crate::error::{EvalError, Result};
use jem_model::JointEnergyModel;
use jem_sampler::{refine, Pcg64, SgldConfig};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use tch::{Device, Kind, Tensor};

/// An out-of-distribution score: higher means more in-distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OodScore {
    /// log p(x) up to the partition function: `LogSumExp_y f(x)[y]`.
    #[serde(rename = "px")]
    LogPx,
    /// The classifier's confidence max_y p(y|x).
    #[serde(rename = "py")]
    MaxPy,
    /// The approximate-mass score −‖∂ log p(x)/∂x‖₂ (Eq. 9 of the paper).
    #[serde(rename = "pxgrad")]
    GradNorm,
}

impl OodScore {
    /// All scores, in the paper's order.
    pub const ALL: [OodScore; 3] = [OodScore::LogPx, OodScore::MaxPy, OodScore::GradNorm];

    /// The short name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            OodScore::LogPx => "px",
            OodScore::MaxPy => "py",
            OodScore::GradNorm => "pxgrad",
        }
    }

    /// A longer, human-readable label.
    pub fn label(self) -> &'static str {
        match self {
            OodScore::LogPx => "log p(x)",
            OodScore::MaxPy => "max p(y|x)",
            OodScore::GradNorm => "−‖∂ log p(x)/∂x‖₂",
        }
    }
}

impl FromStr for OodScore {
    type Err = EvalError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "px" | "logpx" => Ok(OodScore::LogPx),
            "py" | "maxpy" => Ok(OodScore::MaxPy),
            "pxgrad" | "gradnorm" => Ok(OodScore::GradNorm),
            other => Err(EvalError::InvalidParameter {
                arg: "score",
                value: other.to_string(),
                reason: "expected px, py or pxgrad",
            }),
        }
    }
}

/// How scores are computed.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Images per forward pass.
    pub batch_size: usize,
    /// SGLD refinement steps applied to each input first (0 = none).
    pub refine_steps: usize,
    /// The SGLD settings of the refinement.
    pub sgld: SgldConfig,
    /// Where the model lives; inputs are moved there batch by batch.
    pub device: Device,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            refine_steps: 0,
            sgld: SgldConfig::default(),
            device: Device::Cpu,
        }
    }
}

fn torch(context: &'static str) -> impl Fn(tch::TchError) -> EvalError {
    move |e| EvalError::Model(format!("{context}: {e}"))
}

fn model_err(context: &'static str) -> impl Fn(jem_model::ModelError) -> EvalError {
    move |e| EvalError::Model(format!("{context}: {e}"))
}

fn check_images(images: &Tensor, batch_size: usize) -> Result<i64> {
    crate::features::positive("batch_size", batch_size)?;
    crate::features::check_images(images)
}

/// Refine `x` by `k` SGLD steps on the model's log p(x) (no graph kept).
fn refined(
    model: &dyn JointEnergyModel,
    x: &Tensor,
    opts: &ScoreOptions,
    rng: &mut Pcg64,
) -> Result<Tensor> {
    if opts.refine_steps == 0 {
        return Ok(x.shallow_clone());
    }
    let density = |x: &Tensor| {
        model
            .log_px(x, false)
            .map_err(jem_sampler::SamplerError::density)
    };
    let (x, _) = refine(&density, x, opts.refine_steps, &opts.sgld, false, rng)
        .map_err(|e| EvalError::Model(format!("SGLD refinement: {e}")))?;
    Ok(x.detach())
}

/// One score per image, in order. Never NaN: a non-finite score is an error.
pub fn ood_scores(
    model: &dyn JointEnergyModel,
    images: &Tensor,
    score: OodScore,
    opts: &ScoreOptions,
    rng: &mut Pcg64,
) -> Result<Array1<f64>> {
    let mut out = Vec::new();
    for_each_batch(model, images, opts, rng, |start, x| {
        let values = match score {
            OodScore::LogPx => {
                tch::no_grad(|| model.log_px(&x, false)).map_err(model_err("log p(x)"))?
            }
            OodScore::MaxPy => tch::no_grad(|| -> Result<Tensor> {
                let log_py = model
                    .log_py_given_x(&x, false)
                    .map_err(model_err("log p(y|x)"))?;
                Ok(log_py.exp().amax(-1, false))
            })?,
            OodScore::GradNorm => {
                let x = x.detach().set_requires_grad(true);
                let log_px = model.log_px(&x, false).map_err(model_err("log p(x)"))?;
                // Gradients w.r.t. the input only: parameters get no .grad.
                let grads = Tensor::f_run_backward(&[log_px.sum(Kind::Float)], &[&x], false, false)
                    .map_err(torch("d log p(x)/dx"))?;
                -grads[0]
                    .flatten(1, -1)
                    .norm_scalaropt_dim(2.0, [1i64].as_slice(), false)
            }
        };
        let values: Vec<f64> = Vec::<f64>::try_from(
            values
                .to_kind(Kind::Double)
                .to_device(Device::Cpu)
                .flatten(0, -1),
        )
        .map_err(torch("reading scores"))?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFinite {
                arg: "scores",
                index: start + i,
                value: values[i],
            });
        }
        out.extend(values);
        Ok(())
    })?;
    Ok(Array1::from(out))
}

/// Class probabilities p(y|x) for every image, an `N × K` matrix.
pub fn predict_probs(
    model: &dyn JointEnergyModel,
    images: &Tensor,
    opts: &ScoreOptions,
    rng: &mut Pcg64,
) -> Result<Array2<f32>> {
    let mut out = Vec::new();
    let mut classes = 0usize;
    for_each_batch(model, images, opts, rng, |_, x| {
        let probs = tch::no_grad(|| model.log_py_given_x(&x, false))
            .map_err(model_err("log p(y|x)"))?
            .exp();
        classes = probs.size()[1] as usize;
        let values = Vec::<f32>::try_from(
            probs
                .to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .flatten(0, -1),
        )
        .map_err(torch("reading probabilities"))?;
        out.extend(values);
        Ok(())
    })?;
    let rows = out.len() / classes.max(1);
    Array2::from_shape_vec((rows, classes), out)
        .map_err(|e| EvalError::Model(format!("probabilities: {e}")))
}

/// Runs `f(first_index, batch)` over `images` in batches of `opts.batch_size`, each batch moved
/// to `opts.device` and refined by `opts.refine_steps` SGLD steps first.
fn for_each_batch(
    model: &dyn JointEnergyModel,
    images: &Tensor,
    opts: &ScoreOptions,
    rng: &mut Pcg64,
    mut f: impl FnMut(usize, Tensor) -> Result<()>,
) -> Result<()> {
    let n = check_images(images, opts.batch_size)?;
    let mut start = 0;
    while start < n {
        let len = (opts.batch_size as i64).min(n - start);
        let x = images
            .f_narrow(0, start, len)
            .map_err(torch("batch"))?
            .to_device(opts.device);
        f(start as usize, refined(model, &x, opts, rng)?)?;
        start += len;
    }
    Ok(())
}
