//! `extremes.json` of `jem extremes` (the paper's Figs 10-12).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One scored image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExtremeItem {
    /// Index in the scored set.
    pub index: usize,
    /// Its score.
    pub score: f64,
    /// Its label (-1 for generated samples).
    pub label: i64,
}

/// The highest and lowest images of one score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtremeSide {
    /// Highest first.
    pub highest: Vec<ExtremeItem>,
    /// Lowest first.
    pub lowest: Vec<ExtremeItem>,
    /// Grid of the highest.
    pub highest_png: PathBuf,
    /// Grid of the lowest.
    pub lowest_png: PathBuf,
}

/// `extremes.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtremesReport {
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// What was scored (data set test images or a samples file).
    pub data: String,
    /// Images scored.
    pub n_images: usize,
    /// Images per grid.
    pub k: usize,
    /// log p(x) extremes (Fig 11).
    pub logpx: ExtremeSide,
    /// max p(y|x) extremes (Fig 12).
    pub maxpy: ExtremeSide,
}
