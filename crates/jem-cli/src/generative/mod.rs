//! `jem generative` (Inception Score and FID of SGLD samples, the paper's Table 1 / Appendix B)
//! and `jem extremes` (test images with the highest and lowest log p(x) and max p(y|x), the
//! paper's Figs 11 and 12).
//!
//! `jem generative` draws its samples exactly as `jem sample` does (it calls `sample::run` with
//! the same options), so the sample grid it writes is the `jem sample` grid.

use crate::evaluate::{self, out_dir, test_set, write_report};
use crate::sample;
use anyhow::{bail, ensure, Context, Result};
use clap::{Args, FromArgMatches};
use jem_eval::features::{
    generative_metrics, top_percentile_by_confidence, ClassOutput, ClassifierFeatures,
    FeatureExtractor, InputRange, TorchScriptInception, TorchScriptOptions, INCEPTION_SIZE,
};
use jem_eval::grid::{write_grid, GridSpec, PixelRange};
use jem_eval::model_eval::{ood_scores, predict_probs, OodScore, ScoreOptions};
use jem_eval::plot::{score_histograms_png, HistogramSeries};
use jem_eval::Probs;
use jem_sampler::Pcg64;
use rand::SeedableRng;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tch::{Device, Kind, Tensor};

/// Where the features of IS/FID come from.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureSource {
    /// A trained classifier's penultimate features and softmax (not Inception).
    Classifier,
    /// A TorchScript Inception network file.
    Inception(PathBuf),
}

impl FromStr for FeatureSource {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_once(':') {
            None if s == "classifier" => Ok(FeatureSource::Classifier),
            Some(("inception", path)) if !path.is_empty() => {
                Ok(FeatureSource::Inception(PathBuf::from(path)))
            }
            _ => Err(format!(
                "`{s}`: expected `classifier` or `inception:PATH` (a TorchScript file)"
            )),
        }
    }
}

#[derive(clap::Args)]
pub struct GenerativeArgs {
    /// Run directory or checkpoint file of the JEM to sample from.
    #[arg(long, value_name = "RUN")]
    checkpoint: PathBuf,
    /// Number of samples (with --conditional: per class).
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Sample x ~ p(x|y) per class; the top percentile is then kept per class.
    #[arg(long)]
    conditional: bool,
    /// SGLD steps run from the replay-buffer starting points (as `jem sample`).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Start from U(-1, 1) noise instead of the checkpoint's replay buffer.
    #[arg(long)]
    from_noise: bool,
    /// Keep only the samples whose max p(y|x) (the JEM's own) is in the top P percent, as the
    /// paper's reported scores do (P = 10); default: keep all.
    #[arg(long, value_name = "P")]
    top_percentile: Option<f64>,
    /// Features for IS/FID: `classifier` (see --classifier; NOT comparable to published
    /// numbers) or `inception:PATH`, a TorchScript file mapping float [N, 3, H, W] images to
    /// (features [N, D], logits [N, K]) or to features only.
    #[arg(
        long,
        default_value = "classifier",
        value_name = "classifier|inception:PATH"
    )]
    features: FeatureSource,
    /// Run directory or checkpoint of the classifier whose features are used with
    /// `--features classifier` (default: the --checkpoint model itself).
    #[arg(long, value_name = "RUN2")]
    classifier: Option<PathBuf>,
    /// Input range of the TorchScript network: `0,1` (pytorch-fid), `-1,1` or `0,255`
    /// (clean-fid / StyleGAN detectors).
    #[arg(long, default_value = "0,1", allow_hyphen_values = true)]
    inception_range: String,
    /// Resize images to SIZE x SIZE (bilinear) before the TorchScript network; 0 passes them
    /// unchanged (for networks that resize themselves).
    #[arg(long, default_value_t = INCEPTION_SIZE, value_name = "SIZE")]
    inception_size: i64,
    /// The TorchScript network's second output holds probabilities, not logits.
    #[arg(long)]
    inception_probs: bool,
    /// Use at most N test images as the FID reference set (default: the whole test split).
    #[arg(long, value_name = "N")]
    n_reference: Option<usize>,
    /// Number of Inception Score splits.
    #[arg(long, default_value_t = jem_eval::DEFAULT_SPLITS)]
    splits: usize,
    /// Seed of the chain selection and the SGLD noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per forward pass.
    #[arg(long, default_value_t = 250)]
    batch_size: usize,
    /// Output directory (default: RUN/generative).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Writes `images` (float [N, C, H, W] in `range`) as one PNG grid of `columns` per row.
