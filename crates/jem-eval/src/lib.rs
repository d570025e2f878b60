#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod calibration;
pub mod classification;
pub mod error;
#[cfg(feature = "torch")]
pub mod features;
pub mod frechet;
/// PNG grids of image samples; the writer lives in [`jem_data::grid`] (which needs libtorch,
/// hence the `torch` feature) and is re-exported here for existing callers.
#[cfg(feature = "torch")]
pub use jem_data::grid;
pub mod inception;
mod input;
#[cfg(feature = "torch")]
pub mod model_eval;
pub mod ood;
pub mod plot;

/// The `ndarray` version the metrics take their views from.
pub use ndarray;

pub use calibration::{
    bin_index, ece, reliability_diagram, reliability_from_confidences, ReliabilityBin,
    ReliabilityDiagram, PAPER_NUM_BINS,
};
pub use classification::{
    accuracy, classification_metrics, nll, ClassificationMetrics, NLL_PROB_FLOOR,
};
pub use error::{EvalError, Result};
pub use frechet::{frechet_distance, frechet_distance_from_stats, FeatureStats};
pub use inception::{inception_score, InceptionScore, DEFAULT_SPLITS};
pub use input::{Real, ROW_SUM_TOLERANCE};
pub use ood::{
    aupr, auroc, auroc_bootstrap, fpr_at_95_tpr, fpr_at_tpr, ood_metrics, BootstrapConfig,
    BootstrapInterval, OodMetrics,
};
