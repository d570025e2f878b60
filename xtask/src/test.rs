//! `cargo xtask test`: set up, then the checks cheapest first.

use crate::setup::{self, SetupArgs};
use crate::util::{run_checked, workspace_root};
use anyhow::Result;
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args)]
pub struct TestArgs {
    /// Extra arguments passed to `cargo test` (after `--workspace`).
    #[arg(trailing_var_arg = true)]
    pub cargo_test_args: Vec<String>,
}

pub fn run(args: &TestArgs) -> Result<()> {
    setup::run(&SetupArgs { no_data: false })?;
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    run_checked(
        Command::new(&cargo)
            .current_dir(&root)
            .args(["fmt", "--all", "--check"]),
    )?;
    run_checked(Command::new(&cargo).current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let lint = started.elapsed();
    run_checked(
        Command::new(&cargo)
            .current_dir(&root)
            .args(["test", "--workspace"])
            .args(&args.cargo_test_args),
    )?;
    eprintln!(
        "all checks passed: fmt+clippy {:.0} s, tests {:.0} s",
        lint.as_secs_f64(),
        (started.elapsed() - lint).as_secs_f64()
    );
    Ok(())
}
