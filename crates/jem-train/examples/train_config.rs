//! Trains (or resumes) a run from a config file, printing the diagnostics.
//!
//! ```text
//! cargo run --release -p jem-train --example train_config -- configs/cpu.toml runs/cpu \
//!     [--threads N] [--set section.key=value ...]
//! cargo run --release -p jem-train --example train_config -- --resume runs/cpu
//! ```

use std::path::PathBuf;

use jem_train::{
    resume, train, Diagnostics, EpochMetrics, RecoveryEvent, RunConfig, TrainObserver,
};
use tch::Device;

struct Printer;

impl TrainObserver for Printer {
    fn on_diagnostics(&mut self, d: &Diagnostics) {
        println!(
            "it {:>6} ep {:>3} lr {:.2e} loss {:>9.4} ce {:.4} px {:>9.4} logp(data) {:>9.3} logp(sample) {:>9.3} acc {:.3} {:.2} it/s",
            d.iteration,
            d.epoch,
            d.lr,
            d.loss,
            d.ce,
            d.px_term,
            d.logpx_data.unwrap_or(f64::NAN),
            d.logpx_sample.unwrap_or(f64::NAN),
            d.train_acc,
            d.its_per_sec
        );
    }

    fn on_epoch(&mut self, m: &EpochMetrics) {
        println!(
            "epoch {} (it {}): valid {:?} test {:.4} train {:.4}",
            m.epoch, m.iteration, m.valid_acc, m.test_acc, m.train_acc
        );
    }

    fn on_recovery(&mut self, e: &RecoveryEvent) {
        println!(
            "RECOVERY #{} at it {}: {} -> {}",
            e.attempt, e.iteration, e.detected, e.remedy
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut overrides = Vec::new();
    let mut resume_dir = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--set" => overrides.push(it.next().ok_or("--set needs a value")?),
            "--threads" => tch::set_num_threads(it.next().ok_or("--threads needs N")?.parse()?),
            "--resume" => {
                resume_dir = Some(PathBuf::from(it.next().ok_or("--resume needs a dir")?))
            }
            _ => positional.push(a),
        }
    }
    let summary = if let Some(dir) = resume_dir {
        resume(&dir, Device::Cpu, &mut Printer)?
    } else {
        let [config, run_dir] = positional.as_slice() else {
            return Err(
                "usage: train_config CONFIG RUN_DIR [--set k=v ...] | --resume RUN_DIR".into(),
            );
        };
        let cfg = RunConfig::from_file(config.as_ref(), &overrides)?;
        train(cfg, run_dir.as_ref(), Device::Cpu, &mut Printer)?
    };
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
