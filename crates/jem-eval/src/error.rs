//! The single error type of the crate.
//!
//! Every variant names the offending argument (as the public function calls
//! it) and the offending value, so that a message read in a log is enough to
//! find the bad input without a debugger.

use thiserror::Error;

/// Result alias used by every fallible function of the crate.
pub type Result<T> = std::result::Result<T, EvalError>;

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EvalError {
    /// An input has fewer samples than the metric needs (e.g. no samples at
    /// all, or a single sample for an unbiased covariance).
    #[error("`{arg}` has {got} sample(s), but at least {min} are needed")]
    TooFewSamples {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// How many there are.
        got: usize,
        /// How many are needed.
        min: usize,
    },

    /// A row width (number of classes, feature dimension) of zero.
    #[error("`{arg}` must be at least 1, got 0")]
    ZeroWidth {
        /// The argument, as the public function names it.
        arg: &'static str,
    },

    /// A flat row-major buffer whose length is not a multiple of its row width.
    #[error("`{arg}` has {len} values, which is not a multiple of the row width {width}")]
    RaggedRows {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// Length of the flat buffer.
        len: usize,
        /// The row width it should be a multiple of.
        width: usize,
    },

    /// NaN or ±infinity where a finite number is required.
    #[error("`{arg}[{index}]` is {value}, which is not finite")]
    NonFinite {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// Position of the bad entry (flat index for matrices).
        index: usize,
        /// The bad value.
        value: f64,
    },

    /// A probability outside [0, 1].
    #[error("`{arg}[{index}]` is {value}, which is not a probability in [0, 1]")]
    NotAProbability {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// Position of the bad entry (flat index for matrices).
        index: usize,
        /// The bad value.
        value: f64,
    },

    /// A probability row that does not sum to one (e.g. logits passed by mistake).
    #[error("row {row} of `{arg}` sums to {sum}, which differs from 1 by more than {tolerance}")]
    RowNotNormalized {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// Index of the row.
        row: usize,
        /// What the row sums to.
        sum: f64,
        /// The allowed deviation from 1.
        tolerance: f64,
    },

    /// A class label that does not index a column of the probability matrix.
    #[error("`{arg}[{index}]` is {label}, but there are only {num_classes} classes")]
    LabelOutOfRange {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// Position of the bad entry (flat index for matrices).
        index: usize,
        /// The label found.
        label: usize,
        /// Number of classes (columns).
        num_classes: usize,
    },

    /// Two inputs that must have the same length (or dimension) do not.
    #[error("`{arg_a}` has length {len_a} but `{arg_b}` has length {len_b}; they must match")]
    LengthMismatch {
        /// The first argument.
        arg_a: &'static str,
        /// Its length.
        len_a: usize,
        /// The second argument.
        arg_b: &'static str,
        /// Its length.
        len_b: usize,
    },

    /// A configuration value outside its valid range.
    #[error("`{arg}` = {value} is invalid: {reason}")]
    InvalidParameter {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// What the valid range is.
        reason: &'static str,
    },

    /// An iterative linear-algebra routine gave up.
    #[error("the symmetric eigendecomposition of {what} did not converge")]
    NoConvergence {
        /// The matrix being decomposed.
        what: &'static str,
    },

    /// The model or libtorch failed while computing scores (feature `torch`).
    #[cfg(feature = "torch")]
    #[error("model evaluation failed: {0}")]
    Model(String),
}

/// Returns the first non-finite value of `values` as an error naming `arg`.
pub(crate) fn check_finite<T: crate::Real>(arg: &'static str, values: &[T]) -> Result<()> {
    match values
        .iter()
        .map(|&v| v.into())
        .position(|v: f64| !v.is_finite())
    {
        None => Ok(()),
        Some(index) => Err(EvalError::NonFinite {
            arg,
            index,
            value: values[index].into(),
        }),
    }
}

/// Errors unless `values` holds at least `min` entries.
pub(crate) fn check_min_len(arg: &'static str, got: usize, min: usize) -> Result<()> {
    if got < min {
        Err(EvalError::TooFewSamples { arg, got, min })
    } else {
        Ok(())
    }
}
