//! `jem bench-step`: times the training loop's own iteration on synthetic data and prints one
//! JSON line with the keys of the PyTorch peer `torch_jem_step.py` (median seconds per JEM
//! iteration, per SGLD step and per plain classifier step), so `cargo xtask bench` can put the
//! two side by side.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use jem_train::bench::{BenchShape, StepBench, StepReport};
use jem_train::Mode;
use serde_json::{json, Value};
use tch::Device;

/// The libtorch version tch 0.26 is built for; torch-sys's build refuses any other (unless its
/// version check is bypassed by hand), and libtorch offers no runtime query.
const LIBTORCH_VERSION: &str = "2.13.0";

/// The peer's default thread count, used when `--threads` is not given.
const PEER_DEFAULT_THREADS: i32 = 2;

#[derive(clap::Args)]
pub struct BenchStepArgs {
    /// WRN depth (6n + 4).
    #[arg(long, default_value_t = 28)]
    depth: usize,
    /// WRN widen factor.
    #[arg(long, default_value_t = 10)]
    width: usize,
    /// Input channels.
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// Input side (square images).
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Batch size (data, labelled and sample batches).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// SGLD steps per JEM iteration.
    #[arg(long, default_value_t = 20)]
    sgld_steps: usize,
    /// Timed iterations per measurement (the median is reported).
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Untimed iterations before each measurement.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Seed of the model, buffer, synthetic data and per-iteration streams.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Time only the plain classifier step.
    #[arg(long)]
    skip_jem: bool,
    /// Arithmetic of jem's SGLD passes (`train.sgld_precision`): fp32 (the peer's), bf16, or
    /// auto (bf16 where the CPU computes it natively, as the cpu preset trains).
    #[arg(long, value_enum, default_value = "fp32")]
    sgld_precision: PrecisionArg,
    /// Arithmetic of jem's training passes (`train.train_precision`): fp32, bf16 or auto.
    #[arg(long, value_enum, default_value = "fp32")]
    train_precision: PrecisionArg,
}

/// `fp32`, `bf16` or `auto` on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PrecisionArg {
    Fp32,
    Bf16,
    Auto,
}

impl From<PrecisionArg> for jem_model::Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::Fp32 => jem_model::Precision::Fp32,
            PrecisionArg::Bf16 => jem_model::Precision::Bf16,
            PrecisionArg::Auto => jem_model::Precision::Auto,
        }
    }
}

/// The bench of `mode` at `shape` with the command's precisions.
fn bench(
    args: &BenchStepArgs,
    shape: &BenchShape,
    mode: Mode,
    device: Device,
) -> Result<StepBench> {
    let mut cfg = shape.run_config(mode);
    cfg.train.sgld_precision = args.sgld_precision.into();
    cfg.train.train_precision = args.train_precision.into();
    Ok(StepBench::new(cfg, shape.synthetic_data()?, device)?)
}

/// One timed phase: per-call seconds of the measured and the warm-up calls, and the share of
/// the machine's CPU other processes used meanwhile.
struct Timings {
    times: Vec<f64>,
    warmup_times: Vec<f64>,
    other_cpu_frac: Option<f64>,
}

impl Timings {
    fn median(&self) -> f64 {
        median(&self.times)
    }
}

