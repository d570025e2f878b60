//! The training loop (Algorithm 1), evaluation, checkpoints, resume and recovery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use jem_data::preprocess::Preprocess;
use jem_data::split::{labeled_subset, train_valid_split};
use jem_data::{load, Dataset, Split};
use jem_model::{JointEnergyModel, WideResNet};
use jem_sampler::{
    sample, BufferState, ChainInit, Energy, FromLogits, ReplayBuffer, SamplerError, ShortRun,
};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Reduction, Tensor};

use crate::checkpoint::{read_checkpoint, remove_stale_temps, write_checkpoint};
use crate::config::{Chains, Mode, RunConfig};
use crate::error::{Result, TrainError};
use crate::metrics::{Diagnostics, EpochMetrics, MetricsLine, MetricsLog, RunInfo, TrainObserver};
use crate::optim::{copy_variables, restore_variables, Optimizer, OptimizerSettings};
use crate::recovery::{detect, Divergence, EnergyStats, RecoveryState};
use crate::rng::{stream_rng, tch_seed, Stream};

pub mod bench;

/// File names inside a run directory.
pub mod files {
    /// The resolved config, written at the start.
    pub const CONFIG: &str = "config.toml";
    /// Diagnostics, evaluations and recovery events, one JSON object per line.
    pub const METRICS: &str = "metrics.jsonl";
    /// Latest checkpoint (periodic, every epoch, at the end).
    pub const LAST: &str = "last.ckpt";
    /// Checkpoint of the best validation accuracy.
    pub const BEST: &str = "best.ckpt";
    /// Summary of a finished (or stopped) run.
    pub const SUMMARY: &str = "summary.json";
    /// PNG sample grids.
    pub const SAMPLES_DIR: &str = "samples";
}

const FORMAT_VERSION: u64 = 1;

/// Serialises model initialisation: `tch::manual_seed` and the initialisers share libtorch's
/// global generator, so two runs initialising at once in one process would interleave draws.
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Training and test images (in `[0, 1]`, as loaded by jem-data) with labels.
#[derive(Debug)]
pub struct TrainData {
    /// The official training split (the validation split is carved out of it).
    pub train: Dataset,
    /// The test split.
    pub test: Dataset,
}

impl TrainData {
    /// Loads the training and test splits named by `[data]`.
    pub fn load(cfg: &jem_data::DataConfig) -> Result<Self> {
        let checked = cfg.clone().check()?;
        let opts = checked.load_options();
        let dir = cfg.data_dir.as_deref();
        Ok(Self {
            train: load(cfg.dataset, Split::Train, dir, &opts)?,
            test: load(cfg.dataset, Split::Test, dir, &opts)?,
        })
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// All epochs done.
    Completed,
    /// `train.max_iterations` reached.
    MaxIterations,
    /// `train.max_minutes` spent.
    TimeBudget,
    /// The observer asked to stop.
    Stopped,
}

/// What a run achieved (also written to `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The training mode.
    pub mode: Mode,
    /// Completed iterations.
    pub iterations: u64,
    /// Completed epochs.
    pub epochs_completed: usize,
    /// Validation accuracy of the final model.
    pub final_valid_acc: Option<f64>,
    /// Test accuracy of the final model.
    pub final_test_acc: Option<f64>,
    /// Best validation accuracy.
    pub best_valid_acc: Option<f64>,
    /// Test accuracy of the best-validation model.
    pub best_test_acc: Option<f64>,
    /// Epochs completed when the best model was evaluated.
    pub best_epoch: Option<usize>,
    /// Divergence recoveries.
    pub recoveries: usize,
    /// Training time in seconds, resumes included.
    pub wall_time_s: f64,
    /// Why the run ended.
    pub stop_reason: StopReason,
}

/// Window accumulators of the diagnostics (checkpointed so a resume logs the same figures).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Window {
    iterations: u64,
    loss: f64,
    ce: f64,
    px: f64,
    reg: f64,
    sampled: u64,
    logpx_data: f64,
    logpx_sample: f64,
    sgld_grad: f64,
    grad_norm: f64,
    correct: u64,
    seen: u64,
}

/// Counters and results of the loop (everything of the state that is not a tensor or recovery).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LoopState {
    iteration: u64,
    epochs_completed: usize,
    best_valid: Option<f64>,
    best_test: Option<f64>,
    best_epoch: Option<usize>,
    last_valid: Option<f64>,
    last_test: Option<f64>,
    evaluated_at: Option<u64>,
    epoch_correct: u64,
    epoch_seen: u64,
    window: Window,
    stop_reason: Option<StopReason>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    format: u64,
    config: RunConfig,
    state: LoopState,
    recovery: RecoveryState,
    optimizer_steps: u64,
    metrics_len: u64,
    elapsed_s: f64,
    has_buffer: bool,
}

/// The last good state, kept in memory for rollbacks.
struct Snapshot {
    vars: BTreeMap<String, Tensor>,
    optim: BTreeMap<String, Tensor>,
    optimizer_steps: u64,
    buffer: Option<BufferState>,
    state: LoopState,
}

/// Index sets and preprocessing derived from the data config.
struct Prepared {
    train: Dataset,
    test: Dataset,
    train_idx: Vec<usize>,
    valid_idx: Vec<usize>,
    labeled_idx: Option<Vec<usize>>,
    train_pre: Preprocess,
    eval_pre: Preprocess,
    iterations_per_epoch: u64,
}

