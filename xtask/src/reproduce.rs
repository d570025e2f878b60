//! `cargo xtask reproduce <target>`: the paper's tables and figures, end to end.
//!
//! Each target runs the `jem` binary (xtask depends on no jem crate but the serde-only
//! jem-report): it trains the models the target needs — shared between targets, cached under
//! `runs/<preset>/models/<model>-<hash>/seed<N>` by a hash of their resolved config, resumed when
//! interrupted — runs its `jem` commands (cached by a hash of the command under
//! `runs/<preset>/jobs/`), and writes `results/<preset>/<target>/` (README.md with our numbers
//! beside the paper's and a verdict on each of the paper's claims, results.json, the PNGs) and
//! `results/<preset>/README.md` (every target's claims at a glance). `table3` also writes
//! `runs/<preset>/table3.md` and `table3.json`, as it always has.

mod cache;
mod claims;
mod exec;
mod models;
mod output;
mod paper;
mod plan;
mod preflight;
mod preset;
mod schedule;
mod stats;
mod targets;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

use crate::setup::{self, SetupArgs};
use crate::util::{build_release_jem, shell_quote, workspace_root, write_results};
use anyhow::{bail, Context, Result};
use models::ModelId;
use plan::{Layout, ModelStatus, Plan, PlanOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;
use targets::{Inputs, TargetDef, TARGETS};

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// What to reproduce: table1, table2, table3, table5, table7, fig4, fig5, fig6, fig14,
    /// fig16, fig17, samples, or all (see --list).
    #[arg(required_unless_present = "list")]
    pub table: Option<String>,
    /// Experiment size: `cpu` (Fashion-MNIST, small WRN, minutes) or `paper` (CIFAR-10,
    /// WRN-28-10, GPU).
    #[arg(long, default_value = "cpu")]
    pub preset: String,
    /// `jem --device` for training and evaluation (`cuda` for the paper preset).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Where models and command outputs go (default: runs/PRESET).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the results go (default: results/PRESET).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Training seeds, comma-separated (`1,2,3,4,5`): each seed trains every model of the
    /// targets and the tables report mean ± standard deviation (attacks and sample figures use
    /// the first seed).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub seeds: Vec<u64>,
    /// Print every target, what it trains and roughly how long it takes on the preset.
    #[arg(long)]
    pub list: bool,
    /// Print the plan (models cached or not, the exact commands) and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Retrain the models and rerun the commands even when cached.
    #[arg(long)]
    pub force: bool,
    /// Override a model's config: `MODEL:section.key=value`, e.g.
    /// `baseline-converged:train.epochs=40` (repeatable; changes that model's cache hash).
    #[arg(long = "set", value_name = "MODEL:SECTION.KEY=VALUE")]
    pub set: Vec<String>,
    /// Trainings and commands run at once, the cores shared evenly between them as libtorch
    /// threads (default: 2 with `--device cpu` on at least 2 cores, else 1; 1 runs them one
    /// after the other with their own progress bars). Results do not depend on it beyond
    /// float round-off.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// A TorchScript Inception network for IS/FID (without one, the classifier's features are
    /// used and every such number is labelled "not Inception"; the paper preset needs one).
    #[arg(long, value_name = "FILE.pt")]
    pub inception: Option<String>,
}

/// Parses `--set MODEL:section.key=value`.
fn model_overrides(specs: &[String]) -> Result<Vec<(ModelId, String)>> {
    specs
        .iter()
        .map(|s| {
            let (model, o) = s
                .split_once(':')
                .with_context(|| format!("--set {s}: expected MODEL:section.key=value"))?;
            let id = ModelId::parse(model).with_context(|| {
                format!(
                    "--set {s}: unknown model `{model}` (models: {})",
                    ModelId::ALL.map(|m| m.name()).join(", ")
                )
            })?;
            Ok((id, o.to_string()))
        })
        .collect()
}

