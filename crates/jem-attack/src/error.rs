//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong while configuring or running an attack.
#[derive(Debug, Error)]
pub enum AttackError {
    /// A configuration value is outside its allowed range.
    #[error("invalid {config} setting `{field}` = {value}: must be {allowed}")]
    InvalidConfig {
        /// Which configuration struct (`PgdConfig`, `BoundaryConfig`, ...).
        config: &'static str,
        /// The offending field.
        field: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },

    /// A call argument is invalid (shapes that do not match, labels out of range, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An attack could not start, e.g. no adversarial starting point was found.
    #[error("{attack}: {reason}")]
    CannotStart {
        /// The attack's name.
        attack: &'static str,
        /// Why, in words.
        reason: String,
    },

    /// A quantity the attack depends on (loss, gradient, probability) is NaN or infinite where it
    /// must be finite.
    #[error("{attack}: non-finite {quantity}")]
    NonFinite {
        /// The attack or component that met it.
        attack: &'static str,
        /// What was not finite.
        quantity: &'static str,
    },

    /// SGLD refinement failed.
    #[error(transparent)]
    Sampler(#[from] jem_sampler::SamplerError),

    /// The model failed.
    #[error(transparent)]
    Model(#[from] jem_model::ModelError),

    /// A libtorch call failed.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// The crate's result type.
pub type Result<T, E = AttackError> = std::result::Result<T, E>;
