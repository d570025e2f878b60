//! Timing entry points: the trainer's own iteration on synthetic data.
//!
//! [`StepBench`] builds the same state a run holds (model, optimiser, replay buffer, prepared
//! data) and calls the loop's iteration directly, so a timing measures the code that trains, not
//! a re-implementation of it. It skips what happens between iterations (diagnostics, snapshots,
//! checkpoints, evaluation), which the loop does only every so many iterations.
//!
//! The settings of [`BenchShape::run_config`] follow the PyTorch timing peer
//! (`torch_jem_step.py`): WRN without normalisation, PCD buffer of 10000 chains with reinit
//! probability 0.05, relaxed SGLD with α = 1 and σ = 0.01, Adam with lr 1e-4, no augmentation, no
//! data noise, and data in `[-1, 1]`.
//!
//! ```no_run
//! use jem_train::bench::{BenchShape, StepBench};
//! use jem_train::Mode;
//!
//! let shape = BenchShape { depth: 10, width: 1, channels: 1, size: 28, batch: 32, sgld_steps: 5, seed: 0 };
//! let mut bench = StepBench::synthetic(&shape, Mode::Jem, tch::Device::Cpu)?;
//! let report = bench.step()?; // one full JEM iteration
//! bench.sample()?;            // one replay-buffer draw + SGLD run + store, as inside the iteration
//! # Ok::<(), jem_train::TrainError>(())
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use jem_data::Dataset;
use jem_model::WrnConfig;
use rand::Rng;
use tch::{Device, Tensor};

use super::data::{prepare, TrainData};
use super::iteration::Outcome;
use super::start::fresh_trainer;
use super::Trainer;
use crate::config::{Mode, RunConfig};
use crate::error::{Result, TrainError};
use crate::lock::RunLock;
use crate::metrics::{MetricsLog, NoopObserver};
use crate::rng::{stream_rng, Stream};

/// Number of classes of the synthetic data (as CIFAR-10 and Fashion-MNIST).
pub const BENCH_CLASSES: usize = 10;
/// Images in the synthetic training pool (rounded up to whole batches), as the peer's pool.
pub const BENCH_POOL: usize = 1024;

/// Network and batch shape of a timing run (the peer's flags of the same names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchShape {
    /// WRN depth (`6n + 4`).
    pub depth: usize,
    /// WRN widen factor.
    pub width: usize,
    /// Input channels.
    pub channels: usize,
    /// Input side (square images).
    pub size: usize,
    /// Batch size of the data, labelled and sample batches.
    pub batch: usize,
    /// SGLD steps per iteration.
    pub sgld_steps: usize,
    /// Seed of the model, the buffer, the synthetic data and every per-iteration stream.
    pub seed: u64,
}

impl BenchShape {
    /// The run config of a timing run in `mode`: the peer's settings (see the module docs) with
    /// divergence detection reduced to non-finite values (the peer checks nothing, and a
    /// rolled-back iteration would not be a timing of a step).
    pub fn run_config(&self, mode: Mode) -> RunConfig {
        let mut c = RunConfig::default();
        c.data.n_valid = 0;
        c.data.batch_size = self.batch;
        c.data.noise_sigma = 0.0;
        c.data.augment = false;
        c.data.drop_last = true;
        c.data.seed = self.seed;
        c.model = WrnConfig {
            num_classes: BENCH_CLASSES,
            in_channels: self.channels,
            ..WrnConfig::new(self.depth, self.width)
        };
        c.sampler.sgld.steps = self.sgld_steps;
        c.sampler.sgld.step_size = 1.0;
        c.sampler.sgld.noise = 0.01;
        c.sampler.sgld.clamp = None;
        c.sampler.buffer.size = 10_000;
        c.sampler.buffer.reinit_prob = 0.05;
        c.train.mode = mode;
        c.train.seed = self.seed;
        c.train.lr = 1e-4;
        c.train.decay_epochs = vec![];
        c.train.warmup_iters = 0;
        c.train.grad_clip = None;
        c.train.energy_l2 = 0.0;
        c.train.sample_every = 0;
        c.train.recovery.max_energy_gap = None;
        c.train.recovery.sample_range_factor = None;
        c
    }

