//! Criterion timing of one SGLD step on a Wide-ResNet's `log p(x) = LogSumExp_y f(x)[y]` at the
//! cpu preset's size (WRN-10-1, 1x28x28, batch 32; the paper's relaxed SGLD with α = 1 and
//! σ = 0.01), through the sampler's own `jem_sampler::sgld` with `steps = 1`, the model in eval
//! mode as the trainer samples. One call is a forward pass and an input-gradient backward pass,
//! plus the forward pass without autograd that `sgld` spends on its `log_density_after`
//! diagnostic. The buffer draw and write-back are left out (see jem-sampler's `buffer` bench,
//! and `step`'s `sgld_step` for the trainer's whole sampler call divided by its steps).
//!
//! Threads: libtorch's default (all cores); `OMP_NUM_THREADS=1` pins one. On a machine other
//! jobs keep busy, multi-threaded timings of this many small kernels collapse (measured here:
//! 1.4 s per call on 2 busy cores against 83 ms with one thread), so read them on an idle machine.
//!
//! Lives in jem-train because it needs both jem-model and jem-sampler.
//! `cargo bench -p jem-train --bench sgld` (add `-- --quick` for a short run).
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jem_model::{JointEnergyModel, WrnConfig};
use jem_sampler::{sgld, FromLogits, Pcg64, SamplerError, SgldConfig};
use rand::SeedableRng;
use tch::{nn::VarStore, Device, Kind, Tensor};

fn sgld_step(c: &mut Criterion) {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let config = WrnConfig {
        in_channels: 1,
        num_classes: 10,
        ..WrnConfig::new(10, 1)
    };
    let model = config.init(&vs.root()).expect("WRN-10-1");
    let density = FromLogits(|x: &Tensor| model.logits(x, false).map_err(SamplerError::density));
    let cfg = SgldConfig {
        steps: 1,
        ..SgldConfig::default()
    };
    assert_eq!((cfg.step_size, cfg.noise), (1.0, 0.01));
    let mut rng = Pcg64::seed_from_u64(0);
    let x0 = Tensor::rand([32, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;

    let mut group = c.benchmark_group("sgld");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("one_step_wrn-10-1_1x28x28_batch32", |b| {
        b.iter(|| {
            let (x, _stats) = sgld(&density, &x0, &cfg, &mut rng).expect("an SGLD step");
            x
        })
    });
    group.finish();
    // Sampling must not touch the parameters' gradients (input gradients only).
    assert!(
        vs.trainable_variables().iter().all(|p| !p.grad().defined()),
        "SGLD accumulated parameter gradients"
    );
}

criterion_group!(benches, sgld_step);
criterion_main!(benches);
