//! Starting a run: from scratch ([`train`]) or from its last checkpoint ([`resume`]), and loading
//! a checkpoint's model for evaluation ([`load_model`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use jem_model::WideResNet;
use jem_sampler::{BufferState, ChainInit, ChainStart, ClassGaussians, ReplayBuffer, ShortRun};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::data::{prepare, Prepared, TrainData};
use super::state::{LoopState, Meta, FORMAT_VERSION};
use super::{files, TrainSummary, Trainer};
use crate::checkpoint::{read_checkpoint, remove_stale_temps};
use crate::config::{Chains, Mode, RunConfig};
use crate::error::{Result, TrainError};
use crate::lock::RunLock;
use crate::metrics::{MetricsLog, TrainObserver};
use crate::optim::{restore_variables, Optimizer, OptimizerSettings};
use crate::recovery::RecoveryState;
use crate::rng::{seed_torch_rng, stream_rng, tch_seed, Stream};

/// Everything a [`Trainer`] is made of besides the observer and the clocks.
struct Parts {
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
    elapsed_before: f64,
    lock: RunLock,
}

fn assemble(parts: Parts, observer: &mut dyn TrainObserver) -> Trainer<'_> {
    Trainer {
        cfg: parts.cfg,
        run_dir: parts.run_dir,
        device: parts.device,
        vs: parts.vs,
        model: parts.model,
        opt: parts.opt,
        chains: parts.chains,
        data: parts.data,
        st: parts.st,
        recovery: parts.recovery,
        metrics: parts.metrics,
        snapshot: None,
        observer,
        elapsed_before: parts.elapsed_before,
        started: Instant::now(),
        window_started: Instant::now(),
        epoch_order: None,
        last_samples: None,
        _lock: parts.lock,
    }
}

/// The state of a run at iteration 0: a freshly initialised model, optimiser and chains.
pub(super) fn fresh_trainer<'o>(
    cfg: RunConfig,
    run_dir: PathBuf,
    device: Device,
    data: Prepared,
    metrics: MetricsLog,
    lock: RunLock,
    observer: &'o mut dyn TrainObserver,
) -> Result<Trainer<'o>> {
    let (vs, model) = build_model(&cfg, device)?;
    tracing::info!(parameters = jem_model::parameter_count(&vs), "model built");
    let opt = Optimizer::new(&vs, OptimizerSettings::from(&cfg.train))?;
    let chains = new_chains(&cfg, &data, device)?;
    let recovery = RecoveryState::new(cfg.sampler.sgld.steps);
    let parts = Parts {
        cfg,
        run_dir,
        device,
        vs,
        model,
        opt,
        chains,
        data,
        st: LoopState::default(),
        recovery,
        metrics,
        elapsed_before: 0.0,
        lock,
    };
    Ok(assemble(parts, observer))
}

pub(super) fn build_model(cfg: &RunConfig, device: Device) -> Result<(VarStore, WideResNet)> {
    let vs = VarStore::new(device);
    let model = {
        // The initialisers draw from libtorch's global generator: held until the last draw.
        let _torch = seed_torch_rng(tch_seed(cfg.train.seed, Stream::Init, 0, 0));
        cfg.model.init(&vs.root())?
    };
    Ok((vs, model))
}

/// The class count the chains carry labels for: needed by factored runs and by class-conditional
/// buffers.
fn chain_classes(cfg: &RunConfig) -> Option<i64> {
    let needs_labels = cfg.train.mode == Mode::Factored || cfg.sampler.buffer.class_conditional;
    needs_labels.then_some(cfg.model.num_classes as i64)
}

/// Where fresh chains start (`sampler.buffer.init`): uniform noise, or class-conditional
/// Gaussians fitted to the training split (validation examples excluded).
fn chain_start(cfg: &RunConfig, data: &Prepared) -> Result<ChainStart> {
    let buffer = &cfg.sampler.buffer;
    ChainStart::from_kind(buffer.init, buffer.init_uniform_fraction, || {
        let (x, labels) = data.training_images()?;
        let classes = cfg.model.num_classes as i64;
        let g = ClassGaussians::fit(&x, &labels, classes, buffer.init_rank)?;
        tracing::info!(
            classes,
            rank = g.rank(),
            examples = labels.len(),
            uniform_fraction = buffer.init_uniform_fraction,
            "fitted the class-conditional Gaussian chain start"
        );
        Ok(g)
    })
}

fn sample_shape(data: &Prepared) -> Vec<i64> {
    data.train.image_shape().iter().map(|&v| v as i64).collect()
}

