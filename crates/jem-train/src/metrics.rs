//! Diagnostics, the `metrics.jsonl` log and the observer hook.
//!
//! `metrics.jsonl` holds one JSON object per line with a `kind` field: `train` ([`Diagnostics`],
//! every `train.log_every` iterations), `epoch` ([`EpochMetrics`], after each evaluation),
//! `recovery` ([`crate::recovery::RecoveryEvent`]) and `gave_up`
//! ([`crate::recovery::DivergenceReport`]). Timing fields (`its_per_sec`, `elapsed_s`) are the
//! only ones that differ between a resumed and an uninterrupted run.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::recovery::{DivergenceReport, RecoveryEvent};

/// Figures of the last `log_every` iterations (losses and accuracies are window means; energy
/// figures are means over the window's iterations that sampled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Completed iterations.
    pub iteration: u64,
    /// Epoch of the last iteration (0-based).
    pub epoch: usize,
    /// Learning rate of the last iteration (schedule × recovery scaling).
    pub lr: f64,
    /// Total loss.
    pub loss: f64,
    /// Cross-entropy.
    pub ce: f64,
    /// Contrastive term `−(mean log p(x_data) − mean log p(x_sample))` (0 for baseline).
    pub px_term: f64,
    /// Energy L2 regulariser (already weighted).
    pub energy_reg: f64,
    /// Mean log p(x) of the data batches (log p(x, y) in factored mode).
    pub logpx_data: Option<f64>,
    /// Mean log p(x) of the SGLD samples.
    pub logpx_sample: Option<f64>,
    /// `logpx_data − logpx_sample`.
    pub energy_gap: Option<f64>,
    /// Mean per-sample input-gradient norm at the last SGLD step.
    pub sgld_grad_norm: Option<f64>,
    /// SGLD steps per iteration in force.
    pub sgld_steps: usize,
    /// Mean age of the replay-buffer chains.
    pub buffer_age_mean: Option<f64>,
    /// Oldest replay-buffer chain.
    pub buffer_age_max: Option<u64>,
    /// Global L2 norm of the parameter gradient before clipping (window mean).
    pub param_grad_norm: f64,
    /// Training accuracy on the labelled batches of the window.
    pub train_acc: f64,
    /// Iterations per second over the window (timing; not reproducible).
    pub its_per_sec: f64,
    /// Training time so far in seconds, resumes included (timing; not reproducible).
    pub elapsed_s: f64,
}

/// Evaluation after an epoch (or at the end of a run stopped mid-epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epochs completed (the evaluation follows epoch `epoch - 1`; mid-epoch stops count the
    /// started epoch).
    pub epoch: usize,
    /// Completed iterations.
    pub iteration: u64,
    /// Accuracy on the validation split (`None` when `data.n_valid = 0`).
    pub valid_acc: Option<f64>,
    /// Accuracy on the test split.
    pub test_acc: f64,
    /// Expected calibration error of the test split's softmax ([`jem_eval::PAPER_NUM_BINS`]
    /// equal-width bins), as `jem calibrate` measures it (absent in logs of older versions).
    #[serde(default)]
    pub test_ece: Option<f64>,
    /// Mean negative log-likelihood of the test labels under the softmax (absent in logs of
    /// older versions).
    #[serde(default)]
    pub test_nll: Option<f64>,
    /// Running training accuracy over the epoch.
    pub train_acc: f64,
    /// Best validation accuracy so far.
    pub best_valid_acc: Option<f64>,
    /// Whether this evaluation set a new best (and wrote `best.ckpt`).
    pub is_best: bool,
    /// Training time so far in seconds (timing; not reproducible).
    pub elapsed_s: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricsLine {
    /// Training diagnostics.
    Train(Diagnostics),
    /// Evaluation.
    Epoch(EpochMetrics),
    /// A divergence recovery.
    Recovery(RecoveryEvent),
    /// The run gave up.
    GaveUp(DivergenceReport),
}

/// Information given to [`TrainObserver::on_start`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Iteration the run starts (or resumes) at.
    pub start_iteration: u64,
    /// Iterations the run will do in total (epochs × iterations per epoch, capped by
    /// `max_iterations`).
    pub total_iterations: u64,
    /// Iterations per epoch.
    pub iterations_per_epoch: u64,
    /// Trainable parameters of the model.
    pub parameters: i64,
}

/// Hook for live progress (the CLI drives a progress bar with it). Every method has an empty
/// default.
pub trait TrainObserver {
    /// Called once before the first iteration.
    fn on_start(&mut self, _info: &RunInfo) {}
    /// Called after every successful iteration with the count of completed iterations.
    fn on_iteration(&mut self, _iteration: u64) {}
    /// Called with every diagnostics line.
    fn on_diagnostics(&mut self, _diagnostics: &Diagnostics) {}
    /// Called after every evaluation.
    fn on_epoch(&mut self, _metrics: &EpochMetrics) {}
    /// Called after every divergence recovery.
    fn on_recovery(&mut self, _event: &RecoveryEvent) {}
    /// Polled before every iteration; returning true stops the run cleanly (final evaluation
    /// and `last.ckpt` are written, so it can be resumed), e.g. on Ctrl-C.
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl TrainObserver for NoopObserver {}

/// Appends JSON lines to `metrics.jsonl`.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens (creating) `path` for appending; with `truncate_to`, first cuts the file to that many
    /// bytes (a resumed run drops the lines written after its checkpoint).
    pub fn open(path: &Path, truncate_to: Option<u64>) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| TrainError::io(path, e))?;
        if let Some(len) = truncate_to {
            let current = file.metadata().map_err(|e| TrainError::io(path, e))?.len();
            if current < len {
                return Err(TrainError::Checkpoint {
                    path: path.to_path_buf(),
                    reason: format!(
                        "holds {current} bytes but the checkpoint was written after {len}: the log \
                         lost lines (restore it, or move it away to resume with a fresh log)"
                    ),
                });
            }
            if current > len {
                file.set_len(len).map_err(|e| TrainError::io(path, e))?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Cuts the log back to `len` bytes (a rollback drops the lines of the iterations it undoes).
    pub fn truncate(&mut self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| TrainError::io(&self.path, e))
    }

    /// Flushes the log to disk (before a checkpoint that records its length).
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| TrainError::io(&self.path, e))
    }

    /// Appends one line.
    pub fn write(&mut self, line: &MetricsLine) -> Result<()> {
        let mut text = serde_json::to_string(line)
            .map_err(|e| TrainError::io(&self.path, std::io::Error::other(e.to_string())))?;
        text.push('\n');
        // With fault injection, in two halves so that the fault tests can tear a line.
        #[cfg(feature = "fault-injection")]
        let written = {
            use crate::fault::{point, Site};
            let (head, tail) = text.as_bytes().split_at(text.len() / 2);
            self.file
                .write_all(head)
                .and_then(|()| point(Site::MetricsHalfLine, &self.path))
                .and_then(|()| self.file.write_all(tail))
        };
        #[cfg(not(feature = "fault-injection"))]
        let written = self.file.write_all(text.as_bytes());
        written.map_err(|e| TrainError::io(&self.path, e))
    }

    /// Current length of the file in bytes.
    pub fn len(&self) -> Result<u64> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| TrainError::io(&self.path, e))?
            .len())
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// Reads every line of a `metrics.jsonl` file.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsLine>> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| TrainError::Checkpoint {
                path: path.to_path_buf(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}
