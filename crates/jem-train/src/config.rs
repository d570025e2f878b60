//! The run configuration: one TOML section per crate, plus `--set section.key=value` overrides.
//!
//! ```toml
//! [data]            # jem_data::DataConfig
//! [model]           # jem_model::WrnConfig
//! [sampler]         # chains = "persistent" | "short_run"
//! [sampler.sgld]    # jem_sampler::SgldConfig
//! [sampler.buffer]  # jem_sampler::BufferConfig
//! [train]           # TrainConfig (this crate)
//! [train.recovery]  # RecoveryConfig (this crate)
//! ```
//!
//! Every section rejects unknown keys and fills missing ones with its defaults (the paper's
//! CIFAR-10 recipe), so a file lists only what it changes.

use std::path::Path;

use jem_data::{DataConfig, DataError};
use jem_model::{ModelError, Precision, WrnConfig};
use jem_sampler::{BufferConfig, SamplerError, SgldConfig};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// What is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// JEM (Algorithm 1): `ce_weight · CE + px_weight · (−mean log p(x_data) + mean log p(x_sample))`,
    /// samples drawn by SGLD on `log p(x) = LogSumExp_y f(x)[y]`.
    #[default]
    Jem,
    /// The same network trained with cross-entropy only (the "Wide-ResNet" row of Table 1).
    Baseline,
    /// The paper's "JEM p(x|y) factored" ablation: maximise `log p(x|y) + log p(y)` with
    /// `log p(x|y) = f(x)[y] − log Z_y` estimated contrastively with class-conditional SGLD
    /// samples (energy `−f(x)[y]`, class-conditional buffer). With a uniform `p(y)` the second
    /// term is constant, so the loss is `px_weight · (−mean f(x)[y] + mean f(x̂)[y])` only;
    /// cross-entropy is computed for the diagnostics but is not part of the loss.
    Factored,
}

impl Mode {
    /// Whether this mode draws SGLD samples.
    pub fn samples(self) -> bool {
        !matches!(self, Mode::Baseline)
    }
}

/// Parameter optimiser (implemented in [`crate::optim`] so its state can be checkpointed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba) with L2 weight decay added to the gradient, as `torch.optim.Adam`.
    #[default]
    Adam,
    /// SGD with optional (Nesterov) momentum, as `torch.optim.SGD` (dampening 0).
    Sgd,
}

/// How SGLD chains start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chains {
    /// Persistent chains in a replay buffer (PCD, the paper's choice).
    #[default]
    Persistent,
    /// Fresh `U(-1, 1)` chains every iteration (Appendix H.2); `[sampler.buffer]` is unused.
    ShortRun,
}

/// A remedy applied after rolling back from a divergence (the paper's Appendix H.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remedy {
    /// Restart from the last good state with a new random stream (every remedy also does this).
    Reseed,
    /// Multiply the learning rate by `lr_factor`.
    LowerLr,
    /// Multiply the number of SGLD steps by `steps_factor`, capped at `max_sgld_steps`.
    MoreSteps,
}

impl std::fmt::Display for Remedy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Remedy::Reseed => "reseed",
            Remedy::LowerLr => "lower_lr",
            Remedy::MoreSteps => "more_steps",
        })
    }
}

/// The `[sampler]` section: chain initialisation plus the sampler crate's own config types.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    /// Persistent (replay buffer) or short-run chains.
    pub chains: Chains,
    /// SGLD hyper-parameters (`[sampler.sgld]`).
    pub sgld: SgldConfig,
    /// Replay-buffer settings (`[sampler.buffer]`).
    pub buffer: BufferConfig,
}

