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

/// Writes `data` as IDX files (pixels rounded to bytes) into `dir`, for `data.dataset = "idx"`:
/// runs that load their data from disk ([`jem_train::resume_with_budget`], the `jem` binary).
pub fn write_idx(dir: &std::path::Path, data: &TrainData) {
    use jem_data::resolve::{IDX_TEST_IMAGES, IDX_TEST_LABELS, IDX_TRAIN_IMAGES, IDX_TRAIN_LABELS};
    std::fs::create_dir_all(dir).unwrap();
    for (ds, images, labels) in [
        (&data.train, IDX_TRAIN_IMAGES, IDX_TRAIN_LABELS),
        (&data.test, IDX_TEST_IMAGES, IDX_TEST_LABELS),
    ] {
        let n = ds.len();
        let [_, h, w] = ds.image_shape();
        let pixels = Vec::<f32>::try_from(ds.images.flatten(0, -1)).unwrap();
        let mut bytes = Vec::with_capacity(16 + pixels.len());
        for v in [0x0803u32, n as u32, h as u32, w as u32] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend(pixels.iter().map(|&p| (p * 255.0).round() as u8));
        std::fs::write(dir.join(images), bytes).unwrap();
        let mut bytes = Vec::with_capacity(8 + n);
        for v in [0x0801u32, n as u32] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend(ds.labels_vec().unwrap().iter().map(|&l| l as u8));
        std::fs::write(dir.join(labels), bytes).unwrap();
    }
}

/// [`tiny_config`] reading [`data`] from the IDX files [`write_idx`] wrote into `dir`.
pub fn tiny_idx_config(mode: Mode, dir: &std::path::Path) -> RunConfig {
    let mut c = tiny_config(mode);
    c.data.dataset = jem_data::DatasetKind::Idx;
    c.data.data_dir = Some(dir.to_path_buf());
    c
}

/// Asserts that two finished runs are the same run: every tensor of `last.ckpt` (and of
/// `best.ckpt` and the kept checkpoints, where there are any), `metrics.jsonl` without its
/// timing fields, and `summary.json` without its timing and directory fields.
pub fn assert_same_run(expected: &std::path::Path, actual: &std::path::Path) {
    use jem_train::files;
    let mut ckpts = vec![files::LAST.to_string(), files::BEST.to_string()];
    for dir in [expected, actual] {
        if let Ok(entries) = std::fs::read_dir(dir.join(files::KEPT_DIR)) {
            for e in entries.flatten() {
                let name = format!("{}/{}", files::KEPT_DIR, e.file_name().to_string_lossy());
                if !ckpts.contains(&name) {
                    ckpts.push(name);
                }
            }
        }
    }
    for name in &ckpts {
        let (a, b) = (expected.join(name), actual.join(name));
        assert_eq!(
            a.exists(),
            b.exists(),
            "{name}: present in one run only ({} vs {})",
            a.exists(),
            b.exists()
        );
        if !a.exists() {
            continue;
        }
        let (ta, tb) = (checkpoint_tensors(&a), checkpoint_tensors(&b));
        assert_eq!(ta.len(), tb.len(), "{name}: tensor count");
        for ((na, sa, da), (nb, sb, db)) in ta.iter().zip(&tb) {
            assert_eq!((na, sa), (nb, sb), "{name}");
            assert!(da == db, "{name}: tensor `{na}` differs");
        }
    }
    let (ma, mb) = (
        metrics_without_timing(&expected.join(files::METRICS)),
        metrics_without_timing(&actual.join(files::METRICS)),
    );
    for (i, (a, b)) in ma.iter().zip(&mb).enumerate() {
        assert_eq!(a, b, "metrics.jsonl line {}", i + 1);
    }
    assert_eq!(ma.len(), mb.len(), "metrics.jsonl line count");
    let summary = |dir: &std::path::Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(files::SUMMARY)).unwrap())
                .unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("wall_time_s");
        o.remove("run_dir");
        v
    };
    assert_eq!(summary(expected), summary(actual), "summary.json");
}

/// Ends this process at once with SIGKILL: no destructor, flush or clean-up runs.
pub fn kill_self() -> ! {
    // SAFETY: kill(2) on our own pid; nothing is shared.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
