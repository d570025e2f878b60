use jem_sampler::{
    sample, BufferConfig, BufferState, ChainInit, Energy, FromLogits, ReplayBuffer, SampleSource,
    SamplerError, SgldConfig, ShortRun,
};
use proptest::prelude::*;
use statrs::distribution::{Binomial, DiscreteCDF};
use tch::{Device, Kind, Tensor};

use crate::{rng, Gaussian};

fn buffer(
    size: usize,
    reinit_prob: f64,
    n_classes: Option<i64>,
    class_conditional: bool,
    seed: u64,
) -> ReplayBuffer {
    let cfg = BufferConfig {
        size,
        reinit_prob,
        class_conditional,
        ..BufferConfig::default()
    };
    ReplayBuffer::new(&cfg, &[3], n_classes, Device::Cpu, &mut rng(seed)).unwrap()
}

#[test]
fn fresh_buffer_is_uniform_noise() {
    let buf = buffer(2000, 0.05, None, false, 0);
    assert_eq!(buf.samples().size(), vec![2000, 3]);
    assert_eq!(buf.samples().kind(), Kind::Float);
    let (min, max) = (
        buf.samples().min().double_value(&[]),
        buf.samples().max().double_value(&[]),
    );
    assert!(
        (-1.0..-0.99).contains(&min) && (0.99..1.0).contains(&max),
        "[{min}, {max}]"
    );
    let mean = buf.samples().mean(Kind::Double).double_value(&[]);
    assert!(mean.abs() < 0.05, "{mean}"); // sd of the mean = sqrt(1/3 / 6000) ≈ 0.0075
    assert_eq!(buf.age_stats().max, 0);
}

#[test]
fn reinitialisation_fraction_matches_rho() {
    let rho = 0.05;
    let (batches, n) = (100usize, 200usize);
    let buf = buffer(1000, rho, None, false, 1);
    let mut r = rng(2);
    let mut fresh = 0u64;
    for _ in 0..batches {
        let batch = buf.sample_batch(n, &mut r).unwrap();
        fresh += batch.reinit_count() as u64;
        // Kept chains are the slots' contents; fresh ones are new noise in [-1, 1).
        for (i, (&slot, &re)) in batch.indices.iter().zip(&batch.reinitialised).enumerate() {
            let row = batch.x0.get(i as i64);
            if re {
                assert!(!row.equal(&buf.samples().get(slot)));
                assert!(row.abs().max().double_value(&[]) <= 1.0);
            } else {
                assert!(row.equal(&buf.samples().get(slot)));
            }
        }
    }
    let draws = (batches * n) as u64;
    let binomial = Binomial::new(rho, draws).unwrap();
    let delta = 1e-6;
    let (lo, hi) = (
        binomial.inverse_cdf(delta / 2.0),
        binomial.inverse_cdf(1.0 - delta / 2.0),
    );
    assert!(
        (lo..=hi).contains(&fresh),
        "{fresh} re-initialisations out of {draws}, expected [{lo}, {hi}]"
    );
}

