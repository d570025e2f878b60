//! `sample.json` of `jem sample` (the paper's Figs 2, 7-9).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `sample.json`: what `jem sample` drew and where it wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleReport {
    /// The checkpoint sampled from.
    pub checkpoint: PathBuf,
    /// Class-conditional (one grid row per class).
    pub conditional: bool,
    /// Samples drawn (per class times classes when conditional).
    pub n_samples: usize,
    /// SGLD steps.
    pub steps: usize,
    /// Started from noise rather than the replay buffer.
    pub from_noise: bool,
    /// Seed.
    pub seed: u64,
    /// The samples, float `[N, C, H, W]` in `[-1, 1]`.
    pub npy: PathBuf,
    /// Their grid.
    pub png: PathBuf,
    /// Conditional only: each class row ordered by log p(x), highest first (Fig 9).
    pub by_logpx_png: Option<PathBuf>,
}
