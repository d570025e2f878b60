//! Tables 2, 3 and 7: OOD detection. All three read one `jem eval` per model and seed (the
//! preset's every OOD set, the three scores), so they share it.

use super::{key, Assembled, Image, Inputs, TargetDef};
use crate::reproduce::claims::{self, at_least, higher, Claim, Measured};
use crate::reproduce::models::ModelId;
use crate::reproduce::paper;
use crate::reproduce::plan::{lits, Arg, Job};
use crate::reproduce::preset::Preset;
use crate::reproduce::stats::{cell, fmt_mean_sd, json_stats};
use anyhow::{bail, Result};
use jem_report::{files, OodReport, Score};
use serde_json::json;

/// The models evaluated: JEM and the preset's baselines.
fn models(p: &Preset) -> Vec<ModelId> {
    let mut m = vec![ModelId::Jem];
    m.extend_from_slice(p.baselines);
    m
}

/// THE `jem eval` of these tables (edit the flags here).
fn eval_job(p: &Preset, id: ModelId, seed: u64) -> Job {
    let mut args = lits(&["--checkpoint"]);
    args.push(Arg::Run(id, seed));
    args.extend(lits(&[
        "--ood",
        &p.ood.join(","),
        "--scores",
        "px,py,pxgrad",
    ]));
    args.extend(p.n_args());
    Job::new(
        key("eval", id, seed),
        format!("OOD evaluation of {id} (seed {seed})"),
        "eval",
        args,
        files::OOD,
        p.est_eval,
    )
}

fn jobs(p: &Preset, seeds: &[u64]) -> Vec<Job> {
    let mut v = Vec::new();
    for &seed in seeds {
        for id in models(p) {
            v.push(eval_job(p, id, seed));
        }
    }
    v
}

/// The AUROCs of `id`, score `score`, OOD set `ood`, over the seeds.
fn aurocs(inputs: &Inputs, id: ModelId, score: Score, ood: &str) -> Result<Vec<f64>> {
    let mut v = Vec::new();
    for &seed in &inputs.seeds {
        let report: OodReport = inputs.report(&key("eval", id, seed), files::OOD)?;
        if let Some(r) = report.get(score, ood) {
            v.push(r.metrics.auroc);
        }
    }
    Ok(v)
}

fn spread_note(seeds: &[u64]) -> String {
    if seeds.len() > 1 {
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
    }
}

/// The Table 3 Markdown as `cargo xtask reproduce table3` has always written it
/// (`runs/<preset>/table3.md`), and its JSON.
pub fn table3_markdown(inputs: &Inputs) -> Result<(String, serde_json::Value)> {
    let p = inputs.preset;
    let seeds = &inputs.seeds;
    let ood = p.table3_ood;
    let mut md = format!(
        "# Table 3 (OOD detection, AUROC), `{}` preset\n\nIn-distribution: the run's test set; \
         higher is better; 0.5 is chance.{}\n\n| model | score | {} |\n|---|---|{}\n",
        p.name,
        spread_note(seeds),
        ood.join(" | "),
        "---|".repeat(ood.len())
    );
    let mut rows = Vec::new();
    for id in models(p) {
        for score in Score::ALL {
            let per_ood: Vec<Vec<f64>> = ood
                .iter()
                .map(|o| aurocs(inputs, id, score, o))
                .collect::<Result<_>>()?;
            if per_ood.iter().all(Vec::is_empty) {
                bail!("no AUROC for score {} in the {id} evaluation", score.name());
            }
            let cells: Vec<String> = per_ood
                .iter()
                .map(|v| fmt_mean_sd(v, seeds.len(), 1.0, 3, ""))
                .collect();
            md.push_str(&format!(
                "| {id} | {} | {} |\n",
                score.label().replace('|', "\\|"),
                cells.join(" | ")
            ));
            let stats: Vec<serde_json::Value> = per_ood.iter().map(|v| json_stats(v)).collect();
            rows.push(json!({ "model": id.name(), "score": score.name(), "auroc": stats }));
        }
    }
    if p.table3_ood == paper::TABLE3_COLUMNS {
        for (model, score, values) in paper::TABLE3 {
            let cells: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
            md.push_str(&format!("| {model} | {score} | {} |\n", cells.join(" | ")));
        }
    }
    md.push_str("\n| model | seed | test accuracy (final) | best valid accuracy | iterations | minutes | recoveries |\n|---|---|---|---|---|---|---|\n");
    let pct = |v: Option<f64>| {
        v.map(|v| format!("{:.2}%", 100.0 * v))
            .unwrap_or_else(|| "-".into())
    };
    let mut runs = Vec::new();
    for id in models(p) {
        for &seed in seeds {
            let s = inputs.summary(id, seed)?;
            md.push_str(&format!(
                "| {id} | {seed} | {} | {} | {} | {:.1} | {} |\n",
                pct(s.final_test_acc),
                pct(s.best_valid_acc),
                s.iterations,
                s.wall_time_s / 60.0,
                s.recoveries
            ));
            runs.push(json!({ "model": id.name(), "seed": seed, "summary": s }));
        }
    }
    if seeds.len() > 1 {
        for id in models(p) {
            let all = inputs.summaries(id)?;
            let col = |f: fn(&jem_report::TrainSummary) -> Option<f64>| -> Vec<f64> {
                all.iter().filter_map(f).collect()
            };
            let recoveries: usize = all.iter().map(|s| s.recoveries).sum();
            md.push_str(&format!(
                "| {id} | mean | {} | {} | {} | {} | {recoveries} in all |\n",
                fmt_mean_sd(&col(|s| s.final_test_acc), seeds.len(), 100.0, 2, "%"),
                fmt_mean_sd(&col(|s| s.best_valid_acc), seeds.len(), 100.0, 2, "%"),
                fmt_mean_sd(&col(|s| Some(s.iterations as f64)), seeds.len(), 1.0, 0, ""),
                fmt_mean_sd(
                    &col(|s| Some(s.wall_time_s / 60.0)),
                    seeds.len(),
                    1.0,
                    1,
                    ""
                ),
            ));
        }
    }
    let json = json!({
        "preset": p.name,
        "seeds": seeds,
        "ood": ood,
        "rows": rows,
        "runs": runs,
    });
    Ok((md, json))
}

