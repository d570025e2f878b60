//! Runs a plan: trains (or resumes) the models and runs the jobs not cached, several at once
//! (`--jobs`), with progress.

use super::plan::{finished_summary, ModelRun, ModelStatus, Plan, PlannedJob};
use super::schedule::{self, Scheduler, Task};
use crate::util::describe;
use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// How many tasks run at once and with how many libtorch threads each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workers {
    /// Tasks at once (`--jobs`).
    pub jobs: usize,
    /// `jem --threads` of each, `None` for libtorch's choice.
    pub threads: Option<usize>,
}

impl Workers {
    /// `--jobs N` (`None`: two on a CPU with at least two cores, else one) with the cores shared
    /// evenly between them; one task alone keeps libtorch's own choice of threads.
    pub fn new(jobs: Option<usize>, device: &str, cores: usize) -> Result<Workers> {
        let cores = cores.max(1);
        let jobs = match jobs {
            Some(0) => bail!("--jobs must be at least 1, got 0"),
            Some(n) => n,
            None if device.eq_ignore_ascii_case("cpu") && cores >= 2 => 2,
            None => 1,
        };
        let threads = (jobs > 1).then(|| (cores / jobs).max(1));
        Ok(Workers { jobs, threads })
    }
}

fn jem_cmd(
    jem: &Path,
    root: &Path,
    device: &str,
    threads: Option<usize>,
    argv: &[String],
) -> Command {
    let mut cmd = Command::new(jem);
    cmd.current_dir(root).args(["--device", device]);
    if let Some(t) = threads {
        cmd.args(["--threads", &t.to_string()]);
    }
    cmd.args(argv);
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

/// The end of a log, for an error message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(30).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    tail.join("\n")
}

/// Starts `cmd` with its output in `log`.
fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<Child> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = file.try_clone()?;
    cmd.stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .with_context(|| format!("could not start `{}`", describe(cmd)))
}

fn minutes(d: Duration) -> String {
    format!("{:.1} min", d.as_secs_f64() / 60.0)
}

/// A task running in the background.
struct Running<'a> {
    index: usize,
    task: Task<'a>,
    child: Child,
    cmd: String,
    log: PathBuf,
    bar: ProgressBar,
    started: Instant,
}

/// Prints `line` above the spinners.
fn say(bars: &MultiProgress, line: &str) {
    bars.suspend(|| eprintln!("{line}"));
}

/// Trains and runs everything `targets` need (the others' are skipped), `workers.jobs` tasks at
/// a time in the order of [`schedule`](super::schedule).
pub fn execute(
    plan: &Plan,
    targets: &BTreeSet<&'static str>,
    jem: &Path,
    root: &Path,
    device: &str,
    workers: Workers,
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
    let runs: Vec<&ModelRun> = plan
        .runs
        .iter()
        .filter(|r| needed.contains(&(r.id, r.seed)))
        .collect();
    let mut counts = Counts::default();
    for run in runs.iter().filter(|r| r.status == ModelStatus::Cached) {
        eprintln!(
            "{} seed {}: finished run in {} reused",
            run.id,
            run.seed,
            run.dir.display()
        );
        counts.reused += 1;
    }
    counts.jobs_cached = jobs.iter().filter(|j| j.cached).count();
    let (tasks, nodes) = schedule::tasks(&runs, &jobs);
    let steps = tasks.len();
    if workers.jobs > 1 && steps > 1 {
        eprintln!(
            "{steps} task(s), {} at a time with {} libtorch thread(s) each (--jobs), about {:.0} \
             min",
            workers.jobs,
            workers.threads.unwrap_or(1),
            schedule::simulate(&nodes, workers.jobs)
        );
    }
    let mut scheduler = Scheduler::new(nodes)?;
    let bars = MultiProgress::new();
    let mut running: Vec<Running> = Vec::new();
    let mut step = 0;
    let result = (|| -> Result<()> {
        loop {
            while running.len() < workers.jobs {
                let Some(index) = scheduler.next() else { break };
                step += 1;
                let task = tasks[index];
                let (what, mut cmd, log) = prepare(task, jem, root, device, workers.threads)?;
                say(&bars, &format!("[{step}/{steps}] {what}"));
                let inherit = workers.jobs == 1
                    && match task {
                        Task::Train(_) => true,
                        Task::Job(job) => job.job.own_progress,
                    };
                let started = Instant::now();
                if inherit {
                    run_inherit(&mut cmd)?;
                    finished(task, &describe(&cmd), started, &bars, &mut counts)?;
                    scheduler.finish(index);
                    continue;
                }
                let line = describe(&cmd);
                say(&bars, &format!("$ {line}"));
                let child = spawn_logged(&mut cmd, &log)?;
                let bar = bars.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                        .expect("valid template"),
                );
                bar.set_message(format!("{} (log: {})", short_name(task), log.display()));
                bar.enable_steady_tick(Duration::from_millis(200));
                running.push(Running {
                    index,
                    task,
                    child,
                    cmd: line,
                    log,
                    bar,
                    started,
                });
            }
            if running.is_empty() {
                if scheduler.done() {
                    return Ok(());
                }
                bail!("internal: tasks remain but none can start");
            }
            let mut ended = None;
            for (at, r) in running.iter_mut().enumerate() {
                if let Some(status) = r.child.try_wait()? {
                    ended = Some((at, status));
                    break;
                }
            }
            let Some((at, status)) = ended else {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            };
            let r = running.swap_remove(at);
            r.bar.finish_and_clear();
            bars.remove(&r.bar);
            if !status.success() {
                bail!(
                    "`{}` failed with {status}; the end of {}:\n{}",
                    r.cmd,
                    r.log.display(),
                    log_tail(&r.log)
                );
            }
            finished(r.task, &r.cmd, r.started, &bars, &mut counts)?;
            scheduler.finish(r.index);
        }
    })();
    if result.is_err() {
        // The others stop too: an interrupted training resumes and a command reruns next time.
        for mut r in running {
            let _ = r.child.kill();
            let _ = r.child.wait();
            r.bar.finish_and_clear();
        }
    }
    result?;
    Ok(counts)
}