/// Divergence detection and automatic recovery (`[train.recovery]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Roll back and retry on divergence; when false a divergence ends the run with an error.
    pub enabled: bool,
    /// Iterations between in-memory snapshots of the last good state (checkpoints are snapshots too).
    pub snapshot_every: u64,
    /// Recoveries allowed over the whole run before giving up.
    pub max_recoveries: usize,
    /// Divergence when `|mean log p(x_data) − mean log p(x_sample)|` exceeds this; `None` disables.
    pub max_energy_gap: Option<f64>,
    /// Divergence when a sample's log p(x) lies further than `factor · w` outside the batch's
    /// data range `[lo, hi]` (`w = max(hi − lo, 1)`); `None` disables.
    pub sample_range_factor: Option<f64>,
    /// Learning-rate multiplier of the `lower_lr` remedy.
    pub lr_factor: f64,
    /// SGLD-steps multiplier of the `more_steps` remedy.
    pub steps_factor: usize,
    /// Cap on the SGLD steps reached by `more_steps`.
    pub max_sgld_steps: usize,
    /// Remedies applied in turn, cycling (the paper: new seed, lower lr, 20 → 40 steps).
    pub remedies: Vec<Remedy>,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            snapshot_every: 100,
            max_recoveries: 10,
            max_energy_gap: Some(1e3),
            sample_range_factor: Some(100.0),
            lr_factor: 0.5,
            steps_factor: 2,
            max_sgld_steps: 80,
            remedies: vec![Remedy::Reseed, Remedy::LowerLr, Remedy::MoreSteps],
        }
    }
}

/// The `[train]` section. Defaults are the paper's (Table 4, Appendix A).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// jem, baseline or factored.
    pub mode: Mode,
    /// Seed of the model initialisation and of every random stream of the loop.
    pub seed: u64,
    /// Passes over the training data.
    pub epochs: usize,
    /// Stop (saving a checkpoint) after this much training time, resumes included.
    pub max_minutes: Option<f64>,
    /// Stop (saving a checkpoint) after this many iterations in total.
    pub max_iterations: Option<u64>,
    /// adam or sgd.
    pub optimizer: OptimizerKind,
    /// Initial learning rate.
    pub lr: f64,
    /// Adam β1.
    pub beta1: f64,
    /// Adam β2.
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
    /// SGD momentum (0 = plain SGD).
    pub momentum: f64,
    /// Nesterov momentum (SGD, needs momentum > 0).
    pub nesterov: bool,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f64,
    /// Epochs at whose start the learning rate is multiplied by `decay_rate` (staircase).
    pub decay_epochs: Vec<usize>,
    /// Iterations (0-based, counted over the whole run) from which the learning rate is
    /// multiplied by `decay_rate` once more: a staircase for runs bounded by
    /// `max_iterations` rather than by epochs. Combines with `decay_epochs`.
    pub decay_iterations: Vec<u64>,
    /// Staircase decay factor.
    pub decay_rate: f64,
    /// Linear learning-rate warmup over this many iterations (0 = none).
    pub warmup_iters: u64,
    /// Weight of the cross-entropy term (jem, baseline).
    pub ce_weight: f64,
    /// Weight of the contrastive log p(x) (or log p(x|y)) term.
    pub px_weight: f64,
    /// IGEBM-style energy regulariser: `energy_l2 · (mean log p(x_data)² + mean log p(x_sample)²)`.
    /// Keeps energies near 0 so data and sample energies cannot drift apart unboundedly.
    pub energy_l2: f64,
    /// Clip the global L2 norm of the parameter gradient to this value.
    pub grad_clip: Option<f64>,
    /// Arithmetic of the SGLD passes: `fp32`, `bf16` (bfloat16 autocast; about 1.7-2x faster
    /// SGLD steps on CPUs with AVX-512 BF16, measured on WRN-10-1 and WRN-10-2; 9-12x *slower*
    /// on an AVX2-only CPU, which emulates it), or `auto` (bf16 where the device computes it
    /// natively, fp32 elsewhere: [`jem_model::ops::native_bf16`]).
    pub sgld_precision: Precision,
    /// Arithmetic of the training passes (forward and backward of the loss): `fp32`, `bf16` or
    /// `auto`.
    pub train_precision: Precision,
    /// Iterations between diagnostics lines in `metrics.jsonl`.
    pub log_every: u64,
    /// Iterations between periodic `last.ckpt` writes (0 = only at epoch ends and the end).
    pub checkpoint_every: u64,
    /// Iterations between PNG sample grids (0 = only at the end; grids need a sampling mode).
    pub sample_every: u64,
    /// Periodic checkpoints kept as `checkpoints/ckpt_<iteration>.ckpt` (the newest this many;
    /// 0 keeps none). Their replay buffers make the paper's "ensemble" IS/FID (Appendix B).
    pub keep_checkpoints: usize,
    /// Buffer samples shown in the unconditional grid.
    pub grid_samples: usize,
    /// Samples per class (one row per class) in the class-conditional grid.
    pub grid_per_class: usize,
    /// Divergence detection and recovery.
    pub recovery: RecoveryConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Jem,
            seed: 1,
            epochs: 150,
            max_minutes: None,
            max_iterations: None,
            optimizer: OptimizerKind::Adam,
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
            decay_epochs: vec![50, 100],
            decay_iterations: vec![],
            decay_rate: 0.3,
            warmup_iters: 0,
            ce_weight: 1.0,
            px_weight: 1.0,
            energy_l2: 0.0,
            grad_clip: None,
            sgld_precision: Precision::Fp32,
            train_precision: Precision::Fp32,
            log_every: 100,
            checkpoint_every: 1000,
            sample_every: 0,
            keep_checkpoints: 0,
            grid_samples: 64,
            grid_per_class: 8,
            recovery: RecoveryConfig::default(),
        }
    }
}