struct IterStats {
    loss: f64,
    ce: f64,
    px: f64,
    reg: f64,
    energies: Option<EnergyStats>,
    sgld_grad: Option<f64>,
    grad_norm: f64,
    correct: u64,
    seen: u64,
    lr: f64,
}

enum Outcome {
    Done(Box<IterStats>),
    Diverged(Divergence),
}

fn to_f64(t: &Tensor) -> Result<f64> {
    Ok(t.f_to_device(Device::Cpu)?.f_double_value(&[])?)
}

fn prepare(cfg: &RunConfig, data: TrainData) -> Result<Prepared> {
    let TrainData { train, test } = data;
    let classes = cfg.model.num_classes;
    for (name, ds) in [("train", &train), ("test", &test)] {
        if ds.num_classes != classes || ds.image_shape()[0] != cfg.model.in_channels {
            cfg.check_data_shape(ds.image_shape(), ds.num_classes)?;
        }
        if ds.is_empty() {
            return Err(TrainError::DataMismatch(format!(
                "the {name} split is empty"
            )));
        }
    }
    let d = &cfg.data;
    let split = train_valid_split(train.len(), d.n_valid, d.seed)?;
    let labeled_idx = match d.labels_per_class {
        Some(k) => {
            let labels = train.labels_vec()?;
            Some(labeled_subset(&labels, &split.train, classes, k, d.seed)?.labeled)
        }
        None => None,
    };
    let n = split.train.len() as u64;
    let b = d.batch_size as u64;
    let iterations_per_epoch = if d.drop_last { n / b } else { n.div_ceil(b) };
    if iterations_per_epoch == 0 {
        return Err(TrainError::DataMismatch(format!(
            "{n} training examples make no full batch of {b} (data.drop_last = true)"
        )));
    }
    let side = train.image_shape()[1].min(train.image_shape()[2]);
    if d.augment && d.pad >= side {
        return Err(TrainError::invalid(
            "data.pad",
            d.pad,
            format!("< {side} (the image side)"),
        ));
    }
    let checked = d.clone().check()?;
    Ok(Prepared {
        train,
        test,
        train_idx: split.train,
        valid_idx: split.valid,
        labeled_idx,
        train_pre: checked.train_preprocess(),
        eval_pre: checked.eval_preprocess(),
        iterations_per_epoch,
    })
}

struct Trainer<'o> {
    cfg: RunConfig,
    run_dir: PathBuf,
    device: Device,
    vs: VarStore,
    model: WideResNet,
    opt: Optimizer,
    chains: Option<ChainInit>,
    data: Prepared,
    st: LoopState,
    recovery: RecoveryState,
    metrics: MetricsLog,
    snapshot: Option<Snapshot>,
    observer: &'o mut dyn TrainObserver,
    elapsed_before: f64,
    started: Instant,
    window_started: Instant,
    epoch_order: Option<(usize, Vec<usize>)>,
    last_samples: Option<Tensor>,
}

/// The state of a run at iteration 0: a freshly initialised model, optimiser and chains.
fn fresh_trainer<'o>(
    cfg: RunConfig,
    run_dir: PathBuf,
    device: Device,
    data: Prepared,
    metrics: MetricsLog,
    observer: &'o mut dyn TrainObserver,
) -> Result<Trainer<'o>> {
    let (vs, model) = build_model(&cfg, device)?;
    tracing::info!(parameters = jem_model::parameter_count(&vs), "model built");
    let opt = Optimizer::new(&vs, OptimizerSettings::from(&cfg.train))?;
    let shape: Vec<i64> = data.train.image_shape().iter().map(|&v| v as i64).collect();
    let chains = new_chains(&cfg, &shape, device)?;
    let recovery = RecoveryState::new(cfg.sampler.sgld.steps);
    Ok(Trainer {
        cfg,
        run_dir,
        device,
        vs,
        model,
        opt,
        chains,
        data,
        st: LoopState {
            iteration: 0,
            epochs_completed: 0,
            best_valid: None,
            best_test: None,
            best_epoch: None,
            last_valid: None,
            last_test: None,
            evaluated_at: None,
            epoch_correct: 0,
            epoch_seen: 0,
            window: Window::default(),
            stop_reason: None,
        },
        recovery,
        metrics,
        snapshot: None,
        observer,
        elapsed_before: 0.0,
        started: Instant::now(),
        window_started: Instant::now(),
        epoch_order: None,
        last_samples: None,
    })
}

fn build_model(cfg: &RunConfig, device: Device) -> Result<(VarStore, WideResNet)> {
    let vs = VarStore::new(device);
    let model = {
        let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        tch::manual_seed(tch_seed(cfg.train.seed, Stream::Init, 0, 0));
        cfg.model.init(&vs.root())?
    };
    Ok((vs, model))
}

fn new_chains(cfg: &RunConfig, sample_shape: &[i64], device: Device) -> Result<Option<ChainInit>> {
    if !cfg.train.mode.samples() {
        return Ok(None);
    }
    let classes = cfg.model.num_classes as i64;
    let needs_labels = cfg.train.mode == Mode::Factored || cfg.sampler.buffer.class_conditional;
    let n_classes = needs_labels.then_some(classes);
    Ok(Some(match cfg.sampler.chains {
        Chains::Persistent => {
            let mut rng = stream_rng(cfg.train.seed, Stream::Buffer, 0, 0);
            ChainInit::Persistent(ReplayBuffer::new(
                &cfg.sampler.buffer,
                sample_shape,
                n_classes,
                device,
                &mut rng,
            )?)
        }
        Chains::ShortRun => ChainInit::ShortRun(ShortRun::new(sample_shape, n_classes, device)?),
    }))
}

