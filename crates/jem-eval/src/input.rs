//! The element types accepted by the metrics, and the checks every metric
//! runs on its ndarray inputs before computing anything.

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{EvalError, Result};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The floating-point element types accepted as input (`f32` and `f64`).
///
/// Models usually hand out `f32`; all arithmetic in this crate is done in
/// `f64` regardless, so accepting both avoids a copy at the call site.
pub trait Real: sealed::Sealed + Copy + Into<f64> + 'static {}
impl Real for f32 {}
impl Real for f64 {}

/// How far a probability row may sum away from 1 before a metric rejects
/// it. Loose enough for `f32` softmax outputs over thousands of classes,
/// tight enough to catch logits or unnormalised scores.
pub const ROW_SUM_TOLERANCE: f64 = 1e-3;

/// Errors unless `got >= min`.
pub(crate) fn check_min_len(arg: &'static str, got: usize, min: usize) -> Result<()> {
    if got < min {
        Err(EvalError::TooFewSamples { arg, got, min })
    } else {
        Ok(())
    }
}

/// The first non-finite value of `values` as an error naming `arg`.
pub(crate) fn check_finite<T: Real>(arg: &'static str, values: ArrayView1<'_, T>) -> Result<()> {
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

/// The first non-finite entry of the matrix `values` as an error naming `arg`.
pub(crate) fn check_finite_matrix<T: Real>(
    arg: &'static str,
    values: ArrayView2<'_, T>,
) -> Result<()> {
    for ((row, col), &v) in values.indexed_iter() {
        let value: f64 = v.into();
        if !value.is_finite() {
            return Err(EvalError::NonFiniteEntry {
                arg,
                row,
                col,
                value,
            });
        }
    }
    Ok(())
}

/// Checks that `probs` is an `n × K` matrix of class probabilities: `n, K >= 1`,
/// every entry a finite number in `[0, 1]`, every row summing to 1 within
/// [`ROW_SUM_TOLERANCE`]. Errors name the argument `probs` and the entry or row.
pub(crate) fn check_probs<T: Real>(probs: ArrayView2<'_, T>) -> Result<()> {
    if probs.ncols() == 0 {
        return Err(EvalError::ZeroWidth {
            arg: "probs (columns)",
        });
    }
    check_min_len("probs", probs.nrows(), 1)?;
    check_finite_matrix("probs", probs)?;
    for ((row, col), &v) in probs.indexed_iter() {
        let value: f64 = v.into();
        if !(0.0..=1.0).contains(&value) {
            return Err(EvalError::NotAProbabilityEntry {
                arg: "probs",
                row,
                col,
                value,
            });
        }
    }
    for (row, values) in probs.rows().into_iter().enumerate() {
        let sum: f64 = values.iter().map(|&v| v.into()).sum();
        if (sum - 1.0).abs() > ROW_SUM_TOLERANCE {
            return Err(EvalError::RowNotNormalized {
                arg: "probs",
                row,
                sum,
                tolerance: ROW_SUM_TOLERANCE,
            });
        }
    }
    Ok(())
}

/// Checks that `labels` has one label in `0..probs.ncols()` per row of `probs`.
pub(crate) fn check_labels<T>(
    probs: ArrayView2<'_, T>,
    labels: ArrayView1<'_, usize>,
) -> Result<()> {
    if labels.len() != probs.nrows() {
        return Err(EvalError::LengthMismatch {
            arg_a: "labels",
            len_a: labels.len(),
            arg_b: "probs (rows)",
            len_b: probs.nrows(),
        });
    }
    match labels.iter().position(|&l| l >= probs.ncols()) {
        None => Ok(()),
        Some(index) => Err(EvalError::LabelOutOfRange {
            arg: "labels",
            index,
            label: labels[index],
            num_classes: probs.ncols(),
        }),
    }
}

/// `(arg-max, max)` of a non-empty row; ties go to the lowest index, like
/// `numpy.argmax`.
pub(crate) fn argmax<T: Real>(row: ArrayView1<'_, T>) -> (usize, f64) {
    let mut best = (0, row[0].into());
    for (k, &v) in row.iter().enumerate().skip(1) {
        let v: f64 = v.into();
        // Strict comparison keeps the first maximum on ties.
        if v > best.1 {
            best = (k, v);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn accepts_valid_f32_and_f64() {
        let p64 = array![[0.2, 0.8], [1.0, 0.0]];
        assert!(check_probs(p64.view()).is_ok());
        assert_eq!(argmax(p64.row(0)), (1, 0.8));
        let p32 = array![[0.5f32, 0.5]];
        assert!(check_probs(p32.view()).is_ok());
        assert_eq!(argmax(p32.row(0)), (0, 0.5));
    }

    #[test]
    fn rejects_bad_shapes_and_values() {
        let no_columns = Array2::<f64>::zeros((2, 0));
        assert_eq!(
            check_probs(no_columns.view()).unwrap_err(),
            EvalError::ZeroWidth {
                arg: "probs (columns)"
            }
        );
        let no_rows = Array2::<f64>::zeros((0, 2));
        assert!(matches!(
            check_probs(no_rows.view()),
            Err(EvalError::TooFewSamples { got: 0, .. })
        ));
        let err = check_probs(array![[0.5, 0.5], [0.5, f64::NAN]].view()).unwrap_err();
        assert_eq!(err.to_string(), "`probs[1, 1]` is NaN, which is not finite");
        assert!(matches!(
            check_probs(array![[1.5, -0.5]].view()),
            Err(EvalError::NotAProbabilityEntry { row: 0, col: 0, .. })
        ));
        let err = check_probs(array![[0.5, 0.5], [0.2, 0.2]].view()).unwrap_err();
        assert!(matches!(err, EvalError::RowNotNormalized { row: 1, .. }));
        assert!(err.to_string().contains("row 1 of `probs`"), "{err}");
    }

    #[test]
    fn label_checks_name_the_index() {
        let p = array![[0.5, 0.5], [0.1, 0.9]];
        assert!(check_labels(p.view(), array![0, 1].view()).is_ok());
        assert!(matches!(
            check_labels(p.view(), array![0].view()),
            Err(EvalError::LengthMismatch {
                len_a: 1,
                len_b: 2,
                ..
            })
        ));
        assert_eq!(
            check_labels(p.view(), array![0, 2].view())
                .unwrap_err()
                .to_string(),
            "`labels[1]` is 2, but there are only 2 classes"
        );
    }

    #[test]
    fn works_on_non_contiguous_views() {
        // The transpose of a row-major matrix: a column-major view.
        let tall = array![[0.3, 1.0], [0.7, 0.0]];
        let view = tall.t();
        assert!(check_probs(view).is_ok());
        assert_eq!(argmax(view.row(0)), (1, 0.7));
    }
}
