//! Hyper-parameters of the Wide-ResNet and their validation.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::wrn::WideResNet;
use jem_params::InvalidParam;

/// Normalisation layer used inside the residual blocks and before the pooling.
///
/// Mirrors the `--norm` flag of the reference `get_norm` (the reference's `act`
/// option, ActNorm with data-dependent init, is not provided).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// No normalisation (JEM's default: batch statistics interfere with SGLD sampling).
    #[default]
    None,
    /// `BatchNorm2d` with PyTorch momentum 0.9 as in the reference, eps 1e-5,
    /// running statistics used in eval mode.
    Batch,
    /// `InstanceNorm2d(affine=True)`: per-sample, per-channel statistics in
    /// both train and eval mode (no running statistics, as PyTorch's default).
    Instance,
    /// `GroupNorm(1, C)`, which is what the reference calls "layer": statistics over
    /// (C, H, W) per sample, with a per-channel (not per-element) affine transform.
    Layer,
}

/// The activation function of the residual blocks and before the pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// LeakyReLU with slope `leak` (the reference's LeakyReLU(0.2)).
    #[default]
    LeakyRelu,
    /// SiLU / Swish `x · sigmoid(x)`: smooth, so the input gradients SGLD follows are too
    /// (IGEBM's choice; JEM users report it stabilises training).
    Silu,
}

/// Configuration of a JEM Wide-ResNet `WRN-depth-widen_factor`.
///
/// The default is the paper's CIFAR-10 model: WRN-28-10, 3 input channels,
/// 10 classes, no normalisation, no dropout, LeakyReLU(0.2), no separate energy head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WrnConfig {
    /// Total depth; must be `6n + 4` with `n >= 1` (n residual blocks per stage).
    pub depth: usize,
    /// Channel multiplier k: stages have 16, 16k, 32k, 64k channels.
    pub widen_factor: usize,
    /// Number of classes of the class head.
    pub num_classes: usize,
    /// Number of channels of the NCHW input (1 for MNIST-like, 3 for CIFAR/SVHN).
    pub in_channels: usize,
    /// Normalisation layer.
    pub norm: Norm,
    /// Dropout probability between the two convolutions of each block.
    pub dropout: f64,
    /// Activation function.
    pub activation: Activation,
    /// Negative slope of the LeakyReLU activations.
    pub leak: f64,
    /// Add a separate `energy_output` head (Linear(64k, 1)) giving log p(x) directly,
    /// instead of logsumexp over the class logits (the reference's `--uncond`).
    pub uncond: bool,
    /// Spectral normalisation of every convolution and linear layer (see
    /// [`crate::spectral`]): each uses `W / σ(W)`, bounding the network's Lipschitz constant.
    /// Off in the paper; IGEBM's stabiliser for energy-based models.
    pub spectral_norm: bool,
}

impl Default for WrnConfig {
    fn default() -> Self {
        Self {
            depth: 28,
            widen_factor: 10,
            num_classes: 10,
            in_channels: 3,
            norm: Norm::None,
            dropout: 0.0,
            activation: Activation::LeakyRelu,
            leak: 0.2,
            uncond: false,
            spectral_norm: false,
        }
    }
}

/// Largest accepted widen factor; beyond it a single stage would need tens of GB.
const MAX_WIDEN_FACTOR: usize = 64;
/// Largest accepted depth; keeps `6n + 4` arithmetic and memory sane.
const MAX_DEPTH: usize = 1000;

impl WrnConfig {
    /// A config with the given depth and widen factor and all other fields at their default.
    pub fn new(depth: usize, widen_factor: usize) -> Self {
        Self {
            depth,
            widen_factor,
            ..Self::default()
        }
    }

    /// Validates every field, returning an error that names the first offending
    /// field, its value and the allowed range.
    pub fn check(&self) -> Result<()> {
        let invalid = |field: &str, value: &dyn std::fmt::Display, allowed: &str| {
            ModelError::from(InvalidParam::new("model", field, value, allowed))
        };
        if self.depth < 10 || self.depth > MAX_DEPTH || (self.depth - 4) % 6 != 0 {
            return Err(invalid(
                "depth",
                &self.depth,
                "6n + 4 with n >= 1 and depth <= 1000 (10, 16, 22, 28, ...)",
            ));
        }
        if self.widen_factor == 0 || self.widen_factor > MAX_WIDEN_FACTOR {
            return Err(invalid("widen_factor", &self.widen_factor, "1..=64"));
        }
        if self.num_classes == 0 {
            return Err(invalid("num_classes", &self.num_classes, ">= 1"));
        }
        if self.in_channels == 0 {
            return Err(invalid("in_channels", &self.in_channels, ">= 1"));
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Err(invalid("dropout", &self.dropout, "[0, 1)"));
        }
        if !(self.leak.is_finite() && (0.0..=1.0).contains(&self.leak)) {
            return Err(invalid("leak", &self.leak, "[0, 1]"));
        }
        Ok(())
    }

    /// Residual blocks per stage, `(depth - 4) / 6`.
    pub fn blocks_per_stage(&self) -> usize {
        self.depth.saturating_sub(4) / 6
    }

