//! `jem import`: a checkpoint of the official PyTorch JEM code as a jem run.

use anyhow::{Context, Result};
use jem_train::RunConfig;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The checkpoint, as the official JEM code saves it:
    /// `torch.save({"model_state_dict": ..., "replay_buffer": ...}, PATH)` (zip format, torch >= 1.6).
    #[arg(long = "from", value_name = "PATH.pt")]
    from: PathBuf,
    /// The run config describing the checkpoint's model, data and sampler (TOML), e.g.
    /// configs/paper.toml for the paper's WRN-28-10 on CIFAR-10.
    #[arg(long, value_name = "FILE.toml")]
    config: PathBuf,
    /// Override one config value, e.g. `--set model.norm=batch` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// The run directory to write (it must not hold a checkpoint yet).
    #[arg(long, value_name = "RUN_DIR")]
    out: PathBuf,
}

pub fn run(args: &ImportArgs) -> Result<()> {
    let cfg = RunConfig::from_file(&args.config, &args.set)?;
    let report = jem_train::import::import_reference(&args.from, cfg, &args.out)
        .with_context(|| format!("importing {}", args.from.display()))?;
    println!(
        "imported {} ({} bytes) into {}",
        report.source.display(),
        report.source_bytes,
        report.checkpoint.display()
    );
    println!("  model tensors: {}", report.model_tensors);
    match &report.buffer_shape {
        Some(shape) => println!("  replay buffer: {shape:?}"),
        None => println!("  replay buffer: none in the file"),
    }
    if !report.dropped.is_empty() {
        println!(
            "  left out (no jem variable): {}",
            report.dropped.join(", ")
        );
    }
    if !report.ignored.is_empty() {
        println!("  ignored entries: {}", report.ignored.join(", "));
    }
    println!(
        "evaluate it with `jem eval --checkpoint {0}`, `jem calibrate --checkpoint {0}`, \
         `jem sample --checkpoint {0}`",
        args.out.display()
    );
    Ok(())
}