/// The targets named on the command line.
fn selected(name: &str) -> Result<Vec<&'static TargetDef>> {
    if name == "all" {
        return Ok(TARGETS.iter().collect());
    }
    match targets::by_name(name) {
        Some(t) => Ok(vec![t]),
        None => bail!(
            "unknown target `{name}`: expected one of {}, or all (see --list)",
            TARGETS
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `path` made absolute against the current directory (`jem` runs in the workspace root).
fn absolute(path: &std::path::Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

fn layout(args: &ReproduceArgs) -> Layout {
    let root = workspace_root();
    Layout {
        runs: args
            .out
            .as_deref()
            .map(absolute)
            .unwrap_or_else(|| root.join("runs").join(&args.preset)),
        results: args
            .results
            .as_deref()
            .map(absolute)
            .unwrap_or_else(|| root.join("results").join(&args.preset)),
        root,
    }
}

/// Rough wall minutes of what `plan` still has to do with `jobs` tasks at once.
fn est_wall_minutes(plan: &Plan, jobs: usize) -> f64 {
    let runs: Vec<_> = plan.runs.iter().collect();
    let planned: Vec<_> = plan.jobs.iter().collect();
    let (_, nodes) = schedule::tasks(&runs, &planned);
    schedule::simulate(&nodes, jobs)
}

/// `--list`: every target, what it trains and runs, and roughly how long it takes alone.
pub fn list(
    preset: &preset::Preset,
    layout: &Layout,
    seeds: &[u64],
    workers: exec::Workers,
) -> Result<String> {
    let mut out = format!(
        "Targets of the `{}` preset ({}); times are rough, per target run alone with nothing \
         cached, for {} seed(s). Models are shared: `all` trains each once.\n",
        preset.name,
        preset.description,
        seeds.len()
    );
    for t in &TARGETS {
        let plan = Plan::build(
            preset.clone(),
            seeds,
            vec![t],
            layout,
            &PlanOptions {
                force: true,
                overrides: &[],
            },
        )?;
        let models: Vec<String> = {
            let mut seen = Vec::new();
            for r in &plan.runs {
                if !seen.iter().any(|(id, _): &(ModelId, String)| *id == r.id) {
                    seen.push((
                        r.id,
                        format!(
                            "{} (~{:.0} min{})",
                            r.id,
                            r.spec.est_minutes,
                            if r.spec.est_measured { "" } else { "?" }
                        ),
                    ));
                }
            }
            seen.into_iter().map(|(_, s)| s).collect()
        };
        let mut subs: Vec<&str> = plan.jobs.iter().map(|j| j.job.subcommand).collect();
        subs.dedup();
        out.push_str(&format!(
            "\n{:<8} {}\n         trains: {}\n         runs:   {} `jem` command(s) ({})\n         about {:.0} min in all\n",
            t.name,
            t.title,
            models.join(", "),
            plan.jobs.len(),
            subs.join(", "),
            plan.est_minutes()
        ));
    }
    let all = Plan::build(
        preset.clone(),
        seeds,
        TARGETS.iter().collect(),
        layout,
        &PlanOptions {
            force: true,
            overrides: &[],
        },
    )?;
    out.push_str(&format!(
        "\nall      every target: {} model runs, {} commands, about {:.0} min one at a time\n\
         (? = a guess, not measured; command times are rough, from one measured run of each \
         kind alone on all the cores; `--dry-run` shows what is cached.)\n",
        all.runs.len(),
        all.jobs.len(),
        all.est_minutes()
    ));
    if workers.jobs > 1 {
        out.push_str(&format!(
            "With --jobs {} (the default here), {} at a time: `all` about {:.0} min.\n",
            workers.jobs,
            workers.jobs,
            est_wall_minutes(&all, workers.jobs)
        ));
    }
    if preset.name == "cpu" {
        out.push_str(&format!(
            "\nNote: fig4's converged baseline trains for {} epochs, chosen on its test ECE and \
             accuracy after every epoch (results/cpu/fig4; `--set \
             baseline-converged:train.epochs=N` changes it).\n",
            models::CPU_CONVERGED_BASELINE_EPOCHS
        ));
    }
    Ok(out)
}

fn quoted(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `--dry-run`: the plan as text.
pub fn describe_plan(
    plan: &Plan,
    device: &str,
    workers: exec::Workers,
    flags: Option<&BTreeMap<&str, Vec<String>>>,
) -> String {
    let mut out = format!(
        "Plan for {} on the `{}` preset, seeds {:?}:\n\nModels:\n",
        plan.targets
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(", "),
        plan.preset.name,
        plan.seeds
    );
    for r in &plan.runs {
        let status = match r.status {
            ModelStatus::Cached => "cached",
            ModelStatus::Resume => "resume",
            ModelStatus::Train => "train",
        };
        out.push_str(&format!(
            "  [{status}] {} seed {} ({}; ~{:.0} min{})\n      dir: {}\n",
            r.id,
            r.seed,
            r.spec.description,
            r.spec.est_minutes,
            if r.spec.est_measured { "" } else { ", a guess" },
            r.dir.display()
        ));
        if r.status != ModelStatus::Cached {
            out.push_str(&format!(
                "      $ jem --device {device} {}\n",
                quoted(&r.train_args())
            ));
        }
    }
    out.push_str("\nCommands:\n");
    for j in &plan.jobs {
        out.push_str(&format!(
            "  [{}] {} (for {})\n      $ jem --device {device} {}\n",
            if j.cached { "cached" } else { "run" },
            j.job.what,
            j.targets.join(", "),
            quoted(&j.argv)
        ));
        if !j.job.needs.is_empty() {
            out.push_str(&format!("      needs: {}\n", j.job.needs.join(", ")));
        }
    }
    match flags {
        Some(m) if m.is_empty() => out.push_str("\nEvery flag the commands need is in this jem.\n"),
        Some(m) => {
            out.push_str("\nMissing from this jem (these targets cannot run yet):\n");
            for (t, f) in m {
                out.push_str(&format!("  {t}: {}\n", f.join(", ")));
            }
        }
        None => out.push_str(
            "\nFlags not checked: target/release/jem is not built yet (a real run builds it and \
             checks before training).\n",
        ),
    }
    out.push_str(&format!(
        "\nAbout {:.0} min of training and commands one at a time (rough)",
        plan.est_minutes()
    ));
    if workers.jobs > 1 {
        out.push_str(&format!(
            "; about {:.0} min with {} at a time (--jobs), {} libtorch thread(s) each",
            est_wall_minutes(plan, workers.jobs),
            workers.jobs,
            workers.threads.unwrap_or(1)
        ));
    }
    out.push_str(".\n");
    out
}

/// Assembles and writes one target.
fn assemble_target(plan: &Plan, t: &TargetDef, layout: &Layout) -> Result<targets::Assembled> {
    let runs = plan
        .runs
        .iter()
        .map(|r| ((r.id, r.seed), r.dir.clone()))
        .collect();
    let jobs = plan
        .job_dirs
        .iter()
        .filter(|((target, _), _)| *target == t.name)
        .map(|((_, key), dir)| (key.clone(), dir.clone()))
        .collect();
    let inputs = Inputs::new(&plan.preset, plan.seeds.clone(), runs, jobs);
    let assembled = (t.assemble)(&inputs).with_context(|| format!("assembling {}", t.name))?;
    output::write_target(&layout.results, &plan.preset, &plan.seeds, t, &assembled)?;
    if t.name == "table3" {
        let (md, json) = targets::ood::table3_markdown(&inputs)?;
        write_results(&layout.runs, "table3", &md, &json)?;
    }
    Ok(assembled)
}

pub fn run(args: &ReproduceArgs) -> Result<()> {
    let started = Instant::now();
    if args.seeds.is_empty() {
        bail!("--seeds needs at least one seed");
    }
    let mut preset = preset::by_name(&args.preset)?;
    preset.inception = args
        .inception
        .as_deref()
        .map(|p| absolute(std::path::Path::new(p)).display().to_string());
    let layout = layout(args);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = exec::Workers::new(args.jobs, &args.device, cores)?;
    if args.list {
        print!("{}", list(&preset, &layout, &args.seeds, workers)?);
        return Ok(());
    }
    let name = args
        .table
        .as_deref()
        .expect("clap requires a target without --list");
    let targets = selected(name)?;
    let overrides = model_overrides(&args.set)?;
    for (id, _) in &overrides {
        preset.model(*id, &[])?;
    }
    let plan = Plan::build(
        preset,
        &args.seeds,
        targets,
        &layout,
        &PlanOptions {
            force: args.force,
            overrides: &overrides,
        },
    )?;
    let release = layout.root.join("target").join("release").join("jem");
    if args.dry_run {
        let flags = if release.is_file() {
            Some(preflight::missing_flags(&plan, &release)?)
        } else {
            None
        };
        print!(
            "{}",
            describe_plan(&plan, &args.device, workers, flags.as_ref())
        );
        if plan.preset.name == "paper" {
            let missing = preflight::paper_missing(&plan, &layout.root, &args.device);
            if !missing.is_empty() {
                println!("\nMissing before the paper preset can run:");
                for m in missing {
                    println!("  - {m}");
                }
            }
        }
        return Ok(());
    }
    if plan.preset.name == "paper" {
        let missing = preflight::paper_missing(&plan, &layout.root, &args.device);
        if !missing.is_empty() {
            bail!(
                "the paper preset cannot start; nothing was trained. Missing:\n  - {}",
                missing.join("\n  - ")
            );
        }
    }
    setup::run(&SetupArgs {
        no_data: plan.preset.name != "cpu",
    })?;
    if plan.preset.name == "cpu" {
        let mnist = crate::dataset::ensure_mnist_5k()?;
        eprintln!("MNIST 5k subset (OOD set): {}", mnist.display());
    }
    let jem = build_release_jem(&layout.root)?;
    if !args.device.eq_ignore_ascii_case("cpu") {
        check_device(&jem, &args.device)?;
    }
    let missing = preflight::missing_flags(&plan, &jem)?;
    let mut runnable: BTreeSet<&'static str> = BTreeSet::new();
    let mut blocked: Vec<(&'static TargetDef, String)> = Vec::new();
    for t in &plan.targets {
        match missing.get(t.name) {
            Some(flags) => blocked.push((
                t,
                format!(
                    "this jem lacks {} (issue 10: IS/FID inputs of Appendix B)",
                    flags.join(", ")
                ),
            )),
            None => {
                runnable.insert(t.name);
            }
        }
    }
    for (t, why) in &blocked {
        eprintln!("cannot run {}: {why}", t.name);
    }
    if runnable.is_empty() {
        bail!(
            "nothing was trained: {}",
            blocked
                .iter()
                .map(|(t, why)| format!("{}: {why}", t.name))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let counts = exec::execute(&plan, &runnable, &jem, &layout.root, &args.device, workers)?;
    let mut verdicts = [0usize; 3];
    for t in &plan.targets {
        if !runnable.contains(t.name) {
            continue;
        }
        // One target that cannot be assembled does not keep the others from their results.
        match assemble_target(&plan, t, &layout) {
            Ok(a) => {
                for c in &a.claims {
                    verdicts[c.verdict as usize] += 1;
                }
                eprintln!(
                    "wrote {}",
                    layout.results.join(t.name).join("README.md").display()
                );
            }
            Err(e) => {
                let why = format!("{e:#}");
                eprintln!("cannot assemble {}: {why}", t.name);
                blocked.push((t, why));
            }
        }
    }
    for (t, why) in &blocked {
        output::write_not_run(&layout.results, &plan.preset, &plan.seeds, t, why)?;
    }
    output::write_index(&layout.results, &plan.preset)?;
    eprintln!(
        "reproduce {name} ({} preset): {} model(s) trained, {} resumed, {} reused; {} command(s) \
         run, {} cached; claims: {} supported, {} not supported, {} not measurable; results in {}; \
         wall time {:.1} min",
        plan.preset.name,
        counts.trained,
        counts.resumed,
        counts.reused,
        counts.jobs_run,
        counts.jobs_cached,
        verdicts[0],
        verdicts[1],
        verdicts[2],
        layout.results.display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    if !blocked.is_empty() {
        bail!(
            "not run: {}",
            blocked
                .iter()
                .map(|(t, why)| format!("{}: {why}", t.name))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

/// A CUDA device that `jem` can use, or an error saying what `jem info` sees.
fn check_device(jem: &std::path::Path, device: &str) -> Result<()> {
    let out = std::process::Command::new(jem)
        .args(["--device", device, "info", "--json"])
        .output()
        .with_context(|| format!("running {} info", jem.display()))?;
    if !out.status.success() {
        bail!(
            "--device {device}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let info: jem_report::InfoReport = jem_report::parse_json(
        &String::from_utf8_lossy(&out.stdout),
        std::path::Path::new("<jem info --json>"),
    )?;
    eprintln!(
        "jem {} sees {} CUDA device(s) (cuDNN {}), using {}",
        info.jem_version, info.cuda_devices, info.cudnn_available, info.device
    );
    Ok(())
}
