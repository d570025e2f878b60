//! `summary.json` of a training run.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What was trained (`train.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// JEM (Algorithm 1).
    Jem,
    /// The same network trained with cross-entropy only.
    Baseline,
    /// The "JEM p(x|y) factored" ablation.
    Factored,
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
    /// Asked to stop (SIGINT/SIGTERM): the run can be resumed.
    Stopped,
}

/// What a run achieved (`summary.json` in the run directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The training mode.
    pub mode: Mode,
    /// Completed iterations.
    pub iterations: u64,
    /// Iterations the schedule asks for (0 in summaries written before this field existed).
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
    /// The checkpoint evaluations use: `best.ckpt` when a validation split chose one, else
    /// `last.ckpt` (empty in summaries written before this field existed).
    #[serde(default)]
    pub model_checkpoint: String,
    /// Divergence recoveries.
    pub recoveries: usize,
    /// Training time in seconds, resumes included.
    pub wall_time_s: f64,
    /// Why the run ended.
    pub stop_reason: StopReason,
    /// False when the run stopped before its schedule's last iteration (a time budget or a
    /// Ctrl-C): its numbers are not the configured recipe's.
    #[serde(default = "yes")]
    pub complete: bool,
    /// The arithmetic the SGLD passes ran in (`fp32` or `bf16`; `train.sgld_precision = "auto"`
    /// resolved for the machine). `None` for imported runs and summaries written before this
    /// field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sgld_precision: Option<String>,
    /// The same for the training passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_precision: Option<String>,
}

fn yes() -> bool {
    true
}

impl TrainSummary {
    /// Whether the run is over (a `Stopped` run is an interrupted one, to be resumed).
    pub fn is_finished(&self) -> bool {
        self.stop_reason != StopReason::Stopped
    }

    /// The test accuracy of the checkpoint the evaluations load (the best-validation one, as
    /// `jem eval` picks `best.ckpt` first), else of the final model.
    pub fn reported_test_acc(&self) -> Option<f64> {
        self.best_test_acc.or(self.final_test_acc)
    }
}
