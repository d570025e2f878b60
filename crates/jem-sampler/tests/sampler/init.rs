//! The informative chain start: class-conditional Gaussians (JEM++), as probabilistic PCA.

use jem_sampler::{
    BufferConfig, BufferState, ChainStart, ClassGaussians, InitKind, ReplayBuffer, SampleSource,
    SamplerError, ShortRun,
};
use rand::Rng;
use rand_distr::StandardNormal;
use tch::{Device, Kind, Tensor};

use crate::{rng, to_vec1, to_vec2};

/// `n` rows per class from independent Gaussians with the given per-class means and standard
/// deviations (3 dimensions), drawn in Rust so the test data is independent of the code under test.
fn data(means: &[[f64; 3]], stds: &[[f64; 3]], n: usize, seed: u64) -> (Tensor, Vec<i64>) {
    let mut r = rng(seed);
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for (c, (m, s)) in means.iter().zip(stds).enumerate() {
        for _ in 0..n {
            for j in 0..3 {
                let z: f64 = r.sample(StandardNormal);
                values.push((m[j] + s[j] * z) as f32);
            }
            labels.push(c as i64);
        }
    }
    let x = Tensor::from_slice(&values).reshape([(means.len() * n) as i64, 3]);
    (x, labels)
}

fn covariance(x: &Tensor) -> Vec<Vec<f64>> {
    let x = x.to_kind(Kind::Double);
    let c = &x - x.mean_dim(0, true, Kind::Double);
    to_vec2(&(c.transpose(0, 1).matmul(&c) / (x.size()[0] - 1) as f64))
}

#[test]
fn full_covariance_fit_reproduces_each_class() {
    let means = [[-0.5, 0.0, 0.3], [0.4, -0.2, 0.0]];
    let stds = [[0.10, 0.05, 0.02], [0.03, 0.08, 0.06]];
    let (x, y) = data(&means, &stds, 4000, 1);
    let g = ClassGaussians::fit(&x, &y, 2, None).unwrap();
    assert_eq!(g.rank(), 3);
    assert_eq!(g.sample_shape(), &[3]);
    let fitted = to_vec2(&g.means().unwrap());
    for c in 0..2 {
        // Standard error of a mean of 4000 draws with sd <= 0.1 is <= 0.0016.
        for j in 0..3 {
            assert!((fitted[c][j] - means[c][j]).abs() < 0.006, "{fitted:?}");
        }
        let samples = g
            .sample(&vec![c as i64; 20000], Device::Cpu, &mut rng(2))
            .unwrap();
        assert_eq!(samples.size(), vec![20000, 3]);
        let cov = covariance(&samples);
        for j in 0..3 {
            let var = stds[c][j] * stds[c][j];
            // Relative sd of a variance estimate from n draws is sqrt(2/n); two fits stack up.
            assert!(
                (cov[j][j] - var).abs() < 0.08 * var,
                "class {c} dim {j}: {cov:?}"
            );
            for k in 0..3 {
                if k != j {
                    assert!(cov[j][k].abs() < 0.1 * stds[c][j] * stds[c][k], "{cov:?}");
                }
            }
        }
    }
}

#[test]
fn low_rank_fit_is_probabilistic_pca() {
    // Variances 0.04, 0.0025, 0.0009: rank 1 keeps the first; the residual variance is the mean
    // of the other two, (0.0025 + 0.0009) / 2 = 0.0017, spread isotropically.
    let (x, y) = data(&[[0.0, 0.0, 0.0]], &[[0.2, 0.05, 0.03]], 8000, 3);
    let g = ClassGaussians::fit(&x, &y, 1, Some(1)).unwrap();
    assert_eq!(g.rank(), 1);
    let s = to_vec1(g.residual_std())[0];
    assert!(
        (s * s - 0.0017).abs() < 0.0002,
        "residual variance {}",
        s * s
    );
    let cov = covariance(&g.sample(&vec![0; 30000], Device::Cpu, &mut rng(4)).unwrap());
    assert!((cov[0][0] - (0.04)).abs() < 0.003, "{cov:?}");
    assert!((cov[1][1] - 0.0017).abs() < 0.0002, "{cov:?}");
    assert!((cov[2][2] - 0.0017).abs() < 0.0002, "{cov:?}");
}

#[test]
fn samples_stay_in_the_data_range() {
    let (x, y) = data(&[[0.9, -0.9, 0.0]], &[[0.3, 0.3, 0.3]], 500, 5);
    let g = ClassGaussians::fit(&x, &y, 1, None).unwrap();
    let s = g.sample(&vec![0; 2000], Device::Cpu, &mut rng(6)).unwrap();
    assert!(s.max().double_value(&[]) <= 1.0);
    assert!(s.min().double_value(&[]) >= -1.0);
    // The clamp binds: a mean of 0.9 with sd 0.3 exceeds 1 a third of the time.
    let at_top = s.select(1, 0).eq(1.0).sum(Kind::Int64).int64_value(&[]);
    assert!(at_top > 400, "{at_top}");
}

