//! Validated views of the inputs shared by several metrics.

use crate::error::{check_min_len, EvalError, Result};

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

/// How far a probability row may sum away from 1 before [`Probs::new`]
/// rejects it. Loose enough for `f32` softmax outputs over thousands of
/// classes, tight enough to catch logits or unnormalised scores.
pub const ROW_SUM_TOLERANCE: f64 = 1e-3;

/// A validated, borrowed `n × K` row-major matrix of class probabilities
/// (row `i` is `p(y | x_i)`).
///
/// Construction checks that the buffer is a whole number of rows, that every
/// entry is a finite number in `[0, 1]` and that every row sums to 1 within
/// [`ROW_SUM_TOLERANCE`]; the metrics can then rely on it.
#[derive(Debug, Clone, Copy)]
pub struct Probs<'a, T: Real = f64> {
    data: &'a [T],
    num_classes: usize,
}

impl<'a, T: Real> Probs<'a, T> {
    /// Wraps `data` (length `n · num_classes`, row-major) after validating it.
    ///
    /// Errors name the argument `probs` and the flat index or row at fault.
    pub fn new(data: &'a [T], num_classes: usize) -> Result<Self> {
        if num_classes == 0 {
            return Err(EvalError::ZeroWidth { arg: "num_classes" });
        }
        if data.len() % num_classes != 0 {
            return Err(EvalError::RaggedRows {
                arg: "probs",
                len: data.len(),
                width: num_classes,
            });
        }
        check_min_len("probs", data.len() / num_classes, 1)?;
        for (index, &v) in data.iter().enumerate() {
            let v: f64 = v.into();
            if !v.is_finite() {
                return Err(EvalError::NonFinite {
                    arg: "probs",
                    index,
                    value: v,
                });
            }
            if !(0.0..=1.0).contains(&v) {
                return Err(EvalError::NotAProbability {
                    arg: "probs",
                    index,
                    value: v,
                });
            }
        }
        for (row, values) in data.chunks_exact(num_classes).enumerate() {
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
        Ok(Self { data, num_classes })
    }

    /// Number of samples (rows), at least 1.
    pub fn num_samples(&self) -> usize {
        self.data.len() / self.num_classes
    }

    /// Number of classes (columns), at least 1.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The probabilities of sample `i`. Panics if `i >= num_samples()`.
    pub fn row(&self, i: usize) -> &'a [T] {
        &self.data[i * self.num_classes..(i + 1) * self.num_classes]
    }

    /// Iterates over the rows in sample order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &'a [T]> + 'a {
        self.data.chunks_exact(self.num_classes)
    }

    /// The underlying row-major buffer.
    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }

    /// `(predicted class, confidence)` of sample `i`: the arg-max and the max
    /// of its row. Ties go to the lowest class index, like `numpy.argmax`.
    pub fn prediction(&self, i: usize) -> (usize, f64) {
        argmax(self.row(i))
    }

    /// Checks that `labels` has one in-range label per row.
    pub(crate) fn check_labels(&self, labels: &[usize]) -> Result<()> {
        if labels.len() != self.num_samples() {
            return Err(EvalError::LengthMismatch {
                arg_a: "labels",
                len_a: labels.len(),
                arg_b: "probs (rows)",
                len_b: self.num_samples(),
            });
        }
        match labels.iter().position(|&l| l >= self.num_classes) {
            None => Ok(()),
            Some(index) => Err(EvalError::LabelOutOfRange {
                arg: "labels",
                index,
                label: labels[index],
                num_classes: self.num_classes,
            }),
        }
    }
}

fn argmax<T: Real>(row: &[T]) -> (usize, f64) {
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

    #[test]
    fn accepts_valid_f32_and_f64() {
        let p64 = Probs::new(&[0.2, 0.8, 1.0, 0.0], 2).unwrap();
        assert_eq!(p64.num_samples(), 2);
        assert_eq!(p64.prediction(0), (1, 0.8));
        let p32 = Probs::new(&[0.5f32, 0.5], 2).unwrap();
        assert_eq!(p32.prediction(0), (0, 0.5));
    }

    #[test]
    fn rejects_bad_shapes_and_values() {
        assert_eq!(
            Probs::<f64>::new(&[0.5, 0.5], 0).unwrap_err(),
            EvalError::ZeroWidth { arg: "num_classes" }
        );
        assert!(matches!(
            Probs::new(&[0.5, 0.5, 1.0], 2),
            Err(EvalError::RaggedRows {
                len: 3,
                width: 2,
                ..
            })
        ));
        assert!(matches!(
            Probs::<f64>::new(&[], 2),
            Err(EvalError::TooFewSamples { got: 0, .. })
        ));
        assert!(matches!(
            Probs::new(&[0.5, f64::NAN], 2),
            Err(EvalError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            Probs::new(&[1.5, -0.5], 2),
            Err(EvalError::NotAProbability { index: 0, .. })
        ));
        let err = Probs::new(&[0.5, 0.5, 0.2, 0.2], 2).unwrap_err();
        assert!(matches!(err, EvalError::RowNotNormalized { row: 1, .. }));
        assert!(err.to_string().contains("row 1 of `probs`"), "{err}");
    }

    #[test]
    fn label_checks_name_the_index() {
        let p = Probs::new(&[0.5, 0.5, 0.1, 0.9], 2).unwrap();
        assert!(p.check_labels(&[0, 1]).is_ok());
        assert!(matches!(
            p.check_labels(&[0]),
            Err(EvalError::LengthMismatch {
                len_a: 1,
                len_b: 2,
                ..
            })
        ));
        assert_eq!(
            p.check_labels(&[0, 2]).unwrap_err().to_string(),
            "`labels[1]` is 2, but there are only 2 classes"
        );
    }
}
