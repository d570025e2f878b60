//! The file names the `jem` command writes, shared so writer and reader cannot disagree.

/// `jem train`: the run summary in the run directory.
pub const TRAIN_SUMMARY: &str = "summary.json";
/// `jem train`: the resolved run config in the run directory.
pub const TRAIN_CONFIG: &str = "config.toml";
/// `jem train`: the last (resumable) checkpoint in the run directory.
pub const LAST_CHECKPOINT: &str = "last.ckpt";
/// `jem eval`: OOD detection metrics ([`crate::OodReport`]).
pub const OOD: &str = "ood.json";
/// `jem calibrate`: ECE and the reliability diagram ([`crate::CalibrationReport`]).
pub const CALIBRATION: &str = "calibration.json";
/// `jem calibrate`: the reliability diagram.
pub const RELIABILITY_PNG: &str = "reliability.png";
/// `jem generative`: IS and FID ([`crate::GenerativeReport`]).
pub const GENERATIVE: &str = "generative.json";
/// `jem generative --judge`: samples judged by an independent classifier ([`crate::JudgeReport`]).
pub const JUDGE: &str = "judge.json";
/// `jem extremes`: the highest and lowest scored images ([`crate::ExtremesReport`]).
pub const EXTREMES: &str = "extremes.json";
/// `jem extremes`: log p(x) histograms by class (the paper's Fig 10).
pub const LOGPX_BY_CLASS_PNG: &str = "logpx_by_class.png";
/// `jem sample`: what was sampled and where it went ([`crate::SampleReport`]).
pub const SAMPLE: &str = "sample.json";

/// `jem eval`: the histogram of score `score` (`px`, `py`, `pxgrad`) over every data set.
pub fn histogram_png(score: &str) -> String {
    format!("hist_{score}.png")
}

/// `jem attack --attack NAME`: the report ([`crate::AttackReport`], or [`crate::DistalReport`]
/// for `distal`).
pub fn attack(name: &str) -> String {
    format!("{name}.json")
}

/// `jem attack --attack NAME`: the robustness-curve plot.
pub fn attack_png(name: &str) -> String {
    format!("{name}.png")
}
