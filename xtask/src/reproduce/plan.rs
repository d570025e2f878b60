//! The plan of a reproduction: which models to train (cached, resumed or new), which `jem`
//! commands to run on them (cached or not), in order. `--dry-run` prints it; the executor runs it.

use super::cache;
use super::models::{ModelId, ModelSpec};
use super::preset::Preset;
use super::targets::TargetDef;
use anyhow::{bail, Context, Result};
use jem_report::{files, TrainSummary};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One argument of a `jem` command of a job.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// A literal argument.
    Lit(String),
    /// The run directory of a trained model.
    Run(ModelId, u64),
    /// `NAME=RUN_DIR` (for `jem attack --checkpoint`).
    Named(ModelId, u64),
    /// A file written by an earlier job of the same target (by its key).
    JobFile(String, String),
}

/// Literal arguments.
pub fn lits(items: &[&str]) -> Vec<Arg> {
    items.iter().map(|s| Arg::Lit(s.to_string())).collect()
}

/// A `jem` command a target runs on trained models. Its output directory is chosen by the plan
/// from a hash of the command (so targets asking for the same command share one run).
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Unique within its target; assembly finds the output by it.
    pub key: String,
    /// What it is for (`--dry-run`, progress).
    pub what: String,
    /// The `jem` subcommand (`eval`, `calibrate`, `generative`, `sample`, `extremes`, `attack`).
    pub subcommand: &'static str,
    /// Its arguments; the plan appends `--out DIR`.
    pub args: Vec<Arg>,
    /// The file in the output directory whose presence marks the job done.
    pub report: String,
    /// Flags of the subcommand this job needs that the `jem` of today may lack (checked in
    /// `jem SUBCOMMAND --help` before anything runs).
    pub needs: Vec<&'static str>,
    /// Rough minutes.
    pub est_minutes: f64,
    /// Whether the command draws its own progress bar (else the runner shows a spinner and
    /// keeps the output in a log file).
    pub own_progress: bool,
}

impl Job {
    /// A job with no special needs.
    pub fn new(
        key: impl Into<String>,
        what: impl Into<String>,
        subcommand: &'static str,
        args: Vec<Arg>,
        report: impl Into<String>,
        est_minutes: f64,
    ) -> Job {
        Job {
            key: key.into(),
            what: what.into(),
            subcommand,
            args,
            report: report.into(),
            needs: Vec::new(),
            est_minutes,
            own_progress: false,
        }
    }

    /// The models it reads.
    pub fn models(&self) -> Vec<(ModelId, u64)> {
        self.args
            .iter()
            .filter_map(|a| match a {
                Arg::Run(m, s) | Arg::Named(m, s) => Some((*m, *s)),
                _ => None,
            })
            .collect()
    }
}

/// Whether a model must be trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelStatus {
    /// A finished run is there (its `summary.json` says so): reused.
    Cached,
    /// An interrupted run is there: `jem train --resume`.
    Resume,
    /// Nothing usable: trained from scratch.
    Train,
}

/// A model of the plan at one seed.
#[derive(Clone, Debug)]
pub struct ModelRun {
    /// Which model.
    pub id: ModelId,
    /// Its seed (`train.seed` and `data.seed`).
    pub seed: u64,
    /// How it is trained on this preset.
    pub spec: ModelSpec,
    /// SHA-256 of its resolved config (without the seed).
    pub hash: String,
    /// The canonical resolved config (what the hash is of).
    pub canonical: String,
    /// Its run directory.
    pub dir: PathBuf,
    /// What must happen to it.
    pub status: ModelStatus,
}

impl ModelRun {
    /// `name-hash/seedN`: how jobs name it in their own hashes.
    pub fn cache_id(&self) -> String {
        format!("{}-{}/seed{}", self.id, cache::short(&self.hash), self.seed)
    }

    /// The `jem train` arguments (after `jem --device D`).
    pub fn train_args(&self) -> Vec<String> {
        match self.status {
            ModelStatus::Resume => vec![
                "train".into(),
                "--resume".into(),
                self.dir.display().to_string(),
            ],
            _ => {
                let mut v = vec![
                    "train".into(),
                    "--config".into(),
                    self.spec.config.to_string(),
                ];
                for o in self.seeded_overrides() {
                    v.push("--set".into());
                    v.push(o);
                }
                v.push("--out".into());
                v.push(self.dir.display().to_string());
                v
            }
        }
    }

    /// The model's overrides plus the seed's: a replicate differs in everything random
    /// (initialisation, SGLD noise, the validation split and the batch order).
    pub fn seeded_overrides(&self) -> Vec<String> {
        let mut o = self.spec.overrides.clone();
        o.push(format!("train.seed={}", self.seed));
        o.push(format!("data.seed={}", self.seed));
        o
    }
}

