//! The training loop (Algorithm 1): one run from its first iteration (or its checkpoint) to its
//! summary.
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | the [`Trainer`] state and its loop: iterations, diagnostics, when to evaluate, checkpoint and stop |
//! | `start.rs` | [`train`] and [`resume`]: building a fresh or a resumed trainer, [`load_model`] |
//! | `data.rs` | [`TrainData`] and the splits, batches and preprocessing derived from `[data]` |
//! | `iteration.rs` | one iteration: batches, SGLD samples, the [objective](crate::objective), the optimiser step |
//! | `state.rs` | checkpoint contents, in-memory snapshots and divergence rollback |
//! | `evaluate.rs` | validation and test accuracy, best-checkpoint selection |
//! | `grids.rs` | PNG grids of the replay buffer and of per-class samples |
//! | `bench.rs` | the iteration on synthetic data, for timings |

use std::path::PathBuf;
use std::time::Instant;

use jem_model::{Precision, WideResNet};
use jem_sampler::ChainInit;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::checkpoint::write_atomic;
use crate::config::RunConfig;
use crate::error::{Result, TrainError};
use crate::lock::RunLock;
use crate::metrics::{Diagnostics, MetricsLine, MetricsLog, RunInfo, TrainObserver};
use crate::recovery::{Divergence, RecoveryState};

pub mod bench;
mod data;
mod evaluate;
mod grids;
mod iteration;
mod start;
mod state;

pub use data::TrainData;
pub use start::{
    checkpoint_config, load_buffer, load_model, resume, resume_with_budget, resume_with_data,
    train, train_with_data, Budget,
};

use data::Prepared;
use iteration::{IterStats, Outcome};
use state::{LoopState, Snapshot};

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
    /// Periodic checkpoints kept for later use (`train.keep_checkpoints`), named
    /// `ckpt_<iteration>.ckpt`.
    pub const KEPT_DIR: &str = "checkpoints";

    /// The kept checkpoints (`ckpt_*.ckpt`) in `dir` (a run's [`KEPT_DIR`]), oldest first: the
    /// iteration in their names is zero-padded, so the name order is the training order.
    pub fn kept_checkpoints(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
        let mut kept: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("ckpt_") && n.ends_with(".ckpt"))
            })
            .collect();
        kept.sort();
        Ok(kept)
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
    /// `train.max_minutes` spent: the run is incomplete (a safety stop; resume it with a larger
    /// budget to finish).
    TimeBudget,
    /// The observer asked to stop.
    Stopped,
}

impl StopReason {
    /// Whether the run trained every iteration its schedule asks for.
    pub fn is_complete(self) -> bool {
        matches!(self, StopReason::Completed | StopReason::MaxIterations)
    }
}

/// What a run achieved (also written to `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The training mode.
    pub mode: crate::config::Mode,
    /// Completed iterations.
    pub iterations: u64,
    /// Iterations the schedule asks for (`train.epochs` bounded by `train.max_iterations`).
    #[serde(default)]
    pub planned_iterations: u64,
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
    /// The checkpoint evaluations should use: `best.ckpt` when a validation split chose one,
    /// otherwise `last.ckpt` (`data.n_valid = 0`).
    #[serde(default)]
    pub model_checkpoint: String,
    /// Divergence recoveries.
    pub recoveries: usize,
    /// Training time in seconds, resumes included.
    pub wall_time_s: f64,
    /// Why the run ended.
    pub stop_reason: StopReason,
    /// False when the run stopped before its schedule's last iteration (time budget, Ctrl-C):
    /// its numbers are not those of the configured recipe.
    #[serde(default = "complete_default")]
    pub complete: bool,
    /// The arithmetic the SGLD passes ran in: `train.sgld_precision` with `auto` resolved for
    /// this device (`None` in summaries written before this field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sgld_precision: Option<Precision>,
    /// The same for the training passes (`train.train_precision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_precision: Option<Precision>,
}

fn complete_default() -> bool {
    true
}

/// A run in progress: the model, the optimiser, the chains, the data and the loop's counters.
struct Trainer<'o> {
    cfg: RunConfig,
    run_dir: PathBuf,
    device: Device,
    vs: VarStore,
    model: WideResNet,
    opt: crate::optim::Optimizer,
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
    /// Held for the trainer's lifetime: one writer per run directory.
    _lock: RunLock,
}