fn grid_png(path: &Path, images: &Tensor, columns: usize, range: PixelRange) -> Result<()> {
    let size: Vec<usize> = images.size().iter().map(|&d| d as usize).collect();
    let pixels = Vec::<f32>::try_from(
        images
            .to_kind(Kind::Float)
            .to_device(Device::Cpu)
            .contiguous()
            .flatten(0, -1),
    )?;
    let spec = GridSpec {
        range,
        ..GridSpec::new(size[0], size[1], size[2], size[3], columns.max(1))
    };
    write_grid(path, &pixels, &spec).with_context(|| format!("writing {}", path.display()))
}

fn square_columns(n: usize) -> usize {
    (n as f64).sqrt().ceil() as usize
}

/// Draws the samples with `jem sample` (same options, written into `out`) and reads them back.
fn draw_samples(args: &GenerativeArgs, out: &Path, device: Device) -> Result<(Tensor, PathBuf)> {
    let mut argv: Vec<OsString> = vec!["sample".into(), "--checkpoint".into()];
    argv.push(args.checkpoint.clone().into_os_string());
    argv.extend(["--n".into(), args.n.to_string().into()]);
    argv.extend(["--steps".into(), args.steps.to_string().into()]);
    argv.extend(["--seed".into(), args.seed.to_string().into()]);
    argv.extend(["--out".into(), out.as_os_str().to_owned()]);
    if args.conditional {
        argv.push("--conditional".into());
    }
    if args.from_noise {
        argv.push("--from-noise".into());
    }
    let matches = sample::SampleArgs::augment_args(clap::Command::new("sample"))
        .try_get_matches_from(argv)
        .context("building the `jem sample` options")?;
    let sample_args = sample::SampleArgs::from_arg_matches(&matches)?;
    sample::run(&sample_args, device)?;
    let stem = if args.conditional {
        "conditional"
    } else {
        "unconditional"
    };
    let npy = out.join(format!("{stem}.npy"));
    let samples = jem_data::read_npy(&npy)
        .with_context(|| format!("reading the samples back from {}", npy.display()))?
        .to_tensor()?
        .to_kind(Kind::Float);
    Ok((samples, out.join(format!("{stem}.png"))))
}

