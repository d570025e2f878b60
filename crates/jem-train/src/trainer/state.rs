//! What a checkpoint holds, in-memory snapshots of the last good state, and rolling back to one
//! (divergence recovery, Appendix H.3, and failed iterations).

use std::collections::BTreeMap;

use jem_sampler::{BufferState, ChainInit, ReplayBuffer};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::{files, StopReason, Trainer};
use crate::checkpoint::write_checkpoint;
use crate::config::RunConfig;
use crate::error::{Result, TrainError};
use crate::metrics::MetricsLine;
use crate::optim::{copy_variables, restore_variables};
use crate::recovery::{Divergence, RecoveryState};

/// Version of the checkpoint metadata (2: safetensors files).
pub(super) const FORMAT_VERSION: u64 = 2;

/// Window accumulators of the diagnostics (checkpointed so a resume logs the same figures).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Window {
    pub(super) iterations: u64,
    pub(super) loss: f64,
    pub(super) ce: f64,
    pub(super) px: f64,
    pub(super) reg: f64,
    pub(super) sampled: u64,
    pub(super) logpx_data: f64,
    pub(super) logpx_sample: f64,
    pub(super) sgld_grad: f64,
    pub(super) grad_norm: f64,
    pub(super) correct: u64,
    pub(super) seen: u64,
}

/// Counters and results of the loop (everything of the state that is not a tensor or recovery).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct LoopState {
    pub(super) iteration: u64,
    pub(super) epochs_completed: usize,
    pub(super) best_valid: Option<f64>,
    pub(super) best_test: Option<f64>,
    pub(super) best_epoch: Option<usize>,
    pub(super) last_valid: Option<f64>,
    pub(super) last_test: Option<f64>,
    pub(super) evaluated_at: Option<u64>,
    pub(super) epoch_correct: u64,
    pub(super) epoch_seen: u64,
    pub(super) window: Window,
    pub(super) stop_reason: Option<StopReason>,
}

/// The JSON metadata of a checkpoint.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Meta {
    pub(super) format: u64,
    pub(super) config: RunConfig,
    pub(super) state: LoopState,
    pub(super) recovery: RecoveryState,
    pub(super) optimizer_steps: u64,
    /// Length of `metrics.jsonl` when the checkpoint was written (a resume cuts the log back).
    pub(super) metrics_len: u64,
    pub(super) elapsed_s: f64,
    pub(super) has_buffer: bool,
}

/// The last good state, kept in memory for rollbacks.
pub(super) struct Snapshot {
    vars: BTreeMap<String, Tensor>,
    optim: BTreeMap<String, Tensor>,
    optimizer_steps: u64,
    buffer: Option<BufferState>,
    state: LoopState,
    metrics_len: u64,
}