/// Trains from scratch on the data named by `cfg.data`, writing everything into `run_dir`
/// (created if needed; it must not hold a checkpoint already — use [`resume`] for that).
pub fn train(
    cfg: RunConfig,
    run_dir: &Path,
    device: Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary> {
    let cfg = cfg.resolved();
    cfg.check()?;
    let kind = cfg.data.dataset;
    let classes = match kind {
        jem_data::DatasetKind::Cifar100 => cfg.data.cifar100_labels.num_classes(),
        other => other.num_classes(),
    };
    cfg.check_data_shape(kind.image_shape(), classes)?;
    let data = TrainData::load(&cfg.data)?;
    train_with_data(cfg, data, run_dir, device, observer)
}

/// Like [`train`] with data given in memory (synthetic sets, tests, custom loaders).
pub fn train_with_data(
    cfg: RunConfig,
    data: TrainData,
    run_dir: &Path,
    device: Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary> {
    let cfg = cfg.resolved();
    cfg.check()?;
    std::fs::create_dir_all(run_dir).map_err(|e| TrainError::io(run_dir, e))?;
    let last = run_dir.join(files::LAST);
    if last.exists() {
        return Err(TrainError::io(
            &last,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the run directory already holds a checkpoint: resume it or use another directory",
            ),
        ));
    }
    let data = prepare(&cfg, data)?;
    remove_stale_temps(run_dir);
    let config_path = run_dir.join(files::CONFIG);
    let text = format!(
        "# Resolved configuration of this run (written by jem-train).\n{}",
        cfg.to_toml_string()?
    );
    std::fs::write(&config_path, text).map_err(|e| TrainError::io(&config_path, e))?;
    let metrics = MetricsLog::open(&run_dir.join(files::METRICS), Some(0))?;

    tracing::info!(
        run_dir = %run_dir.display(),
        mode = ?cfg.train.mode,
        iterations_per_epoch = data.iterations_per_epoch,
        "starting training"
    );
    let trainer = fresh_trainer(cfg, run_dir.to_path_buf(), device, data, metrics, observer)?;
    trainer.run()
}

/// Reads the config stored in a checkpoint.
pub fn checkpoint_config(path: &Path) -> Result<RunConfig> {
    let ck = read_checkpoint(path)?;
    let meta: Meta = serde_json::from_value(ck.meta).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: format!("unreadable metadata: {e}"),
    })?;
    Ok(meta.config)
}

/// Loads the model of a checkpoint (`last.ckpt` / `best.ckpt`) for evaluation: its config, a
/// VarStore on `device` holding the weights, and the network.
pub fn load_model(path: &Path, device: Device) -> Result<(RunConfig, VarStore, WideResNet)> {
    let ck = read_checkpoint(path)?;
    let meta: Meta = serde_json::from_value(ck.meta).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: format!("unreadable metadata: {e}"),
    })?;
    let (vs, model) = build_model(&meta.config, device)?;
    let vars: BTreeMap<String, Tensor> = ck
        .tensors
        .into_iter()
        .filter_map(|(n, t)| n.strip_prefix("model.").map(|s| (s.to_string(), t)))
        .collect();
    restore_variables(&vs, &vars).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok((meta.config, vs, model))
}

/// Continues the run in `run_dir` from its `last.ckpt`, loading the data its config names.
pub fn resume(
    run_dir: &Path,
    device: Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary> {
    let cfg = checkpoint_config(&run_dir.join(files::LAST))?;
    let data = TrainData::load(&cfg.data)?;
    resume_with_data(run_dir, data, device, observer)
}

/// Like [`resume`] with the data given in memory (it must be the data of the original run).
pub fn resume_with_data(
    run_dir: &Path,
    data: TrainData,
    device: Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary> {
    let path = run_dir.join(files::LAST);
    remove_stale_temps(run_dir);
    let ck = read_checkpoint(&path)?;
    let bad = |reason: String| TrainError::Checkpoint {
        path: path.clone(),
        reason,
    };
    let meta: Meta =
        serde_json::from_value(ck.meta).map_err(|e| bad(format!("unreadable metadata: {e}")))?;
    if meta.format != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {} (this build reads {FORMAT_VERSION})",
            meta.format
        )));
    }
    let cfg = meta.config;
    cfg.check()?;
    let data = prepare(&cfg, data)?;
    let (vs, model) = build_model(&cfg, device)?;
    let mut named: BTreeMap<String, Tensor> = ck.tensors.into_iter().collect();
    let vars: BTreeMap<String, Tensor> = named
        .iter()
        .filter_map(|(n, t)| {
            n.strip_prefix("model.")
                .map(|s| (s.to_string(), t.shallow_clone()))
        })
        .collect();
    restore_variables(&vs, &vars).map_err(|e| bad(e.to_string()))?;
    let mut opt = Optimizer::new(&vs, OptimizerSettings::from(&cfg.train))?;
    opt.load_state(&named, "optim.", meta.optimizer_steps)
        .map_err(|e| bad(e.to_string()))?;
    let shape: Vec<i64> = data.train.image_shape().iter().map(|&v| v as i64).collect();
    let mut chains = new_chains(&cfg, &shape, device)?;
    if let Some(ChainInit::Persistent(buffer)) = chains.as_mut() {
        if !meta.has_buffer {
            return Err(bad("the replay buffer is missing".into()));
        }
        let list: Vec<(String, Tensor)> = std::mem::take(&mut named)
            .into_iter()
            .filter(|(n, _)| n.starts_with("buffer."))
            .collect();
        let state = BufferState::from_named_tensors(&list, "buffer.")?;
        *buffer = ReplayBuffer::from_state(state, device)?;
    }
    let metrics = MetricsLog::open(&run_dir.join(files::METRICS), Some(meta.metrics_len))?;
    tracing::info!(
        run_dir = %run_dir.display(),
        iteration = meta.state.iteration,
        "resuming training"
    );
    let trainer = Trainer {
        cfg,
        run_dir: run_dir.to_path_buf(),
        device,
        vs,
        model,
        opt,
        chains,
        data,
        st: meta.state,
        recovery: meta.recovery,
        metrics,
        snapshot: None,
        observer,
        elapsed_before: meta.elapsed_s,
        started: Instant::now(),
        window_started: Instant::now(),
        epoch_order: None,
        last_samples: None,
    };
    trainer.run()
}

