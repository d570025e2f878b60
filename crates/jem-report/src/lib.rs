#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod attack;
pub mod calibrate;
pub mod error;
pub mod extremes;
pub mod files;
pub mod generative;
pub mod info;
pub mod io;
pub mod ood;
pub mod sample;
pub mod train;

pub use attack::{
    AttackDetails, AttackModel, AttackReport, CurvePoint, DistalClass, DistalModel, DistalReport,
    Norm, PgdSettings, RefinementSettings, RobustPoint, RobustnessCurve,
};
pub use calibrate::{CalibrationReport, ClassificationMetrics, ReliabilityBin, ReliabilityDiagram};
pub use error::{ReportError, Result};
pub use extremes::{ExtremeItem, ExtremeSide, ExtremesReport};
pub use generative::judge_sets;
pub use generative::{
    Agreement, AgreementRow, FidRow, GenerativeMetrics, GenerativeReport, JudgeGrids, JudgeReport,
    ReferenceSplit, SampleSource, CLASSIFIER_FEATURES_PREFIX,
};
pub use info::InfoReport;
pub use io::{parse_json, read_json, write_json};
pub use ood::{OodMetrics, OodRecord, OodReport, Score};
pub use sample::SampleReport;
pub use train::{Mode, StopReason, TrainSummary};
