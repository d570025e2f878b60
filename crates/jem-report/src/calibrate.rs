//! `calibration.json` of `jem calibrate` (the paper's Fig 4 and Appendix E).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Accuracy and NLL of one evaluation set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Mean negative log-likelihood of the labels, nats.
    pub nll: f64,
    /// Samples evaluated.
    pub num_samples: usize,
}

/// One confidence bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge (exclusive, except 0 for the first bin).
    pub lo: f64,
    /// Upper edge (inclusive).
    pub hi: f64,
    /// Samples in the bin.
    pub count: usize,
    /// Their accuracy (`None` for an empty bin).
    pub accuracy: Option<f64>,
    /// Their mean confidence (`None` for an empty bin).
    pub mean_confidence: Option<f64>,
}

/// A reliability diagram and the ECE it implies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityDiagram {
    /// Samples binned.
    pub num_samples: usize,
    /// Expected Calibration Error in `[0, 1]`.
    pub ece: f64,
    /// The bins in increasing confidence.
    pub bins: Vec<ReliabilityBin>,
}

/// `calibration.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// The checkpoint evaluated.
    pub checkpoint: PathBuf,
    /// The data set whose test split was used.
    pub data: String,
    /// Expected Calibration Error in `[0, 1]` (the paper's M = 20 bins by default).
    pub ece: f64,
    /// Accuracy and NLL.
    pub classification: ClassificationMetrics,
    /// The reliability diagram.
    pub reliability: ReliabilityDiagram,
}
