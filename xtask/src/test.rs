//! `cargo xtask test`: set up, then the checks cheapest first.

use crate::libtorch::{self, cache::COMPLETE_MARKER, pins::CHECKPOINT_CHECK, pip_install_pinned};
use crate::setup::{self, SetupArgs};
use crate::util::{run_checked, workspace_root};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args)]
pub struct TestArgs {
    /// Do not install numpy and safetensors for the Python check of jem checkpoints (the
    /// test is then skipped unless `python3` imports both).
    #[arg(long)]
    pub no_python_check: bool,

    /// Extra arguments passed to `cargo test` (after `--workspace`).
    #[arg(trailing_var_arg = true)]
    pub cargo_test_args: Vec<String>,
}

pub fn run(args: &TestArgs) -> Result<()> {
    setup::run(&SetupArgs { no_data: false })?;
    let python_check = if args.no_python_check {
        None
    } else {
        Some(checkpoint_check_python()?)
    };
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
    let mut test = Command::new(&cargo);
    test.current_dir(&root)
        .args(["test", "--workspace"])
        .args(&args.cargo_test_args);
    if let Some(dir) = &python_check {
        // Makes the safetensors/numpy check of jem checkpoints required (torch_interop.rs).
        test.env("JEM_SAFETENSORS_PYTHONPATH", dir);
    }
    run_checked(&mut test)?;
    eprintln!(
        "all checks passed: fmt+clippy {:.0} s, tests {:.0} s",
        lint.as_secs_f64(),
        (started.elapsed() - lint).as_secs_f64()
    );
    Ok(())
}

/// numpy and safetensors (pinned, [`CHECKPOINT_CHECK`]) installed once into the cache for the
/// Python check of jem checkpoints; returns their directory (a `PYTHONPATH` entry).
fn checkpoint_check_python() -> Result<PathBuf> {
    let cache = libtorch::cache_dir()?;
    let name = CHECKPOINT_CHECK
        .iter()
        .map(|p| p.requirement.replace("==", "-"))
        .collect::<Vec<_>>()
        .join("-");
    let dir = cache.join(format!("python-checkpoint-check-{name}"));
    if dir.join(COMPLETE_MARKER).is_file() {
        return Ok(dir);
    }
    let _lock = libtorch::cache::lock_cache(&cache)?;
    libtorch::install_once(&dir, |partial| {
        eprintln!(
            "installing numpy and safetensors for the Python check of jem checkpoints into {} \
             (pinned by sha256; --no-python-check skips it)",
            dir.display()
        );
        let python = libtorch::python()?;
        let pins: Vec<_> = CHECKPOINT_CHECK.iter().collect();
        pip_install_pinned(&python, partial, &pins).context(
            "installing numpy and safetensors with pip failed (numpy 2.2.6 has wheels for \
             CPython 3.10 to 3.13; run with --no-python-check to skip the check)",
        )
    })?;
    Ok(dir)
}
