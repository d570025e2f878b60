//! `cargo xtask reproduce <table>`: the paper's experiments, end to end.
//!
//! Each experiment runs the `jem` binary (xtask depends on no jem crate): it
//! trains the models of the preset (resuming an interrupted run, skipping a
//! finished one), evaluates them and assembles the table as Markdown and JSON
//! under `runs/<preset>/`.

use crate::setup::{self, SetupArgs};
use crate::util::{run_checked, workspace_root};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// Which experiment: table3 (OOD detection AUROC of JEM and the baseline).
    pub table: String,
    /// Experiment size: `cpu` (Fashion-MNIST, small WRN, minutes) or `paper` (CIFAR-10, WRN-28-10, GPU).
    #[arg(long, default_value = "cpu")]
    pub preset: String,
    /// `jem --device` for training and evaluation (`cuda` for the paper preset).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Where runs and results go (default: runs/PRESET).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A model of the experiment: its run name and config overrides.
struct Model {
    name: &'static str,
    overrides: &'static [&'static str],
}

/// The preset's config, its models and OOD sets.
struct Preset {
    config: &'static str,
    models: &'static [Model],
    ood: &'static [&'static str],
    /// The paper's Table 3 values for this setting, if it is the paper's.
    paper_rows: &'static [(&'static str, &'static str, [f64; 4])],
}

const CPU: Preset = Preset {
    config: "configs/cpu.toml",
    models: &[
        Model {
            name: "jem",
            overrides: &[],
        },
        // The same network as a plain classifier, on its own time budget.
        Model {
            name: "baseline",
            overrides: &[
                "train.mode=\"baseline\"",
                "train.max_minutes=5.0",
                // Measured: 4 epochs take 3.9 minutes here (88.1% test); 5 fit in the budget.
                "train.epochs=5",
                "train.decay_epochs=[4]",
            ],
        },
    ],
    ood: &["mnist-5k", "uniform", "constant", "interp"],
    paper_rows: &[],
};

const PAPER: Preset = Preset {
    config: "configs/paper.toml",
    models: &[
        Model {
            name: "jem",
            overrides: &[],
        },
        Model {
            name: "baseline",
            overrides: &["train.mode=\"baseline\""],
        },
    ],
    ood: &["svhn", "interp", "cifar100", "celeba"],
    // Table 3 of the paper (JEM rows; columns SVHN, CIFAR10 Interp, CIFAR100, CelebA).
    paper_rows: &[
        ("JEM (paper)", "px", [0.67, 0.65, 0.67, 0.75]),
        ("JEM (paper)", "py", [0.89, 0.75, 0.87, 0.79]),
        ("JEM (paper)", "pxgrad", [0.83, 0.78, 0.82, 0.79]),
        ("Wide-ResNet (paper)", "py", [0.93, 0.77, 0.85, 0.62]),
    ],
};

const SCORES: [(&str, &str); 3] = [
    ("px", "log p(x)"),
    ("py", "max p(y\\|x)"),
    ("pxgrad", "approx. mass −‖∂log p(x)/∂x‖"),
];

