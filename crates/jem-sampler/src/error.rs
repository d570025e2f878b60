//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong while configuring or running a sampler.
#[derive(Debug, Error)]
pub enum SamplerError {
    /// A configuration value is outside its allowed range.
    /// (`config` is the TOML section: `sampler.sgld`, `sampler.buffer`.)
    #[error(transparent)]
    InvalidConfig(#[from] jem_params::InvalidParam),

    /// A tensor does not have the shape the sampler needs.
    #[error("shape mismatch in {context}: expected {expected:?}, got {actual:?}")]
    ShapeMismatch {
        /// What was being checked.
        context: &'static str,
        /// The shape that was required.
        expected: Vec<i64>,
        /// The shape that was given.
        actual: Vec<i64>,
    },

    /// A call argument is invalid (a label out of range, a batch from another buffer, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The chain produced NaN or infinite values (the divergence of the paper's Appendix H.3).
    #[error("SGLD produced a non-finite {quantity} at step {step}")]
    NonFinite {
        /// Which diagnostic went non-finite.
        quantity: &'static str,
        /// The step (0-based; `steps` means the final evaluation).
        step: usize,
    },

    /// A saved buffer state is missing an entry or holds inconsistent tensors.
    #[error("invalid replay-buffer state: {0}")]
    InvalidState(String),

    /// The log-density being sampled failed (a model or libtorch error, e.g. out of memory).
    #[error("the log-density failed: {0}")]
    Density(Box<dyn std::error::Error + Send + Sync>),

    /// An error raised by libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

impl SamplerError {
    /// Wraps the error of a log-density (a model's or libtorch's).
    pub fn density(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        SamplerError::Density(Box::new(e))
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, SamplerError>;
