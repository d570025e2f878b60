#![doc = include_str!("../README.md")]

pub mod buffer;
pub mod chains;
pub mod config;
pub mod density;
pub mod error;
pub mod init;
mod noise;
pub mod refine;
pub mod sgld;

pub use buffer::{AgeStats, BufferState, ReplayBuffer};
pub use chains::{sample, ChainBatch, ChainInit, SampleSource, Samples, ShortRun};
pub use config::{BufferConfig, InitKind, SgldConfig, SgldMode, StepDecay};
pub use density::{ConditionalLogDensity, Conditioned, Energy, FromLogits, LogDensity};
pub use error::{Result, SamplerError};
pub use init::{ChainStart, ClassGaussians};
pub use jem_params::InvalidParam;
pub use rand_pcg::Pcg64;
pub use refine::refine;
pub use sgld::{sgld, SgldStats};