/// The mean over the seeds of the AUROC, `None` when not evaluated.
fn mean_auroc(inputs: &Inputs, id: ModelId, score: Score, ood: &str) -> Result<Option<f64>> {
    Ok(claims::mean(&aurocs(inputs, id, score, ood)?))
}

/// The mean over OOD sets of the mean AUROCs (`None` if any is missing).
fn mean_over_sets(
    inputs: &Inputs,
    id: ModelId,
    score: Score,
    sets: &[&str],
) -> Result<Option<f64>> {
    let mut v = Vec::new();
    for o in sets {
        match mean_auroc(inputs, id, score, o)? {
            Some(a) => v.push(a),
            None => return Ok(None),
        }
    }
    Ok(claims::mean(&v))
}

fn above_chance_everywhere(inputs: &Inputs, text: &str, sets: &[&str]) -> Result<Claim> {
    let mut parts = Vec::new();
    let mut all = true;
    for o in sets {
        match mean_auroc(inputs, ModelId::Jem, Score::LogPx, o)? {
            Some(a) => {
                all &= a > 0.5;
                parts.push(format!("{o} {a:.3}"));
            }
            None => {
                return Ok(Claim::not_measurable(text, format!("{o} not evaluated")));
            }
        }
    }
    Ok(Claim {
        text: text.into(),
        verdict: if all {
            claims::Verdict::Supported
        } else {
            claims::Verdict::NotSupported
        },
        evidence: format!("JEM log p(x) AUROC: {}", parts.join(", ")),
    })
}

