//! Table 5 (Inception Scores: conditional / unconditional, single / ensemble) and the one
//! `jem generative` command it and Table 1 share.

use super::{key, Assembled, Inputs, TargetDef};
use crate::reproduce::claims::{higher, Claim, Measured, Verdict};
use crate::reproduce::models::ModelId;
use crate::reproduce::paper;
use crate::reproduce::plan::{lits, Arg, Job};
use crate::reproduce::preset::Preset;
use crate::reproduce::stats::{fmt_mean_sd, json_stats, paper_cell};
use anyhow::Result;
use jem_report::{files, GenerativeReport};
use serde_json::json;

/// Appendix B's "single": the whole training replay buffer of the last checkpoint, as it stands
/// (no re-drawing, no extra SGLD), 8-bit quantised, against training-split FID statistics.
pub const SINGLE_BUFFER: &[&str] = &["--from-buffer"];
/// Appendix B's "ensemble": 5 buffers of the last checkpoints of training, lumped together (the
/// newest 5 of RUN/checkpoints/, kept when the run trains with `train.keep_checkpoints >= 5`).
pub const ENSEMBLE_BUFFERS: &[&str] = &["--from-buffer", "--ensemble", "5"];
/// Appendix B / Table 5's "conditional": the top 10 percent of the samples by max p(y|x).
pub const TOP_10_PERCENT: &[&str] = &["--top-percentile", "10"];

/// The features of IS/FID: the Inception file when given, else the preset's classifier.
pub fn feature_args(p: &Preset, seed: u64) -> Vec<Arg> {
    match &p.inception {
        Some(path) => lits(&["--features", &format!("inception:{path}")]),
        None => {
            let mut v = lits(&["--features", "classifier", "--classifier"]);
            v.push(Arg::Run(p.generative.feature_classifier, seed));
            v
        }
    }
}

/// THE `jem generative` command of Tables 1 and 5 (edit the flags here).
pub fn generative_job(p: &Preset, id: ModelId, seed: u64, top10: bool, ensemble: bool) -> Job {
    let mut args = lits(&["--checkpoint"]);
    args.push(Arg::Run(id, seed));
    let source = if ensemble {
        ENSEMBLE_BUFFERS
    } else {
        SINGLE_BUFFER
    };
    args.extend(lits(source));
    if top10 {
        args.extend(lits(TOP_10_PERCENT));
    }
    args.extend(feature_args(p, seed));
    let kind = format!(
        "generative-{}-{}",
        if top10 { "top10" } else { "all" },
        if ensemble { "ensemble" } else { "single" }
    );
    let mut job = Job::new(
        key(&kind, id, seed),
        format!("IS/FID of {id} ({kind}, seed {seed})"),
        "generative",
        args,
        files::GENERATIVE,
        p.est_generative,
    );
    job.needs = if ensemble {
        vec!["--from-buffer", "--ensemble"]
    } else {
        vec!["--from-buffer"]
    };
    job
}

/// The four cells of Table 5, in the paper's order.
const CELLS: [(bool, bool, &str); 4] = [
    (true, false, "conditional (top 10%), single"),
    (true, true, "conditional (top 10%), ensemble"),
    (false, false, "unconditional, single"),
    (false, true, "unconditional, ensemble"),
];

fn jobs(p: &Preset, seeds: &[u64]) -> Vec<Job> {
    let mut v = Vec::new();
    for &seed in seeds {
        for (top10, ensemble, _) in CELLS {
            v.push(generative_job(p, ModelId::Jem, seed, top10, ensemble));
        }
    }
    v
}

/// The IS values of one cell over the seeds, and whether they are Inception numbers.
pub fn is_values(
    inputs: &Inputs,
    id: ModelId,
    top10: bool,
    ensemble: bool,
) -> Result<(Vec<f64>, Vec<f64>, bool)> {
    let (mut is, mut fid, mut inception) = (Vec::new(), Vec::new(), true);
    for &seed in &inputs.seeds {
        let job = generative_job(inputs.preset, id, seed, top10, ensemble);
        let r: GenerativeReport = inputs.report(&job.key, files::GENERATIVE)?;
        inception &= r.metrics.is_inception();
        is.extend(r.metrics.is_mean);
        fid.push(r.metrics.fid);
    }
    Ok((is, fid, inception))
}

