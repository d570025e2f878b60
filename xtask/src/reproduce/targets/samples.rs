//! The sample figures: Figs 2 and 7-8 (class-conditional grids), 9 (class rows ordered by
//! log p(x)), 10 (log p(x) by class), 11 and 12 (samples with the highest and lowest log p(x)
//! and p(y|x)). Drawn from the first seed's JEM.

use super::{Assembled, Image, Inputs, TargetDef};
use crate::reproduce::claims::{higher, Claim, Measured};
use crate::reproduce::models::ModelId;
use crate::reproduce::plan::{lits, Arg, Job};
use crate::reproduce::preset::Preset;
use anyhow::Result;
use jem_report::{files, ExtremesReport, SampleReport};
use serde_json::json;

/// SGLD steps from the replay buffer for the grids (as the training grids).
const STEPS: &str = "20";

fn conditional_key(id: ModelId) -> String {
    format!("sample-conditional/{id}")
}

/// THE `jem sample` / `jem extremes` commands of this target (edit the flags here).
fn jobs(p: &Preset, seeds: &[u64]) -> Vec<Job> {
    let s = seeds[0];
    let g = &p.generative;
    let run = |id| Arg::Run(id, s);
    let mut v = Vec::new();
    for id in std::iter::once(ModelId::Jem).chain(p.extra_samples.iter().copied()) {
        let mut args = lits(&["--checkpoint"]);
        args.push(run(id));
        args.extend(lits(&[
            "--conditional",
            "--n",
            &g.per_class.to_string(),
            "--steps",
            STEPS,
        ]));
        v.push(Job::new(
            conditional_key(id),
            format!("class-conditional samples of {id} (seed {s})"),
            "sample",
            args,
            files::SAMPLE,
            p.est_generative / 2.0,
        ));
    }
    let mut args = lits(&["--checkpoint"]);
    args.push(run(ModelId::Jem));
    args.extend(lits(&["--n", &g.n_grid.to_string(), "--steps", STEPS]));
    v.push(Job::new(
        "sample-unconditional",
        format!("unconditional samples of jem (seed {s})"),
        "sample",
        args,
        files::SAMPLE,
        p.est_generative / 2.0,
    ));
    let mut args = lits(&["--checkpoint"]);
    args.push(run(ModelId::Jem));
    args.push(Arg::Lit("--samples".into()));
    args.push(Arg::JobFile(
        "sample-unconditional".into(),
        "unconditional.npy".into(),
    ));
    args.extend(lits(&["--k", &g.k_extremes.to_string()]));
    v.push(Job::new(
        "extremes-samples",
        "highest and lowest log p(x), p(y|x) of the samples",
        "extremes",
        args,
        files::EXTREMES,
        p.est_calibrate,
    ));
    let mut args = lits(&["--checkpoint"]);
    args.push(run(ModelId::Jem));
    args.extend(lits(&["--k", &g.k_extremes.to_string()]));
    args.extend(p.n_args());
    v.push(Job::new(
        "extremes-data",
        "log p(x) of the test images by class",
        "extremes",
        args,
        files::EXTREMES,
        p.est_calibrate,
    ));
    v
}

/// Share of the most frequent label among `labels` (labels < 0 are unlabelled and skipped).
pub fn modal_share(labels: &[i64]) -> Option<f64> {
    let known: Vec<i64> = labels.iter().copied().filter(|&y| y >= 0).collect();
    if known.is_empty() {
        return None;
    }
    let mut counts = std::collections::BTreeMap::new();
    for y in &known {
        *counts.entry(*y).or_insert(0usize) += 1;
    }
    let top = counts.values().copied().max().unwrap_or(0);
    Some(top as f64 / known.len() as f64)
}