impl Trainer<'_> {
    /// Says which arithmetic the passes run in, and warns where bfloat16 was asked for on a
    /// device that only emulates it (several times slower than float32, not faster).
    fn log_precisions(&self) {
        let device = self.device;
        for (field, asked) in [
            ("train.sgld_precision", self.cfg.train.sgld_precision),
            ("train.train_precision", self.cfg.train.train_precision),
        ] {
            let runs = asked.resolve(device);
            tracing::info!(field, asked = asked.name(), runs = runs.name(), "precision");
            if runs == Precision::Bf16 && !jem_model::ops::native_bf16(device) {
                tracing::warn!(
                    field,
                    "bf16 on a CPU without native bfloat16 (AVX-512 BF16): libtorch emulates it, \
                     several times slower than fp32 (an SGLD step 9.6x on an AVX2-only CPU); \
                     `auto` picks fp32 here"
                );
            }
        }
    }

    fn elapsed(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    /// Iterations of a full schedule (`train.epochs` epochs).
    fn scheduled_iterations(&self) -> u64 {
        self.cfg.train.epochs as u64 * self.data.iterations_per_epoch
    }

    fn total_iterations(&self) -> u64 {
        let full = self.scheduled_iterations();
        self.cfg.train.max_iterations.map_or(full, |m| m.min(full))
    }

    /// Why a run that trained all its iterations ended.
    fn end_reason(&self) -> StopReason {
        if self.total_iterations() < self.scheduled_iterations() {
            StopReason::MaxIterations
        } else {
            StopReason::Completed
        }
    }

    fn run(mut self) -> Result<TrainSummary> {
        let total = self.total_iterations();
        let ipe = self.data.iterations_per_epoch;
        self.log_precisions();
        self.observer.on_start(&RunInfo {
            run_dir: self.run_dir.clone(),
            start_iteration: self.st.iteration,
            total_iterations: total,
            iterations_per_epoch: ipe,
            parameters: jem_model::parameter_count(&self.vs),
        });
        if self.st.iteration >= total {
            let reason = self.end_reason();
            return self.finish(reason);
        }
        self.take_snapshot()?;
        let mut reason = None;
        while self.st.iteration < total {
            if self.observer.should_stop() {
                reason = Some(StopReason::Stopped);
                break;
            }
            if let Some(m) = self.cfg.train.max_minutes {
                if self.elapsed() >= m * 60.0 {
                    reason = Some(StopReason::TimeBudget);
                    break;
                }
            }
            let it = self.st.iteration;
            let epoch = (it / ipe) as usize;
            match self.iteration(it, epoch) {
                Ok(Outcome::Diverged(d)) => self.recover(d, it, epoch)?,
                Ok(Outcome::Done(stats)) => self.after_iteration(*stats, epoch)?,
                Err(e) => return Err(self.save_after_failure(it, e)),
            }
        }
        let reason = reason.unwrap_or_else(|| self.end_reason());
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
        if periodic {
            self.keep_checkpoint()?;
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

    /// Ends the run: a non-finite model is rolled back (or reported as diverged), the final
    /// model is evaluated and saved, and `summary.json` is written atomically.
    fn finish(mut self, reason: StopReason) -> Result<TrainSummary> {
        let settled =
            self.st.stop_reason.is_some() && self.st.evaluated_at == Some(self.st.iteration);
        if !settled {
            if !self.opt.params_finite()? {
                // Ended between checks (time budget, Ctrl-C, max_iterations): never save or score
                // a model with NaN weights. Roll back to the last good state and end there.
                let it = self.st.iteration;
                let epoch = (it / self.data.iterations_per_epoch) as usize;
                self.recover(Divergence::NonFiniteParameters, it.saturating_sub(1), epoch)?;
                tracing::warn!(
                    iteration = self.st.iteration,
                    "the final model had non-finite parameters; ended at the last good state"
                );
            }
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
        let reason = self.st.stop_reason.unwrap_or(reason);
        if !reason.is_complete() {
            tracing::warn!(
                iteration = self.st.iteration,
                planned = self.total_iterations(),
                ?reason,
                "the run is INCOMPLETE: it stopped before its last iteration, so its model is \
                 not the configured recipe's; resume it (with a larger budget) to finish"
            );
        }
        let model_checkpoint = if self.st.best_valid.is_some() {
            files::BEST
        } else {
            files::LAST
        };
        let summary = TrainSummary {
            run_dir: self.run_dir.clone(),
            mode: self.cfg.train.mode,
            iterations: self.st.iteration,
            planned_iterations: self.total_iterations(),
            epochs_completed: (self.st.iteration / self.data.iterations_per_epoch) as usize,
            final_valid_acc: self.st.last_valid,
            final_test_acc: self.st.last_test,
            best_valid_acc: self.st.best_valid,
            best_test_acc: self.st.best_test,
            best_epoch: self.st.best_epoch,
            model_checkpoint: model_checkpoint.to_string(),
            recoveries: self.recovery.events.len(),
            wall_time_s: self.elapsed(),
            stop_reason: reason,
            complete: reason.is_complete(),
            sgld_precision: Some(self.cfg.train.sgld_precision.resolve(self.device)),
            train_precision: Some(self.cfg.train.train_precision.resolve(self.device)),
        };
        let path = self.run_dir.join(files::SUMMARY);
        let text = serde_json::to_string_pretty(&summary)
            .map_err(|e| TrainError::io(&path, std::io::Error::other(e.to_string())))?;
        write_atomic(&path, text.as_bytes())?;
        tracing::info!(?summary, "training finished");
        Ok(summary)
    }
}