fn assemble_table3(inputs: &Inputs) -> Result<Assembled> {
    let (md, numbers) = table3_markdown(inputs)?;
    let sets = inputs.preset.table3_ood;
    let base = inputs.preset.baseline();
    let paper_mean = |model: &str, score: &str| {
        paper::TABLE3
            .iter()
            .find(|(m, s, _)| m.starts_with(model) && *s == score)
            .map(|(_, _, v)| v.iter().sum::<f64>() / v.len() as f64)
            .unwrap_or(f64::NAN)
    };
    let claims = vec![
        above_chance_everywhere(
            inputs,
            "JEM's log p(x) is a usable OOD score: AUROC above chance (0.5) on every OOD set \
             (paper: 0.65-0.75 on CIFAR-10's four)",
            sets,
        )?,
        at_least(
            format!(
                "JEM's max p(y|x) detects OOD on par with or better than the baseline's, mean \
                 over the OOD sets (paper: {:.3} vs {:.3})",
                paper_mean("JEM", "py"),
                paper_mean("Wide-ResNet", "py")
            ),
            Measured::num(
                "JEM",
                mean_over_sets(inputs, ModelId::Jem, Score::MaxPy, sets)?,
                3,
            ),
            Measured::num(
                "baseline",
                mean_over_sets(inputs, base, Score::MaxPy, sets)?,
                3,
            ),
        ),
        higher(
            format!(
                "The approximate-mass score beats JEM's log p(x), mean over the OOD sets \
                 (paper: {:.3} vs {:.3})",
                paper_mean("JEM", "pxgrad"),
                paper_mean("JEM", "px")
            ),
            Measured::num(
                "approx. mass",
                mean_over_sets(inputs, ModelId::Jem, Score::GradNorm, sets)?,
                3,
            ),
            Measured::num(
                "log p(x)",
                mean_over_sets(inputs, ModelId::Jem, Score::LogPx, sets)?,
                3,
            ),
        ),
    ];
    // The README gets the table without its top-level title (the README has its own).
    let body = md
        .split_once('\n')
        .map(|(_, rest)| rest.trim_start().to_string())
        .unwrap_or(md.clone());
    let mut notes = Vec::new();
    if inputs.preset.table3_ood != paper::TABLE3_COLUMNS {
        notes.push(format!(
            "The paper's columns are CIFAR-10 against {}; this preset's are {} against {}, so \
             the paper's values are not shown in the same table: JEM log p(x) {:?}, max p(y|x) \
             {:?}, approx. mass {:?}; Wide-ResNet max p(y|x) {:?}.",
            paper::TABLE3_COLUMNS.join(", "),
            inputs.preset.dataset,
            sets.join(", "),
            paper::TABLE3[0].2,
            paper::TABLE3[1].2,
            paper::TABLE3[2].2,
            paper::TABLE3[3].2,
        ));
    }
    Ok(Assembled {
        body,
        claims,
        numbers,
        images: Vec::new(),
        notes,
    })
}

fn assemble_table2(inputs: &Inputs) -> Result<Assembled> {
    let p = inputs.preset;
    let seed = inputs.first_seed();
    let dir = inputs.job_dir(&key("eval", ModelId::Jem, seed))?;
    let images = [
        (Score::LogPx, "JEM log p(x) (Table 2, column 2)"),
        (Score::GradNorm, "JEM approximate mass (Table 2, column 3)"),
        (Score::MaxPy, "JEM max p(y|x) (for reference)"),
    ]
    .iter()
    .map(|(score, caption)| Image {
        src: dir.join(files::histogram_png(score.name())),
        name: format!("jem_{}", files::histogram_png(score.name())),
        caption: format!(
            "{caption}, seed {seed}: {} against every OOD set",
            p.dataset
        ),
    })
    .collect();
    let mut body = format!(
        "Histograms of JEM's scores on {} (in-distribution) and each OOD set, and the AUROC \
         they give (Table 2 has no numbers; its histograms are CIFAR-10 against SVHN, \
         CIFAR-100 and CelebA).\n\n| OOD set | log p(x) AUROC | approx. mass AUROC |\n|---|---|---|\n",
        p.dataset
    );
    let mut claims = Vec::new();
    let mut numbers = serde_json::Map::new();
    for o in p.ood {
        let px = aurocs(inputs, ModelId::Jem, Score::LogPx, o)?;
        let grad = aurocs(inputs, ModelId::Jem, Score::GradNorm, o)?;
        let n = inputs.seeds.len();
        body.push_str(&format!(
            "| {o} | {} | {} |\n",
            fmt_mean_sd(&px, n, 1.0, 3, ""),
            fmt_mean_sd(&grad, n, 1.0, 3, "")
        ));
        claims.push(higher(
            format!(
                "JEM assigns higher log p(x) to {} than to {o} (Table 2, column 2): AUROC above 0.5",
                p.dataset
            ),
            Measured::num("AUROC", claims::mean(&px), 3),
            Measured::num("chance", Some(0.5), 1),
        ));
        claims.push(higher(
            format!(
                "JEM's approximate-mass score separates {o} better than its log p(x) \
                 (Table 2, column 3 vs 2)"
            ),
            Measured::num("approx. mass", claims::mean(&grad), 3),
            Measured::num("log p(x)", claims::mean(&px), 3),
        ));
        numbers.insert(
            (*o).to_string(),
            json!({ "px": json_stats(&px), "pxgrad": json_stats(&grad) }),
        );
    }
    Ok(Assembled {
        body,
        claims,
        numbers: serde_json::Value::Object(numbers),
        images,
        notes: vec!["Glow's column (1) is not reproduced: jem trains no flow model.".into()],
    })
}