    /// Synthetic training data: `BENCH_POOL` images (rounded up to whole batches) uniform in
    /// `[0, 1]` (the loaders' range; preprocessing maps them to `[-1, 1]`), uniform labels.
    pub fn synthetic_data(&self) -> Result<TrainData> {
        let n = BENCH_POOL.div_ceil(self.batch.max(1)) * self.batch.max(1);
        let (c, s) = (self.channels as i64, self.size as i64);
        let mut rng = stream_rng(self.seed, Stream::Init, 0, 1);
        let pixels: Vec<f32> = (0..n * self.channels * self.size * self.size)
            .map(|_| rng.random::<f32>())
            .collect();
        let labels: Vec<i64> = (0..n)
            .map(|_| rng.random_range(0..BENCH_CLASSES as i64))
            .collect();
        let images = Tensor::f_from_slice(&pixels)?.f_reshape([n as i64, c, s, s])?;
        let train = Dataset::new(images, Tensor::f_from_slice(&labels)?, BENCH_CLASSES)?;
        // Never evaluated: one image satisfies the loop's "non-empty test split" check.
        let test = train.subset(&[0])?;
        Ok(TrainData { train, test })
    }
}

/// What one timed iteration did.
#[derive(Debug, Clone, PartialEq)]
pub enum StepReport {
    /// The iteration ran to its optimiser step.
    Done {
        /// The total loss of the iteration.
        loss: f64,
    },
    /// The iteration stopped at a divergence check (non-finite loss, samples or gradients)
    /// without an optimiser step; the bench moves on to the next iteration.
    Diverged(String),
}

