//! Table 1: accuracy, IS and FID of JEM, the classifier baseline(s) and the factored ablation.

use super::table5::{feature_label, generative_job, is_values, NOT_INCEPTION_NOTE};
use super::{Assembled, Inputs, TargetDef};
use crate::reproduce::claims::{self, higher, lower, Claim, Measured};
use crate::reproduce::models::ModelId;
use crate::reproduce::paper;
use crate::reproduce::plan::Job;
use crate::reproduce::preset::Preset;
use crate::reproduce::stats::{cell, fmt_mean_sd, json_stats, paper_cell};
use anyhow::Result;
use serde_json::json;

/// Models with an accuracy row.
fn models(p: &Preset) -> Vec<ModelId> {
    let mut m = vec![ModelId::Jem];
    m.extend_from_slice(p.baselines);
    m.push(ModelId::Factored);
    m.extend_from_slice(p.extra_accuracy);
    m
}

/// Models with IS/FID (Table 1 reports Table 5's "conditional, single" cell).
const GENERATIVE: [ModelId; 2] = [ModelId::Jem, ModelId::Factored];

fn jobs(p: &Preset, seeds: &[u64]) -> Vec<Job> {
    let mut v = Vec::new();
    for &seed in seeds {
        for id in GENERATIVE {
            v.push(generative_job(p, id, seed, true, false));
        }
    }
    v
}

/// The paper's (accuracy %, IS, FID) of the row of `id`.
fn paper_row(id: ModelId) -> (Option<f64>, Option<f64>, Option<f64>) {
    match id {
        ModelId::Jem => (paper::T1_JEM.accuracy, paper::T1_JEM.is, paper::T1_JEM.fid),
        ModelId::Factored => (
            paper::T1_FACTORED.accuracy,
            paper::T1_FACTORED.is,
            paper::T1_FACTORED.fid,
        ),
        ModelId::Baseline => (Some(paper::T1_WRN_ACCURACY), None, None),
        ModelId::BaselineNoNorm => (Some(paper::WRN_NO_NORM_ACCURACY), None, None),
        ModelId::JemSvhn => (Some(paper::JEM_SVHN_ACCURACY), None, None),
        ModelId::JemCifar100 => (Some(paper::JEM_CIFAR100_ACCURACY), None, None),
        _ => (None, None, None),
    }
}

/// Test accuracies (of the checkpoint the evaluations use) over the seeds.
pub fn accuracies(inputs: &Inputs, id: ModelId) -> Result<Vec<f64>> {
    Ok(inputs
        .summaries(id)?
        .iter()
        .filter_map(|s| s.reported_test_acc())
        .collect())
}

