//! OOD scores of a model (feature `torch`), checked against closed forms on a
//! linear "classifier" whose input gradient is known analytically.
#![cfg(feature = "torch")]

use jem_eval::model_eval::{ood_scores, predict_probs, OodScore, ScoreOptions};
use jem_model::JointEnergyModel;
use jem_sampler::{Pcg64, SgldConfig};
use rand::SeedableRng;
use tch::{Kind, Tensor};

/// logits = W · flatten(x): log p(x) = logsumexp(Wx) and
/// ∂ log p(x)/∂x = Σ_y softmax(Wx)_y W_y.
struct Linear {
    w: Tensor,
}

impl Linear {
    fn new() -> Self {
        let w = Tensor::from_slice(&[
            0.5f32, -1.0, 2.0, 0.0, 1.5, 0.25, -0.5, 1.0, -2.0, 0.75, 0.1, -0.3,
        ])
        .reshape([3, 4])
        .set_requires_grad(true);
        Linear { w }
    }
}

impl JointEnergyModel for Linear {
    fn logits(&self, x: &Tensor, _train: bool) -> jem_model::Result<Tensor> {
        Ok(x.flatten(1, -1).matmul(&self.w.tr()))
    }
}

fn images() -> Tensor {
    Tensor::from_slice(&[
        0.1f32, -0.2, 0.3, 0.9, -0.7, 0.0, 0.4, -1.0, 0.25, 0.5, -0.5, 0.8, 1.0, 0.2, -0.3, 0.6,
        0.0, 0.0, 0.0, 0.0,
    ])
    .reshape([5, 1, 2, 2])
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 + 1e-5 * b.abs()
}

fn hand(x: &[f32], w: &[f32]) -> (f64, f64, f64) {
    let logits: Vec<f64> = (0..3)
        .map(|y| (0..4).map(|i| f64::from(w[y * 4 + i] * x[i])).sum())
        .collect();
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
    let soft: Vec<f64> = logits.iter().map(|l| (l - lse).exp()).collect();
    let grad: Vec<f64> = (0..4)
        .map(|i| (0..3).map(|y| soft[y] * f64::from(w[y * 4 + i])).sum())
        .collect();
    let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
    (lse, soft.iter().cloned().fold(0.0, f64::max), -norm)
}

#[test]
fn scores_match_closed_forms_and_do_not_depend_on_batching() {
    let model = Linear::new();
    let x = images();
    let xs = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
    let w = Vec::<f32>::try_from(model.w.detach().flatten(0, -1)).unwrap();
    let mut rng = Pcg64::seed_from_u64(0);
    for batch_size in [2, 64] {
        let opts = ScoreOptions {
            batch_size,
            ..Default::default()
        };
        let px = ood_scores(&model, &x, OodScore::LogPx, &opts, &mut rng).unwrap();
        let py = ood_scores(&model, &x, OodScore::MaxPy, &opts, &mut rng).unwrap();
        let grad = ood_scores(&model, &x, OodScore::GradNorm, &opts, &mut rng).unwrap();
        assert_eq!(px.len(), 5);
        for i in 0..5 {
            let (lse, maxp, neg_norm) = hand(&xs[i * 4..i * 4 + 4], &w);
            assert!(close(px[i], lse), "px[{i}] {} vs {lse}", px[i]);
            assert!(close(py[i], maxp), "py[{i}] {} vs {maxp}", py[i]);
            assert!(
                close(grad[i], neg_norm),
                "pxgrad[{i}] {} vs {neg_norm}",
                grad[i]
            );
        }
    }
    // Scoring needs input gradients only: the parameters get none.
    assert!(!model.w.grad().defined());
}

#[test]
fn probabilities_are_softmax_rows() {
    let model = Linear::new();
    let mut rng = Pcg64::seed_from_u64(0);
    let probs = predict_probs(
        &model,
        &images(),
        &ScoreOptions {
            batch_size: 3,
            ..Default::default()
        },
        &mut rng,
    )
    .unwrap();
    assert_eq!(probs.dim(), (5, 3));
    for row in probs.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-5);
    }
    // The all-zero image gives uniform probabilities.
    for p in probs.row(4) {
        assert!((p - 1.0 / 3.0).abs() < 1e-6);
    }
}

#[test]
fn refinement_moves_inputs_uphill_in_log_px() {
    let model = Linear::new();
    let x = images();
    let mut rng = Pcg64::seed_from_u64(1);
    let plain = ood_scores(
        &model,
        &x,
        OodScore::LogPx,
        &ScoreOptions::default(),
        &mut rng,
    )
    .unwrap();
    let sgld = SgldConfig {
        steps: 5,
        step_size: 0.1,
        noise: 0.0,
        ..SgldConfig::default()
    };
    let opts = ScoreOptions {
        refine_steps: 3,
        sgld,
        ..Default::default()
    };
    let refined = ood_scores(&model, &x, OodScore::LogPx, &opts, &mut rng).unwrap();
    for (a, b) in plain.iter().zip(&refined) {
        assert!(b > a, "refinement did not raise log p(x): {a} -> {b}");
    }
}

#[test]
fn bad_inputs_are_errors() {
    let model = Linear::new();
    let mut rng = Pcg64::seed_from_u64(0);
    let flat = Tensor::zeros([4, 4], (Kind::Float, tch::Device::Cpu));
    let err = ood_scores(
        &model,
        &flat,
        OodScore::LogPx,
        &ScoreOptions::default(),
        &mut rng,
    )
    .unwrap_err();
    assert!(err.to_string().contains("[N, C, H, W]"), "{err}");
    let opts = ScoreOptions {
        batch_size: 0,
        ..Default::default()
    };
    let err = ood_scores(&model, &images(), OodScore::LogPx, &opts, &mut rng).unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
    assert!("nope"
        .parse::<OodScore>()
        .unwrap_err()
        .to_string()
        .contains("px, py or pxgrad"));
    assert_eq!("pxgrad".parse::<OodScore>().unwrap(), OodScore::GradNorm);
}
