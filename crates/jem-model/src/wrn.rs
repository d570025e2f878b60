//! The JEM Wide-ResNet: pre-activation residual blocks, global average pooling,
//! a class head and an optional separate energy head.

use tch::nn::{Init, Path, VarStore};
use tch::Tensor;

use crate::config::{Activation, Norm, WrnConfig};
use crate::energy::{self, JointEnergyModel};
use crate::error::{ModelError, Result};
use crate::spectral::SpectralNorm;

/// Momentum of the batch-norm running statistics, in PyTorch's convention
/// (`running = (1 - m) * running + m * batch`). The reference builds
/// `BatchNorm2d(momentum=0.9)`, i.e. the running statistics mostly track the last batch.
pub const BATCH_NORM_MOMENTUM: f64 = 0.9;
/// Epsilon of every normalisation layer (PyTorch default).
pub const NORM_EPS: f64 = 1e-5;

/// PyTorch's default init for `Conv2d` and `Linear` (kaiming_uniform with a = sqrt(5)
/// for the weight, and the bias likewise) boils down to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
fn torch_default_init(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// The spectral normalisation of a layer's `weight`, when the config asks for it.
fn spectral(vs: &Path, weight: &Tensor, on: bool) -> Result<Option<SpectralNorm>> {
    on.then(|| SpectralNorm::new(vs, weight)).transpose()
}

/// The weight a layer computes with: `weight / σ(weight)` under spectral normalisation.
fn effective_weight(weight: &Tensor, sn: &Option<SpectralNorm>, train: bool) -> Result<Tensor> {
    match sn {
        Some(sn) => sn.apply(weight, train),
        None => Ok(weight.shallow_clone()),
    }
}

/// Convolution with bias (all convolutions of the reference WRN have one).
#[derive(Debug)]
struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    padding: i64,
    sn: Option<SpectralNorm>,
}