impl Trainer<'_> {
    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    fn total_iterations(&self) -> u64 {
        let full = self.cfg.train.epochs as u64 * self.data.iterations_per_epoch;
        self.cfg.train.max_iterations.map_or(full, |m| m.min(full))
    }

    fn run(mut self) -> Result<TrainSummary> {
        let total = self.total_iterations();
        let ipe = self.data.iterations_per_epoch;
        self.observer.on_start(&RunInfo {
            run_dir: self.run_dir.clone(),
            start_iteration: self.st.iteration,
            total_iterations: total,
            iterations_per_epoch: ipe,
            parameters: jem_model::parameter_count(&self.vs),
        });
        if self.st.stop_reason == Some(StopReason::Completed) || self.st.iteration >= total {
            return self.finish(StopReason::Completed);
        }
        self.take_snapshot()?;
        let mut reason = StopReason::Completed;
        while self.st.iteration < total {
            if self.observer.should_stop() {
                reason = StopReason::Stopped;
                break;
            }
            if let Some(m) = self.cfg.train.max_minutes {
                if self.elapsed() >= m * 60.0 {
                    reason = StopReason::TimeBudget;
                    break;
                }
            }
            let it = self.st.iteration;
            let epoch = (it / ipe) as usize;
            match self.iteration(it, epoch)? {
                Outcome::Diverged(d) => self.recover(d, it, epoch)?,
                Outcome::Done(stats) => self.after_iteration(*stats, epoch)?,
            }
        }
        if reason == StopReason::Completed && total < self.cfg.train.epochs as u64 * ipe {
            reason = StopReason::MaxIterations;
        }
        self.finish(reason)
    }

    fn after_iteration(&mut self, s: IterStats, epoch: usize) -> Result<()> {
        self.st.iteration += 1;
        let it = self.st.iteration;
        let w = &mut self.st.window;
        w.iterations += 1;
        w.loss += s.loss;
        w.ce += s.ce;
        w.px += s.px;
        w.reg += s.reg;
        w.grad_norm += s.grad_norm;
        w.correct += s.correct;
        w.seen += s.seen;
        if let Some(e) = s.energies {
            w.sampled += 1;
            w.logpx_data += e.data_mean;
            w.logpx_sample += e.sample_mean;
            w.sgld_grad += s.sgld_grad.unwrap_or(0.0);
        }
        self.st.epoch_correct += s.correct;
        self.st.epoch_seen += s.seen;
        self.observer.on_iteration(it);
        if it % self.cfg.train.log_every == 0 {
            self.log_diagnostics(epoch, s.lr)?;
        }
        let t = &self.cfg.train;
        let sample_now = t.sample_every > 0 && it % t.sample_every == 0;
        let epoch_end = it % self.data.iterations_per_epoch == 0;
        let periodic = t.checkpoint_every > 0 && it % t.checkpoint_every == 0;
        let snapshot_now = it % t.recovery.snapshot_every == 0;
        if (epoch_end || periodic || snapshot_now) && !self.opt.params_finite()? {
            return self.recover(Divergence::NonFiniteParameters, it - 1, epoch);
        }
        if sample_now {
            self.write_grids()?;
        }
        if epoch_end {
            self.st.epochs_completed = epoch + 1;
            self.evaluate()?;
            self.save(files::LAST)?;
        } else if periodic {
            self.save(files::LAST)?;
        }
        if epoch_end || periodic || snapshot_now {
            self.take_snapshot()?;
        }
        Ok(())
    }

    fn log_diagnostics(&mut self, epoch: usize, lr: f64) -> Result<()> {
        let w = std::mem::take(&mut self.st.window);
        let n = w.iterations.max(1) as f64;
        let secs = self.window_started.elapsed().as_secs_f64();
        self.window_started = Instant::now();
        let (age_mean, age_max) = match &self.chains {
            Some(ChainInit::Persistent(b)) => {
                let a = b.age_stats();
                (Some(a.mean), Some(a.max))
            }
            _ => (None, None),
        };
        let sampled = (w.sampled > 0).then_some(w.sampled as f64);
        let d = Diagnostics {
            iteration: self.st.iteration,
            epoch,
            lr,
            loss: w.loss / n,
            ce: w.ce / n,
            px_term: w.px / n,
            energy_reg: w.reg / n,
            logpx_data: sampled.map(|k| w.logpx_data / k),
            logpx_sample: sampled.map(|k| w.logpx_sample / k),
            energy_gap: sampled.map(|k| (w.logpx_data - w.logpx_sample) / k),
            sgld_grad_norm: sampled.map(|k| w.sgld_grad / k),
            sgld_steps: self.recovery.sgld_steps,
            buffer_age_mean: age_mean,
            buffer_age_max: age_max,
            param_grad_norm: w.grad_norm / n,
            train_acc: w.correct as f64 / w.seen.max(1) as f64,
            its_per_sec: if secs > 0.0 {
                w.iterations as f64 / secs
            } else {
                0.0
            },
            elapsed_s: self.elapsed(),
        };
        tracing::info!(
            iteration = d.iteration,
            epoch = d.epoch,
            loss = d.loss,
            ce = d.ce,
            px = d.px_term,
            gap = ?d.energy_gap,
            acc = d.train_acc,
            lr = d.lr,
            "train"
        );
        self.metrics.write(&MetricsLine::Train(d.clone()))?;
        self.observer.on_diagnostics(&d);
        Ok(())
    }

    /// Batch `pos` of `epoch` of the (unlabelled) training order.
    fn data_batch(&mut self, epoch: usize, pos: u64) -> Result<(Tensor, Tensor)> {
        if self.epoch_order.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let mut order = self.data.train_idx.clone();
            order.shuffle(&mut stream_rng(
                self.cfg.data.seed,
                Stream::EpochOrder,
                epoch as u64,
                0,
            ));
            self.epoch_order = Some((epoch, order));
        }
        let order = &self.epoch_order.as_ref().expect("set above").1;
        let b = self.cfg.data.batch_size;
        let start = pos as usize * b;
        let end = (start + b).min(order.len());
        let sub = self.data.train.subset(&order[start..end])?;
        Ok((sub.images, sub.labels))
    }

    /// The labelled batch of iteration `it` in semi-supervised runs.
    fn labeled_batch(&self, it: u64, labeled: &[usize]) -> Result<(Tensor, Tensor)> {
        let b = self.cfg.data.batch_size;
        let per_cycle = (labeled.len() / b).max(1) as u64;
        let (cycle, pos) = (it / per_cycle, (it % per_cycle) as usize);
        let mut order = labeled.to_vec();
        order.shuffle(&mut stream_rng(
            self.cfg.data.seed,
            Stream::LabeledOrder,
            cycle,
            0,
        ));
        let start = pos * b;
        let end = (start + b).min(order.len());
        let sub = self.data.train.subset(&order[start..end])?;
        Ok((sub.images, sub.labels))
    }

    fn iteration(&mut self, it: u64, epoch: usize) -> Result<Outcome> {
        let seed = self.cfg.train.seed;
        let salt = self.recovery.salt;
        tch::manual_seed(tch_seed(seed, Stream::Iteration, it, salt));
        let mut rng = stream_rng(seed, Stream::Iteration, it, salt);
        let pos = it % self.data.iterations_per_epoch;
        let (xr, yr) = self.data_batch(epoch, pos)?;
        let x_d = self
            .data
            .train_pre
            .train(&xr, &mut rng)?
            .f_to_device(self.device)?;
        let y_d = yr.f_to_device(self.device)?;
        let labeled = match &self.data.labeled_idx {
            Some(l) => {
                let (xl, yl) = self.labeled_batch(it, l)?;
                let xl = self
                    .data
                    .train_pre
                    .train(&xl, &mut rng)?
                    .f_to_device(self.device)?;
                Some((xl, yl.f_to_device(self.device)?))
            }
            None => None,
        };
        let lr = self.cfg.train.lr_at(it, epoch) * self.recovery.lr_scale;
        let t = self.cfg.train.clone();
        let mut sgld_cfg = self.cfg.sampler.sgld.clone();
        sgld_cfg.steps = self.recovery.sgld_steps;
        self.opt.zero_grad();

        let model = &self.model;
        // Logits of the labelled batch, and log p(x) of the data batch for the p(x) term.
        let (logits_l, y_l, logpx_d) = match (&labeled, t.mode) {
            (None, Mode::Jem) => {
                let (logits, logpx) = model.logits_and_log_px(&x_d, true)?;
                (logits, y_d.shallow_clone(), Some(logpx))
            }
            (Some((xl, yl)), Mode::Jem) => {
                let logits = model.logits(xl, true)?;
                let logpx = model.log_px(&x_d, true)?;
                (logits, yl.shallow_clone(), Some(logpx))
            }
            (None, _) => (model.logits(&x_d, true)?, y_d.shallow_clone(), None),
            (Some((xl, yl)), _) => (model.logits(xl, true)?, yl.shallow_clone(), None),
        };
        let ce = logits_l.f_cross_entropy_loss::<Tensor>(&y_l, None, Reduction::Mean, -100, 0.0)?;
        let mut loss = if t.mode == Mode::Factored {
            Tensor::f_zeros([], (Kind::Float, self.device))?
        } else {
            ce.f_mul_scalar(t.ce_weight)?
        };
        let mut px_v = 0.0;
        let mut reg_v = 0.0;
        let mut energies = None;
        let mut sgld_grad = None;
        if t.mode.samples() {
            let chains = self.chains.as_mut().expect("sampling modes have chains");
            let n = x_d.size()[0] as usize;
            let marginal = |x: &Tensor| -> Tensor {
                model
                    .log_px(x, false)
                    .unwrap_or_else(|e| panic!("log p(x) during SGLD: {e}"))
            };
            let logits_fn = |x: &Tensor| -> Tensor {
                model
                    .logits(x, false)
                    .unwrap_or_else(|e| panic!("logits during SGLD: {e}"))
            };
            let conditional = FromLogits(logits_fn);
            let (data_term, labels) = match t.mode {
                Mode::Factored => {
                    let labels = Vec::<i64>::try_from(&y_l.f_to_device(Device::Cpu)?)?;
                    (None, Some(labels))
                }
                _ => (logpx_d.as_ref(), None),
            };
            let energy = match t.mode {
                Mode::Factored => Energy::Conditional(&conditional),
                _ => Energy::Marginal(&marginal),
            };
            let n = labels.as_ref().map_or(n, Vec::len);
            let drawn = sample(chains, energy, n, labels.as_deref(), &sgld_cfg, &mut rng);
            let samples = match drawn {
                Ok(s) => s,
                Err(SamplerError::NonFinite { quantity, step }) => {
                    return Ok(Outcome::Diverged(Divergence::Sampler(format!(
                        "non-finite {quantity} at SGLD step {step}"
                    ))))
                }
                Err(e) => return Err(e.into()),
            };
            sgld_grad = samples.stats.last_grad_norm();
            let (lp_d, lp_q) = match t.mode {
                Mode::Factored => {
                    let yq = samples
                        .labels
                        .as_ref()
                        .expect("factored samples carry labels");
                    let lq = model.logits(&samples.x, true)?;
                    (
                        jem_model::energy::log_pxy_from_logits(&logits_l, &y_l)?,
                        jem_model::energy::log_pxy_from_logits(&lq, yq)?,
                    )
                }
                _ => (
                    data_term
                        .expect("jem mode computes log p(x_data)")
                        .shallow_clone(),
                    model.log_px(&samples.x, true)?,
                ),
            };
            if self.cfg.sampler.chains == Chains::ShortRun || self.cfg.train.sample_every > 0 {
                self.last_samples = Some(samples.x.shallow_clone());
            }
            let mean_d = lp_d.f_mean(Kind::Float)?;
            let mean_q = lp_q.f_mean(Kind::Float)?;
            let px = mean_q.f_sub(&mean_d)?;
            let reg = lp_d
                .f_square()?
                .f_mean(Kind::Float)?
                .f_add(&lp_q.f_square()?.f_mean(Kind::Float)?)?
                .f_mul_scalar(t.energy_l2)?;
            loss = loss.f_add(&px.f_mul_scalar(t.px_weight)?)?.f_add(&reg)?;
            px_v = to_f64(&px)?;
            reg_v = to_f64(&reg)?;
            let (d, q) = (lp_d.detach(), lp_q.detach());
            energies = Some(EnergyStats {
                data_mean: to_f64(&mean_d)?,
                data_min: to_f64(&d.f_min()?)?,
                data_max: to_f64(&d.f_max()?)?,
                sample_mean: to_f64(&mean_q)?,
                sample_min: to_f64(&q.f_min()?)?,
                sample_max: to_f64(&q.f_max()?)?,
            });
        }
        let loss_v = to_f64(&loss)?;
        if let Some(d) = detect(&t.recovery, loss_v, energies.as_ref()) {
            return Ok(Outcome::Diverged(d));
        }
        loss.f_backward()?;
        let grad_norm = match t.grad_clip {
            Some(c) => self.opt.clip_grad_norm(c)?,
            None => self.opt.grad_norm()?,
        };
        if !grad_norm.is_finite() {
            return Ok(Outcome::Diverged(Divergence::NonFiniteLoss(grad_norm)));
        }
        self.opt.step(lr)?;
        let correct = logits_l
            .f_argmax(1, false)?
            .f_eq_tensor(&y_l)?
            .f_sum(Kind::Int64)?
            .f_int64_value(&[])? as u64;
        Ok(Outcome::Done(Box::new(IterStats {
            loss: loss_v,
            ce: to_f64(&ce)?,
            px: px_v,
            reg: reg_v,
            energies,
            sgld_grad,
            grad_norm,
            correct,
            seen: y_l.size()[0] as u64,
            lr,
        })))
    }

    fn take_snapshot(&mut self) -> Result<()> {
        let buffer = match &self.chains {
            Some(ChainInit::Persistent(b)) => Some(b.state()?),
            _ => None,
        };
        self.snapshot = Some(Snapshot {
            vars: copy_variables(&self.vs)?.into_iter().collect(),
            optim: self.opt.state_tensors("optim.")?.into_iter().collect(),
            optimizer_steps: self.opt.steps(),
            buffer,
            state: self.st.clone(),
        });
        Ok(())
    }

    fn recover(&mut self, d: Divergence, it: u64, epoch: usize) -> Result<()> {
        let snap = self
            .snapshot
            .as_ref()
            .expect("a snapshot is taken before the first iteration");
        let back_to = snap.state.iteration;
        match self
            .recovery
            .recover(&self.cfg.train.recovery, &d, it, epoch, back_to)
        {
            Err(report) => {
                tracing::error!(%report, "training diverged, giving up");
                self.metrics.write(&MetricsLine::GaveUp(report.clone()))?;
                Err(TrainError::Diverged(Box::new(report)))
            }
            Ok(event) => {
                tracing::warn!(
                    iteration = it,
                    detected = %event.detected,
                    remedy = %event.remedy,
                    rolled_back_to = back_to,
                    lr_scale = event.lr_scale,
                    sgld_steps = event.sgld_steps,
                    "divergence detected; rolled back and applied a remedy"
                );
                restore_variables(&self.vs, &snap.vars)?;
                self.opt
                    .load_state(&snap.optim, "optim.", snap.optimizer_steps)?;
                if let (Some(ChainInit::Persistent(buf)), Some(state)) =
                    (self.chains.as_mut(), snap.buffer.as_ref())
                {
                    let copy = BufferState {
                        samples: state.samples.f_detach_copy()?,
                        ages: state.ages.clone(),
                        n_classes: state.n_classes,
                        class_conditional: state.class_conditional,
                        reinit_prob: state.reinit_prob,
                    };
                    *buf = ReplayBuffer::from_state(copy, self.device)?;
                }
                self.st = snap.state.clone();
                self.metrics.write(&MetricsLine::Recovery(event.clone()))?;
                self.observer.on_recovery(&event);
                Ok(())
            }
        }
    }

    fn accuracy(&self, ds: &Dataset, idx: &[usize], stream_counter: u64) -> Result<f64> {
        let mut rng = stream_rng(self.cfg.data.seed, Stream::Eval, stream_counter, 0);
        let mut correct = 0i64;
        tch::no_grad(|| -> Result<()> {
            for chunk in idx.chunks(self.cfg.data.eval_batch_size) {
                let sub = ds.subset(chunk)?;
                let x = self
                    .data
                    .eval_pre
                    .eval(&sub.images, &mut rng)?
                    .f_to_device(self.device)?;
                let pred = self.model.logits(&x, false)?.f_argmax(1, false)?;
                correct += pred
                    .f_eq_tensor(&sub.labels.f_to_device(self.device)?)?
                    .f_sum(Kind::Int64)?
                    .f_int64_value(&[])?;
            }
            Ok(())
        })?;
        Ok(correct as f64 / idx.len().max(1) as f64)
    }

    fn evaluate(&mut self) -> Result<()> {
        let it = self.st.iteration;
        let valid = if self.data.valid_idx.is_empty() {
            None
        } else {
            let idx = self.data.valid_idx.clone();
            Some(self.accuracy(&self.data.train, &idx, 2 * it)?)
        };
        let test_idx: Vec<usize> = (0..self.data.test.len()).collect();
        let test = self.accuracy(&self.data.test, &test_idx, 2 * it + 1)?;
        let is_best = match (valid, self.st.best_valid) {
            (Some(v), Some(b)) => v > b,
            (Some(_), None) => true,
            _ => false,
        };
        if is_best {
            self.st.best_valid = valid;
            self.st.best_test = Some(test);
            self.st.best_epoch = Some(self.st.epochs_completed);
        }
        self.st.last_valid = valid;
        self.st.last_test = Some(test);
        self.st.evaluated_at = Some(it);
        let m = EpochMetrics {
            epoch: self.st.epochs_completed,
            iteration: it,
            valid_acc: valid,
            test_acc: test,
            train_acc: self.st.epoch_correct as f64 / self.st.epoch_seen.max(1) as f64,
            best_valid_acc: self.st.best_valid,
            is_best,
            elapsed_s: self.elapsed(),
        };
        self.st.epoch_correct = 0;
        self.st.epoch_seen = 0;
        tracing::info!(
            epoch = m.epoch,
            iteration = it,
            valid_acc = ?valid,
            test_acc = test,
            best = is_best,
            "evaluation"
        );
        self.metrics.write(&MetricsLine::Epoch(m.clone()))?;
        if is_best {
            self.save(files::BEST)?;
        }
        self.observer.on_epoch(&m);
        Ok(())
    }

    fn save(&self, name: &str) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = copy_variables(&self.vs)?
            .into_iter()
            .map(|(n, t)| (format!("model.{n}"), t))
            .collect();
        tensors.extend(self.opt.state_tensors("optim.")?);
        let mut has_buffer = false;
        if let Some(ChainInit::Persistent(b)) = &self.chains {
            tensors.extend(b.state()?.to_named_tensors("buffer.")?);
            has_buffer = true;
        }
        let meta = Meta {
            format: FORMAT_VERSION,
            config: self.cfg.clone(),
            state: self.st.clone(),
            recovery: self.recovery.clone(),
            optimizer_steps: self.opt.steps(),
            metrics_len: self.metrics.len()?,
            elapsed_s: self.elapsed(),
            has_buffer,
        };
        let meta = serde_json::to_value(&meta).map_err(|e| TrainError::Checkpoint {
            path: self.run_dir.join(name),
            reason: format!("cannot encode metadata: {e}"),
        })?;
        write_checkpoint(&self.run_dir.join(name), &meta, &tensors)
    }

    fn write_grids(&mut self) -> Result<()> {
        if !self.cfg.train.mode.samples() {
            return Ok(());
        }
        let dir = self.run_dir.join(files::SAMPLES_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        let it = self.st.iteration;
        let source = match &self.chains {
            Some(ChainInit::Persistent(b)) => b.samples().shallow_clone(),
            _ => match &self.last_samples {
                Some(s) => s.shallow_clone(),
                None => return Ok(()),
            },
        };
        let [c, h, w] = self.data.train.image_shape();
        let total = source.size()[0] as usize;
        let n = self.cfg.train.grid_samples.min(total);
        let columns = (n as f64).sqrt().ceil() as usize;
        let flat = Vec::<f32>::try_from(
            &source
                .f_narrow(0, 0, n as i64)?
                .f_to_device(Device::Cpu)?
                .f_to_kind(Kind::Float)?
                .f_flatten(0, -1)?,
        )?;
        let spec = jem_eval::grid::GridSpec::new(n, c, h, w, columns.max(1));
        jem_eval::grid::write_grid(&dir.join(format!("buffer_{it:08}.png")), &flat, &spec)?;

        // Class-conditional grid: one row per class.
        let classes = self.cfg.model.num_classes;
        let k = self.cfg.train.grid_per_class;
        let image_len = c * h * w;
        let mut cells = vec![0f32; classes * k * image_len];
        match &self.chains {
            Some(ChainInit::Persistent(b)) if b.is_class_conditional() => {
                for class in 0..classes {
                    let slots = b.class_slots(class as i64);
                    let take = (k as i64).min(slots.end - slots.start);
                    let rows = Vec::<f32>::try_from(
                        &b.samples()
                            .f_narrow(0, slots.start, take)?
                            .f_to_device(Device::Cpu)?
                            .f_flatten(0, -1)?,
                    )?;
                    let at = class * k * image_len;
                    cells[at..at + rows.len()].copy_from_slice(&rows);
                }
            }
            _ => {
                // Classify (up to 1000 of) the samples and keep the most confident per class.
                let m = total.min(1000) as i64;
                let xs = source.f_narrow(0, 0, m)?;
                let probs = tch::no_grad(|| -> Result<Tensor> {
                    let mut parts = Vec::new();
                    let bs = self.cfg.data.eval_batch_size as i64;
                    let mut start = 0;
                    while start < m {
                        let len = bs.min(m - start);
                        let x = xs.f_narrow(0, start, len)?;
                        parts.push(self.model.logits(&x, false)?.f_softmax(1, Kind::Float)?);
                        start += len;
                    }
                    Ok(Tensor::f_cat(&parts, 0)?.f_to_device(Device::Cpu)?)
                })?;
                let (conf, pred) = probs.f_max_dim(1, false)?;
                let conf = Vec::<f32>::try_from(&conf)?;
                let pred = Vec::<i64>::try_from(&pred)?;
                let all = Vec::<f32>::try_from(
                    &xs.f_to_device(Device::Cpu)?
                        .f_to_kind(Kind::Float)?
                        .f_flatten(0, -1)?,
                )?;
                for class in 0..classes {
                    let mut members: Vec<usize> = (0..m as usize)
                        .filter(|&i| pred[i] == class as i64)
                        .collect();
                    members.sort_by(|&a, &b| conf[b].total_cmp(&conf[a]));
                    for (j, &i) in members.iter().take(k).enumerate() {
                        let at = (class * k + j) * image_len;
                        cells[at..at + image_len]
                            .copy_from_slice(&all[i * image_len..(i + 1) * image_len]);
                    }
                }
            }
        }
        let spec = jem_eval::grid::GridSpec::new(classes * k, c, h, w, k);
        jem_eval::grid::write_grid(&dir.join(format!("classes_{it:08}.png")), &cells, &spec)?;
        Ok(())
    }

    fn finish(mut self, reason: StopReason) -> Result<TrainSummary> {
        let already_done = self.st.stop_reason == Some(StopReason::Completed);
        if !already_done {
            if self.st.evaluated_at != Some(self.st.iteration) {
                if self.st.iteration % self.data.iterations_per_epoch != 0 {
                    self.st.epochs_completed =
                        (self.st.iteration / self.data.iterations_per_epoch) as usize + 1;
                }
                self.evaluate()?;
            }
            self.st.stop_reason = Some(reason);
            self.save(files::LAST)?;
            self.write_grids()?;
        }
        let summary = TrainSummary {
            run_dir: self.run_dir.clone(),
            mode: self.cfg.train.mode,
            iterations: self.st.iteration,
            epochs_completed: (self.st.iteration / self.data.iterations_per_epoch) as usize,
            final_valid_acc: self.st.last_valid,
            final_test_acc: self.st.last_test,
            best_valid_acc: self.st.best_valid,
            best_test_acc: self.st.best_test,
            best_epoch: self.st.best_epoch,
            recoveries: self.recovery.events.len(),
            wall_time_s: self.elapsed(),
            stop_reason: self.st.stop_reason.unwrap_or(reason),
        };
        let path = self.run_dir.join(files::SUMMARY);
        let text = serde_json::to_string_pretty(&summary)
            .map_err(|e| TrainError::io(&path, std::io::Error::other(e.to_string())))?;
        std::fs::write(&path, text).map_err(|e| TrainError::io(&path, e))?;
        tracing::info!(?summary, "training finished");
        Ok(summary)
    }
}
