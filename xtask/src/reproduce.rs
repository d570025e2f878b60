//! `cargo xtask reproduce <table>`: the paper's experiments, end to end.
//!
//! Each experiment runs the `jem` binary (xtask depends on no jem crate): it
//! trains the models of the preset (resuming an interrupted run, skipping a
//! finished one), evaluates them and assembles the table as Markdown and JSON
//! under `runs/<preset>/`.

use crate::setup::{self, SetupArgs};
use crate::util::{build_release_jem, run_checked, workspace_root, write_results};
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
    /// Training seeds, comma-separated (`1,2,3,4,5`): each seed trains every model of the preset
    /// (runs under OUT/seedN/) and the table reports the mean and standard deviation.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub seeds: Vec<u64>,
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
                // Measured on the idle 2-core machine: ~31 it/s with the per-epoch evaluations,
                // 8615 iterations in 5 minutes; these 9000 take about 5.2 minutes (five seeds:
                // 89.01% mean test accuracy). The staircase decays at 61% and 89% of the run.
                "train.max_minutes=6.0",
                "train.max_iterations=9000",
                "train.epochs=6",
                "train.decay_epochs=[]",
                "train.decay_iterations=[5500, 8000]",
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
             the other tables' runners are not, though their pieces are (`jem calibrate`, \
             `jem generative`, `jem attack`)",
            args.table
        );
    }
    let preset = match args.preset.as_str() {
        "cpu" => &CPU,
        "paper" => &PAPER,
        other => bail!("unknown preset `{other}`: expected `cpu` or `paper`"),
    };
    if args.seeds.is_empty() {
        bail!("--seeds needs at least one seed");
    }
    setup::run(&SetupArgs { no_data: false })?;
    if args.preset == "cpu" {
        let mnist = crate::dataset::ensure_mnist_5k()?;
        eprintln!("MNIST 5k subset (OOD set): {}", mnist.display());
    }
    let root = workspace_root();
    let jem = build_release_jem(&root)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("runs").join(&args.preset));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let mut results = Vec::new();
    for &seed in &args.seeds {
        let seed_dir = out.join(format!("seed{seed}"));
        for model in preset.models {
            let run_dir = seed_dir.join(model.name);
            train(
                &jem,
                &root,
                preset.config,
                model,
                seed,
                &run_dir,
                &args.device,
            )?;
            let eval_dir = seed_dir.join("table3").join(model.name);
            if is_fresh(&eval_dir.join("ood.json"), &run_dir.join("summary.json")) {
                eprintln!(
                    "{}: evaluation of the finished run found, not re-evaluating",
                    eval_dir.display()
                );
            } else {
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
            }
            let path = eval_dir.join("ood.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let json: Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            let summary = read_summary(&run_dir)?;
            results.push(RunResult {
                model: model.name,
                seed,
                ood: json,
                summary,
            });
        }
    }
    let (markdown, json) = assemble(preset, &args.preset, &results)?;
    write_results(&out, "table3", &markdown, &json)?;
    Ok(())
}

/// One trained and evaluated model of the experiment.
struct RunResult {
    model: &'static str,
    seed: u64,
    /// The `ood.json` of `jem eval`.
    ood: Value,
    /// The run's `summary.json`.
    summary: Value,
}

/// Train a model, resuming an interrupted run and skipping a finished one.
fn train(
    jem: &Path,
    root: &Path,
    config: &str,
    model: &Model,
    seed: u64,
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
        // A replicate differs in everything random: initialisation, SGLD noise, the validation
        // split and the batch order.
        cmd.args(["--set", &format!("train.seed={seed}")]);
        cmd.args(["--set", &format!("data.seed={seed}")]);
        cmd.arg("--out").arg(run_dir);
    }
    run_checked(&mut cmd)
}

/// Whether `output` exists and was written after `input` (so it describes the finished run).
fn is_fresh(output: &Path, input: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(output), modified(input)) {
        (Some(out), Some(inp)) => out >= inp,
        _ => false,
    }
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

/// Mean and sample standard deviation (0 for a single value).
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// `0.912` or `0.912 ± 0.015` (the spread only when there are several seeds).
fn fmt_mean_sd(values: &[f64], seeds: usize, scale: f64, digits: usize, unit: &str) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let (m, sd) = mean_sd(values);
    if seeds < 2 {
        format!("{:.*}{unit}", digits, m * scale)
    } else {
        format!("{:.*} ± {:.*}{unit}", digits, m * scale, digits, sd * scale)
    }
}

