//! `jem metrics …`: jem-eval's metric math on users' own `.npy` arrays.
//!
//! Human-readable Markdown by default, `--json` for scripts. Arrays are checked
//! for dtype, shape and non-finite values before any metric runs, and every
//! error names the file.

use anyhow::{bail, Context, Result};
use jem_data::{read_npy, NpyArray, NpyData};
use jem_eval::ndarray::{ArrayView1, ArrayView2};
use jem_eval::BootstrapConfig;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct MetricsArgs {
    #[command(subcommand)]
    metric: Metric,
    /// Print JSON instead of a Markdown table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Metric {
    /// AUROC (in-distribution positive, ties count one half), AUPR and FPR at 95% TPR.
    Auroc {
        /// Scores of in-distribution samples (1-D; higher = more in-distribution).
        #[arg(long = "in", value_name = "IN.npy")]
        in_scores: PathBuf,
        /// Scores of out-of-distribution samples (1-D).
        #[arg(long = "out", value_name = "OUT.npy")]
        out_scores: PathBuf,
        /// Bootstrap resamples for a 95% confidence interval of the AUROC (0 = none).
        #[arg(long, default_value_t = 0)]
        bootstrap: usize,
        /// Seed of the bootstrap.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Expected calibration error (the paper's Appendix E.1), accuracy, NLL and reliability bins.
    Ece {
        /// Class probabilities, shape [N, K], rows summing to 1.
        #[arg(long, value_name = "P.npy")]
        probs: PathBuf,
        /// Integer labels, shape [N].
        #[arg(long, value_name = "Y.npy")]
        labels: PathBuf,
        /// Number of equal-width confidence bins.
        #[arg(long, default_value_t = jem_eval::PAPER_NUM_BINS)]
        bins: usize,
    },
    /// Fréchet distance between two feature sets, shapes [N, D] and [M, D].
    Fid {
        #[arg(long, value_name = "A.npy")]
        a: PathBuf,
        #[arg(long, value_name = "B.npy")]
        b: PathBuf,
    },
    /// Inception Score from class probabilities [N, K].
    Is {
        #[arg(long, value_name = "P.npy")]
        probs: PathBuf,
        /// Number of consecutive splits.
        #[arg(long, default_value_t = jem_eval::DEFAULT_SPLITS)]
        splits: usize,
    },
}

pub fn run(args: &MetricsArgs) -> Result<()> {
    let (report, table) = match &args.metric {
        Metric::Auroc {
            in_scores,
            out_scores,
            bootstrap,
            seed,
        } => {
            let in_scores = scores(in_scores)?;
            let out_scores = scores(out_scores)?;
            let (in_view, out_view) = (ArrayView1::from(&in_scores), ArrayView1::from(&out_scores));
            let metrics = jem_eval::ood_metrics(in_view, out_view)?;
            let mut rows = vec![
                ("AUROC", format!("{:.6}", metrics.auroc)),
                ("AUPR", format!("{:.6}", metrics.aupr)),
                ("FPR at 95% TPR", format!("{:.6}", metrics.fpr_at_95_tpr)),
                ("in-distribution samples", metrics.num_in.to_string()),
                ("out-of-distribution samples", metrics.num_out.to_string()),
            ];
            let mut report = serde_json::to_value(metrics)?;
            if *bootstrap > 0 {
                let config = BootstrapConfig {
                    num_resamples: *bootstrap,
                    seed: *seed,
                    ..Default::default()
                };
                let interval = jem_eval::auroc_bootstrap(in_view, out_view, &config)?;
                rows.push((
                    "AUROC 95% CI (bootstrap)",
                    format!(
                        "[{:.6}, {:.6}] ({} resamples)",
                        interval.lower, interval.upper, bootstrap
                    ),
                ));
                report["auroc_bootstrap"] = serde_json::to_value(interval)?;
            }
            (report, markdown_table(&rows))
        }
        Metric::Ece {
            probs,
            labels,
            bins,
        } => {
            let (data, classes) = matrix(probs, "probabilities")?;
            let label_values = labels_of(labels)?;
            let probs_view = ArrayView2::from_shape((data.len() / classes, classes), &data)?;
            if label_values.len() != probs_view.nrows() {
                bail!(
                    "{} has {} labels but {} has {} rows of probabilities",
                    labels.display(),
                    label_values.len(),
                    probs.display(),
                    probs_view.nrows()
                );
            }
            let label_view = ArrayView1::from(&label_values);
            let diagram = jem_eval::reliability_diagram(probs_view, label_view, *bins)
                .with_context(|| probs.display().to_string())?;
            let cls = jem_eval::classification_metrics(probs_view, label_view)?;
            let rows = vec![
                ("ECE", format!("{:.6}", diagram.ece)),
                ("accuracy", format!("{:.6}", cls.accuracy)),
                ("NLL", format!("{:.6}", cls.nll)),
                ("bins", bins.to_string()),
                ("samples", cls.num_samples.to_string()),
            ];
            let mut table = markdown_table(&rows);
            table.push_str("\n| bin | count | accuracy | confidence |\n|---|---|---|---|\n");
            for bin in diagram.bins.iter().filter(|b| b.count > 0) {
                table.push_str(&format!(
                    "| ({:.2}, {:.2}] | {} | {:.4} | {:.4} |\n",
                    bin.lo,
                    bin.hi,
                    bin.count,
                    bin.accuracy.unwrap_or(f64::NAN),
                    bin.mean_confidence.unwrap_or(f64::NAN)
                ));
            }
            let report =
                json!({ "ece": diagram.ece, "classification": cls, "reliability": diagram });
            (report, table)
        }
        Metric::Fid { a, b } => {
            let (fa, da) = matrix(a, "features")?;
            let (fb, db) = matrix(b, "features")?;
            if da != db {
                bail!(
                    "feature dimensions differ: {} has {da}, {} has {db}",
                    a.display(),
                    b.display()
                );
            }
            let fa = ArrayView2::from_shape((fa.len() / da, da), &fa)?;
            let fb = ArrayView2::from_shape((fb.len() / db, db), &fb)?;
            let fd = jem_eval::frechet_distance(fa, fb)?;
            let rows = vec![
                ("Frechet distance", format!("{fd:.6}")),
                ("samples A", fa.nrows().to_string()),
                ("samples B", fb.nrows().to_string()),
                ("dimension", da.to_string()),
            ];
            (
                json!({ "frechet_distance": fd, "dim": da }),
                markdown_table(&rows),
            )
        }
        Metric::Is { probs, splits } => {
            let (data, classes) = matrix(probs, "probabilities")?;
            let view = ArrayView2::from_shape((data.len() / classes, classes), &data)?;
            let score = jem_eval::inception_score(view, *splits)
                .with_context(|| probs.display().to_string())?;
            let rows = vec![
                (
                    "Inception Score",
                    format!("{:.6} ± {:.6}", score.mean, score.std),
                ),
                ("splits", splits.to_string()),
                ("samples", view.nrows().to_string()),
            ];
            (serde_json::to_value(&score)?, markdown_table(&rows))
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{table}");
    }
    Ok(())
}

fn markdown_table(rows: &[(&str, String)]) -> String {
    let mut out = String::from("| metric | value |\n|---|---|\n");
    for (name, value) in rows {
        out.push_str(&format!("| {name} | {value} |\n"));
    }
    out
}

fn load(path: &Path) -> Result<NpyArray> {
    Ok(read_npy(path)?)
}

fn dtype(data: &NpyData) -> &'static str {
    match data {
        NpyData::F32(_) => "float32",
        NpyData::F64(_) => "float64",
        NpyData::U8(_) => "uint8",
        NpyData::I8(_) => "int8",
        NpyData::I32(_) => "int32",
        NpyData::I64(_) => "int64",
    }
}

/// Floating-point values, all finite.
fn floats(path: &Path, array: &NpyArray, what: &str) -> Result<Vec<f64>> {
    if !matches!(array.data, NpyData::F32(_) | NpyData::F64(_)) {
        bail!(
            "{}: {what} must be float32 or float64, got {}",
            path.display(),
            dtype(&array.data)
        );
    }
    let values = array.to_f64_vec();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "{}: {what} must be finite, element {i} is {}",
            path.display(),
            values[i]
        );
    }
    Ok(values)
}

