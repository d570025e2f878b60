//! The crate error type.

use std::path::PathBuf;

use jem_params::InvalidParam;
use tch::{Kind, TchError};

/// Result alias used by every fallible function of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;

/// Everything that can go wrong while configuring, running, saving or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An operator of jem's C++ shim failed (see [`crate::ops`]).
    #[error("{op}: {message}")]
    Op {
        /// The operator.
        op: &'static str,
        /// libtorch's message.
        message: String,
    },

    /// A [`crate::WrnConfig`] field is outside its allowed range.
    #[error(transparent)]
    InvalidConfig(#[from] InvalidParam),

    /// The input batch does not have the shape `[N, C, H, W]` the network was built for.
    #[error("input shape mismatch: expected [N, {expected_channels}, H, W] (NCHW), got {got:?}")]
    InputShape {
        /// Number of input channels the network was configured with.
        expected_channels: i64,
        /// Shape of the tensor that was passed.
        got: Vec<i64>,
    },

    /// The input batch has a different element type than the parameters.
    #[error("input dtype mismatch: expected {expected:?}, got {got:?}")]
    InputKind {
        /// Kind of the network parameters.
        expected: Kind,
        /// Kind of the tensor that was passed.
        got: Kind,
    },

    /// Logits or labels with a shape or content the energy functions cannot use.
    #[error("invalid {what}: {reason}")]
    InvalidTensor {
        /// Which argument is wrong (`logits`, `labels`).
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// Reading, writing or parsing a checkpoint file failed.
    #[error("checkpoint {}: {source}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying libtorch / safetensors error.
        #[source]
        source: TchError,
    },

    /// A checkpoint does not hold exactly the tensors the model expects.
    #[error("checkpoint {} does not match the model: {}", path.display(), describe_mismatch(missing, unexpected, mismatched))]
    CheckpointMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// Model tensors absent from the file, with their expected shapes.
        missing: Vec<(String, Vec<i64>)>,
        /// File tensors the model has no variable for, with their shapes.
        unexpected: Vec<(String, Vec<i64>)>,
        /// Tensors present in both with different shapes: (name, expected, found).
        mismatched: Vec<(String, Vec<i64>, Vec<i64>)>,
    },

    /// A file written by PyTorch's `torch.save` could not be read, or does not hold what jem
    /// expects there (see [`crate::torch_pickle`] and [`crate::reference`]).
    #[error("{}: {reason}", path.display())]
    TorchFile {
        /// The `.pt` file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },

    /// Any other libtorch failure (device, dtype, out of memory, ...).
    #[error("libtorch error: {0}")]
    Torch(#[from] TchError),
}

pub(crate) fn describe_mismatch(
    missing: &[(String, Vec<i64>)],
    unexpected: &[(String, Vec<i64>)],
    mismatched: &[(String, Vec<i64>, Vec<i64>)],
) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        let names: Vec<String> = missing
            .iter()
            .map(|(n, s)| format!("`{n}` {s:?}"))
            .collect();
        parts.push(format!("missing tensors: {}", names.join(", ")));
    }
    if !unexpected.is_empty() {
        let names: Vec<String> = unexpected
            .iter()
            .map(|(n, s)| format!("`{n}` {s:?}"))
            .collect();
        parts.push(format!("unexpected tensors: {}", names.join(", ")));
    }
    if !mismatched.is_empty() {
        let names: Vec<String> = mismatched
            .iter()
            .map(|(n, want, got)| format!("`{n}` expected {want:?}, found {got:?}"))
            .collect();
        parts.push(format!("shape mismatches: {}", names.join(", ")));
    }
    parts.join("; ")
}
