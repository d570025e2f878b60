#![doc = include_str!("../README.md")]

pub mod checkpoint;
pub mod config;
pub mod error;
#[cfg(feature = "fault-injection")]
pub mod fault;
#[cfg(not(feature = "fault-injection"))]
mod fault;
pub mod import;
pub mod lock;
pub mod metrics;
pub mod objective;
pub mod optim;
pub mod recovery;
pub mod rng;
pub mod trainer;

pub use config::{
    apply_override, Chains, Mode, OptimizerKind, RecoveryConfig, Remedy, RunConfig, SamplerConfig,
    TrainConfig,
};
pub use error::{Result, TrainError};
pub use jem_params::InvalidParam;
pub use metrics::{
    read_metrics, Diagnostics, EpochMetrics, MetricsLine, NoopObserver, RunInfo, TrainObserver,
};
pub use optim::{Optimizer, OptimizerSettings};
pub use recovery::{DivergenceReport, RecoveryEvent, RecoveryState};
pub use trainer::bench;
pub use trainer::{
    checkpoint_config, files, load_buffer, load_model, resume, resume_with_budget,
    resume_with_data, train, train_with_data, Budget, StopReason, TrainData, TrainSummary,
};