/// A job of the plan with its resolved command.
#[derive(Clone, Debug)]
pub struct PlannedJob {
    /// The job (as the first target that asked for it wrote it).
    pub job: Job,
    /// SHA-256 of the command (models named by their cache ids).
    pub hash: String,
    /// Its output directory.
    pub dir: PathBuf,
    /// The arguments after `jem --device D`, `--out DIR` included.
    pub argv: Vec<String>,
    /// Whether its report is there and newer than its inputs.
    pub cached: bool,
    /// Output directories of the earlier jobs whose files it reads.
    pub after: Vec<PathBuf>,
    /// The targets that use it.
    pub targets: Vec<&'static str>,
}

/// Everything a reproduction will do.
pub struct Plan {
    /// The preset.
    pub preset: Preset,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// The targets, in order.
    pub targets: Vec<&'static TargetDef>,
    /// Every model at every seed, once.
    pub runs: Vec<ModelRun>,
    /// Every job, once, in dependency order.
    pub jobs: Vec<PlannedJob>,
    /// (target, job key) -> output directory.
    pub job_dirs: BTreeMap<(&'static str, String), PathBuf>,
}

/// Where plans put things.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The workspace root (commands run there; config paths are relative to it).
    pub root: PathBuf,
    /// `runs/<preset>`: models under `models/`, jobs under `jobs/`.
    pub runs: PathBuf,
    /// `results/<preset>`: one folder per target.
    pub results: PathBuf,
}

impl Layout {
    /// The run directory of a model: `runs/<preset>/models/<name>-<hash12>/seed<N>`.
    pub fn model_dir(&self, id: ModelId, hash: &str, seed: u64) -> PathBuf {
        self.runs
            .join("models")
            .join(format!("{id}-{}", cache::short(hash)))
            .join(format!("seed{seed}"))
    }

    /// The output directory of a job: `runs/<preset>/jobs/<subcommand>-<hash12>`.
    pub fn job_dir(&self, subcommand: &str, hash: &str) -> PathBuf {
        self.runs
            .join("jobs")
            .join(format!("{subcommand}-{}", cache::short(hash)))
    }
}

/// The summary of a finished run in `dir`, `None` when there is none or the run was interrupted.
pub fn finished_summary(dir: &Path) -> Result<Option<TrainSummary>> {
    let path = dir.join(files::TRAIN_SUMMARY);
    if !path.is_file() {
        return Ok(None);
    }
    let summary: TrainSummary = jem_report::read_json(&path)?;
    Ok(summary.is_finished().then_some(summary))
}

fn model_status(dir: &Path, force: bool) -> Result<ModelStatus> {
    if force {
        return Ok(ModelStatus::Train);
    }
    if finished_summary(dir)?.is_some() {
        return Ok(ModelStatus::Cached);
    }
    if dir.join(files::LAST_CHECKPOINT).is_file() {
        return Ok(ModelStatus::Resume);
    }
    Ok(ModelStatus::Train)
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Whether `output` exists and is at least as new as every input.
pub fn is_fresh(output: &Path, inputs: &[PathBuf]) -> bool {
    let Some(out) = modified(output) else {
        return false;
    };
    inputs
        .iter()
        .all(|i| modified(i).is_some_and(|inp| out >= inp))
}

/// Settings a plan is built with.
pub struct PlanOptions<'a> {
    /// Retrain every model and rerun every job.
    pub force: bool,
    /// `--set MODEL:section.key=value` overrides.
    pub overrides: &'a [(ModelId, String)],
}