/// `threads` is jem's global `--threads` (already applied when given); the peer's default
/// applies otherwise, so both sides run with the same count unless told differently.
pub fn run(args: &BenchStepArgs, device: Device, threads: Option<i32>) -> Result<()> {
    ensure!(args.iters >= 1, "--iters must be at least 1");
    if threads.is_none() {
        tch::set_num_threads(PEER_DEFAULT_THREADS);
    }
    let shape = BenchShape {
        depth: args.depth,
        width: args.width,
        channels: args.channels,
        size: args.size,
        batch: args.batch,
        sgld_steps: args.sgld_steps,
        seed: args.seed,
    };

    let mut clf =
        bench(args, &shape, Mode::Baseline, device).context("building the classifier bench")?;
    let params = clf.parameters();
    let macs = clf.forward_macs_per_image() as f64;
    let gflop_fwd_batch = 2.0 * macs * args.batch as f64 / 1e9;
    let mut out = json!({
        "impl": "jem",
        "jem": env!("CARGO_PKG_VERSION"),
        "torch": LIBTORCH_VERSION,
        "device": format!("{device:?}"),
        "depth": args.depth,
        "width": args.width,
        "channels": args.channels,
        "size": args.size,
        "batch": args.batch,
        "sgld_steps": args.sgld_steps,
        "threads": tch::get_num_threads(),
        // What ran: `auto` resolved for this device.
        "sgld_precision": jem_model::Precision::from(args.sgld_precision).resolve(device).name(),
        "train_precision": jem_model::Precision::from(args.train_precision).resolve(device).name(),
        "allocator": allocator(),
        "params": params,
        "gmacs_per_image_fwd": macs / 1e9,
        "gflop_fwd_batch": gflop_fwd_batch,
    });
    let obj = out.as_object_mut().expect("a JSON object");

    let mut clf_diverged = 0usize;
    let clf_t = time_calls(args.warmup, args.iters, || {
        if let StepReport::Diverged(_) = clf.step()? {
            clf_diverged += 1;
        }
        Ok(())
    })?;
    drop(clf);
    insert_timings(obj, "clf", &clf_t);
    obj.insert("clf_sec_per_iter".into(), json!(clf_t.median()));
    obj.insert("clf_diverged".into(), json!(clf_diverged));
    // Forward + full backward ≈ 3 forward passes (the peer's FLOP model).
    obj.insert(
        "clf_achieved_gflops".into(),
        json!(3.0 * gflop_fwd_batch / clf_t.median()),
    );

    if !args.skip_jem {
        let mut jem = bench(args, &shape, Mode::Jem, device).context("building the JEM bench")?;
        let mut jem_diverged = 0usize;
        let mut final_loss = None;
        let jem_t = time_calls(args.warmup, args.iters, || {
            match jem.step()? {
                StepReport::Done { loss } => final_loss = Some(loss),
                StepReport::Diverged(reason) => {
                    tracing::warn!(%reason, "a timed JEM iteration diverged");
                    jem_diverged += 1;
                }
            }
            Ok(())
        })?;
        // The sampler call of the iteration on its own: buffer draw, SGLD, store.
        let sgld_t = time_calls(args.warmup, args.iters, || Ok(jem.sample()?))?;
        let steps = jem.sgld_steps().max(1) as f64;
        insert_timings(obj, "jem", &jem_t);
        obj.insert("jem_sec_per_iter".into(), json!(jem_t.median()));
        obj.insert("jem_diverged".into(), json!(jem_diverged));
        obj.insert("final_loss".into(), json!(final_loss));
        insert_timings(obj, "sgld", &sgld_t);
        obj.insert("sgld_sec_per_step".into(), json!(sgld_t.median() / steps));
        // Our iteration (unlabelled = labelled batch): the SGLD steps (forward + input-gradient
        // backward each), then one forward of the data batch giving logits and log p(x) and one
        // of the samples, each with a full backward: 2·steps + 6 forward-equivalents. The peer
        // does three separate passes (data, samples, labelled): 2·steps + 9.
        let passes = 2 * args.sgld_steps + 6;
        obj.insert("jem_fwd_passes_per_iter".into(), json!(passes));
        let passes = passes as f64;
        obj.insert("jem_gflop_per_iter".into(), json!(passes * gflop_fwd_batch));
        obj.insert(
            "jem_achieved_gflops".into(),
            json!(passes * gflop_fwd_batch / jem_t.median()),
        );
        obj.insert(
            "sgld_achieved_gflops".into(),
            json!(2.0 * gflop_fwd_batch / (sgld_t.median() / steps)),
        );
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// The glibc malloc settings this process runs with: the `mallopt` thresholds `jem` sets at
/// start (see `memory.rs`) and the `GLIBC_TUNABLES` it was started with, so `cargo xtask bench`
/// can show that both sides ran with the same allocator.
fn allocator() -> Value {
    let mallopt = cfg!(all(target_os = "linux", target_env = "gnu"));
    json!({
        "mallopt": mallopt,
        "mmap_threshold": mallopt.then_some(crate::memory::MMAP_THRESHOLD),
        "trim_threshold": mallopt.then_some(crate::memory::TRIM_THRESHOLD),
        "glibc_tunables": std::env::var("GLIBC_TUNABLES").ok(),
    })
}

/// Runs `call` `warmup` times untimed-for-the-median, then `iters` times timed.
fn time_calls(
    warmup: usize,
    iters: usize,
    mut call: impl FnMut() -> Result<()>,
) -> Result<Timings> {
    let mut warmup_times = Vec::with_capacity(warmup);
    for _ in 0..warmup {
        let started = Instant::now();
        call()?;
        warmup_times.push(started.elapsed().as_secs_f64());
    }
    let ticks_before = cpu_ticks();
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let started = Instant::now();
        call()?;
        times.push(started.elapsed().as_secs_f64());
    }
    let other_cpu_frac = match (ticks_before, cpu_ticks()) {
        (Some(a), Some(b)) => other_cpu_fraction(a, b, times.iter().sum()),
        _ => None,
    };
    Ok(Timings {
        times,
        warmup_times,
        other_cpu_frac,
    })
}

fn insert_timings(obj: &mut serde_json::Map<String, Value>, prefix: &str, t: &Timings) {
    let round = |v: &[f64]| -> Vec<f64> { v.iter().map(|s| (s * 1e4).round() / 1e4).collect() };
    obj.insert(format!("{prefix}_times"), json!(round(&t.times)));
    obj.insert(
        format!("{prefix}_warmup_times"),
        json!(round(&t.warmup_times)),
    );
    obj.insert(format!("{prefix}_other_cpu_frac"), json!(t.other_cpu_frac));
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// (busy ticks of the whole machine, ticks of this process) from `/proc`; `None` off Linux.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // Fields: user nice system idle iowait ...; busy = all but idle and iowait.
    let busy = cpu.iter().sum::<u64>() - cpu.get(3)? - cpu.get(4)?;
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: fields after its closing parenthesis; utime and stime
    // are the 14th and 15th fields of the line, the 12th and 13th after the name.
    let after_name: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
    let mine =
        after_name.get(11)?.parse::<u64>().ok()? + after_name.get(12)?.parse::<u64>().ok()?;
    Some((busy, mine))
}

/// Share of the machine's CPU time other processes used during `seconds` of timed calls, as the
/// peer computes it (a contention check: a loaded machine makes both sides' timings slow).
fn other_cpu_fraction(before: (u64, u64), after: (u64, u64), seconds: f64) -> Option<f64> {
    // SAFETY: sysconf only reads a system constant.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let total = seconds * ticks_per_s * cores;
    if total <= 0.0 {
        return None;
    }
    let busy = after.0.saturating_sub(before.0);
    let mine = after.1.saturating_sub(before.1);
    let frac = busy.saturating_sub(mine) as f64 / total;
    Some((frac * 1000.0).round() / 1000.0)
}
