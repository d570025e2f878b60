//! A checkpoint of the official PyTorch JEM code turned into a jem run directory.
//!
//! [`import_reference`] reads `torch.save({"model_state_dict": ..., "replay_buffer": ...})`
//! (see [`jem_model::reference`] for the name mapping), and writes a run directory that every
//! command reading a run accepts (`jem eval`, `calibrate`, `sample`, `generative`, ...):
//!
//! * `last.ckpt`: the model (`model.*`) and, when the file has one, the replay buffer
//!   (`buffer.*`, every slot of age 0: the reference does not record ages); its metadata holds
//!   the config, a finished loop state (`stop_reason = "completed"`) and an `imported` record
//!   (source file, its size, the tensors left out and the entries ignored);
//! * `config.toml`: the config given, with `sampler.buffer.size` set to the imported buffer's;
//! * `summary.json`: a complete run of 0 iterations whose model checkpoint is `last.ckpt`.
//!
//! The reference saves no optimiser state, iteration counter or RNG, so an imported run can be
//! evaluated and sampled from but not resumed.

use std::path::{Path, PathBuf};

use jem_model::reference::{from_torch_file, REPLAY_BUFFER_KEY};
use jem_model::torch_pickle::read_torch_file;
use jem_sampler::{BufferState, ChainStart, ReplayBuffer};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::checkpoint::{write_atomic, write_checkpoint};
use crate::config::{Mode, RunConfig};
use crate::error::{Result, TrainError};
use crate::lock::RunLock;
use crate::recovery::RecoveryState;
use crate::trainer::{files, StopReason, TrainSummary};

/// Metadata format version the trainer reads (`trainer::state::FORMAT_VERSION`; a test loads an
/// imported run through [`crate::load_model`], so a change there fails it).
const FORMAT_VERSION: u64 = 2;

/// What [`import_reference`] did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The `.pt` file read.
    pub source: PathBuf,
    /// Its size in bytes.
    pub source_bytes: u64,
    /// The checkpoint written (`RUN/last.ckpt`).
    pub checkpoint: PathBuf,
    /// Model tensors imported.
    pub model_tensors: usize,
    /// State-dict tensors jem has no variable for, left out (`f.linear.*`, ...).
    pub dropped: Vec<String>,
    /// Other entries of the file, ignored.
    pub ignored: Vec<String>,
    /// Shape of the imported replay buffer, if the file has one.
    pub buffer_shape: Option<Vec<i64>>,
}

/// The class count buffer draws carry labels for (as the trainer decides it).
fn chain_classes(cfg: &RunConfig) -> Option<i64> {
    let labels = cfg.train.mode == Mode::Factored || cfg.sampler.buffer.class_conditional;
    labels.then_some(cfg.model.num_classes as i64)
}

/// A loop state that has finished: what the trainer's `LoopState` serialises to.
fn finished_state() -> serde_json::Value {
    serde_json::json!({
        "iteration": 0,
        "epochs_completed": 0,
        "best_valid": null,
        "best_test": null,
        "best_epoch": null,
        "last_valid": null,
        "last_test": null,
        "evaluated_at": null,
        "epoch_correct": 0,
        "epoch_seen": 0,
        "window": {
            "iterations": 0, "loss": 0.0, "ce": 0.0, "px": 0.0, "reg": 0.0, "sampled": 0,
            "logpx_data": 0.0, "logpx_sample": 0.0, "sgld_grad": 0.0, "grad_norm": 0.0,
            "correct": 0, "seen": 0
        },
        "stop_reason": StopReason::Completed,
    })
}

