//! The energy-based view of a classifier (JEM, Grathwohl et al. 2020).
//!
//! With logits f(x) over C classes, JEM defines p(x, y) ∝ exp(f(x)\[y\]), hence
//! log p(x, y) = f(x)\[y\] − log Z, log p(x) = logsumexp_y f(x)\[y\] − log Z,
//! p(y | x) = softmax(f(x)) and energy E(x) = −logsumexp_y f(x)\[y\].
//! Everything here is unnormalised (log Z is dropped), which is all SGLD and the
//! contrastive p(x) loss need.
//!
//! The free functions work on a logits tensor `[N, C]` so samplers, evaluators and
//! attacks can reuse them on any classifier's output.

use tch::{Kind, Tensor};

use crate::error::{ModelError, Result};

/// A classifier read as an energy-based model of x and (x, y).
///
/// Inputs are NCHW `f32` batches scaled to [-1, 1]. `train` selects training
/// behaviour (dropout, batch statistics) exactly as in [`tch::nn::ModuleT`].
pub trait JointEnergyModel {
    /// Class logits f(x), `[N, C]`.
    fn logits(&self, x: &Tensor, train: bool) -> Result<Tensor>;

    /// Unnormalised log p(x), `[N]`: logsumexp of the logits, or the separate
    /// energy head for unconditional models.
    fn log_px(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        log_px_from_logits(&self.logits(x, train)?)
    }

    /// Logits and log p(x) from a single forward pass.
    fn logits_and_log_px(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let logits = self.logits(x, train)?;
        let log_px = log_px_from_logits(&logits)?;
        Ok((logits, log_px))
    }

    /// Unnormalised log p(x, y) = f(x)\[y\], `[N]`; `y` holds one class index per sample.
    fn log_pxy(&self, x: &Tensor, y: &Tensor, train: bool) -> Result<Tensor> {
        log_pxy_from_logits(&self.logits(x, train)?, y)
    }

    /// Normalised log p(y | x) = log_softmax(f(x)), `[N, C]`.
    fn log_py_given_x(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        log_py_given_x_from_logits(&self.logits(x, train)?)
    }

    /// Energy E(x) = −log p(x) (unnormalised), `[N]`.
    fn energy(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.log_px(x, train)?.f_neg()?)
    }
}

fn check_logits(logits: &Tensor) -> Result<(i64, i64)> {
    match logits.size()[..] {
        [n, c] if c >= 1 => Ok((n, c)),
        ref other => Err(ModelError::InvalidTensor {
            what: "logits",
            reason: format!("expected shape [N, C] with C >= 1, got {other:?}"),
        }),
    }
}

/// log p(x) = logsumexp over classes, `[N]`.
pub fn log_px_from_logits(logits: &Tensor) -> Result<Tensor> {
    check_logits(logits)?;
    Ok(logits.f_logsumexp([1], false)?)
}

/// E(x) = −logsumexp over classes, `[N]`.
pub fn energy_from_logits(logits: &Tensor) -> Result<Tensor> {
    Ok(log_px_from_logits(logits)?.f_neg()?)
}

/// log p(y | x) = log_softmax over classes, `[N, C]`.
pub fn log_py_given_x_from_logits(logits: &Tensor) -> Result<Tensor> {
    check_logits(logits)?;
    Ok(logits.f_log_softmax(1, None)?)
}

/// p(y | x) = softmax over classes, `[N, C]`.
pub fn py_given_x_from_logits(logits: &Tensor) -> Result<Tensor> {
    check_logits(logits)?;
    Ok(logits.f_softmax(1, None)?)
}

/// log p(x, y) = f(x)\[y\], `[N]` (the reference returns `[N, 1]`; the trailing axis is dropped).
///
/// `y` must be a 1-D integer tensor of length N with values in `0..C`; it is checked
/// up front because an out-of-range index would otherwise surface as an opaque
/// libtorch error (or a device-side assert on CUDA).
pub fn log_pxy_from_logits(logits: &Tensor, y: &Tensor) -> Result<Tensor> {
    let (n, c) = check_logits(logits)?;
    let labels_err = |reason: String| ModelError::InvalidTensor {
        what: "labels",
        reason,
    };
    if y.size() != [n] {
        return Err(labels_err(format!(
            "expected shape [{n}] (one label per logits row), got {:?}",
            y.size()
        )));
    }
    if !matches!(
        y.kind(),
        Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8
    ) {
        return Err(labels_err(format!(
            "expected an integer tensor, got {:?}",
            y.kind()
        )));
    }
    let y = y.f_to_kind(Kind::Int64)?.f_to_device(logits.device())?;
    if n > 0 {
        let lo = y.f_min()?.f_int64_value(&[])?;
        let hi = y.f_max()?.f_int64_value(&[])?;
        if lo < 0 || hi >= c {
            return Err(labels_err(format!(
                "values must lie in 0..{c}, found range [{lo}, {hi}]"
            )));
        }
    }
    Ok(logits
        .f_gather(1, &y.f_unsqueeze(1)?, false)?
        .f_squeeze_dim(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn logits() -> Tensor {
        Tensor::from_slice(&[1.0f32, 2.0, 3.0, -1.0, 0.0, 100.0]).view([2, 3])
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn log_px_matches_hand_computed_logsumexp() {
        let got = values(&log_px_from_logits(&logits()).unwrap());
        let row0 = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        // The large logit would overflow a naive exp: the stable form is needed.
        let row1 = 100.0 + ((-101f64).exp() + (-100f64).exp() + 1.0).ln();
        assert_relative_eq!(got[0] as f64, row0, max_relative = 1e-6);
        assert_relative_eq!(got[1] as f64, row1, max_relative = 1e-6);
        let e = values(&energy_from_logits(&logits()).unwrap());
        assert_relative_eq!(e[0] as f64, -row0, max_relative = 1e-6);
    }

    #[test]
    fn log_pxy_gathers_the_label_logit() {
        let y = Tensor::from_slice(&[2i64, 0]);
        assert_eq!(
            values(&log_pxy_from_logits(&logits(), &y).unwrap()),
            vec![3.0, -1.0]
        );
        let y32 = Tensor::from_slice(&[1i32, 2]);
        assert_eq!(
            values(&log_pxy_from_logits(&logits(), &y32).unwrap()),
            vec![2.0, 100.0]
        );
    }

    #[test]
    fn log_pxy_rejects_bad_labels() {
        let cases = [
            (Tensor::from_slice(&[3i64, 0]), "0..3"),
            (Tensor::from_slice(&[-1i64, 0]), "0..3"),
            (Tensor::from_slice(&[0i64]), "[2]"),
            (Tensor::from_slice(&[0.0f32, 1.0]), "integer"),
        ];
        for (y, needle) in cases {
            let msg = log_pxy_from_logits(&logits(), &y).unwrap_err().to_string();
            assert!(msg.contains("labels") && msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn softmax_views_agree() {
        let p = py_given_x_from_logits(&logits()).unwrap();
        let logp = log_py_given_x_from_logits(&logits()).unwrap();
        for (a, b) in values(&p).iter().zip(values(&logp.exp())) {
            assert_relative_eq!(*a, b, max_relative = 1e-6, epsilon = 1e-12);
        }
        for s in values(&p.sum_dim_intlist([1i64].as_slice(), false, Kind::Float)) {
            assert_relative_eq!(s, 1.0, max_relative = 1e-6);
        }
    }

    #[test]
    fn rejects_non_matrix_logits() {
        let msg = log_px_from_logits(&Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("logits") && msg.contains("[3]"), "{msg}");
    }
}
