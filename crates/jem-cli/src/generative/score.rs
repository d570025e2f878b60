//! IS and FID of a JEM's samples (the paper's Tables 1 and 5, Appendix B).

use super::buffers::{kept_checkpoints, last_checkpoint, read_buffer};
use super::{evenly_spaced, grid_png, load_split, quantize_8bit, rows, square_columns, u8_levels};
use super::{FeatureSource, GenerativeArgs};
use crate::evaluate::{self, out_dir, write_report};
use crate::sample;
use anyhow::{bail, ensure, Context, Result};
use jem_eval::features::{
    generative_metrics, top_percentile_by_confidence, ClassOutput, ClassifierFeatures,
    FeatureExtractor, InputRange, TorchScriptInception, TorchScriptOptions,
};
use jem_eval::grid::PixelRange;
use jem_eval::model_eval::{predict_probs, ScoreOptions};
use jem_eval::ndarray::ArrayView1;
use jem_report::SampleSource;
use jem_sampler::Pcg64;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Most samples shown in the grid of all samples.
const GRID_MAX: usize = 100;

/// The samples scored, before any selection.
struct Drawn {
    /// `[N, C, H, W]` in the model range, on the CPU.
    samples: Tensor,
    /// The class each sample belongs to, when there is one (the selection is then per class).
    groups: Option<Vec<usize>>,
    /// The grid of the samples.
    png: PathBuf,
    /// The checkpoints whose buffers these are (empty when re-sampled).
    buffers: Vec<PathBuf>,
}

/// Draws the samples with `jem sample` (same options, written into `out`) and reads them back.
fn resample(args: &GenerativeArgs, out: &Path, device: Device) -> Result<Drawn> {
    let sample_args = sample::SampleArgs {
        checkpoint: args.checkpoint.clone(),
        n: args.n,
        chains: args.chains.clone(),
        out: Some(out.to_path_buf()),
    };
    sample::run(&sample_args, device)?;
    let stem = if args.chains.conditional {
        "conditional"
    } else {
        "unconditional"
    };
    let npy = out.join(format!("{stem}.npy"));
    let samples = jem_data::read_npy(&npy)
        .with_context(|| format!("reading the samples back from {}", npy.display()))?
        .to_tensor()?
        .to_kind(Kind::Float);
    let n = samples.size()[0] as usize;
    Ok(Drawn {
        samples,
        groups: args
            .chains
            .conditional
            .then(|| (0..n).map(|i| i / args.n).collect()),
        png: out.join(format!("{stem}.png")),
        buffers: Vec::new(),
    })
}

/// The buffers of `checkpoints` lumped together, and a grid of (at most 100 of) them.
fn from_buffers(checkpoints: Vec<PathBuf>, out: &Path) -> Result<Drawn> {
    let mut parts = Vec::new();
    let mut groups: Option<Vec<usize>> = Some(Vec::new());
    for path in &checkpoints {
        let buffer = read_buffer(path)?;
        groups = match (groups, buffer.classes) {
            (Some(mut all), Some(classes)) => {
                all.extend(classes);
                Some(all)
            }
            _ => None,
        };
        parts.push(buffer.samples);
    }
    let samples = Tensor::f_cat(&parts, 0)?;
    let n = samples.size()[0] as usize;
    let shown = evenly_spaced(n, GRID_MAX);
    let png = out.join("buffer.png");
    grid_png(
        &png,
        &rows(&samples, &shown),
        square_columns(shown.len()),
        PixelRange::MinusOneToOne,
    )?;
    Ok(Drawn {
        samples,
        groups,
        png,
        buffers: checkpoints,
    })
}

