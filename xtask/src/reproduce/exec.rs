//! Runs a plan: trains (or resumes) the models, then the jobs not cached, with progress.

use super::plan::{finished_summary, ModelStatus, Plan, PlannedJob};
use crate::util::describe;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the run did.
#[derive(Debug, Default)]
pub struct Counts {
    /// Models trained from scratch.
    pub trained: usize,
    /// Interrupted models resumed.
    pub resumed: usize,
    /// Finished models reused.
    pub reused: usize,
    /// Jobs run.
    pub jobs_run: usize,
    /// Jobs whose outputs were reused.
    pub jobs_cached: usize,
}

fn jem_cmd(jem: &Path, root: &Path, device: &str, argv: &[String]) -> Command {
    let mut cmd = Command::new(jem);
    cmd.current_dir(root).args(["--device", device]).args(argv);
    cmd
}

/// Runs `cmd` with its own output (it draws its own progress bar).
fn run_inherit(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` under a spinner with elapsed time, its output in `log`; on failure the end of the
/// log is shown.
fn run_spinner(cmd: &mut Command, what: &str, log: &Path) -> Result<()> {
    eprintln!("$ {}", describe(cmd));
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = file.try_clone()?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .expect("valid template"),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    let status = cmd
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .status()
        .with_context(|| format!("could not start `{}`", describe(cmd)));
    bar.finish_and_clear();
    let status = status?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "`{}` failed with {status}; the end of {}:\n{}",
            describe(cmd),
            log.display(),
            tail.join("\n")
        );
    }
    Ok(())
}

fn minutes(d: Duration) -> String {
    format!("{:.1} min", d.as_secs_f64() / 60.0)
}

/// Trains and runs everything `targets` need (the others' are skipped).
pub fn execute(
    plan: &Plan,
    targets: &BTreeSet<&'static str>,
    jem: &Path,
    root: &Path,
    device: &str,
) -> Result<Counts> {
    let jobs: Vec<&PlannedJob> = plan
        .jobs
        .iter()
        .filter(|j| j.targets.iter().any(|t| targets.contains(t)))
        .collect();
    let mut needed: BTreeSet<(super::models::ModelId, u64)> = BTreeSet::new();
    for t in &plan.targets {
        if targets.contains(t.name) {
            for id in (t.models)(&plan.preset) {
                for &s in &plan.seeds {
                    needed.insert((id, s));
                }
            }
        }
    }
    for j in &jobs {
        needed.extend(j.job.models());
    }
    let runs: Vec<_> = plan
        .runs
        .iter()
        .filter(|r| needed.contains(&(r.id, r.seed)))
        .collect();
    let steps = runs
        .iter()
        .filter(|r| r.status != ModelStatus::Cached)
        .count()
        + jobs.iter().filter(|j| !j.cached).count();
    let mut step = 0;
    let mut counts = Counts::default();
    for run in runs {
        if run.status == ModelStatus::Cached {
            eprintln!(
                "{} seed {}: finished run in {} reused",
                run.id,
                run.seed,
                run.dir.display()
            );
            counts.reused += 1;
            continue;
        }
        step += 1;
        eprintln!(
            "[{step}/{steps}] {} {} seed {} (about {:.0} min{})",
            if run.status == ModelStatus::Resume {
                "resuming"
            } else {
                "training"
            },
            run.id,
            run.seed,
            run.spec.est_minutes,
            if run.spec.est_measured {
                ""
            } else {
                ", a guess"
            }
        );
        if run.status == ModelStatus::Train && run.dir.exists() {
            // --force, or a directory without a checkpoint: start afresh.
            std::fs::remove_dir_all(&run.dir)
                .with_context(|| format!("removing {}", run.dir.display()))?;
        }
        let parent = run.dir.parent().unwrap_or(&run.dir);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        // The resolved config the directory name hashes, for the record.
        std::fs::write(parent.join("resolved-config.json"), &run.canonical)
            .with_context(|| format!("writing into {}", parent.display()))?;
        let started = Instant::now();
        run_inherit(&mut jem_cmd(jem, root, device, &run.train_args()))?;
        if finished_summary(&run.dir)?.is_none() {
            bail!(
                "training {} seed {} stopped before the end (interrupted?): run the same command \
                 again to resume it from {}",
                run.id,
                run.seed,
                run.dir.display()
            );
        }
        eprintln!(
            "{} seed {} trained in {}",
            run.id,
            run.seed,
            minutes(started.elapsed())
        );
        match run.status {
            ModelStatus::Resume => counts.resumed += 1,
            _ => counts.trained += 1,
        }
    }
    for job in jobs {
        if job.cached {
            counts.jobs_cached += 1;
            continue;
        }
        step += 1;
        eprintln!(
            "[{step}/{steps}] {} (about {:.0} min, a guess)",
            job.job.what, job.job.est_minutes
        );
        std::fs::create_dir_all(&job.dir)
            .with_context(|| format!("creating {}", job.dir.display()))?;
        let mut cmd = jem_cmd(jem, root, device, &job.argv);
        std::fs::write(job.dir.join("command.txt"), describe(&cmd) + "\n")
            .with_context(|| format!("writing into {}", job.dir.display()))?;
        let started = Instant::now();
        if job.job.own_progress {
            run_inherit(&mut cmd)?;
        } else {
            run_spinner(&mut cmd, &job.job.what, &job.dir.join("log.txt"))?;
        }
        let report = job.dir.join(&job.job.report);
        if !report.is_file() {
            bail!(
                "`{}` succeeded but did not write {}",
                describe(&cmd),
                report.display()
            );
        }
        eprintln!("{} done in {}", job.job.what, minutes(started.elapsed()));
        counts.jobs_run += 1;
    }
    Ok(counts)
}