fn assemble_table7(inputs: &Inputs) -> Result<Assembled> {
    let p = inputs.preset;
    let n = inputs.seeds.len();
    let mut body = format!(
        "AUROC, every OOD set of the preset ({}). Higher is better; 0.5 is chance.\n\n\
         | model | score | {} |\n|---|---|{}\n",
        p.dataset,
        p.ood.join(" | "),
        "---|".repeat(p.ood.len())
    );
    let mut rows = Vec::new();
    for id in models(p) {
        for score in Score::ALL {
            let mut cells = Vec::new();
            let mut stats = Vec::new();
            for o in p.ood {
                let v = aurocs(inputs, id, score, o)?;
                cells.push(fmt_mean_sd(&v, n, 1.0, 3, ""));
                stats.push(json_stats(&v));
            }
            body.push_str(&format!(
                "| {} | {} | {} |\n",
                cell(inputs.label(id)),
                cell(score.label()),
                cells.join(" | ")
            ));
            rows.push(json!({ "model": id.name(), "score": score.name(), "auroc": stats }));
        }
    }
    body.push_str(&format!(
        "\nThe paper's Table 7 (CIFAR-10 in-distribution):\n\n| model | score | {} |\n|---|---|{}\n",
        paper::TABLE7_COLUMNS.join(" | "),
        "---|".repeat(paper::TABLE7_COLUMNS.len())
    ));
    for (model, score, values) in paper::TABLE7 {
        let cells: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
        body.push_str(&format!("| {model} | {score} | {} |\n", cells.join(" | ")));
    }
    let jem = |score, o| mean_auroc(inputs, ModelId::Jem, score, o);
    let base = p.baseline();
    let claims =
        vec![
        higher(
            "Uniform noise is easy: JEM's log p(x) AUROC on Uniform exceeds 0.9 (paper 1.0)",
            Measured::num("JEM log p(x)", jem(Score::LogPx, "uniform")?, 3),
            Measured::num("threshold", Some(0.9), 1),
        ),
        higher(
            "On Constant images JEM's log p(x) is better than chance, where the other generative \
             models fail (paper .51 vs Glow 0.0, IGEBM .30)",
            Measured::num("JEM log p(x)", jem(Score::LogPx, "constant")?, 3),
            Measured::num("chance", Some(0.5), 1),
        ),
        claims::lower(
            "On Uniform, JEM's max p(y|x) is below the baseline's (paper .41 vs .97)",
            Measured::num("JEM", jem(Score::MaxPy, "uniform")?, 3),
            Measured::num("baseline", mean_auroc(inputs, base, Score::MaxPy, "uniform")?, 3),
        ),
        higher(
            "On Constant, JEM's approximate mass beats its log p(x) (paper .75 vs .51)",
            Measured::num("approx. mass", jem(Score::GradNorm, "constant")?, 3),
            Measured::num("log p(x)", jem(Score::LogPx, "constant")?, 3),
        ),
    ];
    Ok(Assembled {
        body,
        claims,
        numbers: json!({ "ood": p.ood, "rows": rows }),
        images: Vec::new(),
        notes: Vec::new(),
    })
}

fn no_models(_: &Preset) -> Vec<ModelId> {
    Vec::new()
}

/// Table 2: score histograms per OOD set (PNG), with the AUROCs they give.
pub const TABLE2: TargetDef = TargetDef {
    name: "table2",
    title: "Table 2: histograms of JEM's OOD scores",
    models: no_models,
    jobs,
    assemble: assemble_table2,
};

/// Table 3: OOD detection AUROC of JEM and the baseline.
pub const TABLE3: TargetDef = TargetDef {
    name: "table3",
    title: "Table 3: OOD detection (AUROC)",
    models: no_models,
    jobs,
    assemble: assemble_table3,
};

/// Table 7: every OOD column, Uniform and Constant included.
pub const TABLE7: TargetDef = TargetDef {
    name: "table7",
    title: "Table 7: OOD detection, all columns (AUROC)",
    models: no_models,
    jobs,
    assemble: assemble_table7,
};