fn new_chains(cfg: &RunConfig, data: &Prepared, device: Device) -> Result<Option<ChainInit>> {
    if !cfg.train.mode.samples() {
        return Ok(None);
    }
    let shape = sample_shape(data);
    let n_classes = chain_classes(cfg);
    let start = chain_start(cfg, data)?;
    Ok(Some(match cfg.sampler.chains {
        Chains::Persistent => {
            let mut rng = stream_rng(cfg.train.seed, Stream::Buffer, 0, 0);
            ChainInit::Persistent(ReplayBuffer::with_start(
                &cfg.sampler.buffer,
                &shape,
                n_classes,
                start,
                device,
                &mut rng,
            )?)
        }
        Chains::ShortRun => {
            ChainInit::ShortRun(ShortRun::new(&shape, n_classes, device)?.with_start(start))
        }
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
    // Before loading anything big: the data's shape (read from headers for a user's own data)
    // must fit the model, or the error names both values.
    let shape = cfg.data.resolve_shape()?;
    cfg.check_data_shape(shape.image, shape.num_classes)?;
    let data = TrainData::load(&cfg.data)?;
    train_with_data(cfg, data, run_dir, device, observer)
}

/// Files of an earlier run that a fresh run into the same directory removes, so that its
/// results never mix with theirs.
const EARLIER_RUN_FILES: [&str; 3] = [files::BEST, files::SUMMARY, files::METRICS];
const EARLIER_RUN_DIRS: [&str; 2] = [files::SAMPLES_DIR, files::KEPT_DIR];

fn clear_earlier_run(run_dir: &Path) -> Result<()> {
    for name in EARLIER_RUN_FILES {
        let p = run_dir.join(name);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| TrainError::io(&p, e))?;
            tracing::warn!(path = %p.display(), "removed a file of an earlier run");
        }
    }
    for name in EARLIER_RUN_DIRS {
        let p = run_dir.join(name);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|e| TrainError::io(&p, e))?;
            tracing::warn!(path = %p.display(), "removed the outputs of an earlier run");
        }
    }
    Ok(())
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
    let lock = RunLock::acquire(run_dir)?;
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
    clear_earlier_run(run_dir)?;
    let config_path = run_dir.join(files::CONFIG);
    let text = format!(
        "# Resolved configuration of this run (written by jem-train).\n{}",
        cfg.to_toml_string()?
    );
    crate::checkpoint::write_atomic(&config_path, text.as_bytes())?;
    let metrics = MetricsLog::open(&run_dir.join(files::METRICS), Some(0))?;

    tracing::info!(
        run_dir = %run_dir.display(),
        mode = ?cfg.train.mode,
        iterations_per_epoch = data.iterations_per_epoch,
        "starting training"
    );
    let trainer = fresh_trainer(
        cfg,
        run_dir.to_path_buf(),
        device,
        data,
        metrics,
        lock,
        observer,
    )?;
    trainer.run()
}

fn read_meta(path: &Path) -> Result<(Meta, Vec<(String, Tensor)>)> {
    let ck = read_checkpoint(path)?;
    let bad = |reason: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
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
    Ok((meta, ck.tensors))
}

/// Reads the config stored in a checkpoint.
pub fn checkpoint_config(path: &Path) -> Result<RunConfig> {
    Ok(read_meta(path)?.0.config)
}

/// The `model.`-prefixed tensors of a checkpoint, loaded into a freshly built model.
fn restore_model(
    cfg: &RunConfig,
    tensors: &[(String, Tensor)],
    path: &Path,
    device: Device,
) -> Result<(VarStore, WideResNet)> {
    let vars: BTreeMap<String, Tensor> = tensors
        .iter()
        .filter_map(|(n, t)| {
            n.strip_prefix("model.")
                .map(|s| (s.to_string(), t.shallow_clone()))
        })
        .collect();
    check_model_size(cfg, &vars).map_err(|reason| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    })?;
    let (vs, model) = build_model(cfg, device)?;
    restore_variables(&vs, &vars).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok((vs, model))
}

