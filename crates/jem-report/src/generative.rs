//! `generative.json` of `jem generative` (IS and FID, the paper's Tables 1 and 5) and
//! `judge.json` of `jem generative --judge` (how a person would judge the samples: an
//! independent classifier's agreement and a FID beside trivial references).

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

/// Where the scored samples came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleSource {
    /// Re-drawn replay-buffer slots (or noise) plus `steps` SGLD steps, as `jem sample` draws.
    Resampled,
    /// The whole replay buffer of one checkpoint as it stands (Appendix B's "single").
    Buffer,
    /// The replay buffers of several kept checkpoints, lumped together (Appendix B's "ensemble").
    Ensemble,
}

/// Which split of the data set the FID reference statistics come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSplit {
    /// The training split (as the official CIFAR-10 FID statistics).
    Train,
    /// The test split.
    Test,
}

impl ReferenceSplit {
    /// `train` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            ReferenceSplit::Train => "train",
            ReferenceSplit::Test => "test",
        }
    }
}

/// `generative.json`. Every image set (samples and references) went to the feature extractor
/// clipped to [-1, 1] and quantised to 8-bit levels, as image files would store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerativeReport {
    /// IS and FID.
    #[serde(flatten)]
    pub metrics: GenerativeMetrics,
    /// The JEM whose p(y|x) selects the top percentile (and, when re-sampling, samples).
    pub checkpoint: PathBuf,
    /// The classifier whose features were used (`None` with a TorchScript network).
    pub classifier: Option<PathBuf>,
    /// Where the samples came from.
    pub source: SampleSource,
    /// The checkpoints whose replay buffers were scored, oldest first (empty when re-sampled).
    pub buffers: Vec<PathBuf>,
    /// Class-conditional samples (re-sampled per class, or a class-conditional buffer).
    pub conditional: bool,
    /// SGLD steps run (0 for buffers, scored as they stand).
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
    /// The split of the reference images.
    pub reference_split: ReferenceSplit,
    /// The grid of the samples (at most 100 of them, evenly spaced).
    pub samples_png: PathBuf,
    /// The grid of the kept samples (with a top percentile).
    pub selected_png: Option<PathBuf>,
}

/// How often an independent classifier assigns a set's images to the class they were made
/// for, and how sure it is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Images judged.
    pub n: usize,
    /// Share whose predicted class is the intended one.
    pub agreement: f64,
    /// Mean of the judge's max p(y|x).
    pub confidence: f64,
    /// Mean of the judge's p(intended class | x).
    pub intended_probability: f64,
}

/// [`Agreement`] of one set, overall and per intended class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementRow {
    /// What the set is (`class-conditional samples`, `Gaussian initialisation`, `real test
    /// images`).
    pub set: String,
    /// Over every image.
    pub overall: Agreement,
    /// Per intended class `0..K`.
    pub per_class: Vec<Agreement>,
}

/// FID of one set against the test images, in the judge's features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidRow {
    /// What the set is.
    pub set: String,
    /// Images in the set.
    pub n: usize,
    /// Fréchet distance to the test images' features.
    pub fid: f64,
}

/// The PNG grids written beside `judge.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeGrids {
    /// Unconditional samples (the replay buffer, evenly spaced slots).
    pub samples: PathBuf,
    /// Class-conditional samples, one row per class.
    pub per_class: PathBuf,
    /// The same rows, each ordered by the JEM's log p(x), highest first (the paper's Fig 9).
    pub per_class_by_logpx: PathBuf,
    /// The class-conditional Gaussian initialisation, one row per class (the trivial generator).
    pub gaussian: PathBuf,
}

/// `judge.json`: the JEM's samples judged by an independent classifier (issue: a generating cpu
/// preset). The FID values use that classifier's penultimate features: **not Inception**.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReport {
    /// The JEM judged.
    pub checkpoint: PathBuf,
    /// The independent classifier (trained without p(x)).
    pub judge: PathBuf,
    /// The feature extractor's label (says "not Inception").
    pub extractor: String,
    /// Where the unconditional samples come from.
    pub samples_source: String,
    /// Where the class-conditional samples come from.
    pub conditional_source: String,
    /// Where the class-conditional Gaussians come from (the checkpoint's chain start, or a fit
    /// to the training split) and their rank.
    pub gaussian_source: String,
    /// SGLD steps of the samples drawn here (0 when every set came from the buffer).
    pub steps: usize,
    /// Seed of every draw.
    pub seed: u64,
    /// Images per FID set (the requested N, or fewer when a source holds fewer).
    pub n: usize,
    /// Class-conditional images per class.
    pub per_class: usize,
    /// Agreement rows: the samples, the Gaussian initialisation, real test images.
    pub agreement: Vec<AgreementRow>,
    /// FID rows: the samples, then the references (uniform noise, Gaussian initialisation,
    /// held-out training images), then the class-conditional samples.
    pub fid: Vec<FidRow>,
    /// FID(samples) / FID(Gaussian initialisation): below 1, the samples beat the trivial
    /// generator; the cpu preset's target is at most 0.5.
    pub fid_ratio_to_gaussian: f64,
    /// The grids.
    pub grids: JudgeGrids,
}

impl JudgeReport {
    /// The FID of the set named `set`.
    pub fn fid_of(&self, set: &str) -> Option<f64> {
        self.fid.iter().find(|r| r.set == set).map(|r| r.fid)
    }

    /// The agreement row of the set named `set`.
    pub fn agreement_of(&self, set: &str) -> Option<&AgreementRow> {
        self.agreement.iter().find(|r| r.set == set)
    }
}

/// The names of the sets in a [`JudgeReport`].
pub mod judge_sets {
    /// The JEM's unconditional samples (its replay buffer, or SGLD chains when it has none).
    pub const SAMPLES: &str = "samples";
    /// The JEM's class-conditional samples.
    pub const CONDITIONAL: &str = "class-conditional samples";
    /// `U(-1, 1)` noise.
    pub const UNIFORM: &str = "uniform noise";
    /// The class-conditional Gaussians fitted to the training split, sampled and clamped.
    pub const GAUSSIAN: &str = "Gaussian initialisation";
    /// Training-split images the runs never trained on (the validation split).
    pub const HELD_OUT: &str = "held-out training images";
    /// The test images (agreement: the judge's accuracy; FID: the reference against itself).
    pub const TEST: &str = "real test images";
}