fn finite_in(key: &str, v: f64, ok: bool, allowed: &str) -> Result<()> {
    if v.is_finite() && ok {
        Ok(())
    } else {
        Err(TrainError::invalid(key, v, allowed))
    }
}

impl RecoveryConfig {
    /// Validates every field; errors name the key `train.recovery.*`.
    pub fn check(&self) -> Result<()> {
        const P: &str = "train.recovery.";
        if self.snapshot_every == 0 {
            return Err(TrainError::invalid(format!("{P}snapshot_every"), 0, ">= 1"));
        }
        if let Some(g) = self.max_energy_gap {
            finite_in(&format!("{P}max_energy_gap"), g, g > 0.0, "finite and > 0")?;
        }
        if let Some(f) = self.sample_range_factor {
            finite_in(
                &format!("{P}sample_range_factor"),
                f,
                f > 0.0,
                "finite and > 0",
            )?;
        }
        let lr = self.lr_factor;
        finite_in(
            &format!("{P}lr_factor"),
            lr,
            lr > 0.0 && lr < 1.0,
            "in (0, 1)",
        )?;
        if self.steps_factor < 2 {
            return Err(TrainError::invalid(
                format!("{P}steps_factor"),
                self.steps_factor,
                ">= 2",
            ));
        }
        if self.remedies.is_empty() {
            return Err(TrainError::invalid(
                format!("{P}remedies"),
                "[]",
                "a non-empty list of reseed, lower_lr, more_steps",
            ));
        }
        Ok(())
    }
}

