//! `ood.json` of `jem eval`: one record per (score, OOD set).

use serde::{Deserialize, Serialize};

/// An OOD score (the paper's Sec. 5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Score {
    /// log p(x) up to the partition function.
    #[serde(rename = "px")]
    LogPx,
    /// max_y p(y|x).
    #[serde(rename = "py")]
    MaxPy,
    /// The approximate-mass score −‖∂ log p(x)/∂x‖₂ (Eq. 9).
    #[serde(rename = "pxgrad")]
    GradNorm,
}

impl Score {
    /// All scores, in the paper's order.
    pub const ALL: [Score; 3] = [Score::LogPx, Score::MaxPy, Score::GradNorm];

    /// The short name of the command line and the JSON (`px`, `py`, `pxgrad`).
    pub fn name(self) -> &'static str {
        match self {
            Score::LogPx => "px",
            Score::MaxPy => "py",
            Score::GradNorm => "pxgrad",
        }
    }

    /// The paper's label.
    pub fn label(self) -> &'static str {
        match self {
            Score::LogPx => "log p(x)",
            Score::MaxPy => "max p(y|x)",
            Score::GradNorm => "approx. mass −‖∂log p(x)/∂x‖",
        }
    }
}

/// The three threshold-free metrics of one (in, out) pair of score sets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OodMetrics {
    /// Area under the ROC curve (0.5 is chance).
    pub auroc: f64,
    /// Average precision, in-distribution positive.
    pub aupr: f64,
    /// False-positive rate at 95 % true-positive rate.
    pub fpr_at_95_tpr: f64,
    /// Number of in-distribution scores.
    pub num_in: usize,
    /// Number of out-of-distribution scores.
    pub num_out: usize,
}

/// One score against one OOD set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OodRecord {
    /// The score.
    pub score: Score,
    /// The in-distribution data set.
    #[serde(rename = "in")]
    pub in_set: String,
    /// The OOD set.
    pub ood: String,
    /// SGLD refinement steps before scoring.
    pub refine_steps: usize,
    /// The metrics.
    pub metrics: OodMetrics,
}

/// `ood.json`: every (score, OOD set) record of one evaluation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OodReport(pub Vec<OodRecord>);

impl OodReport {
    /// The record of `score` against `ood`, if evaluated.
    pub fn get(&self, score: Score, ood: &str) -> Option<&OodRecord> {
        self.0.iter().find(|r| r.score == score && r.ood == ood)
    }
}
