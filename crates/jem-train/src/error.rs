//! The crate error type.

use std::path::PathBuf;

/// Result alias used by every fallible function of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;

/// Everything that can go wrong while configuring, running, checkpointing or resuming training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A config value is outside its allowed range (`key()` spells it `section.key`).
    #[error(transparent)]
    InvalidConfig(#[from] jem_params::InvalidParam),

    /// A section owned by another crate rejected its values.
    #[error("invalid config [{section}]: {message}")]
    Section {
        /// `data`, `model` or `sampler`.
        section: &'static str,
        /// The owning crate's message (names the key, value and allowed range).
        message: String,
    },

    /// The TOML text could not be parsed or does not match the config types
    /// (unknown keys included).
    #[error("config {origin}: {message}")]
    ConfigParse {
        /// Where the text came from (a file path or `<string>`).
        origin: String,
        /// The parser's message.
        message: String,
    },

    /// A `--set section.key=value` override could not be applied.
    #[error("override `{spec}`: {reason}")]
    Override {
        /// The override as given.
        spec: String,
        /// Why it was rejected.
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },

    /// A checkpoint file is not a readable jem checkpoint (truncated, corrupted, wrong format).
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Another process is writing into the run directory.
    #[error("run directory {} is in use by {holder}: wait for it to finish or use another directory", dir.display())]
    RunInUse {
        /// The run directory.
        dir: PathBuf,
        /// Who holds it (`process <pid>`).
        holder: String,
    },

    /// An iteration failed for a reason other than divergence (a libtorch error such as out of
    /// memory); the last consistent state was saved first.
    #[error("iteration {iteration} failed: {source}; the state before it is saved in {}", saved.display())]
    IterationFailed {
        /// The iteration that failed (0-based).
        iteration: u64,
        /// The checkpoint holding the last consistent state.
        saved: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<TrainError>,
    },

    /// The data does not fit the model or the run (shape, classes, sizes).
    #[error("data mismatch: {0}")]
    DataMismatch(String),

    /// Training diverged and the recovery budget is spent (or recovery is disabled).
    #[error("training diverged, giving up: {0}")]
    Diverged(Box<crate::recovery::DivergenceReport>),

    /// Writing a sample grid failed.
    #[error(transparent)]
    Grid(#[from] jem_data::grid::GridError),

    /// An error of the data crate.
    #[error(transparent)]
    Data(#[from] jem_data::DataError),

    /// An error of the model crate.
    #[error(transparent)]
    Model(#[from] jem_model::ModelError),

    /// An error of the sampler crate.
    #[error(transparent)]
    Sampler(#[from] jem_sampler::SamplerError),

    /// Any other libtorch failure.
    #[error("libtorch error: {0}")]
    Torch(#[from] tch::TchError),
}

impl TrainError {
    /// Shorthand for [`TrainError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    /// [`TrainError::InvalidConfig`] for the full key `section.key` (e.g. `train.lr`).
    pub(crate) fn invalid(
        key: impl AsRef<str>,
        value: impl std::fmt::Display,
        allowed: impl AsRef<str>,
    ) -> Self {
        jem_params::InvalidParam::at_key(key.as_ref(), value, allowed).into()
    }
}
