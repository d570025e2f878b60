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

    /// A matrix whose shape is not the one required.
    #[error("`{arg}` has shape {shape:?}, but {expected:?} is required")]
    ShapeMismatch {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// The shape it must have.
        expected: Vec<usize>,
    },

    /// NaN or ±infinity where a finite number is required.
    #[error("`{arg}[{index}]` is {value}, which is not finite")]
    NonFinite {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// Position of the bad entry.
        index: usize,
        /// The bad value.
        value: f64,
    },

    /// NaN or ±infinity in a matrix where a finite number is required.
    #[error("`{arg}[{row}, {col}]` is {value}, which is not finite")]
    NonFiniteEntry {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// Row of the bad entry.
        row: usize,
        /// Column of the bad entry.
        col: usize,
        /// The bad value.
        value: f64,
    },

    /// A probability outside [0, 1].
    #[error("`{arg}[{index}]` is {value}, which is not a probability in [0, 1]")]
    NotAProbability {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// Position of the bad entry.
        index: usize,
        /// The bad value.
        value: f64,
    },

    /// A matrix entry outside [0, 1] where a probability is required.
    #[error("`{arg}[{row}, {col}]` is {value}, which is not a probability in [0, 1]")]
    NotAProbabilityEntry {
        /// The argument, as the public function names it.
        arg: &'static str,
        /// Row of the bad entry.
        row: usize,
        /// Column of the bad entry.
        col: usize,
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
        /// Position of the bad label.
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