    /// Channel counts `[16, 16k, 32k, 64k]` of the stem and the three stages.
    pub fn stage_channels(&self) -> [usize; 4] {
        let k = self.widen_factor;
        [16, 16 * k, 32 * k, 64 * k]
    }

    /// Width of the pooled feature vector fed to the heads (`64k`).
    pub fn feature_dim(&self) -> usize {
        self.stage_channels()[3]
    }

    /// Checks the config, then creates the network's variables under `vs`
    /// (normally `&var_store.root()`, so names match the reference state_dict).
    pub fn init(&self, vs: &tch::nn::Path) -> Result<WideResNet> {
        WideResNet::new(vs, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: ModelError) -> String {
        match err {
            ModelError::InvalidConfig(e) => e.field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn default_is_the_paper_model() {
        let c = WrnConfig::default();
        assert_eq!(
            (c.depth, c.widen_factor, c.num_classes, c.in_channels),
            (28, 10, 10, 3)
        );
        assert_eq!(c.norm, Norm::None);
        assert_eq!(c.leak, 0.2);
        assert_eq!(c.dropout, 0.0);
        assert!(!c.uncond);
        assert_eq!(c.blocks_per_stage(), 4);
        assert_eq!(c.stage_channels(), [16, 160, 320, 640]);
        c.check().unwrap();
    }

    #[test]
    fn accepts_valid_depths() {
        for depth in [10, 16, 22, 28, 40] {
            WrnConfig::new(depth, 1).check().unwrap();
        }
    }

    #[test]
    fn rejects_out_of_range_values_naming_the_field() {
        let base = WrnConfig::new(10, 1);
        let cases: Vec<(WrnConfig, &str, &str)> = vec![
            (
                WrnConfig {
                    depth: 4,
                    ..base.clone()
                },
                "depth",
                "4",
            ),
            (
                WrnConfig {
                    depth: 12,
                    ..base.clone()
                },
                "depth",
                "12",
            ),
            (
                WrnConfig {
                    depth: 3,
                    ..base.clone()
                },
                "depth",
                "3",
            ),
            (
                WrnConfig {
                    widen_factor: 0,
                    ..base.clone()
                },
                "widen_factor",
                "0",
            ),
            (
                WrnConfig {
                    widen_factor: 65,
                    ..base.clone()
                },
                "widen_factor",
                "65",
            ),
            (
                WrnConfig {
                    num_classes: 0,
                    ..base.clone()
                },
                "num_classes",
                "0",
            ),
            (
                WrnConfig {
                    in_channels: 0,
                    ..base.clone()
                },
                "in_channels",
                "0",
            ),
            (
                WrnConfig {
                    dropout: 1.0,
                    ..base.clone()
                },
                "dropout",
                "1",
            ),
            (
                WrnConfig {
                    dropout: -0.1,
                    ..base.clone()
                },
                "dropout",
                "-0.1",
            ),
            (
                WrnConfig {
                    dropout: f64::NAN,
                    ..base.clone()
                },
                "dropout",
                "NaN",
            ),
            (
                WrnConfig {
                    leak: 1.5,
                    ..base.clone()
                },
                "leak",
                "1.5",
            ),
            (
                WrnConfig {
                    leak: -0.2,
                    ..base.clone()
                },
                "leak",
                "-0.2",
            ),
        ];
        for (cfg, field, value) in cases {
            let err = cfg.check().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(field) && msg.contains(value), "{msg}");
            assert!(
                msg.contains(&format!("`model.{field}` = {value}: must be")),
                "{msg}"
            );
            assert_eq!(field_of(err), field);
        }
    }

    #[test]
    fn init_refuses_invalid_config() {
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let err = WrnConfig::new(11, 1).init(&vs.root()).unwrap_err();
        assert_eq!(field_of(err), "depth");
        assert!(
            vs.variables().is_empty(),
            "no variable may be created for a rejected config"
        );
    }

    #[test]
    fn toml_round_trip_and_partial_files() {
        let cfg = WrnConfig {
            norm: Norm::Layer,
            uncond: true,
            dropout: 0.3,
            ..WrnConfig::new(16, 2)
        };
        let text = toml::to_string(&cfg).unwrap();
        assert!(text.contains("norm = \"layer\""), "{text}");
        let back: WrnConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, cfg);

        let partial: WrnConfig = toml::from_str("depth = 16\nnorm = \"batch\"\n").unwrap();
        assert_eq!(
            partial,
            WrnConfig {
                depth: 16,
                norm: Norm::Batch,
                ..WrnConfig::default()
            }
        );
    }

    #[test]
    fn toml_rejects_unknown_keys_and_norms() {
        let err = toml::from_str::<WrnConfig>("depth = 16\nwidth = 2\n").unwrap_err();
        assert!(err.to_string().contains("width"), "{err}");
        let err = toml::from_str::<WrnConfig>("norm = \"act\"\n").unwrap_err();
        assert!(err.to_string().contains("act"), "{err}");
    }
}