impl TrainConfig {
    /// Validates every field; errors name the key `train.*`, its value and the allowed range.
    pub fn check(&self) -> Result<()> {
        if !(1..=1_000_000).contains(&self.epochs) {
            return Err(TrainError::invalid(
                "train.epochs",
                self.epochs,
                "1..=1000000",
            ));
        }
        if let Some(m) = self.max_minutes {
            finite_in("train.max_minutes", m, m > 0.0, "finite and > 0")?;
        }
        if self.max_iterations == Some(0) {
            return Err(TrainError::invalid("train.max_iterations", 0, ">= 1"));
        }
        finite_in(
            "train.lr",
            self.lr,
            self.lr > 0.0 && self.lr <= 100.0,
            "in (0, 100]",
        )?;
        for (key, v) in [("train.beta1", self.beta1), ("train.beta2", self.beta2)] {
            finite_in(key, v, (0.0..1.0).contains(&v), "in [0, 1)")?;
        }
        finite_in("train.eps", self.eps, self.eps > 0.0, "finite and > 0")?;
        finite_in(
            "train.momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "in [0, 1)",
        )?;
        if self.nesterov && self.optimizer == OptimizerKind::Sgd && self.momentum == 0.0 {
            return Err(TrainError::invalid(
                "train.nesterov",
                true,
                "false unless train.momentum > 0",
            ));
        }
        finite_in(
            "train.weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            "finite and >= 0",
        )?;
        if let Some(&late) = self.decay_epochs.iter().find(|&&e| e >= self.epochs) {
            return Err(TrainError::invalid(
                "train.decay_epochs",
                format!("{:?}", self.decay_epochs),
                format!(
                    "epochs < train.epochs = {} (a decay at epoch {late} would never happen)",
                    self.epochs
                ),
            ));
        }
        if let (Some(max), Some(&late)) = (self.max_iterations, self.decay_iterations.last()) {
            if late >= max {
                return Err(TrainError::invalid(
                    "train.decay_iterations",
                    format!("{:?}", self.decay_iterations),
                    format!("iterations < train.max_iterations = {max} (a decay at {late} would never happen)"),
                ));
            }
        }
        if self.decay_epochs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(TrainError::invalid(
                "train.decay_epochs",
                format!("{:?}", self.decay_epochs),
                "strictly increasing epochs",
            ));
        }
        if self.decay_iterations.windows(2).any(|w| w[0] >= w[1])
            || self.decay_iterations.first() == Some(&0)
        {
            return Err(TrainError::invalid(
                "train.decay_iterations",
                format!("{:?}", self.decay_iterations),
                "strictly increasing iterations >= 1",
            ));
        }
        finite_in(
            "train.decay_rate",
            self.decay_rate,
            self.decay_rate > 0.0 && self.decay_rate <= 1.0,
            "in (0, 1]",
        )?;
        for (key, v) in [
            ("train.ce_weight", self.ce_weight),
            ("train.px_weight", self.px_weight),
            ("train.energy_l2", self.energy_l2),
        ] {
            finite_in(key, v, v >= 0.0, "finite and >= 0")?;
        }
        if let Some(c) = self.grad_clip {
            finite_in("train.grad_clip", c, c > 0.0, "finite and > 0")?;
        }
        if self.log_every == 0 {
            return Err(TrainError::invalid("train.log_every", 0, ">= 1"));
        }
        if self.grid_samples == 0 {
            return Err(TrainError::invalid("train.grid_samples", 0, ">= 1"));
        }
        if self.grid_per_class == 0 {
            return Err(TrainError::invalid("train.grid_per_class", 0, ">= 1"));
        }
        self.recovery.check()
    }

    /// Checks what needs the training split's size, after [`TrainConfig::check`]: every
    /// `decay_iterations` entry falls within the `epochs × iterations_per_epoch` iterations the
    /// epochs allow. (`check` compares them with `max_iterations`; with too few `epochs` a longer
    /// schedule would silently stop before its decay.)
    pub fn check_schedule(&self, iterations_per_epoch: u64) -> Result<()> {
        let by_epochs = self.epochs as u64 * iterations_per_epoch;
        let Some(&late) = self.decay_iterations.last() else {
            return Ok(());
        };
        if late < by_epochs {
            return Ok(());
        }
        let epochs_needed = late / iterations_per_epoch.max(1) + 1;
        Err(TrainError::invalid(
            "train.decay_iterations",
            format!("{:?}", self.decay_iterations),
            format!(
                "iterations < {by_epochs}, the iterations train.epochs = {} allows at {iterations_per_epoch} \
                 per epoch (a decay at {late} would never happen; train.epochs = {epochs_needed} reaches it)",
                self.epochs
            ),
        ))
    }

    /// Learning rate of `iteration` (0-based) in `epoch` before any recovery scaling:
    /// staircase decay (`decay_epochs` reached by `epoch` plus `decay_iterations` reached by
    /// `iteration`) times the linear warmup factor `min(1, (iteration + 1) / warmup_iters)`.
    pub fn lr_at(&self, iteration: u64, epoch: usize) -> f64 {
        let decays = self.decay_epochs.iter().filter(|&&e| e <= epoch).count()
            + self
                .decay_iterations
                .iter()
                .filter(|&&i| i <= iteration)
                .count();
        let mut lr = self.lr * self.decay_rate.powi(decays as i32);
        if self.warmup_iters > 0 && iteration < self.warmup_iters {
            lr *= (iteration + 1) as f64 / self.warmup_iters as f64;
        }
        lr
    }
}