pub fn generative(args: &GenerativeArgs, device: Device) -> Result<()> {
    ensure!(args.n >= 1, "--n must be at least 1");
    ensure!(args.splits >= 1, "--splits must be at least 1");
    if let Some(p) = args.top_percentile {
        ensure!(
            p > 0.0 && p <= 100.0,
            "--top-percentile must lie in (0, 100], got {p}"
        );
    }
    if args.classifier.is_some() && args.features != FeatureSource::Classifier {
        bail!("--classifier only applies to --features classifier");
    }
    let inception_options = TorchScriptOptions {
        input_range: args.inception_range.parse::<InputRange>()?,
        resize: (args.inception_size > 0).then_some((args.inception_size, args.inception_size)),
        class_output: if args.inception_probs {
            ClassOutput::Probabilities
        } else {
            ClassOutput::Logits
        },
        batch_size: args.batch_size,
        device,
    };
    let loaded = evaluate::load(&args.checkpoint, device)?;
    let config = &loaded.config;
    let classes = config.model.num_classes;
    let out = out_dir(&args.out, &loaded.checkpoint, "generative")?;

    // Everything that can fail on a path or a file is opened before the (slow) sampling.
    let inception = match &args.features {
        FeatureSource::Inception(path) => {
            Some(TorchScriptInception::load(path, inception_options)?)
        }
        FeatureSource::Classifier => None,
    };
    let classifier_run = match &args.classifier {
        Some(run) => Some(evaluate::load(run, device)?),
        None => None,
    };
    let classifier_features;
    let extractor: &dyn FeatureExtractor = match &inception {
        Some(net) => net,
        None => {
            let model = classifier_run
                .as_ref()
                .map_or(&loaded.model, |run| &run.model);
            classifier_features =
                ClassifierFeatures::new(model, device).with_batch_size(args.batch_size);
            &classifier_features
        }
    };
    let kind = config.data.dataset;
    let reference_data = test_set(config, kind, args.n_reference)?;
    let reference = jem_data::preprocess::to_model_range(&reference_data.images)?;

    let (samples, samples_png) = draw_samples(args, &out, device)?;
    let n_sampled = samples.size()[0] as usize;
    let labels: Option<Vec<usize>> = args
        .conditional
        .then(|| (0..n_sampled).map(|i| i / args.n).collect());

    // Sample selection by the JEM's own p(y|x) (Appendix B).
    let opts = ScoreOptions {
        batch_size: args.batch_size,
        device,
        ..Default::default()
    };
    let (kept, selected_png) = match args.top_percentile {
        None => ((0..n_sampled).collect::<Vec<_>>(), None),
        Some(p) => {
            let mut rng = Pcg64::seed_from_u64(args.seed);
            let (probs, k) = predict_probs(&loaded.model, &samples, &opts, &mut rng)
                .context("p(y|x) of the samples")?;
            let kept = top_percentile_by_confidence(&Probs::new(&probs, k)?, labels.as_deref(), p)?;
            let png = out.join("selected.png");
            let columns = if args.conditional {
                kept.len() / classes
            } else {
                square_columns(kept.len())
            };
            let index = Tensor::from_slice(&kept.iter().map(|&i| i as i64).collect::<Vec<_>>());
            grid_png(
                &png,
                &samples.index_select(0, &index),
                columns,
                PixelRange::MinusOneToOne,
            )?;
            (kept, Some(png))
        }
    };
    let index = Tensor::from_slice(&kept.iter().map(|&i| i as i64).collect::<Vec<_>>());
    let generated = samples.index_select(0, &index);

    let sample_shape: Vec<usize> = samples.size()[1..].iter().map(|&d| d as usize).collect();
    ensure!(
        reference_data.image_shape()[..] == sample_shape[..],
        "the {} test images have shape {:?} but the samples {sample_shape:?}",
        kind.name(),
        reference_data.image_shape(),
    );
    let metrics = generative_metrics(extractor, &generated, &reference, args.splits)
        .with_context(|| format!("IS/FID with {}", extractor.name()))?;

    let what = if args.conditional {
        format!("class-conditional ({} per class)", args.n)
    } else {
        "unconditional".to_string()
    };
    let kept_text = match args.top_percentile {
        Some(p) => format!("{} (top {p}% by max p(y\\|x))", kept.len()),
        None => format!("{} (all)", kept.len()),
    };
    let is_text = match (metrics.is_mean, metrics.is_std) {
        (Some(mean), Some(std)) => format!("{mean:.3} ± {std:.3}"),
        _ => "n/a (features only)".to_string(),
    };
    let table = format!(
        "Sample quality (checkpoint {}; features: {})\n\n\
         | samples | SGLD steps | kept | reference | IS ({} splits) | FID |\n\
         |---|---|---|---|---|---|\n\
         | {what}: {n_sampled} | {} | {kept_text} | {} {} test images | {is_text} | {:.3} |\n",
        loaded.checkpoint.display(),
        metrics.extractor,
        metrics.is_splits,
        args.steps,
        metrics.n_reference,
        kind.name(),
        metrics.fid,
    );
    let classifier_checkpoint = match (&inception, &classifier_run) {
        (Some(_), _) => None,
        (None, Some(run)) => Some(&run.checkpoint),
        (None, None) => Some(&loaded.checkpoint),
    };
    let report = jem_report::GenerativeReport {
        metrics: crate::report::generative_metrics(&metrics),
        checkpoint: loaded.checkpoint.clone(),
        classifier: classifier_checkpoint.cloned(),
        conditional: args.conditional,
        steps: args.steps,
        seed: args.seed,
        n_sampled,
        top_percentile: args.top_percentile,
        kept_indices: kept,
        reference_data: kind.name().to_string(),
        samples_png,
        selected_png,
    };
    write_report(&out, "generative", &table, &report)?;
    Ok(())
}