fn assemble(inputs: &Inputs) -> Result<Assembled> {
    let p = inputs.preset;
    let mut a = Assembled::default();
    let mut image = |src: std::path::PathBuf, name: &str, caption: String| {
        a.images.push(Image {
            src,
            name: name.to_string(),
            caption,
        })
    };
    for id in std::iter::once(ModelId::Jem).chain(p.extra_samples.iter().copied()) {
        let r: SampleReport = inputs.report(&conditional_key(id), files::SAMPLE)?;
        image(
            r.png.clone(),
            &format!("conditional_{id}.png"),
            format!(
                "Figs 2/7/8: class-conditional samples of {}, one row per class ({} SGLD steps)",
                inputs.label(id),
                r.steps
            ),
        );
        if let Some(sorted) = &r.by_logpx_png {
            image(
                sorted.clone(),
                &format!("conditional_by_logpx_{id}.png"),
                format!(
                    "Fig 9: each class row of {} ordered by log p(x), highest left",
                    inputs.label(id)
                ),
            );
        }
    }
    let r: SampleReport = inputs.report("sample-unconditional", files::SAMPLE)?;
    image(
        r.png.clone(),
        "unconditional.png",
        format!(
            "unconditional samples ({} SGLD steps from the replay buffer)",
            r.steps
        ),
    );
    let ex: ExtremesReport = inputs.report("extremes-samples", files::EXTREMES)?;
    for (side, png, fig) in [
        ("highest log p(x)", &ex.logpx.highest_png, "11"),
        ("lowest log p(x)", &ex.logpx.lowest_png, "11"),
        ("highest p(y|x)", &ex.maxpy.highest_png, "12"),
        ("lowest p(y|x)", &ex.maxpy.lowest_png, "12"),
    ] {
        let name = png
            .file_name()
            .map(|n| format!("samples_{}", n.to_string_lossy()))
            .unwrap_or_else(|| format!("fig{fig}.png"));
        image(
            png.clone(),
            &name,
            format!(
                "Fig {fig}: the {} samples of {} with the {side}",
                ex.k, ex.n_images
            ),
        );
    }
    let data: ExtremesReport = inputs.report("extremes-data", files::EXTREMES)?;
    image(
        inputs.path("extremes-data", files::LOGPX_BY_CLASS_PNG)?,
        "logpx_by_class.png",
        format!("Fig 10: log p(x) of the {} by class", data.data),
    );
    let labels: Vec<i64> = data.logpx.highest.iter().map(|i| i.label).collect();
    let share = modal_share(&labels);
    a.body = format!(
        "Grids drawn from JEM (seed {}), below. Of the {} test images with the highest log p(x), \
         {} share one class.\n",
        inputs.first_seed(),
        labels.len(),
        share
            .map(|s| format!("{:.0}%", 100.0 * s))
            .unwrap_or_else(|| "-".into())
    );
    a.claims.push(higher(
        "log p(x) clusters by class: most of the images with the highest log p(x) are of one \
         class (App. D: all top-100 CIFAR-10 samples are cars; measured here on test images)",
        Measured::pct("modal class share", share),
        Measured::pct("half", Some(0.5)),
    ));
    for text in [
        "Class-conditional samples look like their classes (Figs 2, 7, 8)",
        "Within a class, higher log p(x) means plain backgrounds and centred objects (Figs 9, 11)",
        "Higher p(y|x) samples show clearly centred objects (Fig 12)",
    ] {
        a.claims
            .push(Claim::not_measurable(text, "judged by eye: see the grids"));
    }
    if p.extra_samples.is_empty() {
        a.notes.push(
            "Figs 7 (SVHN) and 8 (CIFAR-100) need models of those data sets: paper preset only."
                .into(),
        );
    }
    a.numbers = json!({
        "top_logpx_test_labels": labels,
        "modal_class_share": share,
        "extremes_samples": ex,
    });
    Ok(a)
}

fn no_models(_: &Preset) -> Vec<ModelId> {
    Vec::new()
}

/// The sample figures.
pub const TARGET: TargetDef = TargetDef {
    name: "samples",
    title: "Figs 2, 7-12: samples, class rows, log p(x) by class, extremes",
    models: no_models,
    jobs,
    assemble,
};