fn short_name(task: Task) -> String {
    match task {
        Task::Train(run) => format!("training {} seed {}", run.id, run.seed),
        Task::Job(job) => job.job.what.clone(),
    }
}

/// Gets `task` ready to start: its directories, its command and where its output goes.
fn prepare(
    task: Task,
    jem: &Path,
    root: &Path,
    device: &str,
    threads: Option<usize>,
) -> Result<(String, Command, PathBuf)> {
    match task {
        Task::Train(run) => {
            let what = format!(
                "{} {} seed {} (about {:.0} min{})",
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
            let log = parent.join(format!("seed{}.log", run.seed));
            Ok((
                what,
                jem_cmd(jem, root, device, threads, &run.train_args()),
                log,
            ))
        }
        Task::Job(job) => {
            let what = format!(
                "{} (about {:.0} min, a guess)",
                job.job.what, job.job.est_minutes
            );
            std::fs::create_dir_all(&job.dir)
                .with_context(|| format!("creating {}", job.dir.display()))?;
            let cmd = jem_cmd(jem, root, device, threads, &job.argv);
            std::fs::write(job.dir.join("command.txt"), describe(&cmd) + "\n")
                .with_context(|| format!("writing into {}", job.dir.display()))?;
            Ok((what, cmd, job.dir.join("log.txt")))
        }
    }
}

/// Checks what a task that exited successfully left, and counts it.
fn finished(
    task: Task,
    cmd: &str,
    started: Instant,
    bars: &MultiProgress,
    counts: &mut Counts,
) -> Result<()> {
    match task {
        Task::Train(run) => {
            if finished_summary(&run.dir)?.is_none() {
                bail!(
                    "training {} seed {} stopped before the end (interrupted?): run the same \
                     command again to resume it from {}",
                    run.id,
                    run.seed,
                    run.dir.display()
                );
            }
            say(
                bars,
                &format!(
                    "{} seed {} trained in {}",
                    run.id,
                    run.seed,
                    minutes(started.elapsed())
                ),
            );
            match run.status {
                ModelStatus::Resume => counts.resumed += 1,
                _ => counts.trained += 1,
            }
        }
        Task::Job(job) => {
            let report = job.dir.join(&job.job.report);
            if !report.is_file() {
                bail!("`{cmd}` succeeded but did not write {}", report.display());
            }
            say(
                bars,
                &format!("{} done in {}", job.job.what, minutes(started.elapsed())),
            );
            counts.jobs_run += 1;
        }
    }
    Ok(())
}