pub(super) fn score(args: &GenerativeArgs, device: Device) -> Result<()> {
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
    // The buffers' checkpoints are found before anything is loaded, so a missing one is the
    // first error.
    let (source, buffer_checkpoints) = match (args.from_buffer, args.ensemble) {
        (false, _) => (SampleSource::Resampled, Vec::new()),
        (true, None) => (
            SampleSource::Buffer,
            vec![last_checkpoint(&args.checkpoint)?],
        ),
        (true, Some(k)) => (
            SampleSource::Ensemble,
            kept_checkpoints(&args.checkpoint, k)?,
        ),
    };
    let loaded = if args.from_buffer {
        evaluate::load(&last_checkpoint(&args.checkpoint)?, device)?
    } else {
        evaluate::load(&args.checkpoint, device)?
    };
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
    let reference_data = load_split(config, args.reference.split(), args.n_reference)?;
    let reference = quantize_8bit(&jem_data::preprocess::to_model_range(
        &reference_data.images,
    )?)?;

    let drawn = if args.from_buffer {
        from_buffers(buffer_checkpoints, &out)?
    } else {
        resample(args, &out, device)?
    };
    let samples = &drawn.samples;
    let n_sampled = samples.size()[0] as usize;
    let conditional = drawn.groups.is_some();

    // Sample selection by the JEM's own p(y|x) (Appendix B).
    let opts = ScoreOptions {
        batch_size: args.batch_size,
        device,
        ..Default::default()
    };
    let (kept, selected_png) = match args.top_percentile {
        None => ((0..n_sampled).collect::<Vec<_>>(), None),
        Some(p) => {
            let mut rng = Pcg64::seed_from_u64(args.chains.seed);
            let probs = predict_probs(&loaded.model, samples, &opts, &mut rng)
                .context("p(y|x) of the samples")?;
            let groups = drawn.groups.as_deref().map(ArrayView1::from);
            let kept = top_percentile_by_confidence(probs.view(), groups, p)?;
            let png = out.join("selected.png");
            let shown: Vec<usize> = if args.chains.conditional {
                kept.clone()
            } else {
                evenly_spaced(kept.len(), GRID_MAX)
                    .into_iter()
                    .map(|i| kept[i])
                    .collect()
            };
            let columns = if args.chains.conditional {
                kept.len() / classes
            } else {
                square_columns(shown.len())
            };
            grid_png(
                &png,
                &rows(samples, &shown),
                columns,
                PixelRange::MinusOneToOne,
            )?;
            (kept, Some(png))
        }
    };
    // As image files would hold them: clipped and 8-bit.
    let generated = quantize_8bit(&rows(samples, &kept))?;
    if args.save_scored {
        let npy = out.join("scored.npy");
        jem_data::npy::write_tensor_npy(&npy, &u8_levels(&generated)?)
            .with_context(|| format!("writing {}", npy.display()))?;
    }

    let sample_shape: Vec<usize> = samples.size()[1..].iter().map(|&d| d as usize).collect();
    ensure!(
        reference_data.image_shape()[..] == sample_shape[..],
        "the {} images have shape {:?} but the samples {sample_shape:?}",
        kind.name(),
        reference_data.image_shape(),
    );
    let metrics = generative_metrics(extractor, &generated, &reference, args.splits)
        .with_context(|| format!("IS/FID with {}", extractor.name()))?;
    let report = jem_report::GenerativeReport {
        metrics: crate::report::generative_metrics(&metrics),
        checkpoint: loaded.checkpoint.clone(),
        classifier: match (&inception, &classifier_run) {
            (Some(_), _) => None,
            (None, Some(run)) => Some(run.checkpoint.clone()),
            (None, None) => Some(loaded.checkpoint.clone()),
        },
        source,
        buffers: drawn.buffers,
        conditional,
        steps: if args.from_buffer {
            0
        } else {
            args.chains.steps
        },
        seed: args.chains.seed,
        n_sampled,
        top_percentile: args.top_percentile,
        kept_indices: kept,
        reference_data: kind.name().to_string(),
        reference_split: args.reference.report(),
        samples_png: drawn.png,
        selected_png,
    };
    write_report(&out, "generative", &markdown(args, &report), &report)?;
    Ok(())
}

/// The Markdown table of `generative.md`.
fn markdown(args: &GenerativeArgs, r: &jem_report::GenerativeReport) -> String {
    let m = &r.metrics;
    let what = match r.source {
        SampleSource::Resampled if r.conditional => {
            format!("class-conditional SGLD ({} per class)", args.n)
        }
        SampleSource::Resampled => "unconditional SGLD".to_string(),
        SampleSource::Buffer => "the replay buffer as it stands".to_string(),
        SampleSource::Ensemble => format!("{} replay buffers lumped", r.buffers.len()),
    };
    let kept = match r.top_percentile {
        Some(p) if r.conditional => format!(
            "{} (top {p}% by max p(y\\|x), per class)",
            r.kept_indices.len()
        ),
        Some(p) => format!("{} (top {p}% by max p(y\\|x))", r.kept_indices.len()),
        None => format!("{} (all)", r.kept_indices.len()),
    };
    let is = match (m.is_mean, m.is_std) {
        (Some(mean), Some(std)) => format!("{mean:.3} ± {std:.3}"),
        _ => "n/a (features only)".to_string(),
    };
    let mut text = format!(
        "Sample quality (checkpoint {}; features: {})\n\n",
        r.checkpoint.display(),
        m.extractor
    );
    if !m.is_inception() {
        text.push_str(
            "**Classifier features, not Inception**: these IS and FID values rank models of \
             this data set against each other and are not comparable with published numbers.\n\n",
        );
    }
    text.push_str(&format!(
        "| samples | SGLD steps | kept | reference | IS ({} splits) | FID |\n\
         |---|---|---|---|---|---|\n\
         | {what}: {} | {} | {kept} | {} {} {} images | {is} | {:.3} |\n\n\
         Every image set was clipped to [-1, 1] and quantised to 8 bits before the features.\n",
        m.is_splits,
        r.n_sampled,
        r.steps,
        m.n_reference,
        r.reference_data,
        r.reference_split.name(),
        m.fid,
    ));
    for b in &r.buffers {
        text.push_str(&format!("- buffer of {}\n", b.display()));
    }
    text
}
