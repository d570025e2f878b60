//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong while configuring or running an attack.
#[derive(Debug, Error)]
pub enum AttackError {
    /// A configuration value is outside its allowed range.
    #[error(transparent)]
    InvalidConfig(#[from] jem_params::InvalidParam),

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

/// [`AttackError::InvalidConfig`]: `config.field` = `value` (`Debug`-formatted) is not `allowed`.
pub(crate) fn invalid(
    config: &str,
    field: &str,
    value: impl std::fmt::Debug,
    allowed: &str,
) -> AttackError {
    jem_params::InvalidParam::debug(config, field, value, allowed).into()
}