#[test]
fn bad_fits_name_the_problem() {
    let (x, y) = data(&[[0.0; 3], [0.5; 3]], &[[0.1; 3], [0.1; 3]], 10, 7);
    let mut one = y.clone();
    one[..19].fill(0); // class 1 keeps a single example
    let err = ClassGaussians::fit(&x, &one, 2, None).unwrap_err();
    assert!(err.to_string().contains("class 1 has 1 example"), "{err}");
    let err = ClassGaussians::fit(&x, &y, 1, None).unwrap_err();
    assert!(err.to_string().contains("label 1 is outside 0..1"), "{err}");
    assert!(matches!(
        ClassGaussians::fit(&x, &y[..5], 2, None),
        Err(SamplerError::ShapeMismatch { .. })
    ));
    assert!(ClassGaussians::fit(&x, &y, 2, Some(0)).is_err());
    let g = ClassGaussians::fit(&x, &y, 2, None).unwrap();
    let err = g.sample(&[0, 2], Device::Cpu, &mut rng(0)).unwrap_err();
    assert!(err.to_string().contains("label 2"), "{err}");
    let cfg = BufferConfig {
        init_rank: Some(0),
        ..BufferConfig::default()
    };
    assert!(cfg.check().unwrap_err().to_string().contains("init_rank"));
}

fn two_classes() -> ClassGaussians {
    let (x, y) = data(&[[-0.6; 3], [0.6; 3]], &[[0.02; 3], [0.02; 3]], 200, 8);
    ClassGaussians::fit(&x, &y, 2, Some(2)).unwrap()
}

#[test]
fn class_conditional_buffer_starts_each_slice_at_its_class() {
    let cfg = BufferConfig {
        size: 100,
        reinit_prob: 1.0,
        class_conditional: true,
        init: InitKind::Gaussian,
        ..BufferConfig::default()
    };
    let start = ChainStart::Gaussians(two_classes());
    let mut buf =
        ReplayBuffer::with_start(&cfg, &[3], Some(2), start, Device::Cpu, &mut rng(9)).unwrap();
    let rows = to_vec2(buf.samples());
    for (slot, row) in rows.iter().enumerate() {
        let mean = if slot < 50 { -0.6 } else { 0.6 };
        assert!(
            row.iter().all(|v| (v - mean).abs() < 0.15),
            "slot {slot}: {row:?}"
        );
    }
    // Re-initialised chains (ρ = 1) come from their class's Gaussian, not from U(-1, 1).
    let batch = buf.draw(64, None, &mut rng(10)).unwrap();
    assert_eq!(batch.reinit_count(), 64);
    let labels = to_vec1(batch.labels.as_ref().unwrap());
    for (row, y) in to_vec2(&batch.x0).iter().zip(labels) {
        let mean = if y == 0.0 { -0.6 } else { 0.6 };
        assert!(
            row.iter().all(|v| (v - mean).abs() < 0.15),
            "{row:?} for class {y}"
        );
    }
}

#[test]
fn gaussian_start_survives_a_state_round_trip() {
    let cfg = BufferConfig {
        size: 10,
        reinit_prob: 1.0,
        ..BufferConfig::default()
    };
    let start = ChainStart::Gaussians(two_classes());
    let buf = ReplayBuffer::with_start(&cfg, &[3], None, start, Device::Cpu, &mut rng(11)).unwrap();
    let named = buf.state().unwrap().to_named_tensors("buffer_").unwrap();
    let state = BufferState::from_named_tensors(&named, "buffer_").unwrap();
    assert!(state.start.gaussians().is_some());
    let mut restored = ReplayBuffer::from_state(state, Device::Cpu).unwrap();
    let mut original = ReplayBuffer::from_state(buf.state().unwrap(), Device::Cpu).unwrap();
    let a = original.draw(8, None, &mut rng(12)).unwrap();
    let b = restored.draw(8, None, &mut rng(12)).unwrap();
    assert!(a.x0.equal(&b.x0));
    // Unconditional: each fresh chain picks a class, so both clusters appear.
    let rows = to_vec2(&a.x0);
    assert!(rows.iter().any(|r| r[0] < 0.0) && rows.iter().any(|r| r[0] > 0.0));
    // A uniform start stores no Gaussian entries and restores as uniform.
    let plain = ReplayBuffer::new(&cfg, &[3], None, Device::Cpu, &mut rng(0)).unwrap();
    let named = plain.state().unwrap().to_named_tensors("").unwrap();
    assert!(named.iter().all(|(n, _)| !n.starts_with("init_")));
    let state = BufferState::from_named_tensors(&named, "").unwrap();
    assert!(state.start.gaussians().is_none());
}

