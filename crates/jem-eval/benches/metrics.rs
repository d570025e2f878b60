//! Criterion timings of the metrics on a million scores: ECE (from `n × 10`
//! probabilities and from reduced confidences) and AUROC / all three OOD
//! metrics (500,000 in-distribution and 500,000 out-of-distribution scores,
//! so every threshold is distinct and the sort dominates).
//!
//! `cargo bench -p jem-eval --bench metrics` takes about a minute; add
//! `-- --quick` for a rough number in seconds. Speed lives here, never in
//! tests.
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jem_eval::{auroc, ece, ood_metrics, reliability_from_confidences, PAPER_NUM_BINS};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

const N: usize = 1_000_000;
const CLASSES: usize = 10;

/// `N × CLASSES` softmax rows of random logits, and random labels.
fn predictions(rng: &mut Pcg64) -> (Array2<f32>, Array1<usize>) {
    let mut probs = Array2::from_shape_fn((N, CLASSES), |_| rng.random_range(-3.0f32..3.0));
    for mut row in probs.rows_mut() {
        row.mapv_inplace(f32::exp);
        let sum = row.sum();
        row /= sum;
    }
    let labels = Array1::from_shape_fn(N, |_| rng.random_range(0..CLASSES));
    (probs, labels)
}

fn calibration(c: &mut Criterion) {
    let mut rng = Pcg64::seed_from_u64(0);
    let (probs, labels) = predictions(&mut rng);
    let confidences = Array1::from_shape_fn(N, |_| rng.random_range(0.0f64..=1.0));
    let correct = Array1::from_shape_fn(N, |_| rng.random_bool(0.8));
    let mut group = c.benchmark_group("ece_1e6");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("probs_1e6x10_f32", |b| {
        b.iter(|| {
            ece(
                black_box(probs.view()),
                black_box(labels.view()),
                PAPER_NUM_BINS,
            )
            .unwrap()
        })
    });
    group.bench_function("confidences_1e6", |b| {
        b.iter(|| {
            reliability_from_confidences(
                black_box(confidences.view()),
                black_box(correct.view()),
                PAPER_NUM_BINS,
            )
            .unwrap()
        })
    });
    group.finish();
}

fn ood(c: &mut Criterion) {
    let mut rng = Pcg64::seed_from_u64(1);
    let inside = Array1::from_shape_fn(N / 2, |_| rng.random::<f64>() + 0.3);
    let outside = Array1::from_shape_fn(N / 2, |_| rng.random::<f64>());
    let mut group = c.benchmark_group("auroc_1e6");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("auroc", |b| {
        b.iter(|| auroc(black_box(inside.view()), black_box(outside.view())).unwrap())
    });
    group.bench_function("auroc_aupr_fpr95", |b| {
        b.iter(|| ood_metrics(black_box(inside.view()), black_box(outside.view())).unwrap())
    });
    group.finish();
}

criterion_group!(benches, calibration, ood);
criterion_main!(benches);