#[test]
fn extreme_reinit_probabilities() {
    let mut r = rng(3);
    assert_eq!(
        buffer(50, 0.0, None, false, 0)
            .sample_batch(500, &mut r)
            .unwrap()
            .reinit_count(),
        0
    );
    assert_eq!(
        buffer(50, 1.0, None, false, 0)
            .sample_batch(500, &mut r)
            .unwrap()
            .reinit_count(),
        500
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn class_conditional_indices_land_in_their_slice(classes in 1i64..12, per_class in 1usize..20, seed in 0u64..1000) {
        let size = classes as usize * per_class;
        let buf = buffer(size, 0.05, Some(classes), true, seed);
        let mut r = rng(seed + 1);
        let batch = buf.sample_batch(64, &mut r).unwrap();
        let labels: Vec<i64> = Vec::try_from(batch.labels.as_ref().unwrap()).unwrap();
        for (&slot, &y) in batch.indices.iter().zip(&labels) {
            prop_assert!((0..classes).contains(&y));
            let lo = y * per_class as i64;
            prop_assert!((lo..lo + per_class as i64).contains(&slot), "slot {} for class {}", slot, y);
            prop_assert_eq!(buf.class_slots(y), lo..lo + per_class as i64);
        }
        // Given labels are kept and honoured.
        let given: Vec<i64> = (0..32).map(|i| i % classes).collect();
        let batch = buf.sample_batch_with_labels(&given, &mut r).unwrap();
        let labels: Vec<i64> = Vec::try_from(batch.labels.as_ref().unwrap()).unwrap();
        prop_assert_eq!(&labels, &given);
        for (&slot, &y) in batch.indices.iter().zip(&given) {
            prop_assert_eq!(slot / per_class as i64, y);
        }
    }
}

#[test]
fn labels_are_uniform_over_classes() {
    let buf = buffer(100, 0.05, Some(10), false, 0);
    let batch = buf.sample_batch(10_000, &mut rng(4)).unwrap();
    let labels: Vec<i64> = Vec::try_from(batch.labels.as_ref().unwrap()).unwrap();
    let binomial = Binomial::new(0.1, 10_000).unwrap();
    let (lo, hi) = (binomial.inverse_cdf(1e-7), binomial.inverse_cdf(1.0 - 1e-7));
    for c in 0..10 {
        let count = labels.iter().filter(|&&y| y == c).count() as u64;
        assert!(
            (lo..=hi).contains(&count),
            "class {c}: {count} not in [{lo}, {hi}]"
        );
    }
    // An unconditional buffer still draws slots from the whole buffer.
    assert!(batch.indices.iter().any(|&i| i >= 90) && batch.indices.iter().any(|&i| i < 10));
}

#[test]
fn ages_reset_on_reinit_and_grow_otherwise() {
    let mut buf = buffer(20, 0.3, None, false, 5);
    let mut r = rng(6);
    let mut expected = vec![0u64; 20];
    let mut saw_reset = false;
    for round in 0..30 {
        let batch = buf.sample_batch(8, &mut r).unwrap();
        // Refinement stand-in: mark rows with the round number.
        let x = &batch.x0 * 0.0 + round as f64;
        // Model of the bookkeeping: the last occurrence of a slot wins.
        let mut next = expected.clone();
        for ((&slot, &re), &start) in batch
            .indices
            .iter()
            .zip(&batch.reinitialised)
            .zip(&batch.start_ages)
        {
            let slot = slot as usize;
            assert_eq!(start, if re { 0 } else { expected[slot] });
            next[slot] = if re { 1 } else { expected[slot] + 1 };
            saw_reset |= re && expected[slot] > 0;
        }
        buf.push_back(&batch, &x).unwrap();
        expected = next;
        assert_eq!(buf.ages(), expected.as_slice());
        for &slot in &batch.indices {
            assert_eq!(
                buf.samples().get(slot).mean(Kind::Double).double_value(&[]),
                round as f64
            );
        }
    }
    assert!(
        saw_reset,
        "no aged chain was re-initialised; the test did not exercise resets"
    );
    let stats = buf.age_stats();
    assert_eq!(stats.max, *expected.iter().max().unwrap());
    let mean = expected.iter().sum::<u64>() as f64 / 20.0;
    assert!((stats.mean - mean).abs() < 1e-12);
}

#[test]
fn duplicate_slots_keep_the_last_chain() {
    let mut buf = buffer(1, 0.0, None, false, 0);
    let batch = buf.sample_batch(3, &mut rng(0)).unwrap();
    assert_eq!(batch.indices, vec![0, 0, 0]);
    let x = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0]).view([3, 3]);
    buf.push_back(&batch, &x).unwrap();
    assert!(buf
        .samples()
        .equal(&Tensor::from_slice(&[3.0f32, 3.0, 3.0]).view([1, 3])));
    assert_eq!(buf.ages(), &[1]);
}

fn exercise(buf: &mut ReplayBuffer, seed: u64, rounds: usize) {
    let g = Gaussian {
        mu: vec![0.5, 0.0, -0.5],
        var: vec![1.0, 1.0, 1.0],
    };
    let density = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(g.log_density(x)) };
    let cfg = SgldConfig {
        steps: 3,
        noise: 0.1,
        step_size: 0.1,
        ..SgldConfig::default()
    };
    let mut r = rng(seed);
    for _ in 0..rounds {
        sample(buf, Energy::Marginal(&density), 16, None, &cfg, &mut r).unwrap();
    }
}