#[test]
fn short_run_chains_start_from_the_gaussians() {
    let mut short = ShortRun::new(&[3], Some(2), Device::Cpu)
        .unwrap()
        .with_start(ChainStart::Gaussians(two_classes()));
    let batch = short.draw(32, Some(&[1; 32]), &mut rng(13)).unwrap();
    assert!(to_vec2(&batch.x0)
        .iter()
        .all(|r| r.iter().all(|v| (v - 0.6).abs() < 0.15)));
}

#[test]
fn oversized_buffers_are_refused_before_allocating() {
    let cfg = BufferConfig {
        size: 9_000_000,
        ..BufferConfig::default()
    };
    let err = ReplayBuffer::new(&cfg, &[3, 32, 32], None, Device::Cpu, &mut rng(0)).unwrap_err();
    assert!(err.to_string().contains("`sampler.buffer.size`"), "{err}");
    let cfg = BufferConfig {
        size: 20_000_000,
        ..BufferConfig::default()
    };
    assert!(cfg.check().unwrap_err().to_string().contains("size"));
}

#[test]
fn mixture_start_draws_noise_with_its_fraction_and_survives_a_round_trip() {
    // The Gaussians sit at ±0.6 with sd ~0.05: a row with any |v - mean| > 0.3 came from the
    // noise (U(-1, 1) leaves all three coordinates within 0.3 of the mean with probability
    // 0.3³ = 2.7%).
    let start = ChainStart::Mixture {
        gaussians: two_classes(),
        uniform_fraction: 0.3,
    };
    assert_eq!(start.uniform_fraction(), 0.3);
    let n = 4000;
    let x = start
        .draw(n, &[3], Some(&vec![1; n]), Device::Cpu, &mut rng(21))
        .unwrap();
    let noisy = to_vec2(&x)
        .iter()
        .filter(|r| r.iter().any(|v| (v - 0.6).abs() > 0.3))
        .count();
    // Expected share 0.3 × (1 - 0.027) = 0.292; binomial sd at n = 4000 is 0.0072.
    let share = noisy as f64 / n as f64;
    assert!((share - 0.292).abs() < 0.03, "noise share {share}");
    // Stored with the buffer and restored as the same mixture, drawing the same chains.
    let cfg = BufferConfig {
        size: 50,
        reinit_prob: 1.0,
        init: InitKind::Gaussian,
        init_uniform_fraction: 0.3,
        ..BufferConfig::default()
    };
    cfg.check().unwrap();
    let buf = ReplayBuffer::with_start(&cfg, &[3], None, start, Device::Cpu, &mut rng(22)).unwrap();
    let named = buf.state().unwrap().to_named_tensors("b_").unwrap();
    let state = BufferState::from_named_tensors(&named, "b_").unwrap();
    assert_eq!(state.start.uniform_fraction(), 0.3);
    let mut restored = ReplayBuffer::from_state(state, Device::Cpu).unwrap();
    let mut original = ReplayBuffer::from_state(buf.state().unwrap(), Device::Cpu).unwrap();
    let a = original.draw(16, None, &mut rng(23)).unwrap();
    let b = restored.draw(16, None, &mut rng(23)).unwrap();
    assert!(a.x0.equal(&b.x0));
    // The Gaussians alone store no fraction and restore as the Gaussians.
    let plain = ReplayBuffer::with_start(
        &cfg,
        &[3],
        None,
        ChainStart::Gaussians(two_classes()),
        Device::Cpu,
        &mut rng(24),
    )
    .unwrap();
    let named = plain.state().unwrap().to_named_tensors("").unwrap();
    let state = BufferState::from_named_tensors(&named, "").unwrap();
    assert_eq!(state.start.uniform_fraction(), 0.0);
}

#[test]
fn uniform_fraction_is_checked() {
    let bad = |f: f64, init: InitKind| {
        BufferConfig {
            init,
            init_uniform_fraction: f,
            ..BufferConfig::default()
        }
        .check()
        .unwrap_err()
        .to_string()
    };
    assert!(bad(1.5, InitKind::Gaussian).contains("init_uniform_fraction"));
    assert!(bad(f64::NAN, InitKind::Gaussian).contains("init_uniform_fraction"));
    assert!(bad(0.2, InitKind::Uniform).contains("init_uniform_fraction"));
    let ok = BufferConfig {
        init: InitKind::Gaussian,
        init_uniform_fraction: 1.0,
        ..BufferConfig::default()
    };
    ok.check().unwrap();
}