/// A 1-D score vector ([N] or [N, 1]).
fn scores(path: &Path) -> Result<Vec<f64>> {
    let array = load(path)?;
    match array.shape.as_slice() {
        [_] | [_, 1] => floats(path, &array, "scores"),
        shape => bail!(
            "{}: scores must have shape [N] or [N, 1], got {shape:?}",
            path.display()
        ),
    }
}

/// A 2-D float matrix, returned row-major with its number of columns.
fn matrix(path: &Path, what: &str) -> Result<(Vec<f64>, usize)> {
    let array = load(path)?;
    let [rows, cols] = array.shape[..] else {
        bail!(
            "{}: {what} must have shape [N, D], got {:?}",
            path.display(),
            array.shape
        );
    };
    if rows == 0 || cols == 0 {
        bail!(
            "{}: {what} is empty (shape [{rows}, {cols}])",
            path.display()
        );
    }
    Ok((floats(path, &array, what)?, cols))
}

/// Integer class labels of shape [N].
fn labels_of(path: &Path) -> Result<Vec<usize>> {
    let array = load(path)?;
    if array.shape.len() != 1 {
        bail!(
            "{}: labels must have shape [N], got {:?}",
            path.display(),
            array.shape
        );
    }
    let values: Vec<i64> = match &array.data {
        NpyData::U8(v) => v.iter().map(|&x| i64::from(x)).collect(),
        NpyData::I8(v) => v.iter().map(|&x| i64::from(x)).collect(),
        NpyData::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
        NpyData::I64(v) => v.clone(),
        other => bail!(
            "{}: labels must be integers, got {}",
            path.display(),
            dtype(other)
        ),
    };
    values
        .iter()
        .enumerate()
        .map(|(i, &y)| {
            usize::try_from(y)
                .map_err(|_| anyhow::anyhow!("{}: label {i} is negative ({y})", path.display()))
        })
        .collect()
}