#[test]
fn buffer_runs_are_reproducible_from_the_seed() {
    let run = |seed| {
        let mut buf = buffer(64, 0.05, Some(4), true, seed);
        exercise(&mut buf, seed, 5);
        buf
    };
    let (a, b, c) = (run(11), run(11), run(12));
    assert!(a.samples().equal(b.samples()));
    assert_eq!(a.ages(), b.ages());
    assert!(!a.samples().equal(c.samples()));
}

#[test]
fn state_round_trip_is_exact() {
    let mut buf = buffer(64, 0.2, Some(4), true, 7);
    exercise(&mut buf, 8, 4);
    assert!(buf.age_stats().max > 0);

    let mut restored = ReplayBuffer::from_state(buf.state().unwrap(), Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buffer.ot");
    buf.save(&path).unwrap();
    let mut loaded = ReplayBuffer::load(&path, Device::Cpu).unwrap();
    let named = buf.state().unwrap().to_named_tensors("replay_").unwrap();
    let mut from_named = ReplayBuffer::from_state(
        BufferState::from_named_tensors(&named, "replay_").unwrap(),
        Device::Cpu,
    )
    .unwrap();

    for other in [&restored, &loaded, &from_named] {
        assert!(other.samples().equal(buf.samples()));
        assert_eq!(other.ages(), buf.ages());
        assert_eq!(other.n_classes(), Some(4));
        assert!(other.is_class_conditional());
        assert_eq!(other.reinit_prob(), 0.2);
    }
    // Continuing from the restored state with the same generator gives the same future.
    for other in [&mut restored, &mut loaded, &mut from_named] {
        exercise(other, 9, 3);
    }
    exercise(&mut buf, 9, 3);
    for other in [&restored, &loaded, &from_named] {
        assert!(other.samples().equal(buf.samples()));
        assert_eq!(other.ages(), buf.ages());
    }
    // The state is a copy: mutating the buffer does not change it.
    let snapshot = buf.state().unwrap();
    exercise(&mut buf, 10, 1);
    assert!(!snapshot.samples.equal(buf.samples()));
}

#[test]
fn shape_and_layout_errors_are_clear() {
    let mut buf = buffer(10, 0.05, Some(5), true, 0);
    let batch = buf.sample_batch(4, &mut rng(0)).unwrap();
    let wrong = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
    match buf.push_back(&batch, &wrong) {
        Err(SamplerError::ShapeMismatch {
            expected, actual, ..
        }) => {
            assert_eq!((expected, actual), (vec![4, 3], vec![4, 2]));
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }
    assert!(matches!(
        buf.sample_batch_with_labels(&[0, 5], &mut rng(0)),
        Err(SamplerError::InvalidArgument(_))
    ));
    let cfg = BufferConfig {
        size: 10,
        reinit_prob: 0.05,
        class_conditional: true,
        ..BufferConfig::default()
    };
    let err = ReplayBuffer::new(&cfg, &[3], Some(3), Device::Cpu, &mut rng(0)).unwrap_err();
    assert!(err.to_string().contains("divisible"), "{err}");
    assert!(ReplayBuffer::new(&cfg, &[3], None, Device::Cpu, &mut rng(0)).is_err());
    let bad = BufferConfig {
        reinit_prob: 1.5,
        ..cfg
    };
    let err = ReplayBuffer::new(&bad, &[3], Some(5), Device::Cpu, &mut rng(0)).unwrap_err();
    assert!(err.to_string().contains("reinit_prob"), "{err}");
    // A short-run batch cannot be pushed into a buffer.
    let mut short = ShortRun::new(&[3], None, Device::Cpu).unwrap();
    let short_batch = short.draw(4, None, &mut rng(0)).unwrap();
    assert!(buf.push_back(&short_batch, &short_batch.x0).is_err());
}

#[test]
fn short_run_chains_restart_from_noise_every_time() {
    let g = Gaussian {
        mu: vec![0.5, 0.0, -0.5],
        var: vec![1.0, 1.0, 1.0],
    };
    let density = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(g.log_density(x)) };
    let cfg = SgldConfig {
        steps: 2,
        step_size: 0.1,
        ..SgldConfig::default()
    };
    let mut source = ChainInit::ShortRun(ShortRun::new(&[3], Some(3), Device::Cpu).unwrap());
    let mut r = rng(0);
    let a = sample(
        &mut source,
        Energy::Marginal(&density),
        8,
        None,
        &cfg,
        &mut r,
    )
    .unwrap();
    let b = sample(
        &mut source,
        Energy::Marginal(&density),
        8,
        None,
        &cfg,
        &mut r,
    )
    .unwrap();
    assert_eq!((a.reinitialised, a.mean_start_age), (8, 0.0));
    assert!(!a.x.equal(&b.x));
    assert_eq!(a.labels.as_ref().unwrap().size(), vec![8]);
}

#[test]
fn conditional_sampling_uses_the_batch_labels() {
    // logits = x W^T with one-hot W: class c's energy pulls only coordinate c upwards.
    let logits = |x: &Tensor| -> jem_sampler::Result<Tensor> { Ok(x * 10.0) };
    let energy = FromLogits(logits);
    let cfg = SgldConfig {
        steps: 10,
        step_size: 0.05,
        noise: 0.0,
        clamp: Some((-1.0, 1.0)),
        ..SgldConfig::default()
    };
    let mut source = ChainInit::Persistent(buffer(30, 0.05, Some(3), true, 0));
    let labels = [0i64, 1, 2, 1];
    let out = sample(
        &mut source,
        Energy::Conditional(&energy),
        4,
        Some(&labels),
        &cfg,
        &mut rng(1),
    )
    .unwrap();
    for (i, &y) in labels.iter().enumerate() {
        // ∂/∂x (10 x)_y = 10 e_y: 10 steps of 0.5 push coordinate y to the clamp, others stay.
        assert_eq!(out.x.get(i as i64).get(y).double_value(&[]), 1.0);
    }
    // Without labels or a class count, conditional sampling is refused.
    let mut unlabeled = ChainInit::ShortRun(ShortRun::new(&[3], None, Device::Cpu).unwrap());
    assert!(matches!(
        sample(
            &mut unlabeled,
            Energy::Conditional(&energy),
            4,
            None,
            &cfg,
            &mut rng(1)
        ),
        Err(SamplerError::InvalidArgument(_))
    ));
}

/// Device handling (noise copied to the device, CPU chains pushed into a device buffer). Needs a
/// CUDA build of libtorch and a GPU: run with `--features cuda-tests` on such a machine.
#[test]
#[cfg_attr(
    not(feature = "cuda-tests"),
    ignore = "needs a GPU: --features cuda-tests"
)]
fn cuda_buffer_matches_cpu_draws() {
    assert!(
        tch::Cuda::is_available(),
        "cuda-tests enabled but libtorch sees no CUDA device"
    );
    let cfg = BufferConfig {
        size: 64,
        reinit_prob: 0.3,
        class_conditional: true,
        ..BufferConfig::default()
    };
    let cpu = ReplayBuffer::new(&cfg, &[3], Some(4), Device::Cpu, &mut rng(1)).unwrap();
    let mut gpu = ReplayBuffer::new(&cfg, &[3], Some(4), Device::Cuda(0), &mut rng(1)).unwrap();
    assert!(gpu.samples().to_device(Device::Cpu).equal(cpu.samples()));
    let (a, b) = (
        cpu.sample_batch(32, &mut rng(2)).unwrap(),
        gpu.sample_batch(32, &mut rng(2)).unwrap(),
    );
    assert_eq!(
        (&a.indices, &a.reinitialised),
        (&b.indices, &b.reinitialised)
    );
    assert!(b.x0.device() == Device::Cuda(0) && b.x0.to_device(Device::Cpu).equal(&a.x0));
    gpu.push_back(&b, &a.x0).unwrap();
    exercise(&mut gpu, 3, 2);
    assert_eq!(gpu.device(), Device::Cuda(0));
}