fn assemble(inputs: &Inputs) -> Result<Assembled> {
    let p = inputs.preset;
    let n = inputs.seeds.len();
    let mut inception = true;
    let mut table = String::new();
    let mut numbers = serde_json::Map::new();
    let mut acc_mean = std::collections::BTreeMap::new();
    let mut gen_mean = std::collections::BTreeMap::new();
    for id in models(p) {
        let acc = accuracies(inputs, id)?;
        acc_mean.insert(id, claims::mean(&acc));
        let (is, fid) = if GENERATIVE.contains(&id) {
            let (is, fid, inc) = is_values(inputs, id, true, false)?;
            inception &= inc;
            gen_mean.insert(id, (claims::mean(&is), claims::mean(&fid)));
            (is, fid)
        } else {
            (Vec::new(), Vec::new())
        };
        let (pa, pis, pfid) = paper_row(id);
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            cell(inputs.label(id)),
            fmt_mean_sd(&acc, n, 100.0, 2, "%"),
            fmt_mean_sd(&is, n, 1.0, 2, ""),
            fmt_mean_sd(&fid, n, 1.0, 1, ""),
            paper_cell(pa, 1),
            paper_cell(pis, 2),
            paper_cell(pfid, 1),
        ));
        numbers.insert(
            id.name().to_string(),
            json!({
                "accuracy": json_stats(&acc), "is": json_stats(&is), "fid": json_stats(&fid),
                "paper": { "accuracy": pa, "is": pis, "fid": pfid },
            }),
        );
    }
    let features = feature_label(inception);
    let body = format!(
        "Test accuracy of the best-validation checkpoint; IS and FID of the top 10% of JEM's \
         replay buffer by p(y|x) (Table 5's conditional single cell; features: **{features}**). \
         Our data set: {}; the paper's: CIFAR-10 (SVHN and CIFAR-100 rows: those sets).\n\n\
         | model | accuracy | IS | FID | paper accuracy | paper IS | paper FID |\n\
         |---|---|---|---|---|---|---|\n{table}",
        p.dataset
    );
    let mut body = body;
    body.push_str(
        "\nThe paper's Table 1 (CIFAR-10):\n\n| model | accuracy | IS | FID |\n|---|---|---|---|\n",
    );
    for row in paper::TABLE1 {
        body.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(row.model),
            paper_cell(row.accuracy, 1),
            paper_cell(row.is, 2),
            paper_cell(row.fid, 2)
        ));
    }
    let acc = |id| acc_mean.get(&id).copied().flatten();
    let tag = |m: &str| format!("{m} [{features}]");
    let base = p.baseline();
    let (jem_is, jem_fid) = gen_mean.get(&ModelId::Jem).copied().unwrap_or((None, None));
    let (fac_is, fac_fid) = gen_mean
        .get(&ModelId::Factored)
        .copied()
        .unwrap_or((None, None));
    let mut claims = vec![
        higher(
            "JEM classifies far better than the factored p(x|y) ablation (paper 92.9% vs 30.1%)",
            Measured::pct("JEM", acc(ModelId::Jem)),
            Measured::pct("factored", acc(ModelId::Factored)),
        ),
        lower(
            "JEM gives up some accuracy to the classifier baseline (paper 92.9% vs 95.8%)",
            Measured::pct("JEM", acc(ModelId::Jem)),
            Measured::pct(inputs.label(base), acc(base)),
        ),
        higher(
            "JEM's samples have a higher IS than the factored ablation's (paper 8.76 vs 6.36)",
            Measured::num(&tag("JEM"), jem_is, 2),
            Measured::num("factored", fac_is, 2),
        ),
        lower(
            "JEM's samples have a lower FID than the factored ablation's (paper 38.4 vs 61.8)",
            Measured::num(&tag("JEM"), jem_fid, 1),
            Measured::num("factored", fac_fid, 1),
        ),
    ];
    let hybrid =
        "JEM's IS beats every other hybrid model's (best other: IGEBM 8.3; paper JEM 8.76)";
    claims.push(if inception {
        higher(
            hybrid,
            Measured::num("JEM", jem_is, 2),
            Measured::num("IGEBM (paper)", Some(paper::T1_BEST_OTHER_HYBRID_IS), 2),
        )
    } else {
        Claim::not_measurable(
            hybrid,
            "comparing with published IS needs Inception features (pass --inception FILE)",
        )
    });
    if p.baselines.contains(&ModelId::BaselineNoNorm) {
        claims.push(lower(
            "Removing batch norm costs the WRN classifier accuracy (Sec. 5.1: 95.8% → 93.6%)",
            Measured::pct("no norm", acc(ModelId::BaselineNoNorm)),
            Measured::pct("batch norm", acc(ModelId::Baseline)),
        ));
    }
    let mut notes = Vec::new();
    if !inception {
        notes.push(NOT_INCEPTION_NOTE.into());
    }
    Ok(Assembled {
        body,
        claims,
        numbers: serde_json::Value::Object(numbers),
        images: Vec::new(),
        notes,
    })
}

/// Table 1.
pub const TARGET: TargetDef = TargetDef {
    name: "table1",
    title: "Table 1: hybrid modelling — accuracy, Inception Score, FID",
    models,
    jobs,
    assemble,
};
