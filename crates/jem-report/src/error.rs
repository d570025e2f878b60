//! The crate's error type: every variant names the file.

use std::path::PathBuf;
use thiserror::Error;

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, ReportError>;

/// Why a report could not be read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not the report it should be: `field` is the JSON path of the offending value
    /// (`.` for the document itself), `message` serde's reason (e.g. "missing field `auroc`").
    #[error("{}: not a valid {what} at `{field}`: {message}", path.display())]
    Parse {
        /// The file (or `<string>`).
        path: PathBuf,
        /// The report type expected.
        what: &'static str,
        /// JSON path of the offending value, e.g. `[2].metrics`.
        field: String,
        /// serde's message.
        message: String,
    },
    /// A report could not be serialised (a map with non-string keys, for example).
    #[error("serialising {what}: {message}")]
    Serialise {
        /// The report type.
        what: &'static str,
        /// serde's message.
        message: String,
    },
}