#[derive(clap::Args)]
pub struct ExtremesArgs {
    /// Run directory or checkpoint file.
    #[arg(long, value_name = "RUN")]
    checkpoint: PathBuf,
    /// Data set whose test split is scored (default: the run's).
    #[arg(long, value_name = "DATASET")]
    data: Option<String>,
    /// Score generated samples instead (a `.npy` of [N, C, H, W] in the model range [-1, 1], as
    /// `jem sample` writes): the paper's Figs 11 and 12.
    #[arg(long, value_name = "SAMPLES.npy", conflicts_with = "data")]
    samples: Option<PathBuf>,
    /// Images per grid (highest / lowest of each score).
    #[arg(long, default_value_t = 36)]
    k: usize,
    /// Use at most N test images.
    #[arg(long)]
    n: Option<usize>,
    /// Seed of the evaluation noise added before scoring (as `jem eval`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images per forward pass.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Output directory (default: RUN/extremes).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Indices of the `k` highest and the `k` lowest scores (highest first, lowest first; ties to
/// the lower index).
fn extremes_of(scores: &[f64], k: usize) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let highest = order[..k].to_vec();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    (highest, order[..k].to_vec())
}

pub fn extremes(args: &ExtremesArgs, device: Device) -> Result<()> {
    ensure!(args.k >= 1, "--k must be at least 1");
    let loaded = evaluate::load(&args.checkpoint, device)?;
    let config = &loaded.config;
    // The images scored (in the model range), the images shown and how, labels, and a name.
    let (x, shown, range, labels, what) = match &args.samples {
        Some(path) => {
            let array = jem_data::read_npy(path)?;
            let x = array.to_tensor()?.to_kind(Kind::Float);
            let size = x.size();
            ensure!(
                size.len() == 4 && size[1] == config.model.in_channels as i64,
                "{}: samples must have shape [N, {}, H, W], got {size:?}",
                path.display(),
                config.model.in_channels
            );
            let x = match args.n {
                Some(n) if (n as i64) < size[0] => x.narrow(0, 0, n as i64),
                _ => x,
            };
            let labels = vec![-1i64; x.size()[0] as usize];
            let what = format!("samples from {}", path.display());
            (
                x.shallow_clone(),
                x,
                PixelRange::MinusOneToOne,
                labels,
                what,
            )
        }
        None => {
            let kind: jem_data::DatasetKind = match &args.data {
                Some(name) => name.parse()?,
                None => config.data.dataset,
            };
            let test = test_set(config, kind, args.n)?;
            ensure!(
                test.image_shape()[0] == config.model.in_channels,
                "{} images have {} channels but the model takes {}",
                kind.name(),
                test.image_shape()[0],
                config.model.in_channels
            );
            // Scored as `jem eval` scores: model range plus the run's evaluation noise.
            let x = evaluate::model_inputs(config, &test, args.seed)?;
            let what = format!("{} test images", kind.name());
            (
                x,
                test.images.shallow_clone(),
                PixelRange::ZeroToOne,
                test.labels_vec()?,
                what,
            )
        }
    };
    let n_images = x.size()[0] as usize;
    ensure!(n_images > 0, "nothing to score");
    let k = args.k.min(n_images);
    let mut rng = Pcg64::seed_from_u64(args.seed);
    let opts = ScoreOptions {
        batch_size: args.batch_size,
        device,
        ..Default::default()
    };
    let out = out_dir(&args.out, &loaded.checkpoint, "extremes")?;
    let mut sides: Vec<jem_report::ExtremeSide> = Vec::new();
    let mut table = format!(
        "Extremes of {n_images} {what} (checkpoint {}; {k} per grid)\n\n\
         | score | highest (range) | lowest (range) | grids |\n|---|---|---|---|\n",
        loaded.checkpoint.display()
    );
    for score in [OodScore::LogPx, OodScore::MaxPy] {
        let values = ood_scores(&loaded.model, &x, score, &opts, &mut rng)
            .with_context(|| format!("scoring {what} with {}", score.label()))?;
        let (highest, lowest) = extremes_of(&values, k);
        if score == OodScore::LogPx && labels.iter().all(|&y| y >= 0) {
            // The paper's Fig 10: log p(x) of the data, one histogram per class.
            let classes = labels.iter().copied().max().unwrap_or(0) + 1;
            let series: Vec<HistogramSeries> = (0..classes)
                .map(|c| HistogramSeries {
                    label: format!("class {c}"),
                    values: values
                        .iter()
                        .zip(&labels)
                        .filter(|(_, &y)| y == c)
                        .map(|(&v, _)| v)
                        .collect(),
                })
                .filter(|s| !s.values.is_empty())
                .collect();
            let png = out.join(jem_report::files::LOGPX_BY_CLASS_PNG);
            score_histograms_png(
                &series,
                40,
                &format!("log p(x) by class, {what}"),
                "log p(x)",
                &png,
            )
            .with_context(|| format!("writing {}", png.display()))?;
        }
        let key = match score {
            OodScore::LogPx => "logpx",
            _ => "maxpy",
        };
        let items = |indices: &[usize]| -> Vec<jem_report::ExtremeItem> {
            indices
                .iter()
                .map(|&i| jem_report::ExtremeItem {
                    index: i,
                    score: values[i],
                    label: labels[i],
                })
                .collect()
        };
        let mut pngs = Vec::new();
        for (side, indices) in [("highest", &highest), ("lowest", &lowest)] {
            let png = out.join(format!("{key}_{side}.png"));
            let index = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>());
            grid_png(
                &png,
                &shown.index_select(0, &index),
                square_columns(k),
                range,
            )?;
            pngs.push(png);
        }
        table.push_str(&format!(
            "| {} | {:.4} .. {:.4} | {:.4} .. {:.4} | {} |\n",
            score.label().replace('|', "\\|"),
            values[highest[0]],
            values[highest[k - 1]],
            values[lowest[0]],
            values[lowest[k - 1]],
            pngs.iter()
                .map(|p| p.file_name().unwrap_or_default().to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let [highest_png, lowest_png]: [PathBuf; 2] = pngs
            .try_into()
            .map_err(|_| anyhow::anyhow!("internal: two grids per score"))?;
        sides.push(jem_report::ExtremeSide {
            highest: items(&highest),
            lowest: items(&lowest),
            highest_png,
            lowest_png,
        });
    }
    let [logpx, maxpy]: [jem_report::ExtremeSide; 2] = sides
        .try_into()
        .map_err(|_| anyhow::anyhow!("internal: two scores"))?;
    let report = jem_report::ExtremesReport {
        checkpoint: loaded.checkpoint.clone(),
        data: what,
        n_images,
        k,
        logpx,
        maxpy,
    };
    write_report(&out, "extremes", &table, &report)?;
    Ok(())
}
