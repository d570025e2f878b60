//! `cargo xtask <command>`: set-up, tests and experiments for the jem workspace.
//!
//! xtask builds before libtorch exists (it depends on no jem crate but the serde-only
//! jem-report, and not on tch), which is what lets it provision libtorch in the first place.

mod bench;
mod dataset;
mod libtorch;
mod reproduce;
mod setup;
mod test;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "jem project chores and experiments")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what the workspace needs: libtorch 2.13.0 (from PyPI's torch wheel, into a cache
    /// outside the repository) and the Fashion-MNIST data set (Debian package) when absent.
    Setup(setup::SetupArgs),
    /// Set up, then run the checks cheapest first: rustfmt, clippy (warnings denied), all tests.
    Test(test::TestArgs),
    /// Reproduce a table or figure of the JEM paper (cpu preset by default).
    Reproduce(reproduce::ReproduceArgs),
    /// Time our JEM iteration against the independent PyTorch peer on synthetic data
    /// (runs/bench/bench.md and bench.json).
    Bench(bench::BenchArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Setup(args) => setup::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Reproduce(args) => reproduce::run(&args),
        Command::Bench(args) => bench::run(&args),
    }
}