/// Imports the reference checkpoint `source` as a run in `run_dir` for the model, data and
/// sampler of `cfg`. `run_dir` must not hold a checkpoint (`last.ckpt`, `best.ckpt`) yet. Errors name the file and, for a
/// mismatch, every offending tensor.
pub fn import_reference(source: &Path, cfg: RunConfig, run_dir: &Path) -> Result<ImportReport> {
    let mut cfg = cfg.resolved();
    cfg.check()?;
    let shape = cfg.data.resolve_shape()?;
    cfg.check_data_shape(shape.image, shape.num_classes)?;
    let source_bytes = std::fs::metadata(source)
        .map_err(|e| TrainError::io(source, e))?
        .len();
    let file = read_torch_file(source)?;
    let reference = from_torch_file(&file, &cfg.model)?;

    let bad = |reason: String| TrainError::Checkpoint {
        path: source.to_path_buf(),
        reason,
    };
    let mut tensors: Vec<(String, Tensor)> = reference
        .model
        .iter()
        .map(|(n, t)| (format!("model.{n}"), t.shallow_clone()))
        .collect();
    let buffer_shape = reference.replay_buffer.as_ref().map(Tensor::size);
    if let Some(samples) = &reference.replay_buffer {
        let size = samples.size();
        let image: Vec<i64> = shape.image.iter().map(|&d| d as i64).collect();
        if size[1..] != image[..] {
            return Err(bad(format!(
                "`{REPLAY_BUFFER_KEY}` holds samples of shape {:?} but the configured data \
                 (`data.dataset` = {:?}) has images of shape {image:?}",
                &size[1..],
                cfg.data.dataset
            )));
        }
        let finite = samples.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
        if !finite {
            return Err(bad(format!(
                "`{REPLAY_BUFFER_KEY}` holds values that are not finite (a diverged chain)"
            )));
        }
        let n = size[0] as usize;
        if n != cfg.sampler.buffer.size {
            tracing::warn!(
                configured = cfg.sampler.buffer.size,
                imported = n,
                "sampler.buffer.size set to the size of the imported replay buffer"
            );
            cfg.sampler.buffer.size = n;
            cfg.check()?;
        }
        let state = BufferState {
            samples: samples.shallow_clone(),
            ages: vec![0; n],
            n_classes: chain_classes(&cfg),
            class_conditional: cfg.sampler.buffer.class_conditional,
            reinit_prob: cfg.sampler.buffer.reinit_prob,
            start: ChainStart::Uniform,
        };
        // The sampler's own checks (class-conditional layout, sample shape).
        let buffer = ReplayBuffer::from_state(state, Device::Cpu)
            .map_err(|e| bad(format!("`{REPLAY_BUFFER_KEY}`: {e}")))?;
        tensors.extend(buffer.state()?.to_named_tensors("buffer.")?);
    } else if cfg.train.mode.samples() {
        tracing::warn!(
            source = %source.display(),
            "the file has no `{REPLAY_BUFFER_KEY}`: the run has no replay buffer to sample from"
        );
    }

    std::fs::create_dir_all(run_dir).map_err(|e| TrainError::io(run_dir, e))?;
    let _lock = RunLock::acquire(run_dir)?;
    let last = run_dir.join(files::LAST);
    // `best.ckpt` too: the commands reading a run would prefer it to the imported one.
    for existing in [files::LAST, files::BEST].map(|name| run_dir.join(name)) {
        if existing.exists() {
            return Err(TrainError::io(
                &existing,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the run directory already holds a checkpoint: import into another directory",
                ),
            ));
        }
    }
    let report = ImportReport {
        source: source.to_path_buf(),
        source_bytes,
        checkpoint: last.clone(),
        model_tensors: reference.model.len(),
        dropped: reference.dropped.clone(),
        ignored: reference.ignored.clone(),
        buffer_shape,
    };
    let imported = serde_json::json!({
        "from": "wgrathwohl/JEM torch.save checkpoint",
        "source": source.display().to_string(),
        "source_bytes": source_bytes,
        "dropped": report.dropped,
        "ignored": report.ignored,
    });
    let meta = serde_json::json!({
        "format": FORMAT_VERSION,
        "config": cfg,
        "state": finished_state(),
        "recovery": RecoveryState::new(cfg.sampler.sgld.steps),
        "optimizer_steps": 0,
        "metrics_len": 0,
        "elapsed_s": 0.0,
        "has_buffer": reference.replay_buffer.is_some(),
        "imported": imported,
    });
    let config_text = format!(
        "# Configuration of this run, imported from {} (written by jem import).\n{}",
        source.display(),
        cfg.to_toml_string()?
    );
    write_atomic(&run_dir.join(files::CONFIG), config_text.as_bytes())?;
    write_checkpoint(&last, &meta, &tensors)?;
    let summary = TrainSummary {
        run_dir: run_dir.to_path_buf(),
        mode: cfg.train.mode,
        iterations: 0,
        planned_iterations: 0,
        epochs_completed: 0,
        final_valid_acc: None,
        final_test_acc: None,
        best_valid_acc: None,
        best_test_acc: None,
        best_epoch: None,
        model_checkpoint: files::LAST.to_string(),
        recoveries: 0,
        wall_time_s: 0.0,
        stop_reason: StopReason::Completed,
        complete: true,
        // Nothing was trained here.
        sgld_precision: None,
        train_precision: None,
    };
    let summary_path = run_dir.join(files::SUMMARY);
    let text = serde_json::to_string_pretty(&summary)
        .map_err(|e| TrainError::io(&summary_path, std::io::Error::other(e.to_string())))?;
    write_atomic(&summary_path, text.as_bytes())?;
    tracing::info!(
        source = %source.display(),
        checkpoint = %last.display(),
        tensors = report.model_tensors,
        dropped = report.dropped.len(),
        "imported a reference checkpoint"
    );
    Ok(report)
}

/// The `imported` record of a checkpoint's metadata, when [`import_reference`] wrote it.
pub fn imported_record(checkpoint: &Path) -> Result<Option<serde_json::Value>> {
    let ck = crate::checkpoint::read_checkpoint(checkpoint)?;
    Ok(ck.meta.get("imported").cloned())
}
