//! The targets of `cargo xtask reproduce`: what each trains, which `jem` commands it runs (in
//! one place per target: its `jobs` function), and how it assembles the paper's table or figure.

use super::claims::Claim;
use super::models::ModelId;
use super::plan::Job;
use super::preset::Preset;
use anyhow::{Context, Result};
use jem_report::TrainSummary;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod attacks;
pub mod fig4;
pub mod ood;
pub mod samples;
pub mod table1;
pub mod table5;

/// A table or figure of the paper.
pub struct TargetDef {
    /// The name on the command line.
    pub name: &'static str,
    /// What it reproduces.
    pub title: &'static str,
    /// Models it needs trained (besides those its jobs name).
    pub models: fn(&Preset) -> Vec<ModelId>,
    /// The `jem` commands it runs, in order.
    pub jobs: fn(&Preset, &[u64]) -> Vec<Job>,
    /// Reads the outputs and makes the README's tables, claims and numbers.
    pub assemble: fn(&Inputs) -> Result<Assembled>,
}

/// An image of a target's results.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Where the command wrote it.
    pub src: PathBuf,
    /// Its name in the results folder.
    pub name: String,
    /// What it shows.
    pub caption: String,
}

/// What a target's assembly gives.
#[derive(Clone, Debug, Default)]
pub struct Assembled {
    /// The README's tables (Markdown), ours beside the paper's.
    pub body: String,
    /// The paper's claims with verdicts.
    pub claims: Vec<Claim>,
    /// Every number, as JSON.
    pub numbers: serde_json::Value,
    /// The PNGs to copy.
    pub images: Vec<Image>,
    /// Caveats (e.g. "IS/FID from classifier features, not Inception").
    pub notes: Vec<String>,
}

/// Where a target's assembly finds the runs and job outputs.
pub struct Inputs<'a> {
    /// The preset.
    pub preset: &'a Preset,
    /// The seeds.
    pub seeds: Vec<u64>,
    runs: BTreeMap<(ModelId, u64), PathBuf>,
    labels: BTreeMap<ModelId, &'static str>,
    jobs: BTreeMap<String, PathBuf>,
}

impl<'a> Inputs<'a> {
    /// Inputs from explicit directories (the plan's, or a test's fake ones).
    pub fn new(
        preset: &'a Preset,
        seeds: Vec<u64>,
        runs: BTreeMap<(ModelId, u64), PathBuf>,
        jobs: BTreeMap<String, PathBuf>,
    ) -> Self {
        let labels = ModelId::ALL
            .into_iter()
            .filter_map(|id| preset.model(id, &[]).ok().map(|s| (id, s.label)))
            .collect();
        Inputs {
            preset,
            seeds,
            runs,
            labels,
            jobs,
        }
    }

    /// The first seed (attacks and sample figures use it only).
    pub fn first_seed(&self) -> u64 {
        self.seeds[0]
    }

    /// The table label of a model.
    pub fn label(&self, id: ModelId) -> &'static str {
        self.labels.get(&id).copied().unwrap_or("?")
    }

    /// The run directory of `id` at `seed`.
    pub fn run_dir(&self, id: ModelId, seed: u64) -> Result<&Path> {
        self.runs
            .get(&(id, seed))
            .map(PathBuf::as_path)
            .with_context(|| format!("internal: no run of model {id} seed {seed} in the plan"))
    }

    /// The `summary.json` of `id` at `seed`.
    pub fn summary(&self, id: ModelId, seed: u64) -> Result<TrainSummary> {
        let path = self
            .run_dir(id, seed)?
            .join(jem_report::files::TRAIN_SUMMARY);
        Ok(jem_report::read_json(&path)?)
    }

    /// The summaries of `id` over every seed.
    pub fn summaries(&self, id: ModelId) -> Result<Vec<TrainSummary>> {
        self.seeds.iter().map(|&s| self.summary(id, s)).collect()
    }

    /// The output directory of this target's job `key`.
    pub fn job_dir(&self, key: &str) -> Result<&Path> {
        self.jobs
            .get(key)
            .map(PathBuf::as_path)
            .with_context(|| format!("internal: no job `{key}` in the plan"))
    }

    /// A file of job `key`'s output.
    pub fn path(&self, key: &str, file: &str) -> Result<PathBuf> {
        Ok(self.job_dir(key)?.join(file))
    }

    /// Reads the report `file` of job `key`.
    pub fn report<T: DeserializeOwned>(&self, key: &str, file: &str) -> Result<T> {
        Ok(jem_report::read_json(&self.path(key, file)?)?)
    }
}

/// Every target, in the paper's order.
pub static TARGETS: [TargetDef; 12] = [
    table1::TARGET,
    ood::TABLE2,
    ood::TABLE3,
    table5::TARGET,
    ood::TABLE7,
    fig4::TARGET,
    attacks::FIG5,
    attacks::FIG6,
    attacks::FIG14,
    attacks::FIG16,
    attacks::FIG17,
    samples::TARGET,
];

/// The target named `name` (`all` is handled by the caller).
pub fn by_name(name: &str) -> Option<&'static TargetDef> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The per-seed job key `kind/model/seed`.
pub fn key(kind: &str, id: ModelId, seed: u64) -> String {
    format!("{kind}/{id}/seed{seed}")
}
