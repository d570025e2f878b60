//! Tiny synthetic data and configs shared by the integration tests.
#![allow(dead_code)]

use jem_data::Dataset;
use jem_model::WrnConfig;
use jem_train::{Mode, RunConfig, TrainData};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use tch::Tensor;

pub const CLASSES: usize = 4;
pub const SIDE: usize = 8;

/// `n` 1x8x8 images in [0, 1]: dim noisy background, class c lights up quadrant c.
pub fn synthetic(n: usize, seed: u64) -> Dataset {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * SIDE * SIDE);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % CLASSES;
        labels.push(c as i64);
        let (qy, qx) = (c / 2, c % 2);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let lit = y / (SIDE / 2) == qy && x / (SIDE / 2) == qx;
                let v: f32 = if lit {
                    rng.random_range(0.6..1.0)
                } else {
                    rng.random_range(0.0..0.35)
                };
                pixels.push(v);
            }
        }
    }
    let images = Tensor::from_slice(&pixels).reshape([n as i64, 1, SIDE as i64, SIDE as i64]);
    Dataset::new(images, Tensor::from_slice(&labels), CLASSES).unwrap()
}

/// 240 training images (40 held out for validation) and 80 test images.
pub fn data() -> TrainData {
    TrainData {
        train: synthetic(240, 11),
        test: synthetic(80, 12),
    }
}

/// WRN-10-1 on 1x8x8, batch 16 (12 iterations per epoch), 5 SGLD steps, buffer 200.
pub fn tiny_config(mode: Mode) -> RunConfig {
    let mut c = RunConfig::default();
    c.data.dataset = jem_data::DatasetKind::FashionMnist;
    c.data.n_valid = 40;
    c.data.batch_size = 16;
    c.data.eval_batch_size = 64;
    c.data.augment = false;
    c.model = WrnConfig {
        num_classes: CLASSES,
        in_channels: 1,
        ..WrnConfig::new(10, 1)
    };
    c.sampler.sgld.steps = 5;
    c.sampler.buffer.size = 200;
    c.train.mode = mode;
    c.train.epochs = 3;
    c.train.lr = 1e-3;
    c.train.decay_epochs = vec![];
    c.train.log_every = 4;
    c.train.checkpoint_every = 7;
    c.train.recovery.snapshot_every = 5;
    c
}

/// `metrics.jsonl` as JSON values without the timing fields.
pub fn metrics_without_timing(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(o) = v.as_object_mut() {
                o.remove("its_per_sec");
                o.remove("elapsed_s");
            }
            v
        })
        .collect()
}

/// Every tensor of a checkpoint file (name → flattened bytes of the tensor).
pub fn checkpoint_tensors(path: &std::path::Path) -> Vec<(String, Vec<i64>, Vec<u8>)> {
    let ck = jem_train::checkpoint::read_checkpoint(path).unwrap();
    ck.tensors
        .into_iter()
        .map(|(n, t)| {
            let numel = t.numel();
            let width = t.kind().elt_size_in_bytes();
            let mut bytes = vec![0u8; numel * width];
            t.copy_data_u8(&mut bytes, numel);
            (n, t.size(), bytes)
        })
        .collect()
}
