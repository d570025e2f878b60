//! `jem eval` (OOD detection, the paper's Table 3) and `jem calibrate` (ECE, Fig 4).
//!
//! Both read a training checkpoint, score the data with jem-eval's model
//! evaluation, and write a Markdown table, JSON and PNG plots a person can look at.

use crate::args::ModelArgs;
use anyhow::{bail, Context, Result};
use jem_data::{Dataset, DatasetKind, Split};
use jem_eval::model_eval::{ood_scores, predict_probs, OodScore, ScoreOptions};
use jem_eval::ndarray::ArrayView1;
use jem_eval::plot::{reliability_diagram_png, score_histograms_png, HistogramSeries};
use jem_model::WideResNet;
use jem_sampler::Pcg64;
use jem_train::RunConfig;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use tch::{nn::VarStore, Device, Tensor};

/// A trained model ready for evaluation.
pub struct Loaded {
    pub checkpoint: PathBuf,
    pub config: RunConfig,
    pub _vs: VarStore,
    pub model: WideResNet,
}

/// `RUN` may be a run directory (its best checkpoint, else its last) or a checkpoint file.
pub fn resolve_checkpoint(run: &Path) -> Result<PathBuf> {
    if run.is_file() {
        return Ok(run.to_path_buf());
    }
    for name in [jem_train::files::BEST, jem_train::files::LAST] {
        let path = run.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!(
        "{}: no checkpoint found (expected a checkpoint file, or a run directory with {} or {})",
        run.display(),
        jem_train::files::BEST,
        jem_train::files::LAST
    )
}

pub fn load(run: &Path, device: Device) -> Result<Loaded> {
    let checkpoint = resolve_checkpoint(run)?;
    let (config, vs, model) = jem_train::load_model(&checkpoint, device)
        .with_context(|| format!("loading {}", checkpoint.display()))?;
    tracing::info!(checkpoint = %checkpoint.display(), "loaded model");
    Ok(Loaded {
        checkpoint,
        config,
        _vs: vs,
        model,
    })
}

/// The test split of `kind`, or of the run's own data set.
pub(crate) fn test_set(
    config: &RunConfig,
    kind: DatasetKind,
    limit: Option<usize>,
) -> Result<Dataset> {
    let checked = config.data.clone().check()?;
    let data = jem_data::load(
        kind,
        Split::Test,
        config.data.data_dir.as_deref(),
        &checked.load_options(),
    )?;
    truncate(data, limit)
}

fn truncate(data: Dataset, limit: Option<usize>) -> Result<Dataset> {
    match limit {
        Some(n) if n < data.len() => Ok(data.subset(&(0..n).collect::<Vec<_>>())?),
        _ => Ok(data),
    }
}

/// The model-range ([-1, 1], noised as at evaluation) images of a [0, 1] data set.
pub(crate) fn model_inputs(config: &RunConfig, data: &Dataset, seed: u64) -> Result<Tensor> {
    let checked = config.data.clone().check()?;
    let mut rng = Pcg64::seed_from_u64(seed);
    Ok(checked.eval_preprocess().eval(&data.images, &mut rng)?)
}

/// An OOD set by name: `uniform`, `constant`, `interp` (built from the in-distribution
/// test set) or any data set jem-data loads (its test split).
fn ood_set(
    config: &RunConfig,
    name: &str,
    in_test: &Dataset,
    limit: Option<usize>,
) -> Result<Dataset> {
    let shape = in_test.image_shape();
    let n = limit.unwrap_or(in_test.len()).min(in_test.len());
    let data = match name {
        "uniform" => jem_data::ood::uniform(n, shape, 0)?,
        "constant" => jem_data::ood::constant(n, shape)?,
        "interp" => jem_data::ood::interp(in_test, jem_data::ood::INTERP_BATCH)?,
        other => {
            let kind: DatasetKind = other.parse()?;
            let data = test_set(config, kind, limit)?;
            if data.image_shape() != shape {
                bail!(
                    "OOD set `{other}` has images of shape {:?} but the model takes {shape:?}",
                    data.image_shape()
                );
            }
            data
        }
    };
    truncate(data, limit)
}

/// Reads one figure out of an OOD evaluation.
type MetricOf = fn(&jem_eval::OodMetrics) -> f64;

#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// In-distribution data set (default: the run's).
    #[arg(long = "in", value_name = "DATASET")]
    in_set: Option<String>,
    /// OOD sets: uniform, constant, interp, or data sets such as mnist-5k, svhn, cifar100, celeba.
    #[arg(long, value_delimiter = ',', default_value = "uniform,constant,interp")]
    ood: Vec<String>,
    /// Scores: px (log p(x)), py (max p(y|x)), pxgrad (-||d log p(x)/dx||).
    #[arg(long, value_delimiter = ',', default_value = "px,py,pxgrad")]
    scores: Vec<String>,
    /// SGLD refinement steps before scoring (JEM-k).
    #[arg(long, default_value_t = 0)]
    refine_steps: usize,
    /// Use at most N images per set.
    #[arg(long)]
    n: Option<usize>,
}