/// Checks, before a model is built from a checkpoint's config, that the config's size fields
/// (`in_channels`, `num_classes`, `widen_factor`, `depth`) agree with the checkpoint's own
/// tensors (the stem, the classifier, the blocks present): a corrupted or forged config then
/// cannot make the loader allocate a network far larger than the file, or overflow.
fn check_model_size(
    cfg: &RunConfig,
    vars: &BTreeMap<String, Tensor>,
) -> std::result::Result<(), String> {
    let m = &cfg.model;
    m.check()
        .map_err(|e| format!("its model config is invalid: {e}"))?;
    let [c0, _, _, c3] = m.stage_channels();
    let shape_of = |name: &str| -> std::result::Result<Vec<usize>, String> {
        let t = vars
            .get(name)
            .ok_or_else(|| format!("tensor `model.{name}` is missing"))?;
        t.size()
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("tensor `model.{name}` has a negative dimension"))
    };
    let expect = |name: &str, want: Vec<usize>, fields: &str| -> std::result::Result<(), String> {
        let got = shape_of(name)?;
        if got != want {
            return Err(format!(
                "its config ({fields}) expects tensor `model.{name}` of shape {want:?}, the file holds {got:?}"
            ));
        }
        Ok(())
    };
    expect(
        "f.conv1.weight",
        vec![c0, m.in_channels, 3, 3],
        &format!("model.in_channels = {}", m.in_channels),
    )?;
    expect(
        "class_output.weight",
        vec![m.num_classes, c3],
        &format!(
            "model.num_classes = {}, model.widen_factor = {}",
            m.num_classes, m.widen_factor
        ),
    )?;
    let blocks = m.blocks_per_stage();
    for stage in 1..=3 {
        for i in 0..blocks {
            shape_of(&format!("f.layer{stage}.{i}.conv1.weight"))
                .map_err(|e| format!("its config (model.depth = {}) does not fit: {e}", m.depth))?;
        }
        let extra = format!("f.layer{stage}.{blocks}.conv1.weight");
        if vars.contains_key(&extra) {
            return Err(format!(
                "its config (model.depth = {}) has fewer blocks than the file (`model.{extra}`)",
                m.depth
            ));
        }
    }
    Ok(())
}

/// Loads the model of a checkpoint (`last.ckpt` / `best.ckpt`) for evaluation: its config, a
/// VarStore on `device` holding the weights, and the network.
pub fn load_model(path: &Path, device: Device) -> Result<(RunConfig, VarStore, WideResNet)> {
    let (meta, tensors) = read_meta(path)?;
    let (vs, model) = restore_model(&meta.config, &tensors, path, device)?;
    Ok((meta.config, vs, model))
}

/// The replay buffer stored in a checkpoint, if it has one (`buffer.`-prefixed tensors).
pub fn load_buffer(path: &Path, device: Device) -> Result<Option<ReplayBuffer>> {
    let (meta, tensors) = read_meta(path)?;
    if !meta.has_buffer {
        return Ok(None);
    }
    let list: Vec<(String, Tensor)> = tensors
        .into_iter()
        .filter(|(n, _)| n.starts_with("buffer."))
        .collect();
    let state = BufferState::from_named_tensors(&list, "buffer.")?;
    Ok(Some(ReplayBuffer::from_state(state, device)?))
}

/// Continues the run in `run_dir` from its `last.ckpt`, loading the data its config names.
pub fn resume(
    run_dir: &Path,
    device: Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary> {
    resume_with_budget(run_dir, &Budget::default(), device, observer)
}

/// A new budget for a resumed run. Budgets only decide where a run stops, never what it computes:
/// a run stopped early and resumed with a larger budget ends bit-identical to one that ran
/// through.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budget {
    /// Replaces `train.max_minutes` (training time, resumes included).
    pub max_minutes: Option<f64>,
    /// Adds this many minutes to the time already spent (an alternative to `max_minutes`).
    pub extra_minutes: Option<f64>,
    /// Replaces `train.max_iterations`.
    pub max_iterations: Option<u64>,
}