impl Conv {
    fn new(
        vs: &Path,
        cfg: &WrnConfig,
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
    ) -> Result<Self> {
        let init = torch_default_init(c_in * kernel * kernel);
        let weight = vs.f_var("weight", &[c_out, c_in, kernel, kernel], init)?;
        Ok(Self {
            bias: vs.f_var("bias", &[c_out], init)?,
            stride,
            padding: kernel / 2,
            sn: spectral(vs, &weight, cfg.spectral_norm)?,
            weight,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(x.f_conv2d(
            &effective_weight(&self.weight, &self.sn, train)?,
            Some(&self.bias),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        )?)
    }

    fn num_parameters(&self) -> i64 {
        numel(&self.weight) + numel(&self.bias)
    }
}

#[derive(Debug)]
struct Linear {
    weight: Tensor,
    bias: Tensor,
    sn: Option<SpectralNorm>,
}

impl Linear {
    fn new(vs: &Path, cfg: &WrnConfig, d_in: i64, d_out: i64) -> Result<Self> {
        let init = torch_default_init(d_in);
        let weight = vs.f_var("weight", &[d_out, d_in], init)?;
        Ok(Self {
            bias: vs.f_var("bias", &[d_out], init)?,
            sn: spectral(vs, &weight, cfg.spectral_norm)?,
            weight,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(x.f_linear(
            &effective_weight(&self.weight, &self.sn, train)?,
            Some(&self.bias),
        )?)
    }

    fn num_parameters(&self) -> i64 {
        numel(&self.weight) + numel(&self.bias)
    }
}

/// One normalisation layer; `None` creates no variable, like the reference's `Identity`.
#[derive(Debug)]
enum NormLayer {
    None,
    Batch {
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
    },
    Instance {
        weight: Tensor,
        bias: Tensor,
    },
    Group {
        weight: Tensor,
        bias: Tensor,
    },
}

impl NormLayer {
    fn new(vs: &Path, norm: Norm, channels: i64) -> Result<Self> {
        let affine = || -> Result<(Tensor, Tensor)> {
            Ok((
                vs.f_var("weight", &[channels], Init::Const(1.0))?,
                vs.f_var("bias", &[channels], Init::Const(0.0))?,
            ))
        };
        Ok(match norm {
            Norm::None => NormLayer::None,
            Norm::Batch => {
                let (weight, bias) = affine()?;
                NormLayer::Batch {
                    weight,
                    bias,
                    running_mean: vs.f_zeros_no_train("running_mean", &[channels])?,
                    running_var: vs.f_ones_no_train("running_var", &[channels])?,
                }
            }
            Norm::Instance => {
                let (weight, bias) = affine()?;
                NormLayer::Instance { weight, bias }
            }
            Norm::Layer => {
                let (weight, bias) = affine()?;
                NormLayer::Group { weight, bias }
            }
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(match self {
            NormLayer::None => x.shallow_clone(),
            NormLayer::Batch {
                weight,
                bias,
                running_mean,
                running_var,
            } => x.f_batch_norm(
                Some(weight),
                Some(bias),
                Some(running_mean),
                Some(running_var),
                train,
                BATCH_NORM_MOMENTUM,
                NORM_EPS,
                false,
            )?,
            NormLayer::Instance { weight, bias } => x.f_instance_norm(
                Some(weight),
                Some(bias),
                None,
                None,
                true,
                0.0,
                NORM_EPS,
                false,
            )?,
            NormLayer::Group { weight, bias } => {
                x.f_group_norm(1, Some(weight), Some(bias), NORM_EPS, false)?
            }
        })
    }

    fn num_parameters(&self) -> i64 {
        match self {
            NormLayer::None => 0,
            NormLayer::Batch { weight, bias, .. }
            | NormLayer::Instance { weight, bias }
            | NormLayer::Group { weight, bias } => numel(weight) + numel(bias),
        }
    }
}

/// The configured activation: LeakyReLU (ATen's fused kernel through jem's shim) or SiLU.
#[derive(Debug, Clone, Copy)]
struct Act {
    kind: Activation,
    leak: f64,
}

impl Act {
    fn of(cfg: &WrnConfig) -> Self {
        Self {
            kind: cfg.activation,
            leak: cfg.leak,
        }
    }

    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match self.kind {
            Activation::LeakyRelu => crate::ops::leaky_relu(x, self.leak),
            Activation::Silu => Ok(x.f_silu()?),
        }
    }
}

/// Pre-activation block: norm → act → conv3x3 → dropout → norm → act → conv3x3(stride),
/// plus a 1x1 convolution on the skip path when the shape changes.
#[derive(Debug)]
struct WideBasic {
    bn1: NormLayer,
    conv1: Conv,
    bn2: NormLayer,
    conv2: Conv,
    shortcut: Option<Conv>,
    dropout: f64,
    act: Act,
}

impl WideBasic {
    fn new(vs: &Path, cfg: &WrnConfig, c_in: i64, c_out: i64, stride: i64) -> Result<Self> {
        let shortcut = if stride != 1 || c_in != c_out {
            // The reference wraps the projection in nn.Sequential, hence the ".0".
            Some(Conv::new(
                &(vs / "shortcut" / 0),
                cfg,
                c_in,
                c_out,
                1,
                stride,
            )?)
        } else {
            None
        };
        Ok(Self {
            bn1: NormLayer::new(&(vs / "bn1"), cfg.norm, c_in)?,
            conv1: Conv::new(&(vs / "conv1"), cfg, c_in, c_out, 3, 1)?,
            bn2: NormLayer::new(&(vs / "bn2"), cfg.norm, c_out)?,
            conv2: Conv::new(&(vs / "conv2"), cfg, c_out, c_out, 3, stride)?,
            shortcut,
            dropout: cfg.dropout,
            act: Act::of(cfg),
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut out = self
            .conv1
            .forward(&self.act.apply(&self.bn1.forward(x, train)?)?, train)?;
        if self.dropout > 0.0 {
            out = out.f_dropout(self.dropout, train)?;
        }
        let out = self
            .conv2
            .forward(&self.act.apply(&self.bn2.forward(&out, train)?)?, train)?;
        let skip = match &self.shortcut {
            Some(conv) => conv.forward(x, train)?,
            None => x.shallow_clone(),
        };
        Ok(out.f_add(&skip)?)
    }

    fn num_parameters(&self) -> i64 {
        self.bn1.num_parameters()
            + self.conv1.num_parameters()
            + self.bn2.num_parameters()
            + self.conv2.num_parameters()
            + self.shortcut.as_ref().map_or(0, Conv::num_parameters)
    }
}

/// A JEM Wide-ResNet classifier. Its logits define the energy-based model
/// (see [`JointEnergyModel`]).
///
/// Variables live in the [`VarStore`] the [`tch::nn::Path`] given to
/// [`WrnConfig::init`] belongs to; this struct holds shallow handles to them.
#[derive(Debug)]
pub struct WideResNet {
    config: WrnConfig,
    conv1: Conv,
    blocks: Vec<WideBasic>,
    bn1: NormLayer,
    class_output: Linear,
    energy_output: Option<Linear>,
}

impl WideResNet {
    /// Validates `config` and creates the variables under `vs` with the reference names
    /// (`f.conv1.weight`, `f.layer1.0.bn1.weight`, ..., `class_output.weight`).
    pub fn new(vs: &Path, config: &WrnConfig) -> Result<Self> {
        config.check()?;
        let f = vs / "f";
        let [c0, c1, c2, c3] = config.stage_channels().map(|c| c as i64);
        let conv1 = Conv::new(&(&f / "conv1"), config, config.in_channels as i64, c0, 3, 1)?;
        let mut blocks = Vec::with_capacity(3 * config.blocks_per_stage());
        let mut c_in = c0;
        for (stage, (c_out, stride)) in [(c1, 1), (c2, 2), (c3, 2)].into_iter().enumerate() {
            let layer = &f / format!("layer{}", stage + 1);
            for i in 0..config.blocks_per_stage() {
                // Only the first block of a stage downsamples, as in the reference `_wide_layer`.
                let block_stride = if i == 0 { stride } else { 1 };
                blocks.push(WideBasic::new(
                    &(&layer / i),
                    config,
                    c_in,
                    c_out,
                    block_stride,
                )?);
                c_in = c_out;
            }
        }
        let bn1 = NormLayer::new(&(&f / "bn1"), config.norm, c3)?;
        let class_output = Linear::new(
            &(vs / "class_output"),
            config,
            c3,
            config.num_classes as i64,
        )?;
        let energy_output = if config.uncond {
            Some(Linear::new(&(vs / "energy_output"), config, c3, 1)?)
        } else {
            None
        };
        let model = Self {
            config: config.clone(),
            conv1,
            blocks,
            bn1,
            class_output,
            energy_output,
        };
        tracing::debug!(
            depth = config.depth,
            widen_factor = config.widen_factor,
            num_classes = config.num_classes,
            norm = ?config.norm,
            uncond = config.uncond,
            parameters = model.num_parameters(),
            "built Wide-ResNet"
        );
        Ok(model)
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &WrnConfig {
        &self.config
    }

    /// Number of trainable scalars of this network (batch-norm running statistics excluded).
    pub fn num_parameters(&self) -> i64 {
        self.conv1.num_parameters()
            + self
                .blocks
                .iter()
                .map(WideBasic::num_parameters)
                .sum::<i64>()
            + self.bn1.num_parameters()
            + self.class_output.num_parameters()
            + self
                .energy_output
                .as_ref()
                .map_or(0, Linear::num_parameters)
    }

    /// Checks that `x` is an `[N, in_channels, H, W]` tensor of the parameters' dtype.
    pub fn check_input(&self, x: &Tensor) -> Result<()> {
        let size = x.size();
        let channels = self.config.in_channels as i64;
        if size.len() != 4 || size[1] != channels || size[2] < 1 || size[3] < 1 {
            return Err(ModelError::InputShape {
                expected_channels: channels,
                got: size,
            });
        }
        let expected = self.conv1.weight.kind();
        if x.kind() != expected {
            return Err(ModelError::InputKind {
                expected,
                got: x.kind(),
            });
        }
        Ok(())
    }

    /// The pooled penultimate features `[N, 64k]` (the reference `f(x)`).
    pub fn f_features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.check_input(x)?;
        let mut out = self.conv1.forward(x, train)?;
        for block in &self.blocks {
            out = block.forward(&out, train)?;
        }
        let out = Act::of(&self.config).apply(&self.bn1.forward(&out, train)?)?;
        // Global pooling keeps any input size usable; for 32x32 inputs the map is 8x8
        // and this equals the reference's avg_pool2d(8).
        Ok(out.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)?)
    }

    /// Class logits `[N, num_classes]`, checking the input shape first.
    pub fn f_forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.class_output
            .forward(&self.f_features(x, train)?, train)
    }

    fn log_px_from_features(
        &self,
        features: &Tensor,
        logits: &Tensor,
        train: bool,
    ) -> Result<Tensor> {
        match &self.energy_output {
            Some(head) => Ok(head.forward(features, train)?.f_squeeze_dim(1)?),
            None => energy::log_px_from_logits(logits),
        }
    }
}

impl tch::nn::ModuleT for WideResNet {
    /// Class logits. Panics with the [`ModelError`] message on a bad input;
    /// use [`WideResNet::f_forward_t`] to get the error instead.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.f_forward_t(xs, train)
            .unwrap_or_else(|e| panic!("WideResNet::forward_t: {e}"))
    }
}

impl JointEnergyModel for WideResNet {
    fn logits(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.f_forward_t(x, train)
    }

    fn log_px(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.logits_and_log_px(x, train)?.1)
    }

    fn logits_and_log_px(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let features = self.f_features(x, train)?;
        let logits = self.class_output.forward(&features, train)?;
        let log_px = self.log_px_from_features(&features, &logits, train)?;
        Ok((logits, log_px))
    }
}

fn numel(t: &Tensor) -> i64 {
    t.numel() as i64
}

/// Number of trainable scalars in a [`VarStore`] (non-trainable buffers such as
/// batch-norm running statistics are not counted, as in PyTorch's `parameters()`).
pub fn parameter_count(vs: &VarStore) -> i64 {
    vs.trainable_variables().iter().map(numel).sum()
}

/// Shapes of every variable of `vs`, sorted by name (handy for debugging name mappings).
pub fn variable_shapes(vs: &VarStore) -> Vec<(String, Vec<i64>)> {
    let mut shapes: Vec<(String, Vec<i64>)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    shapes.sort();
    shapes
}
