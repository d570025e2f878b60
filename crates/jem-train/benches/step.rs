//! Criterion timings of the training loop's own iteration at the cpu preset's size (WRN-10-1,
//! 1x28x28, batch 32, 5 SGLD steps, the peer's settings otherwise; see `jem_train::bench`):
//! one JEM iteration, one SGLD step and one plain classifier step.
//!
//! `cargo bench -p jem-train --bench step` takes about a minute. Speed targets live here and in
//! `cargo xtask bench`, never as timing assertions in tests.
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use jem_train::bench::{BenchShape, StepBench, StepReport};
use jem_train::Mode;
use tch::Device;

/// The `cpu` preset's network and batch (configs/cpu.toml).
fn cpu_preset() -> BenchShape {
    BenchShape {
        depth: 10,
        width: 1,
        channels: 1,
        size: 28,
        batch: 32,
        sgld_steps: 5,
        seed: 0,
    }
}

/// Fails loudly: a diverged iteration skips its backward pass and would time too little.
fn step(bench: &mut StepBench) {
    match bench.step().expect("a training iteration") {
        StepReport::Done { .. } => {}
        StepReport::Diverged(reason) => panic!("the benchmarked iteration diverged: {reason}"),
    }
}

fn cpu_preset_steps(c: &mut Criterion) {
    let shape = cpu_preset();
    let mut group = c.benchmark_group("cpu_preset");
    // Iterations take tenths of a second: few samples, equal iteration counts per sample.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));

    let mut jem = StepBench::synthetic(&shape, Mode::Jem, Device::Cpu).expect("JEM bench");
    group.bench_function("jem_iteration", |b| b.iter(|| step(&mut jem)));

    // One sampler call runs every SGLD step: report the time per step.
    let steps = jem.sgld_steps().max(1) as u32;
    group.bench_function("sgld_step", |b| {
        b.iter_custom(|calls| {
            let started = Instant::now();
            for _ in 0..calls {
                jem.sample().expect("an SGLD run");
            }
            started.elapsed() / steps
        })
    });
    drop(jem);

    let mut clf =
        StepBench::synthetic(&shape, Mode::Baseline, Device::Cpu).expect("classifier bench");
    group.bench_function("classifier_step", |b| b.iter(|| step(&mut clf)));
    group.finish();
}

criterion_group!(benches, cpu_preset_steps);
criterion_main!(benches);