/// "IS" or "IS (classifier features, not Inception)".
pub fn feature_label(inception: bool) -> &'static str {
    if inception {
        "Inception"
    } else {
        "classifier features, not Inception"
    }
}

fn assemble(inputs: &Inputs) -> Result<Assembled> {
    let n = inputs.seeds.len();
    let mut inception = true;
    let mut means = Vec::new();
    let mut rows = Vec::new();
    let mut numbers = serde_json::Map::new();
    for (i, (top10, ensemble, name)) in CELLS.iter().enumerate() {
        let (is, fid, inc) = is_values(inputs, ModelId::Jem, *top10, *ensemble)?;
        inception &= inc;
        means.push(crate::reproduce::claims::mean(&is));
        rows.push(format!(
            "| {name} | {} | {} | {} |",
            fmt_mean_sd(&is, n, 1.0, 2, ""),
            fmt_mean_sd(&fid, n, 1.0, 1, ""),
            paper_cell(paper::TABLE5_JEM[i], 2)
        ));
        numbers.insert(
            name.to_string(),
            json!({ "is": json_stats(&is), "fid": json_stats(&fid), "inception": inc }),
        );
    }
    let features = feature_label(inception);
    let body = format!(
        "JEM's samples scored by IS (features: **{features}**), the paper's JEM row beside.\n\n\
         | samples | IS | FID | paper IS |\n|---|---|---|---|\n{}\n",
        rows.join("\n")
    );
    let tag = |m: &str| format!("{m} [{features}]");
    let mut claims = vec![higher(
        "Keeping the top 10% of the buffer by p(y|x) raises the Inception Score (paper, single \
         buffer: 8.76 vs 7.82)",
        Measured::num(&tag("top 10%"), means[0], 2),
        Measured::num("all samples", means[2], 2),
    )];
    claims.push(match (means[3], means[2]) {
        (Some(e), Some(s)) if s > 0.0 => {
            let rel = (e - s).abs() / s;
            Claim {
                text: "An ensemble of 5 buffers scores about as one buffer does, within 5% \
                       (paper, unconditional: 7.79 vs 7.82)"
                    .into(),
                verdict: if rel <= 0.05 {
                    Verdict::Supported
                } else {
                    Verdict::NotSupported
                },
                evidence: format!(
                    "{} {e:.2} vs single {s:.2} ({:.1}% apart)",
                    tag("ensemble"),
                    100.0 * rel
                ),
            }
        }
        _ => Claim::not_measurable(
            "An ensemble of 5 buffers scores about as one buffer does (paper 7.79 vs 7.82)",
            "IS not measured",
        ),
    });
    claims.push(if inception {
        higher(
            "JEM's unconditional samples beat the IGEBM's (paper 7.82 vs 6.02)",
            Measured::num("JEM", means[2], 2),
            Measured::num("IGEBM (paper)", paper::TABLE5_IGEBM[2], 2),
        )
    } else {
        Claim::not_measurable(
            "JEM's unconditional samples beat the IGEBM's (paper 7.82 vs 6.02)",
            "comparing with a published IS needs Inception features (pass --inception FILE)",
        )
    });
    Ok(Assembled {
        body,
        claims,
        numbers: serde_json::Value::Object(numbers),
        images: Vec::new(),
        notes: if inception {
            Vec::new()
        } else {
            vec![NOT_INCEPTION_NOTE.into()]
        },
    })
}

/// The caveat on every IS/FID computed with classifier features.
pub const NOT_INCEPTION_NOTE: &str = "IS and FID here are computed with a trained classifier's \
    features (not Inception): they rank this preset's models against each other and are not \
    comparable with published IS/FID values.";

fn no_models(_: &Preset) -> Vec<ModelId> {
    Vec::new()
}

/// Table 5.
pub const TARGET: TargetDef = TargetDef {
    name: "table5",
    title: "Table 5: conditional vs unconditional Inception Scores, single vs ensemble",
    models: no_models,
    jobs,
    assemble,
};