/// A complete run configuration. Missing sections take their defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// `[data]`, owned by jem-data.
    pub data: DataConfig,
    /// `[model]`, owned by jem-model.
    pub model: WrnConfig,
    /// `[sampler]`, jem-sampler's SGLD and buffer configs.
    pub sampler: SamplerConfig,
    /// `[train]`, owned by this crate.
    pub train: TrainConfig,
}

impl RunConfig {
    /// Parses a TOML document (unknown keys are errors). Does not [`check`](Self::check).
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_toml_with_overrides(text, &[] as &[&str])
    }

    /// Parses a TOML document, applies `section.key=value` overrides in order, then deserialises.
    pub fn from_toml_with_overrides<S: AsRef<str>>(text: &str, overrides: &[S]) -> Result<Self> {
        Self::parse(text, "<string>", overrides)
    }

    /// Reads and parses a TOML file, applying overrides; errors name the file.
    pub fn from_file<S: AsRef<str>>(path: &Path, overrides: &[S]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    fn parse<S: AsRef<str>>(text: &str, origin: &str, overrides: &[S]) -> Result<Self> {
        let mut value: toml::Value = toml::from_str::<toml::Table>(text)
            .map(toml::Value::Table)
            .map_err(|e| TrainError::ConfigParse {
                origin: origin.to_string(),
                message: e.to_string(),
            })?;
        for spec in overrides {
            apply_override(&mut value, spec.as_ref())?;
        }
        value.try_into().map_err(|e: toml::de::Error| {
            let message = e.to_string();
            match overrides.last() {
                Some(_) => TrainError::ConfigParse {
                    origin: format!(
                        "{origin} with overrides [{}]",
                        overrides
                            .iter()
                            .map(|s| s.as_ref())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    message,
                },
                None => TrainError::ConfigParse {
                    origin: origin.to_string(),
                    message,
                },
            }
        })
    }

    /// Applies one `section.key=value` override to this config (through its TOML form, so it
    /// behaves exactly as if the key had been written in the file). Unknown keys are errors.
    pub fn apply_override(&mut self, spec: &str) -> Result<()> {
        let mut value = toml::Value::try_from(&*self).map_err(|e| TrainError::Override {
            spec: spec.to_string(),
            reason: format!("cannot serialise the current config: {e}"),
        })?;
        apply_override(&mut value, spec)?;
        *self = value
            .try_into()
            .map_err(|e: toml::de::Error| TrainError::Override {
                spec: spec.to_string(),
                reason: e.to_string().trim().to_string(),
            })?;
        Ok(())
    }

    /// The config as a TOML document (as written to `config.toml` in the run directory).
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| TrainError::ConfigParse {
            origin: "<serialising the run config>".into(),
            message: e.to_string(),
        })
    }

    /// Validates every section (each with its own crate's check) and their consistency.
    /// Errors name the key, the value and the allowed range.
    pub fn check(&self) -> Result<()> {
        // A field out of range stays a field error (one message, `section.key`); anything
        // else a section's check says is passed on by message.
        self.data.check_ref().map_err(|e| match e {
            DataError::InvalidConfig(p) => p.into(),
            e => section("data", e),
        })?;
        self.model.check().map_err(|e| match e {
            ModelError::InvalidConfig(p) => p.into(),
            e => section("model", e),
        })?;
        self.sampler.sgld.check().map_err(|e| match e {
            SamplerError::InvalidConfig(p) => p.into(),
            e => section("sampler.sgld", e),
        })?;
        self.sampler.buffer.check().map_err(|e| match e {
            SamplerError::InvalidConfig(p) => p.into(),
            e => section("sampler.buffer", e),
        })?;
        self.train.check()?;
        let classes = self.model.num_classes;
        if self.train.mode == Mode::Factored
            && self.sampler.chains == Chains::Persistent
            && self.sampler.buffer.size % classes != 0
        {
            return Err(TrainError::invalid(
                "sampler.buffer.size",
                self.sampler.buffer.size,
                format!("a multiple of model.num_classes = {classes} (factored mode splits the buffer per class)"),
            ));
        }
        if self.sampler.buffer.class_conditional
            && self.sampler.chains == Chains::Persistent
            && self.train.mode.samples()
            && self.sampler.buffer.size % classes != 0
        {
            return Err(TrainError::invalid(
                "sampler.buffer.size",
                self.sampler.buffer.size,
                format!("a multiple of model.num_classes = {classes} (class-conditional buffer)"),
            ));
        }
        if self.train.mode.samples() && self.sampler.sgld.steps == 0 {
            return Err(TrainError::invalid(
                "sampler.sgld.steps",
                0,
                ">= 1 for a sampling mode (jem, factored)",
            ));
        }
        if self.train.recovery.max_sgld_steps < self.sampler.sgld.steps {
            return Err(TrainError::invalid(
                "train.recovery.max_sgld_steps",
                self.train.recovery.max_sgld_steps,
                format!(">= sampler.sgld.steps = {}", self.sampler.sgld.steps),
            ));
        }
        Ok(())
    }

    /// Checks that the model fits data of `[channels, height, width]` images with `classes` labels.
    pub fn check_data_shape(&self, image_shape: [usize; 3], classes: usize) -> Result<()> {
        if self.model.in_channels != image_shape[0] {
            return Err(TrainError::invalid(
                "model.in_channels",
                self.model.in_channels,
                format!("{} (the data's channels)", image_shape[0]),
            ));
        }
        if self.model.num_classes != classes {
            return Err(TrainError::invalid(
                "model.num_classes",
                self.model.num_classes,
                format!("{classes} (the data's classes)"),
            ));
        }
        Ok(())
    }

    /// The config as actually run: factored mode always uses a class-conditional buffer.
    pub fn resolved(mut self) -> Self {
        if self.train.mode == Mode::Factored && !self.sampler.buffer.class_conditional {
            tracing::info!("factored mode: using a class-conditional replay buffer");
            self.sampler.buffer.class_conditional = true;
        }
        self
    }
}