/// Distinguishes the scratch directories of benches alive at once in one process.
static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A directory for the loop's metrics file, removed on drop (the bench writes nothing to it).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<Self> {
        let n = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("jem-step-bench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        Ok(Self(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The training loop's state on synthetic (or given) data, stepped one iteration at a time.
pub struct StepBench {
    trainer: Trainer<'static>,
    iteration: u64,
    samples_drawn: u64,
    // Declared last so the metrics file inside is closed before the directory goes.
    _scratch: ScratchDir,
}

impl StepBench {
    /// A bench of `shape` in `mode` on [`BenchShape::synthetic_data`] with
    /// [`BenchShape::run_config`].
    pub fn synthetic(shape: &BenchShape, mode: Mode, device: Device) -> Result<Self> {
        Self::new(shape.run_config(mode), shape.synthetic_data()?, device)
    }

    /// A bench of any run config on data in memory, built as a fresh run builds its state.
    pub fn new(cfg: RunConfig, data: TrainData, device: Device) -> Result<Self> {
        let cfg = cfg.resolved();
        cfg.check()?;
        let scratch = ScratchDir::new()?;
        let data = prepare(&cfg, data)?;
        let metrics = MetricsLog::open(&scratch.0.join(super::files::METRICS), Some(0))?;
        // NoopObserver is zero-sized: leaking a box of it allocates nothing.
        let observer: &'static mut NoopObserver = Box::leak(Box::new(NoopObserver));
        let lock = RunLock::acquire(&scratch.0)?;
        let trainer = fresh_trainer(
            cfg,
            scratch.0.clone(),
            device,
            data,
            metrics,
            lock,
            observer,
        )?;
        Ok(Self {
            trainer,
            iteration: 0,
            samples_drawn: 0,
            _scratch: scratch,
        })
    }

    /// Runs the training loop's iteration once (data batch, SGLD, losses, backward, optimiser
    /// step), exactly as [`crate::train`] does, and advances the iteration counter.
    pub fn step(&mut self) -> Result<StepReport> {
        let it = self.iteration;
        let epoch = (it / self.trainer.data.iterations_per_epoch) as usize;
        let outcome = self.trainer.iteration(it, epoch)?;
        self.iteration += 1;
        Ok(match outcome {
            Outcome::Done(stats) => StepReport::Done { loss: stats.loss },
            Outcome::Diverged(d) => StepReport::Diverged(d.to_string()),
        })
    }

    /// Draws one batch of chains from the replay buffer, runs SGLD on them and stores them back:
    /// the sampler call of the iteration, with the same model, chains and SGLD settings, timed
    /// on its own. Waits for the device before returning. An error for `baseline` mode.
    pub fn sample(&mut self) -> Result<()> {
        let t = &mut self.trainer;
        if t.chains.is_none() {
            return Err(TrainError::invalid(
                "train.mode",
                format!("{:?}", t.cfg.train.mode),
                "a sampling mode (jem, factored) to time SGLD",
            ));
        };
        let mut sgld_cfg = t.cfg.sampler.sgld.clone();
        sgld_cfg.steps = t.recovery.sgld_steps;
        // A stream of its own (salt 1) so these draws never repeat an iteration's.
        let counter = self.samples_drawn;
        let mut rng = stream_rng(t.cfg.train.seed, Stream::Iteration, counter, 1);
        let n = t.cfg.data.batch_size;
        if let Err(d) = t.sample_chains(n, None, &sgld_cfg, &mut rng)? {
            tracing::debug!(%d, "a timed sampling step diverged");
        }
        self.samples_drawn += 1;
        synchronize(t.device);
        Ok(())
    }

    /// SGLD steps per sampler call.
    pub fn sgld_steps(&self) -> usize {
        self.trainer.recovery.sgld_steps
    }

    /// Trainable scalars of the network.
    pub fn parameters(&self) -> i64 {
        jem_model::parameter_count(&self.trainer.vs)
    }

    /// Multiply-accumulates of one forward pass of one image of the training data.
    pub fn forward_macs_per_image(&self) -> u64 {
        let [_, h, w] = self.trainer.data.train.image_shape();
        forward_macs(&self.trainer.cfg.model, h, w)
    }

    /// The run config the bench steps with.
    pub fn config(&self) -> &RunConfig {
        &self.trainer.cfg
    }
}

/// Waits for queued kernels so a wall-clock timing covers them (CPU work is synchronous).
fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

/// Multiply-accumulates of one forward pass of one `h × w` image through the Wide-ResNet of
/// `cfg` (convolutions and heads; activations, additions and pooling are not counted). Mirrors
/// the layer layout of `jem_model::WideResNet`: stem 3x3 conv, per block a 3x3 conv at the input
/// resolution, a (strided) 3x3 conv and a strided 1x1 projection when the shape changes.
pub fn forward_macs(cfg: &WrnConfig, h: usize, w: usize) -> u64 {
    // Output side of a 3x3/pad 1 or 1x1/pad 0 convolution with `stride`.
    let out = |side: usize, stride: usize| (side - 1) / stride + 1;
    let conv = |c_in: usize, c_out: usize, k: usize, oh: usize, ow: usize| {
        (c_in * c_out * k * k * oh * ow) as u64
    };
    let [c0, c1, c2, c3] = cfg.stage_channels();
    let mut macs = conv(cfg.in_channels, c0, 3, h, w);
    let (mut h, mut w, mut c_in) = (h, w, c0);
    for (c_out, stride) in [(c1, 1), (c2, 2), (c3, 2)] {
        for i in 0..cfg.blocks_per_stage() {
            let s = if i == 0 { stride } else { 1 };
            macs += conv(c_in, c_out, 3, h, w);
            let (oh, ow) = (out(h, s), out(w, s));
            macs += conv(c_out, c_out, 3, oh, ow);
            if s != 1 || c_in != c_out {
                macs += conv(c_in, c_out, 1, oh, ow);
            }
            (h, w, c_in) = (oh, ow, c_out);
        }
    }
    let heads = cfg.num_classes + usize::from(cfg.uncond);
    macs + (c3 * heads) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use jem_model::JointEnergyModel;
    use tch::Kind;

    fn tiny() -> BenchShape {
        BenchShape {
            depth: 10,
            width: 1,
            channels: 1,
            size: 8,
            batch: 4,
            sgld_steps: 2,
            seed: 3,
        }
    }

    fn abs_sum(bench: &StepBench) -> f64 {
        bench
            .trainer
            .vs
            .trainable_variables()
            .iter()
            .map(|v| v.abs().sum(Kind::Double).double_value(&[]))
            .sum()
    }

    #[test]
    fn jem_steps_train_and_sampling_runs() {
        let mut bench = StepBench::synthetic(&tiny(), Mode::Jem, Device::Cpu).unwrap();
        assert_eq!(bench.sgld_steps(), 2);
        let before = abs_sum(&bench);
        for _ in 0..2 {
            match bench.step().unwrap() {
                StepReport::Done { loss } => assert!(loss.is_finite()),
                StepReport::Diverged(d) => panic!("diverged: {d}"),
            }
        }
        assert_ne!(before, abs_sum(&bench));
        bench.sample().unwrap();
        assert_eq!(bench.parameters(), bench.trainer.model.num_parameters());
    }

    #[test]
    fn baseline_steps_but_does_not_sample() {
        let mut bench = StepBench::synthetic(&tiny(), Mode::Baseline, Device::Cpu).unwrap();
        assert!(matches!(bench.step().unwrap(), StepReport::Done { .. }));
        assert!(bench.sample().is_err());
    }

    #[test]
    fn synthetic_pool_is_whole_batches() {
        let shape = BenchShape {
            batch: 48,
            ..tiny()
        };
        let data = shape.synthetic_data().unwrap();
        assert_eq!(data.train.len(), 1056);
        assert_eq!(data.train.image_shape(), [1, 8, 8]);
    }

    /// One noiseless SGLD step of `α` from every drawn slot: the refined chain minus its start,
    /// divided by `α`, is the gradient the sampler followed.
    fn followed_gradients(class_conditional: bool) -> (Vec<(i64, Tensor)>, StepBench) {
        followed_gradients_in(class_conditional, jem_model::Precision::Fp32)
    }

    fn followed_gradients_in(
        class_conditional: bool,
        precision: jem_model::Precision,
    ) -> (Vec<(i64, Tensor)>, StepBench) {
        let shape = tiny();
        let mut cfg = shape.run_config(Mode::Jem);
        cfg.train.sgld_precision = precision;
        cfg.sampler.sgld.steps = 1;
        cfg.sampler.sgld.noise = 0.0;
        cfg.sampler.sgld.step_size = 0.5;
        cfg.sampler.buffer.size = 40;
        cfg.sampler.buffer.reinit_prob = 0.0;
        cfg.sampler.buffer.class_conditional = class_conditional;
        let mut bench = StepBench::new(cfg, shape.synthetic_data().unwrap(), Device::Cpu).unwrap();
        let buffer = |b: &StepBench| match b.trainer.chains.as_ref().unwrap() {
            jem_sampler::ChainInit::Persistent(buf) => buf.samples().copy(),
            _ => unreachable!("persistent chains"),
        };
        let before = buffer(&bench);
        bench.sample().unwrap();
        let after = buffer(&bench);
        let mut moved = Vec::new();
        for slot in 0..40 {
            let step = (after.get(slot) - before.get(slot)) / 0.5;
            if step.abs().sum(Kind::Double).double_value(&[]) > 0.0 {
                moved.push((slot, step));
            }
        }
        // The starting points, for the caller's own gradients.
        moved = moved
            .into_iter()
            .map(|(slot, step)| (slot, Tensor::stack(&[before.get(slot), step], 0)))
            .collect();
        (moved, bench)
    }

    fn input_gradient(bench: &StepBench, x: &Tensor, class: Option<i64>) -> Tensor {
        let x = x.unsqueeze(0).detach().set_requires_grad(true);
        let logits = bench.trainer.model.logits(&x, false).unwrap();
        let e = match class {
            Some(y) => logits.get(0).get(y),
            None => logits.logsumexp(1, false).sum(Kind::Float),
        };
        Tensor::run_backward(&[e], &[&x], false, false)
            .pop()
            .unwrap()
            .squeeze_dim(0)
    }

    #[test]
    fn class_conditional_chains_follow_their_class_logit() {
        // Appendix A's method 1: a chain in the slice of class y climbs f(x)[y], not log p(x).
        let (moved, bench) = followed_gradients(true);
        assert!(moved.len() >= 3, "the draw moved {} slots", moved.len());
        for (slot, pair) in &moved {
            let class = slot / 4; // 40 slots, 10 classes
            let (x0, step) = (pair.get(0), pair.get(1));
            let conditional = input_gradient(&bench, &x0, Some(class));
            let marginal = input_gradient(&bench, &x0, None);
            assert!(
                step.allclose(&conditional, 1e-4, 1e-5, false),
                "slot {slot}"
            );
            assert!(!step.allclose(&marginal, 1e-4, 1e-5, false), "slot {slot}");
        }
    }

    #[test]
    fn unconditional_chains_follow_log_px() {
        let (moved, bench) = followed_gradients(false);
        assert!(moved.len() >= 3);
        for (slot, pair) in &moved {
            let (x0, step) = (pair.get(0), pair.get(1));
            let marginal = input_gradient(&bench, &x0, None);
            assert!(step.allclose(&marginal, 1e-4, 1e-5, false), "slot {slot}");
        }
    }

    #[test]
    fn bf16_chains_follow_the_float32_gradient_closely() {
        let (moved, bench) = followed_gradients_in(false, jem_model::Precision::Bf16);
        assert!(moved.len() >= 3);
        for (slot, pair) in &moved {
            let (x0, step) = (pair.get(0), pair.get(1));
            assert_eq!(step.kind(), Kind::Float, "chains stay float32");
            let exact = input_gradient(&bench, &x0, None);
            let rel = (&step - &exact).norm().double_value(&[]) / exact.norm().double_value(&[]);
            // bfloat16 keeps 8 significant bits per layer: a few percent through the network
            // (5.4% at most here), not a different direction.
            assert!(rel < 0.1, "slot {slot}: relative error {rel}");
            assert!(
                rel > 0.0,
                "slot {slot}: bf16 arithmetic should not be bit-exact"
            );
        }
    }

    #[test]
    fn gaussian_start_fills_each_class_slice_near_its_class_mean() {
        let shape = tiny();
        let mut cfg = shape.run_config(Mode::Jem);
        cfg.sampler.buffer.size = 1000;
        cfg.sampler.buffer.class_conditional = true;
        cfg.sampler.buffer.init = jem_sampler::InitKind::Gaussian;
        cfg.sampler.buffer.init_rank = Some(8);
        // Class c's images are brighter by c / 10, so each class has its own mean.
        let mut data = shape.synthetic_data().unwrap();
        let labels = data.train.labels_vec().unwrap();
        let shift = Tensor::from_slice(&labels)
            .to_kind(Kind::Float)
            .view([-1, 1, 1, 1])
            / 20.0;
        let images = (data.train.images.shallow_clone() * 0.5 + shift).clamp(0.0, 1.0);
        data.train = jem_data::Dataset::new(images, data.train.labels.shallow_clone(), 10).unwrap();
        let bench = StepBench::new(cfg, data, Device::Cpu).unwrap();
        let jem_sampler::ChainInit::Persistent(buf) = bench.trainer.chains.as_ref().unwrap() else {
            unreachable!("persistent chains");
        };
        for class in [0i64, 9] {
            let slots = buf.class_slots(class);
            let mean = buf
                .samples()
                .narrow(0, slots.start, slots.end - slots.start)
                .mean(Kind::Double)
                .double_value(&[]);
            // Data in [-1, 1]: 2 · (0.25 + c / 20) − 1 on average.
            let expected = 2.0 * (0.25 + class as f64 / 20.0) - 1.0;
            assert!(
                (mean - expected).abs() < 0.03,
                "class {class}: {mean} vs {expected}"
            );
        }
    }

    #[test]
    fn macs_match_the_peers_analytic_count() {
        // Values of torch_jem_step.py's forward_macs for the same shapes.
        let wrn = |depth, width, channels| WrnConfig {
            in_channels: channels,
            ..WrnConfig::new(depth, width)
        };
        assert_eq!(forward_macs(&wrn(10, 1, 1), 28, 28), 14_764_928);
        assert_eq!(forward_macs(&wrn(10, 2, 3), 32, 32), 72_795_392);
        assert_eq!(forward_macs(&wrn(28, 10, 3), 32, 32), 5_951_117_568);
    }
}