impl Plan {
    /// Builds the plan of `targets` on `preset` for `seeds`.
    pub fn build(
        preset: Preset,
        seeds: &[u64],
        targets: Vec<&'static TargetDef>,
        layout: &Layout,
        options: &PlanOptions,
    ) -> Result<Plan> {
        let mut runs: Vec<ModelRun> = Vec::new();
        let add_model = |id: ModelId, seed: u64, runs: &mut Vec<ModelRun>| -> Result<()> {
            if runs.iter().any(|r| r.id == id && r.seed == seed) {
                return Ok(());
            }
            let spec = preset.model(id, options.overrides)?;
            let config_path = layout.root.join(spec.config);
            let text = std::fs::read_to_string(&config_path)
                .with_context(|| format!("reading {}", config_path.display()))?;
            let doc = cache::resolve(&text, &config_path, &spec.overrides)
                .with_context(|| format!("the config of model `{id}`"))?;
            let hash = cache::config_hash(&doc);
            let dir = layout.model_dir(id, &hash, seed);
            let status = model_status(&dir, options.force)?;
            runs.push(ModelRun {
                id,
                seed,
                spec,
                canonical: cache::canonical(&doc),
                hash,
                dir,
                status,
            });
            Ok(())
        };
        let mut jobs: Vec<PlannedJob> = Vec::new();
        let mut job_dirs = BTreeMap::new();
        for target in &targets {
            for id in (target.models)(&preset) {
                for &seed in seeds {
                    add_model(id, seed, &mut runs)?;
                }
            }
            for job in (target.jobs)(&preset, seeds) {
                for (id, seed) in job.models() {
                    add_model(id, seed, &mut runs)?;
                }
                let planned =
                    resolve_job(&job, target.name, &runs, &jobs, &job_dirs, layout, options)?;
                job_dirs.insert((target.name, job.key.clone()), planned.dir.clone());
                match jobs.iter_mut().find(|j| j.hash == planned.hash) {
                    Some(existing) => {
                        if !existing.targets.contains(&target.name) {
                            existing.targets.push(target.name);
                        }
                    }
                    None => jobs.push(planned),
                }
            }
        }
        // Models are listed in the catalogue's order, seeds ascending.
        runs.sort_by_key(|r| (r.id, r.seed));
        Ok(Plan {
            preset,
            seeds: seeds.to_vec(),
            targets,
            runs,
            jobs,
            job_dirs,
        })
    }

    /// Minutes the plan will take, roughly: models to train and jobs not cached.
    pub fn est_minutes(&self) -> f64 {
        let train: f64 = self
            .runs
            .iter()
            .filter(|r| r.status != ModelStatus::Cached)
            .map(|r| r.spec.est_minutes)
            .sum();
        let jobs: f64 = self
            .jobs
            .iter()
            .filter(|j| !j.cached)
            .map(|j| j.job.est_minutes)
            .sum();
        train + jobs
    }
}

fn resolve_job(
    job: &Job,
    target: &'static str,
    runs: &[ModelRun],
    planned: &[PlannedJob],
    job_dirs: &BTreeMap<(&'static str, String), PathBuf>,
    layout: &Layout,
    options: &PlanOptions,
) -> Result<PlannedJob> {
    let run = |id: ModelId, seed: u64| -> Result<&ModelRun> {
        runs.iter()
            .find(|r| r.id == id && r.seed == seed)
            .with_context(|| format!("internal: model {id} seed {seed} is not planned"))
    };
    // The identity of the command: literal arguments, models by their cache ids, earlier
    // jobs' files by those jobs' directories.
    let mut identity = vec![job.subcommand.to_string()];
    let mut argv = vec![job.subcommand.to_string()];
    let mut inputs = Vec::new();
    let mut models_ready = true;
    let mut after = Vec::new();
    for arg in &job.args {
        match arg {
            Arg::Lit(s) => {
                identity.push(s.clone());
                argv.push(s.clone());
            }
            Arg::Run(id, seed) => {
                let r = run(*id, *seed)?;
                models_ready &= r.status == ModelStatus::Cached;
                identity.push(format!("run:{}", r.cache_id()));
                argv.push(r.dir.display().to_string());
                inputs.push(r.dir.join(files::TRAIN_SUMMARY));
            }
            Arg::Named(id, seed) => {
                let r = run(*id, *seed)?;
                models_ready &= r.status == ModelStatus::Cached;
                identity.push(format!("run:{}={}", id, r.cache_id()));
                argv.push(format!("{id}={}", r.dir.display()));
                inputs.push(r.dir.join(files::TRAIN_SUMMARY));
            }
            Arg::JobFile(key, file) => {
                let Some(dir) = job_dirs.get(&(target, key.clone())) else {
                    bail!("internal: job `{}` of {target} reads job `{key}`, which is not planned before it", job.key);
                };
                // Redone when the job it reads is.
                models_ready &= planned.iter().any(|j| &j.dir == dir && j.cached);
                let name = dir.file_name().unwrap_or_default().to_string_lossy();
                identity.push(format!("job:{name}/{file}"));
                let path = dir.join(file);
                argv.push(path.display().to_string());
                if !after.contains(dir) {
                    after.push(dir.clone());
                }
                inputs.push(path);
            }
        }
    }
    let hash = cache::text_hash(&identity.join("\u{1f}"));
    let dir = layout.job_dir(job.subcommand, &hash);
    argv.push("--out".into());
    argv.push(dir.display().to_string());
    let report = dir.join(&job.report);
    // A job on a model still to be trained (or resumed) runs again after it.
    let cached = !options.force && models_ready && is_fresh(&report, &inputs);
    Ok(PlannedJob {
        job: job.clone(),
        hash,
        dir,
        argv,
        cached,
        after,
        targets: vec![target],
    })
}
