//! `generative.json` of `jem generative` (IS and FID, the paper's Tables 1 and 5).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How the names of classifier-feature extractors begin: such IS/FID values are *not* Inception
/// numbers and must be labelled so wherever they are shown.
pub const CLASSIFIER_FEATURES_PREFIX: &str = "classifier-features";

/// Inception Score and FID of a generated set against a reference set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerativeMetrics {
    /// Mean IS over the splits (`None` when the extractor gives features only).
    pub is_mean: Option<f64>,
    /// Population standard deviation of the per-split scores.
    pub is_std: Option<f64>,
    /// Number of IS splits.
    pub is_splits: usize,
    /// Fréchet distance between generated and reference features.
    pub fid: f64,
    /// Which network the features come from.
    pub extractor: String,
    /// Generated images scored.
    pub n_generated: usize,
    /// Reference images.
    pub n_reference: usize,
    /// Feature dimension.
    pub feature_dim: usize,
    /// Classes of the probabilities (0 without a class head).
    pub num_classes: usize,
}

impl GenerativeMetrics {
    /// Whether the features are a real Inception network's (a TorchScript file), not a
    /// classifier's.
    pub fn is_inception(&self) -> bool {
        !self.extractor.starts_with(CLASSIFIER_FEATURES_PREFIX)
    }
}

/// `generative.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerativeReport {
    /// IS and FID.
    #[serde(flatten)]
    pub metrics: GenerativeMetrics,
    /// The JEM sampled from.
    pub checkpoint: PathBuf,
    /// The classifier whose features were used (`None` with a TorchScript network).
    pub classifier: Option<PathBuf>,
    /// Class-conditional samples.
    pub conditional: bool,
    /// SGLD steps run.
    pub steps: usize,
    /// Seed of the chains and the noise.
    pub seed: u64,
    /// Samples drawn before selection.
    pub n_sampled: usize,
    /// Top percentile kept by max p(y|x) (`None`: all kept).
    pub top_percentile: Option<f64>,
    /// Indices of the samples kept.
    pub kept_indices: Vec<usize>,
    /// The data set of the reference images.
    pub reference_data: String,
    /// The grid of every sample.
    pub samples_png: PathBuf,
    /// The grid of the kept samples (with a top percentile).
    pub selected_png: Option<PathBuf>,
}
