//! `jem`: the command line over the jem crates.

mod args;
mod attack;
mod bench;
mod device;
mod evaluate;
mod generative;
mod import;
mod info;
mod memory;
mod metrics;
mod report;
mod sample;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Library info logs, except the trainer's per-iteration lines: the progress bar shows those
/// (`JEM_LOG=info` brings them back).
const DEFAULT_LOG_FILTER: &str = "info,jem_train::trainer=warn";

#[derive(Parser)]
#[command(
    name = "jem",
    version,
    about = "Joint Energy-based Models: train, evaluate, sample"
)]
struct Cli {
    /// Where tensors live: `cpu`, `cuda` or `cuda:N`. `cuda` without a GPU is an error.
    #[arg(long, global = true, default_value = "cpu")]
    device: String,
    /// Number of intra-op CPU threads for libtorch (default: libtorch's choice).
    #[arg(long, global = true)]
    threads: Option<i32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the libtorch build, the devices it sees and the chosen device.
    Info(info::InfoArgs),
    /// Metric math on your own .npy arrays: auroc, ece, fid, is.
    Metrics(metrics::MetricsArgs),
    /// Train a JEM (or the baseline classifier) from a TOML config; resumable.
    Train(train::TrainArgs),
    /// OOD detection of a trained model: AUROC, AUPR, FPR95 per score and OOD set, histograms.
    Eval(evaluate::EvalArgs),
    /// Calibration of a trained model: ECE, accuracy, NLL and the reliability diagram.
    Calibrate(evaluate::CalibrateArgs),
    /// Draw samples with SGLD (from the replay buffer or noise), as .npy and PNG grids.
    Sample(sample::SampleArgs),
    /// Inception Score and FID of SGLD samples (optionally the top percentile by p(y|x)).
    Generative(generative::GenerativeArgs),
    /// Grids of the test images with the highest and lowest log p(x) and max p(y|x).
    Extremes(generative::ExtremesArgs),
    /// Adversarial robustness: PGD (L∞/L2) through SGLD refinement, boundary, pointwise,
    /// transfer and distal attacks; curves as CSV, JSON and PNG.
    Attack(attack::AttackArgs),
    /// Import a checkpoint of the official PyTorch JEM code (`.pt`) as a jem run directory.
    Import(import::ImportArgs),
    /// Time the training iteration on synthetic data (JSON line; see `cargo xtask bench`).
    BenchStep(bench::BenchStepArgs),
}

fn main() -> Result<()> {
    memory::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JEM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Some(threads) = cli.threads {
        anyhow::ensure!(threads >= 1, "--threads must be at least 1, got {threads}");
        tch::set_num_threads(threads);
    }
    let device = device::parse_device(&cli.device)?;
    match cli.command {
        Command::Info(args) => info::run(&args, device),
        Command::Metrics(args) => metrics::run(&args),
        Command::Train(args) => train::run(&args, device),
        Command::Eval(args) => evaluate::eval(&args, device),
        Command::Calibrate(args) => evaluate::calibrate(&args, device),
        Command::Sample(args) => sample::run(&args, device),
        Command::Attack(args) => attack::run(&args, device),
        Command::Generative(args) => generative::generative(&args, device),
        Command::Extremes(args) => generative::extremes(&args, device),
        Command::Import(args) => import::run(&args),
        Command::BenchStep(args) => bench::run(&args, device, cli.threads),
    }
}