/// Sets `path = value` (from `"a.b.c=value"`) in a TOML document. The value is parsed as TOML
/// (`3`, `1e-4`, `true`, `[50, 100]`, `"x"`) and taken as a plain string when that fails (`adam`).
/// Missing intermediate tables are created; whether the key exists is decided when the document
/// is deserialised (unknown keys are rejected there, naming the key).
pub fn apply_override(doc: &mut toml::Value, spec: &str) -> Result<()> {
    let err = |reason: String| TrainError::Override {
        spec: spec.to_string(),
        reason,
    };
    let (path, raw) = spec
        .split_once('=')
        .ok_or_else(|| err("expected `section.key=value`".into()))?;
    let path = path.trim();
    let raw = raw.trim();
    let keys: Vec<&str> = path.split('.').map(str::trim).collect();
    if keys.len() < 2 || keys.iter().any(|k| k.is_empty()) {
        return Err(err(format!(
            "`{path}` is not a `section.key` path (sections: data, model, sampler, train)"
        )));
    }
    if !["data", "model", "sampler", "train"].contains(&keys[0]) {
        return Err(err(format!(
            "unknown section `{}` (expected data, model, sampler or train)",
            keys[0]
        )));
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let mut node = doc;
    for (depth, key) in keys.iter().enumerate() {
        let table = node.as_table_mut().ok_or_else(|| {
            err(format!(
                "`{}` is not a table, cannot set `{key}` in it",
                keys[..depth].join(".")
            ))
        })?;
        if depth + 1 == keys.len() {
            table.insert((*key).to_string(), value);
            return Ok(());
        }
        node = table
            .entry((*key).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Ok(())
}

/// [`TrainError::Section`]: another crate's check of `section` failed with `e`.
fn section(section: &'static str, e: impl std::fmt::Display) -> TrainError {
    TrainError::Section {
        section,
        message: e.to_string(),
    }
}