pub(crate) fn out_dir(
    explicit: &Option<PathBuf>,
    checkpoint: &Path,
    name: &str,
) -> Result<PathBuf> {
    let dir = match explicit {
        Some(dir) => dir.clone(),
        None => checkpoint.parent().unwrap_or(Path::new(".")).join(name),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

pub(crate) fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes `<stem>.md` (the Markdown table) and `<stem>.json` into `out` and prints the table.
pub(crate) fn write_report<T: serde::Serialize + ?Sized>(
    out: &Path,
    stem: &str,
    table: &str,
    report: &T,
) -> Result<()> {
    write(&out.join(format!("{stem}.md")), table)?;
    jem_report::write_json(&out.join(format!("{stem}.json")), report)?;
    print!("{table}");
    eprintln!("wrote {}", out.display());
    Ok(())
}

pub fn eval(args: &EvalArgs, device: Device) -> Result<()> {
    let scores: Vec<OodScore> = args
        .scores
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let loaded = load(&args.model.checkpoint, device)?;
    let config = &loaded.config;
    let in_kind = match &args.in_set {
        Some(name) => name.parse()?,
        None => config.data.dataset,
    };
    let in_test = test_set(config, in_kind, args.n)?;
    let mut sets = vec![(in_kind.name().to_string(), in_test.shallow_clone())];
    for name in &args.ood {
        sets.push((name.clone(), ood_set(config, name, &in_test, args.n)?));
    }
    let opts = ScoreOptions {
        batch_size: args.model.batch_size,
        refine_steps: args.refine_steps,
        sgld: config.sampler.sgld.clone(),
        device,
    };
    let out = out_dir(&args.model.out, &loaded.checkpoint, "eval")?;
    let mut report = Vec::new();
    let mut table = format!(
        "OOD detection (in-distribution: {}, {} refinement steps, checkpoint {})\n\nAUROC\n\n",
        in_kind.name(),
        args.refine_steps,
        loaded.checkpoint.display()
    );
    let mut header = String::from("| score |");
    for name in &args.ood {
        header.push_str(&format!(" {name} |"));
    }
    header.push_str(&format!("\n|---|{}\n", "---|".repeat(args.ood.len())));
    let mut rows: Vec<(OodScore, Vec<jem_eval::OodMetrics>)> = Vec::new();
    for score in &scores {
        let mut per_set = Vec::new();
        for (i, (name, data)) in sets.iter().enumerate() {
            let x = model_inputs(config, data, 1000 + i as u64)?;
            let mut rng = Pcg64::seed_from_u64(2000 + i as u64);
            let values = ood_scores(&loaded.model, &x, *score, &opts, &mut rng)
                .with_context(|| format!("scoring {name} with {}", score.name()))?
                .to_vec();
            per_set.push((name.clone(), values));
        }
        let (_, in_scores) = &per_set[0];
        let mut row = Vec::new();
        for (name, values) in &per_set[1..] {
            let metrics =
                jem_eval::ood_metrics(ArrayView1::from(in_scores), ArrayView1::from(values))?;
            report.push(jem_report::OodRecord {
                score: crate::report::score(*score),
                in_set: in_kind.name().to_string(),
                ood: name.clone(),
                refine_steps: args.refine_steps,
                metrics: crate::report::ood_metrics(&metrics),
            });
            row.push(metrics);
        }
        rows.push((*score, row));
        let series: Vec<HistogramSeries> = per_set
            .into_iter()
            .map(|(label, values)| HistogramSeries { label, values })
            .collect();
        let png = out.join(jem_report::files::histogram_png(score.name()));
        score_histograms_png(
            &series,
            50,
            &format!("{} by data set", score.label()),
            score.label(),
            &png,
        )
        .with_context(|| format!("writing {}", png.display()))?;
    }
    let metric_tables: [(&str, MetricOf); 3] = [
        ("AUROC", |m| m.auroc),
        ("AUPR (in-distribution positive)", |m| m.aupr),
        ("FPR at 95% TPR (lower is better)", |m| m.fpr_at_95_tpr),
    ];
    for (i, (title, value)) in metric_tables.iter().enumerate() {
        if i > 0 {
            table.push_str(&format!("\n{title}\n\n{header}"));
        } else {
            table.push_str(&header);
        }
        for (score, row) in &rows {
            // `|` inside a cell would end it: escape it for Markdown.
            table.push_str(&format!("| {} |", score.label().replace('|', "\\|")));
            for metrics in row {
                table.push_str(&format!(" {:.3} |", value(metrics)));
            }
            table.push('\n');
        }
    }
    write_report(&out, "ood", &table, &jem_report::OodReport(report))?;
    Ok(())
}

#[derive(clap::Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Data set whose test split is used (default: the run's).
    #[arg(long, value_name = "DATASET")]
    data: Option<String>,
    /// Number of equal-width confidence bins (the paper uses 20).
    #[arg(long, default_value_t = jem_eval::PAPER_NUM_BINS)]
    bins: usize,
    /// Use at most N test images.
    #[arg(long)]
    n: Option<usize>,
}

pub fn calibrate(args: &CalibrateArgs, device: Device) -> Result<()> {
    let loaded = load(&args.model.checkpoint, device)?;
    let config = &loaded.config;
    let kind = match &args.data {
        Some(name) => name.parse()?,
        None => config.data.dataset,
    };
    let test = test_set(config, kind, args.n)?;
    let x = model_inputs(config, &test, 1000)?;
    let opts = ScoreOptions {
        batch_size: args.model.batch_size,
        device,
        ..Default::default()
    };
    let mut rng = Pcg64::seed_from_u64(0);
    let probs = predict_probs(&loaded.model, &x, &opts, &mut rng)?;
    let labels: Vec<usize> = test.labels_vec()?.into_iter().map(|y| y as usize).collect();
    let labels = ArrayView1::from(&labels);
    let diagram = jem_eval::reliability_diagram(probs.view(), labels, args.bins)?;
    let cls = jem_eval::classification_metrics(probs.view(), labels)?;
    let out = out_dir(&args.model.out, &loaded.checkpoint, "calibration")?;
    let title = format!("{:?} on {}", config.train.mode, kind.name());
    let png = out.join(jem_report::files::RELIABILITY_PNG);
    reliability_diagram_png(&diagram, &title, &png)
        .with_context(|| format!("writing {}", png.display()))?;
    let table = format!(
        "| metric | value |\n|---|---|\n| ECE ({} bins) | {:.2}% |\n| accuracy | {:.2}% |\n| NLL | {:.4} |\n| test images | {} |\n",
        args.bins,
        100.0 * diagram.ece,
        100.0 * cls.accuracy,
        cls.nll,
        cls.num_samples
    );
    let report = jem_report::CalibrationReport {
        checkpoint: loaded.checkpoint.clone(),
        data: kind.name().to_string(),
        ece: diagram.ece,
        classification: crate::report::classification(&cls),
        reliability: crate::report::reliability(&diagram),
    };
    write_report(&out, "calibration", &table, &report)?;
    Ok(())
}
