//! `jem train`: the joint training loop with a live progress bar.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use jem_train::{Diagnostics, EpochMetrics, RecoveryEvent, RunConfig, RunInfo, TrainObserver};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use tch::Device;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The run config (TOML with [data], [model], [sampler], [train] sections), e.g. configs/cpu.toml.
    #[arg(long, value_name = "FILE.toml", required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Override one config value, e.g. `--set train.lr=1e-4` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// Run directory (default: runs/<config name>).
    #[arg(long, value_name = "RUN_DIR")]
    out: Option<PathBuf>,
    /// Continue an interrupted (or stopped) run from its last checkpoint.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "set", "out"])]
    resume: Option<PathBuf>,
    /// With --resume: a new `train.max_minutes` (training time, earlier runs included), e.g. to
    /// finish a run its time budget stopped. Budgets never change what a run computes.
    #[arg(
        long,
        value_name = "M",
        requires = "resume",
        conflicts_with = "extra_minutes"
    )]
    max_minutes: Option<f64>,
    /// With --resume: allow this many more minutes than the run has spent so far.
    #[arg(long, value_name = "M", requires = "resume")]
    extra_minutes: Option<f64>,
    /// With --resume: a new `train.max_iterations` (to extend a finished run's schedule).
    #[arg(long, value_name = "N", requires = "resume")]
    max_iterations: Option<u64>,
    /// No progress bar (plain log lines only).
    #[arg(long)]
    quiet: bool,
}

/// Set by SIGINT/SIGTERM: the loop stops cleanly and writes a resumable checkpoint.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_stop_handler() {
    let handler = request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

pub fn run(args: &TrainArgs, device: Device) -> Result<()> {
    install_stop_handler();
    let mut progress = Progress::new(args.quiet);
    let summary = match &args.resume {
        Some(run_dir) => {
            let budget = jem_train::Budget {
                max_minutes: args.max_minutes,
                extra_minutes: args.extra_minutes,
                max_iterations: args.max_iterations,
            };
            jem_train::resume_with_budget(run_dir, &budget, device, &mut progress)
                .with_context(|| format!("resuming {}", run_dir.display()))?
        }
        None => {
            let path = args
                .config
                .as_deref()
                .expect("clap requires --config without --resume");
            let cfg = RunConfig::from_file(path, &args.set)?;
            let run_dir = match &args.out {
                Some(dir) => dir.clone(),
                None => default_run_dir(path),
            };
            if run_dir.join(jem_train::files::LAST).exists() {
                bail!(
                    "{} already holds a run: continue it with `jem train --resume {}` or choose another --out",
                    run_dir.display(),
                    run_dir.display()
                );
            }
            jem_train::train(cfg, &run_dir, device, &mut progress)?
        }
    };
    progress.finish();
    // The summary.json the trainer wrote, as xtask reads it (`jem_report::TrainSummary`).
    print_summary(&crate::report::train_summary(&summary));
    Ok(())
}

fn default_run_dir(config: &Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    PathBuf::from("runs").join(stem)
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2}%", 100.0 * v))
        .unwrap_or_else(|| "-".into())
}

fn print_summary(s: &jem_report::TrainSummary) {
    println!("| run | {} |", s.run_dir.display());
    println!("|---|---|");
    println!("| mode | {:?} |", s.mode);
    println!(
        "| iterations | {} of {} ({} epochs) |",
        s.iterations, s.planned_iterations, s.epochs_completed
    );
    println!(
        "| final valid / test accuracy | {} / {} |",
        pct(s.final_valid_acc),
        pct(s.final_test_acc)
    );
    println!(
        "| best valid / its test accuracy | {} / {} (epoch {}) |",
        pct(s.best_valid_acc),
        pct(s.best_test_acc),
        s.best_epoch
            .map(|e| e.to_string())
            .unwrap_or_else(|| "-".into())
    );
    println!("| divergence recoveries | {} |", s.recoveries);
    if let (Some(sgld), Some(train)) = (&s.sgld_precision, &s.train_precision) {
        println!("| SGLD / training arithmetic | {sgld} / {train} |");
    }
    println!("| wall time | {:.1} min |", s.wall_time_s / 60.0);
    println!("| stopped because | {:?} |", s.stop_reason);
    if !s.model_checkpoint.is_empty() {
        println!("| evaluations use | {} |", s.model_checkpoint);
    }
    if !s.complete {
        eprintln!(
            "WARNING: the run is INCOMPLETE ({} of {} iterations, stopped by {:?}): its model is \
             not the configured recipe's. Finish it with `jem train --resume {} --extra-minutes M`.",
            s.iterations,
            s.planned_iterations,
            s.stop_reason,
            s.run_dir.display()
        );
    }
}

/// Drives the progress bar from the trainer's hooks.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        Progress {
            bar: (!quiet).then(ProgressBar::hidden),
        }
    }

    fn println(&self, line: String) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl TrainObserver for Progress {
    fn on_start(&mut self, info: &RunInfo) {
        self.println(format!(
            "run {}: {} parameters, {} iterations per epoch, {} in total",
            info.run_dir.display(),
            info.parameters,
            info.iterations_per_epoch,
            info.total_iterations
        ));
        if self.bar.is_some() {
            let bar = ProgressBar::new(info.total_iterations);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} ({eta}) {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_position(info.start_iteration);
            self.bar = Some(bar);
        }
    }

    fn on_iteration(&mut self, iteration: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(iteration);
        }
    }

    fn on_diagnostics(&mut self, d: &Diagnostics) {
        let gap = d
            .energy_gap
            .map(|g| format!(" gap {g:+.2}"))
            .unwrap_or_default();
        let msg = format!(
            "loss {:.3} ce {:.3} acc {:.1}%{gap} lr {:.1e} {:.2} it/s",
            d.loss,
            d.ce,
            100.0 * d.train_acc,
            d.lr,
            d.its_per_sec
        );
        match &self.bar {
            Some(bar) => bar.set_message(msg),
            None => eprintln!("it {} {msg}", d.iteration),
        }
    }

    fn on_epoch(&mut self, m: &EpochMetrics) {
        self.println(format!(
            "epoch {} (it {}): valid {} test {} train {}{} [{:.1} min]",
            m.epoch,
            m.iteration,
            pct(m.valid_acc),
            pct(Some(m.test_acc)),
            pct(Some(m.train_acc)),
            if m.is_best { " (best)" } else { "" },
            m.elapsed_s / 60.0
        ));
    }

    fn on_recovery(&mut self, e: &RecoveryEvent) {
        self.println(format!(
            "divergence at iteration {}: {}; rolled back to {}, remedy {:?} (attempt {}; lr x{}, {} SGLD steps)",
            e.iteration, e.detected, e.rolled_back_to, e.remedy, e.attempt, e.lr_scale, e.sgld_steps
        ));
    }

    fn should_stop(&mut self) -> bool {
        STOP.load(Ordering::SeqCst)
    }
}