fn assemble(preset: &Preset, name: &str, results: &[RunResult]) -> Result<(String, Value)> {
    let mut seeds: Vec<u64> = results.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let spread = if seeds.len() > 1 {
        format!(
            " Mean ± standard deviation over {} seeds ({}).",
            seeds.len(),
            seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    let mut md = format!(
        "# Table 3 (OOD detection, AUROC), `{name}` preset\n\nIn-distribution: the run's test set; \
         higher is better; 0.5 is chance.{spread}\n\n| model | score | {} |\n|---|---|{}\n",
        preset.ood.join(" | "),
        "---|".repeat(preset.ood.len())
    );
    let mut models: Vec<&str> = Vec::new();
    for r in results {
        if !models.contains(&r.model) {
            models.push(r.model);
        }
    }
    let mut rows = Vec::new();
    for model in &models {
        let runs: Vec<&RunResult> = results.iter().filter(|r| r.model == *model).collect();
        for (score, label) in SCORES {
            let per_ood: Vec<Vec<f64>> = preset
                .ood
                .iter()
                .map(|o| {
                    runs.iter()
                        .filter_map(|r| auroc(&r.ood, score, o))
                        .collect()
                })
                .collect();
            if per_ood.iter().all(Vec::is_empty) {
                bail!("no AUROC for score {score} in the {model} evaluation");
            }
            let cells: Vec<String> = per_ood
                .iter()
                .map(|v| fmt_mean_sd(v, seeds.len(), 1.0, 3, ""))
                .collect();
            md.push_str(&format!("| {model} | {label} | {} |\n", cells.join(" | ")));
            let stats: Vec<Value> = per_ood
                .iter()
                .map(|v| {
                    if v.is_empty() {
                        return Value::Null;
                    }
                    let (m, sd) = mean_sd(v);
                    serde_json::json!({ "mean": m, "sd": sd, "per_seed": v })
                })
                .collect();
            rows.push(serde_json::json!({ "model": model, "score": score, "auroc": stats }));
        }
    }
    for (model, score, values) in preset.paper_rows {
        let cells: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
        md.push_str(&format!("| {model} | {score} | {} |\n", cells.join(" | ")));
    }
    md.push_str("\n| model | seed | test accuracy (final) | best valid accuracy | iterations | minutes | recoveries |\n|---|---|---|---|---|---|---|\n");
    let pct = |v: &Value| {
        v.as_f64()
            .map(|v| format!("{:.2}%", 100.0 * v))
            .unwrap_or_else(|| "-".into())
    };
    for r in results {
        let s = &r.summary;
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} | {} |\n",
            r.model,
            r.seed,
            pct(&s["final_test_acc"]),
            pct(&s["best_valid_acc"]),
            s["iterations"],
            s["wall_time_s"].as_f64().unwrap_or(f64::NAN) / 60.0,
            s["recoveries"]
        ));
    }
    if seeds.len() > 1 {
        for model in &models {
            let runs: Vec<&RunResult> = results.iter().filter(|r| r.model == *model).collect();
            let col = |key: &str| -> Vec<f64> {
                runs.iter()
                    .filter_map(|r| r.summary[key].as_f64())
                    .collect()
            };
            let minutes: Vec<f64> = col("wall_time_s").iter().map(|s| s / 60.0).collect();
            let recoveries: f64 = col("recoveries").iter().sum();
            md.push_str(&format!(
                "| {model} | mean | {} | {} | {} | {} | {recoveries} in all |\n",
                fmt_mean_sd(&col("final_test_acc"), seeds.len(), 100.0, 2, "%"),
                fmt_mean_sd(&col("best_valid_acc"), seeds.len(), 100.0, 2, "%"),
                fmt_mean_sd(&col("iterations"), seeds.len(), 1.0, 0, ""),
                fmt_mean_sd(&minutes, seeds.len(), 1.0, 1, ""),
            ));
        }
    }
    let summaries: Vec<Value> = results
        .iter()
        .map(|r| serde_json::json!({ "model": r.model, "seed": r.seed, "summary": r.summary }))
        .collect();
    let json = serde_json::json!({
        "preset": name,
        "seeds": seeds,
        "ood": preset.ood,
        "rows": rows,
        "runs": summaries,
    });
    Ok((md, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(model: &'static str, seed: u64, auroc: f64, acc: f64) -> RunResult {
        RunResult {
            model,
            seed,
            ood: serde_json::json!([
                { "score": "px", "ood": "uniform", "metrics": { "auroc": auroc } },
                { "score": "py", "ood": "uniform", "metrics": { "auroc": 0.5 } },
                { "score": "pxgrad", "ood": "uniform", "metrics": { "auroc": 0.25 } },
            ]),
            summary: serde_json::json!({
                "final_test_acc": acc, "best_valid_acc": acc, "iterations": 100,
                "wall_time_s": 60.0, "recoveries": 0,
            }),
        }
    }

    #[test]
    fn mean_sd_is_the_sample_statistic() {
        let (m, sd) = mean_sd(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        // sqrt(5/3), the n-1 estimate.
        assert!((sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd(&[0.7]), (0.7, 0.0));
    }

    #[test]
    fn table_aggregates_seeds() {
        let preset = Preset {
            config: "x.toml",
            models: &[],
            ood: &["uniform", "mnist-5k"],
            paper_rows: &[],
        };
        let results = [
            run("jem", 1, 0.90, 0.85),
            run("jem", 2, 1.00, 0.87),
            run("baseline", 1, 0.50, 0.89),
            run("baseline", 2, 0.70, 0.91),
        ];
        let (md, json) = assemble(&preset, "cpu", &results).unwrap();
        assert!(
            md.contains("| jem | log p(x) | 0.950 ± 0.071 | - |"),
            "{md}"
        );
        assert!(
            md.contains("| baseline | log p(x) | 0.600 ± 0.141 | - |"),
            "{md}"
        );
        assert!(md.contains("| jem | mean | 86.00 ± 1.41% |"), "{md}");
        assert!(md.contains("over 2 seeds (1, 2)"), "{md}");
        assert_eq!(json["seeds"], serde_json::json!([1, 2]));
        let px = &json["rows"][0]["auroc"][0];
        assert!((px["mean"].as_f64().unwrap() - 0.95).abs() < 1e-12);
        assert_eq!(json["rows"][0]["auroc"][1], Value::Null);
    }

    #[test]
    fn single_seed_table_has_no_spread() {
        let preset = Preset {
            config: "x.toml",
            models: &[],
            ood: &["uniform"],
            paper_rows: &[],
        };
        let (md, _) = assemble(&preset, "cpu", &[run("jem", 1, 0.9, 0.85)]).unwrap();
        assert!(md.contains("| jem | log p(x) | 0.900 |"), "{md}");
        assert!(!md.contains("| mean |"), "{md}");
    }
}