/// Like [`resume`], first replacing the run's budget (`train.max_minutes`, or the time spent
/// plus `extra_minutes`, and `train.max_iterations`).
pub fn resume_with_budget(
    run_dir: &Path,
    budget: &Budget,
    device: Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary> {
    let cfg = checkpoint_config(&run_dir.join(files::LAST))?;
    let data = TrainData::load(&cfg.data)?;
    resume_inner(run_dir, data, budget, device, observer)
}

/// Like [`resume`] with the data given in memory (it must be the data of the original run).
pub fn resume_with_data(
    run_dir: &Path,
    data: TrainData,
    device: Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary> {
    resume_inner(run_dir, data, &Budget::default(), device, observer)
}

fn resume_inner(
    run_dir: &Path,
    data: TrainData,
    budget: &Budget,
    device: Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary> {
    let lock = RunLock::acquire(run_dir)?;
    let path = run_dir.join(files::LAST);
    remove_stale_temps(run_dir);
    let (mut meta, tensors) = read_meta(&path)?;
    let bad = |reason: String| TrainError::Checkpoint {
        path: path.clone(),
        reason,
    };
    if budget.max_minutes.is_some() && budget.extra_minutes.is_some() {
        return Err(TrainError::invalid(
            "--extra-minutes",
            budget.extra_minutes.unwrap_or_default(),
            "either a new max_minutes or extra minutes, not both",
        ));
    }
    let mut cfg = meta.config.clone();
    if let Some(m) = budget.max_minutes {
        cfg.train.max_minutes = Some(m);
    }
    if let Some(extra) = budget.extra_minutes {
        cfg.train.max_minutes = Some(meta.elapsed_s / 60.0 + extra);
    }
    if let Some(n) = budget.max_iterations {
        cfg.train.max_iterations = Some(n);
    }
    cfg.check()?;
    if cfg != meta.config {
        tracing::info!(
            max_minutes = ?cfg.train.max_minutes,
            max_iterations = ?cfg.train.max_iterations,
            "resuming with a new budget"
        );
        // A budget that lets a stopped run go on reopens it.
        meta.state.stop_reason = None;
    }
    let data = prepare(&cfg, data)?;
    let (vs, model) = restore_model(&cfg, &tensors, &path, device)?;
    let named: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let mut opt = Optimizer::new(&vs, OptimizerSettings::from(&cfg.train))?;
    opt.load_state(&named, "optim.", meta.optimizer_steps)
        .map_err(|e| bad(e.to_string()))?;
    let chains = match (cfg.train.mode.samples(), cfg.sampler.chains) {
        (false, _) => None,
        (true, Chains::Persistent) => {
            if !meta.has_buffer {
                return Err(bad("the replay buffer is missing".into()));
            }
            let list: Vec<(String, Tensor)> = named
                .into_iter()
                .filter(|(n, _)| n.starts_with("buffer."))
                .collect();
            let state = BufferState::from_named_tensors(&list, "buffer.")?;
            Some(ChainInit::Persistent(ReplayBuffer::from_state(
                state, device,
            )?))
        }
        // Short-run chains keep nothing but their start, which is refitted exactly.
        (true, Chains::ShortRun) => new_chains(&cfg, &data, device)?,
    };
    let metrics = MetricsLog::open(&run_dir.join(files::METRICS), Some(meta.metrics_len))?;
    tracing::info!(
        run_dir = %run_dir.display(),
        iteration = meta.state.iteration,
        "resuming training"
    );
    if cfg != meta.config {
        let config_path = run_dir.join(files::CONFIG);
        let text = format!(
            "# Resolved configuration of this run (written by jem-train; budget changed on resume).\n{}",
            cfg.to_toml_string()?
        );
        crate::checkpoint::write_atomic(&config_path, text.as_bytes())?;
    }
    let parts = Parts {
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
        elapsed_before: meta.elapsed_s,
        lock,
    };
    let trainer = assemble(parts, observer);
    trainer.keep_checkpoint_if_missing()?;
    trainer.run()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use tch::Kind;

    use super::*;

    fn weights(cfg: &RunConfig) -> Vec<(String, Tensor)> {
        let (vs, _model) = build_model(cfg, Device::Cpu).unwrap();
        let mut w: Vec<_> = vs.variables().into_iter().collect();
        w.sort_by(|a, b| a.0.cmp(&b.0));
        w
    }

    /// A model initialised while another thread seeds libtorch's generator and draws from it
    /// (the way a second run's iterations do) is the seed's model: the initialisers' draws are
    /// never interleaved with the other thread's.
    #[test]
    fn a_models_initialisation_is_its_seeds_while_other_threads_draw() {
        let cfg = RunConfig {
            model: jem_model::WrnConfig {
                num_classes: 4,
                in_channels: 1,
                ..jem_model::WrnConfig::new(10, 1)
            },
            ..RunConfig::default()
        };
        let expected = weights(&cfg);
        let stop = Arc::new(AtomicBool::new(false));
        let other = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seed = 0;
                while !stop.load(Ordering::Relaxed) {
                    let _torch = seed_torch_rng(seed);
                    let _ = Tensor::randn([256], (Kind::Float, Device::Cpu));
                    seed += 1;
                }
            })
        };
        for round in 0..40 {
            for ((name, a), (_, b)) in expected.iter().zip(weights(&cfg)) {
                assert!(a.equal(&b), "round {round}: `{name}` differs");
            }
        }
        stop.store(true, Ordering::Relaxed);
        other.join().unwrap();
    }
}