pub fn run(args: &ReproduceArgs) -> Result<()> {
    if args.table != "table3" {
        bail!(
            "`{}` is not available yet: `cargo xtask reproduce table3` is built (OOD detection); \
             the other tables need the open evaluation and attack issues",
            args.table
        );
    }
    let preset = match args.preset.as_str() {
        "cpu" => &CPU,
        "paper" => &PAPER,
        other => bail!("unknown preset `{other}`: expected `cpu` or `paper`"),
    };
    setup::run(&SetupArgs { no_data: false })?;
    if args.preset == "cpu" {
        let mnist = crate::dataset::ensure_mnist_5k()?;
        eprintln!("MNIST 5k subset (OOD set): {}", mnist.display());
    }
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_checked(Command::new(&cargo).current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "jem-cli",
    ]))?;
    let jem = root.join("target").join("release").join("jem");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("runs").join(&args.preset));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let mut results = Vec::new();
    for model in preset.models {
        let run_dir = out.join(model.name);
        train(&jem, &root, preset.config, model, &run_dir, &args.device)?;
        let eval_dir = out.join("table3").join(model.name);
        run_checked(
            Command::new(&jem)
                .current_dir(&root)
                .args(["--device", &args.device, "eval", "--checkpoint"])
                .arg(&run_dir)
                .args([
                    "--ood",
                    &preset.ood.join(","),
                    "--scores",
                    "px,py,pxgrad",
                    "--out",
                ])
                .arg(&eval_dir),
        )?;
        let path = eval_dir.join("ood.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let json: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let summary = read_summary(&run_dir)?;
        results.push((model.name, json, summary));
    }
    let (markdown, json) = assemble(preset, &args.preset, &results)?;
    std::fs::write(out.join("table3.md"), &markdown)?;
    std::fs::write(
        out.join("table3.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    println!("{markdown}");
    eprintln!(
        "wrote {} and {}",
        out.join("table3.md").display(),
        out.join("table3.json").display()
    );
    Ok(())
}

/// Train a model, resuming an interrupted run and skipping a finished one.
fn train(
    jem: &Path,
    root: &Path,
    config: &str,
    model: &Model,
    run_dir: &Path,
    device: &str,
) -> Result<()> {
    if run_dir.join("summary.json").is_file() {
        eprintln!(
            "{}: finished run found, not retraining (delete it to retrain)",
            run_dir.display()
        );
        return Ok(());
    }
    let mut cmd = Command::new(jem);
    cmd.current_dir(root).args(["--device", device, "train"]);
    if run_dir.join("last.ckpt").is_file() {
        eprintln!("{}: resuming the interrupted run", run_dir.display());
        cmd.arg("--resume").arg(run_dir);
    } else {
        cmd.args(["--config", config]);
        for o in model.overrides {
            cmd.args(["--set", o]);
        }
        cmd.arg("--out").arg(run_dir);
    }
    run_checked(&mut cmd)
}

fn read_summary(run_dir: &Path) -> Result<Value> {
    let path = run_dir.join("summary.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn auroc(json: &Value, score: &str, ood: &str) -> Option<f64> {
    json.as_array()?
        .iter()
        .find(|r| r["score"] == score && r["ood"] == ood)
        .and_then(|r| r["metrics"]["auroc"].as_f64())
}

fn assemble(
    preset: &Preset,
    name: &str,
    results: &[(&str, Value, Value)],
) -> Result<(String, Value)> {
    let mut md = format!(
        "# Table 3 (OOD detection, AUROC), `{name}` preset\n\nIn-distribution: the run's test set; \
         higher is better; 0.5 is chance.\n\n| model | score | {} |\n|---|---|{}\n",
        preset.ood.join(" | "),
        "---|".repeat(preset.ood.len())
    );
    let mut rows = Vec::new();
    for (model, json, _) in results {
        for (score, label) in SCORES {
            let values: Vec<Option<f64>> =
                preset.ood.iter().map(|o| auroc(json, score, o)).collect();
            if values.iter().all(Option::is_none) {
                bail!("no AUROC for score {score} in the {model} evaluation");
            }
            let cells: Vec<String> = values
                .iter()
                .map(|v| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into()))
                .collect();
            md.push_str(&format!("| {model} | {label} | {} |\n", cells.join(" | ")));
            rows.push(serde_json::json!({ "model": model, "score": score, "auroc": values }));
        }
    }
    for (model, score, values) in preset.paper_rows {
        let cells: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
        md.push_str(&format!("| {model} | {score} | {} |\n", cells.join(" | ")));
    }
    md.push_str("\n| model | test accuracy (final) | best valid accuracy | iterations | minutes | recoveries |\n|---|---|---|---|---|---|\n");
    for (model, _, s) in results {
        let pct = |v: &Value| {
            v.as_f64()
                .map(|v| format!("{:.2}%", 100.0 * v))
                .unwrap_or_else(|| "-".into())
        };
        md.push_str(&format!(
            "| {model} | {} | {} | {} | {:.1} | {} |\n",
            pct(&s["final_test_acc"]),
            pct(&s["best_valid_acc"]),
            s["iterations"],
            s["wall_time_s"].as_f64().unwrap_or(f64::NAN) / 60.0,
            s["recoveries"]
        ));
    }
    let summaries: Vec<Value> = results
        .iter()
        .map(|(m, _, s)| serde_json::json!({ "model": m, "summary": s }))
        .collect();
    let json =
        serde_json::json!({ "preset": name, "ood": preset.ood, "rows": rows, "runs": summaries });
    Ok((md, json))
}
