//! Criterion timing of the persistent replay buffer's share of a JEM iteration at the cpu
//! preset's size: drawing 32 chains (with the paper's 5% re-initialisation from `U(-1, 1)`) from
//! a buffer of 10000 1x28x28 chains, then writing them back.
//!
//! `cargo bench -p jem-sampler --bench buffer` (add `-- --quick` for a short run).
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jem_sampler::{BufferConfig, Pcg64, ReplayBuffer};
use rand::SeedableRng;
use tch::Device;

fn draw_and_push_back(c: &mut Criterion) {
    let mut rng = Pcg64::seed_from_u64(0);
    let cfg = BufferConfig::default();
    assert_eq!((cfg.size, cfg.reinit_prob), (10_000, 0.05));
    let mut buffer =
        ReplayBuffer::new(&cfg, &[1, 28, 28], Some(10), Device::Cpu, &mut rng).expect("a buffer");

    let mut group = c.benchmark_group("replay_buffer");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("draw_push_back_32_of_10000_1x28x28", |b| {
        b.iter(|| {
            let batch = buffer.sample_batch(32, &mut rng).expect("a draw");
            // The chains go back unchanged: this times the buffer, not SGLD.
            let x = batch.x0.shallow_clone();
            buffer.push_back(&batch, &x).expect("a write-back");
        })
    });
    group.finish();
}

criterion_group!(benches, draw_and_push_back);
criterion_main!(benches);
