//! The crate's error type.
//!
//! Every variant that comes from reading a file carries the file's path, so a
//! message always says *which* file is wrong and *what* is wrong with it.

use std::path::PathBuf;

/// Everything that can go wrong while locating, parsing or preparing data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused to read or write a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A file exists but its bytes do not follow the format it claims to be in.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },

    /// An image file could not be decoded.
    #[error("{path}: cannot decode image: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },

    /// A data set's files were not found anywhere the resolver looked.
    #[error(
        "{dataset} not found. Put {files} into one of these directories \
         (searched in this order): {searched}"
    )]
    NotFound {
        /// The data set's display name.
        dataset: String,
        /// The expected file names, already joined for display.
        files: String,
        /// The searched directories, already joined for display.
        searched: String,
    },

    /// A configuration value is outside the range this crate accepts
    /// (`config` is `data`, `field` the key inside that section).
    #[error(transparent)]
    InvalidConfig(#[from] jem_params::InvalidParam),

    /// A function was called with arguments that cannot work together.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// libtorch reported an error while building or transforming a tensor.
    #[error("libtorch: {0}")]
    Tensor(#[from] tch::TchError),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    /// Shorthand for a [`DataError::Format`] about `path`.
    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}