impl Trainer<'_> {
    pub(super) fn take_snapshot(&mut self) -> Result<()> {
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
            metrics_len: self.metrics.len()?,
        });
        Ok(())
    }

    /// Puts the model, optimiser, buffer, counters and `metrics.jsonl` back to the snapshot.
    fn restore_snapshot(&mut self) -> Result<()> {
        let snap = self
            .snapshot
            .as_ref()
            .expect("a snapshot is taken before the first iteration");
        restore_variables(&self.vs, &snap.vars)?;
        self.opt
            .load_state(&snap.optim, "optim.", snap.optimizer_steps)?;
        if let (Some(ChainInit::Persistent(buf)), Some(state)) =
            (self.chains.as_mut(), snap.buffer.as_ref())
        {
            *buf = ReplayBuffer::from_state(state.deep_copy()?, self.device)?;
        }
        self.st = snap.state.clone();
        // The undone iterations' lines go: the log replays exactly like an uninterrupted run's.
        self.metrics.truncate(snap.metrics_len)?;
        Ok(())
    }

    /// Rolls back to the snapshot after divergence `d` at iteration `it` and applies the next
    /// remedy, or gives up when the recovery budget is spent.
    pub(super) fn recover(&mut self, d: Divergence, it: u64, epoch: usize) -> Result<()> {
        let back_to = self
            .snapshot
            .as_ref()
            .expect("a snapshot is taken before the first iteration")
            .state
            .iteration;
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
                self.restore_snapshot()?;
                self.metrics.write(&MetricsLine::Recovery(event.clone()))?;
                // The event stays in the log whatever later rollbacks to this snapshot undo.
                let len = self.metrics.len()?;
                if let Some(snap) = self.snapshot.as_mut() {
                    snap.metrics_len = len;
                }
                self.observer.on_recovery(&event);
                Ok(())
            }
        }
    }

    /// After an iteration failed with `error` (not a divergence: e.g. out of memory), saves the
    /// last consistent state — the snapshot, since the failed iteration may have changed the
    /// buffer — as `last.ckpt`, and returns the error naming the cause and the checkpoint.
    pub(super) fn save_after_failure(&mut self, iteration: u64, error: TrainError) -> TrainError {
        tracing::error!(iteration, %error, "iteration failed; saving the last consistent state");
        let saved = self.run_dir.join(files::LAST);
        let outcome = self
            .restore_snapshot()
            .and_then(|()| self.save(files::LAST));
        match outcome {
            Ok(()) => TrainError::IterationFailed {
                iteration,
                saved,
                source: Box::new(error),
            },
            Err(save_error) => {
                tracing::error!(%save_error, "could not save the state after the failure");
                error
            }
        }
    }

    /// Writes a checkpoint of the current state to `run_dir/name` (atomically); the metrics log
    /// is flushed first, so the length it records is on disk.
    pub(super) fn save(&self, name: &str) -> Result<()> {
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
        self.metrics.sync()?;
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
        let path = self.run_dir.join(name);
        let meta = serde_json::to_value(&meta).map_err(|e| TrainError::Checkpoint {
            path: path.clone(),
            reason: format!("cannot encode metadata: {e}"),
        })?;
        write_checkpoint(&path, &meta, &tensors)
    }

    /// `checkpoints/ckpt_<iteration>.ckpt` of the current iteration.
    fn kept_path(&self) -> std::path::PathBuf {
        self.run_dir
            .join(files::KEPT_DIR)
            .join(format!("ckpt_{:08}.ckpt", self.st.iteration))
    }

    /// On resume: keeps `last.ckpt` when it is a periodic checkpoint that was never kept (the
    /// earlier process was killed between writing it and keeping it), so that a killed and
    /// resumed run keeps the same checkpoints as one that ran through.
    pub(super) fn keep_checkpoint_if_missing(&self) -> Result<()> {
        let t = &self.cfg.train;
        let it = self.st.iteration;
        let periodic = t.checkpoint_every > 0 && it > 0 && it % t.checkpoint_every == 0;
        if t.keep_checkpoints == 0 || !periodic || self.kept_path().exists() {
            return Ok(());
        }
        tracing::info!(
            iteration = it,
            "keeping the resumed checkpoint, never kept before"
        );
        self.keep_checkpoint()
    }

    /// Keeps the `last.ckpt` just written as `checkpoints/ckpt_<iteration>.ckpt` (a hard link:
    /// `last.ckpt` is replaced by rename, never rewritten in place), deleting the oldest beyond
    /// `train.keep_checkpoints` (0 keeps none). Their buffers make the paper's "ensemble" IS/FID
    /// (Appendix B).
    pub(super) fn keep_checkpoint(&self) -> Result<()> {
        let keep = self.cfg.train.keep_checkpoints;
        if keep == 0 {
            return Ok(());
        }
        let dir = self.run_dir.join(files::KEPT_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        let last = self.run_dir.join(files::LAST);
        let kept = self.kept_path();
        if kept.exists() {
            // A replayed iteration (after a rollback or a resume) keeps the newest state.
            std::fs::remove_file(&kept).map_err(|e| TrainError::io(&kept, e))?;
        }
        if std::fs::hard_link(&last, &kept).is_err() {
            std::fs::copy(&last, &kept).map_err(|e| TrainError::io(&kept, e))?;
        }
        let kept = files::kept_checkpoints(&dir).map_err(|e| TrainError::io(&dir, e))?;
        let excess = kept.len().saturating_sub(keep);
        for old in &kept[..excess] {
            std::fs::remove_file(old).map_err(|e| TrainError::io(old, e))?;
        }
        Ok(())
    }
}
