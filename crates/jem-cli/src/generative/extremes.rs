//! `jem extremes`: test images (or samples) with the highest and lowest log p(x) and max
//! p(y|x), the paper's Figs 10-12.

use super::{grid_png, square_columns};
use crate::evaluate::{self, out_dir, test_set, write_report};
use anyhow::{ensure, Context, Result};
use jem_eval::grid::PixelRange;
use jem_eval::model_eval::{ood_scores, OodScore, ScoreOptions};
use jem_eval::plot::{score_histograms_png, HistogramSeries};
use jem_sampler::Pcg64;
use rand::SeedableRng;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

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
        let values = values.to_vec();
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
