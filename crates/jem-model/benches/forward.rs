//! Criterion timing of the Wide-ResNet forward pass at the cpu preset's size (configs/cpu.toml:
//! WRN-10-1, no normalisation, on 1x28x28 inputs, batch 32), in eval mode without autograd, as
//! evaluation runs it. One SGLD step or one training pass costs a few of these.
//!
//! `cargo bench -p jem-model --bench forward` (add `-- --quick` for a short run). Speed is
//! measured here, never asserted in tests.
// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jem_model::{JointEnergyModel, WrnConfig};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn wrn_forward(c: &mut Criterion) {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let config = WrnConfig {
        in_channels: 1,
        num_classes: 10,
        ..WrnConfig::new(10, 1)
    };
    let model = config.init(&vs.root()).expect("WRN-10-1");
    // The data range the model sees: [-1, 1].
    let x = Tensor::rand([32, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;

    let mut group = c.benchmark_group("wrn_forward");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("wrn-10-1_1x28x28_batch32_no_grad", |b| {
        b.iter(|| {
            tch::no_grad(|| {
                let logits = model.logits(&x, false).expect("a forward pass");
                assert_eq!(logits.size(), [32, 10]);
                logits
            })
        })
    });
    group.finish();
}

criterion_group!(benches, wrn_forward);
criterion_main!(benches);
