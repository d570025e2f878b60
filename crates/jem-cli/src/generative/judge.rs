//! `jem generative --judge BASELINE`: a JEM's samples judged by an independent classifier.
//!
//! * Agreement: the baseline (trained without p(x)) labels class-conditional samples; the share
//!   it assigns to the intended class and its mean confidence, overall and per class, beside the
//!   same numbers for the class-conditional Gaussian initialisation and for real test images
//!   (whose agreement is the baseline's accuracy).
//! * FID in the baseline's penultimate features (not Inception) between N samples and N test
//!   images, always beside the same FID of uniform noise, of the Gaussian initialisation (a
//!   trivial generator: if the samples do not beat it, the initialisation does the generating)
//!   and of N held-out real training images (the floor).
//! * Grids: the samples, one row per class, the rows ordered by log p(x) (Fig 9), and the
//!   Gaussian initialisation.
//!
//! Every set goes to the baseline clipped and quantised to 8 bits, as image files would. The
//! grids and `judge.md` are written by [`judge_views`](super::judge_views).

use super::buffers::{last_checkpoint, read_buffer_if_any, Buffer};
use super::judge_views;
use super::GenerativeArgs;
use super::{load_split, quantize_8bit, rows};
use crate::evaluate::{self, out_dir, write_report, Loaded};
use anyhow::{ensure, Context, Result};
use jem_data::preprocess::to_model_range;
use jem_data::split::{shuffled_indices, train_valid_split};
use jem_data::Split;
use jem_eval::features::{ClassifierFeatures, Extracted, FeatureExtractor};
use jem_eval::ndarray::ArrayView2;
use jem_model::JointEnergyModel;
use jem_report::judge_sets as sets;
use jem_report::{Agreement, AgreementRow, FidRow, JudgeReport};
use jem_sampler::{sgld, ChainStart, ClassGaussians, Conditioned, InitKind, Pcg64, SgldConfig};
use rand::{Rng, SeedableRng};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Agreement of the judge's `probs` (`[N, K]`) with the `intended` classes: overall and per
/// class `0..K` (a class without images has `n = 0` and NaN shares).
pub(crate) fn agreement(
    probs: ArrayView2<'_, f32>,
    intended: &[usize],
) -> Result<(Agreement, Vec<Agreement>)> {
    let classes = probs.ncols();
    ensure!(
        classes > 0 && probs.nrows() == intended.len(),
        "internal: {} probability rows for {} images of {classes} classes",
        probs.nrows(),
        intended.len()
    );
    // Per class: images, agreeing, sum of max p, sum of p(intended).
    let mut sums = vec![(0usize, 0usize, 0.0f64, 0.0f64); classes];
    for (row, &y) in probs.rows().into_iter().zip(intended) {
        ensure!(y < classes, "internal: class {y} of {classes}");
        let (argmax, max) =
            row.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &p)| if p > b.1 { (i, p) } else { b },
            );
        let s = &mut sums[y];
        s.0 += 1;
        s.1 += usize::from(argmax == y);
        s.2 += f64::from(max);
        s.3 += f64::from(row[y]);
    }
    let of = |n: usize, agree: usize, conf: f64, intended: f64| {
        let d = n as f64;
        Agreement {
            n,
            agreement: agree as f64 / d,
            confidence: conf / d,
            intended_probability: intended / d,
        }
    };
    let per_class: Vec<Agreement> = sums.iter().map(|s| of(s.0, s.1, s.2, s.3)).collect();
    let total = sums.iter().fold((0, 0, 0.0, 0.0), |a, s| {
        (a.0 + s.0, a.1 + s.1, a.2 + s.2, a.3 + s.3)
    });
    Ok((of(total.0, total.1, total.2, total.3), per_class))
}

/// The images of one set as the judge sees them, with what it said.
struct Judged {
    name: &'static str,
    n: usize,
    extracted: Extracted,
}

fn judged(name: &'static str, x: &Tensor, judge: &dyn FeatureExtractor) -> Result<Judged> {
    let extracted = judge
        .extract(&quantize_8bit(x)?)
        .with_context(|| format!("the judge's features of the {name}"))?;
    Ok(Judged {
        name,
        n: extracted.n(),
        extracted,
    })
}

fn agreement_row(j: &Judged, intended: &[usize]) -> Result<AgreementRow> {
    let probs = j
        .extracted
        .probs
        .as_ref()
        .context("internal: the judge gives no probabilities")?;
    let (overall, per_class) = agreement(probs.view(), intended)?;
    Ok(AgreementRow {
        set: j.name.to_string(),
        overall,
        per_class,
    })
}

fn fid_row(j: &Judged, reference: &Judged) -> Result<FidRow> {
    let fid = jem_eval::frechet_distance(
        j.extracted.features.view(),
        reference.extracted.features.view(),
    )
    .with_context(|| format!("FID of the {}", j.name))?;
    Ok(FidRow {
        set: j.name.to_string(),
        n: j.n,
        fid,
    })
}

/// SGLD chains from `start` (on the CPU), `batch` at a time: on f(x)[y] of `labels` when given,
/// else on log p(x). Returns the samples on the CPU.
fn run_chains(
    model: &dyn JointEnergyModel,
    start: &Tensor,
    labels: Option<&[i64]>,
    cfg: &SgldConfig,
    batch: usize,
    device: Device,
    rng: &mut Pcg64,
) -> Result<Tensor> {
    let n = start.size()[0];
    let mut parts = Vec::new();
    for from in (0..n).step_by(batch) {
        let len = (batch as i64).min(n - from);
        let x0 = start.narrow(0, from, len).to_device(device);
        let x = match labels {
            Some(y) => {
                let y =
                    Tensor::from_slice(&y[from as usize..(from + len) as usize]).to_device(device);
                let energy = |x: &Tensor, y: &Tensor| {
                    model
                        .log_pxy(x, y, false)
                        .map_err(jem_sampler::SamplerError::density)
                };
                sgld(&Conditioned::new(&energy, &y), &x0, cfg, rng)?.0
            }
            None => {
                let energy = |x: &Tensor| {
                    model
                        .log_px(x, false)
                        .map_err(jem_sampler::SamplerError::density)
                };
                sgld(&energy, &x0, cfg, rng)?.0
            }
        };
        parts.push(x.detach().to_device(Device::Cpu).to_kind(Kind::Float));
    }
    Ok(Tensor::f_cat(&parts, 0)?)
}

/// The JEM's unconditional and class-conditional samples, and where each came from.
pub(super) struct Samples {
    pub(super) unconditional: Tensor,
    unconditional_source: String,
    /// Class c's samples are rows `c·per_class .. (c+1)·per_class`.
    pub(super) conditional: Tensor,
    conditional_labels: Vec<usize>,
    conditional_source: String,
    /// SGLD steps run here (0 when both came from the buffer).
    steps: usize,
}

/// Unconditional samples: `n` random slots of the buffer, else `n` chains of `--steps` SGLD
/// from the chain start. Class-conditional ones: `per_class` random slots of each class slice
/// of a class-conditional buffer, else `per_class` chains per class of `--steps` SGLD on
/// f(x)[y] from the chain start (class y's Gaussian, or uniform noise).
#[allow(clippy::too_many_arguments)]
fn draw_samples(
    args: &GenerativeArgs,
    jem: &Loaded,
    buffer: Option<&Buffer>,
    start: &ChainStart,
    shape: &[i64],
    n: usize,
    per_class: usize,
    device: Device,
    rng: &mut Pcg64,
) -> Result<Samples> {
    let classes = jem.config.model.num_classes;
    let sgld_cfg = SgldConfig {
        steps: args.chains.steps,
        ..jem.config.sampler.sgld.clone()
    };
    let start_name = match start {
        ChainStart::Uniform => "U(-1, 1) noise",
        ChainStart::Gaussians(_) => "the class-conditional Gaussians",
        ChainStart::Mixture { .. } => "the class-conditional Gaussians or U(-1, 1) noise (mixed)",
    };
    let mut steps = 0;
    let (unconditional, unconditional_source) = match buffer {
        Some(b) => {
            let slots = shuffled_indices(b.samples.size()[0] as usize, rng.random());
            (
                rows(&b.samples, &slots[..n]),
                format!(
                    "{n} random slots of the replay buffer of {}",
                    jem.checkpoint.display()
                ),
            )
        }
        None => {
            steps = args.chains.steps;
            let x0 = start.draw(n, shape, None, Device::Cpu, rng)?;
            let x = run_chains(
                &jem.model,
                &x0,
                None,
                &sgld_cfg,
                args.batch_size,
                device,
                rng,
            )
            .context("unconditional SGLD")?;
            (
                x,
                format!(
                    "{n} chains of {} SGLD steps on log p(x) from {start_name} (no replay buffer)",
                    args.chains.steps
                ),
            )
        }
    };
    let labels: Vec<usize> = (0..classes * per_class).map(|i| i / per_class).collect();
    let (conditional, conditional_source) = match buffer
        .and_then(|b| b.classes.as_ref().map(|c| (b, c)))
    {
        Some((b, slot_classes)) => {
            let order = shuffled_indices(slot_classes.len(), rng.random());
            let mut picked = Vec::with_capacity(labels.len());
            for class in 0..classes {
                let slots: Vec<usize> = order
                    .iter()
                    .copied()
                    .filter(|&i| slot_classes[i] == class)
                    .take(per_class)
                    .collect();
                ensure!(
                    slots.len() == per_class,
                    "the replay buffer holds {} slots of class {class}, fewer than --per-class {per_class}",
                    slots.len()
                );
                picked.extend(slots);
            }
            (
                rows(&b.samples, &picked),
                format!("{per_class} random slots of each class slice of the class-conditional replay buffer"),
            )
        }
        None => {
            steps = args.chains.steps;
            let y: Vec<i64> = labels.iter().map(|&c| c as i64).collect();
            let x0 = start.draw(y.len(), shape, Some(&y), Device::Cpu, rng)?;
            let x = run_chains(
                &jem.model,
                &x0,
                Some(&y),
                &sgld_cfg,
                args.batch_size,
                device,
                rng,
            )
            .context("class-conditional SGLD")?;
            (
                x,
                format!(
                    "{per_class} chains per class of {} SGLD steps on f(x)[y] from {start_name}",
                    args.chains.steps
                ),
            )
        }
    };
    Ok(Samples {
        unconditional,
        unconditional_source,
        conditional,
        conditional_labels: labels,
        conditional_source,
        steps,
    })
}

pub(super) fn judge(args: &GenerativeArgs, baseline: &Path, device: Device) -> Result<()> {
    ensure!(
        args.n >= 2,
        "--n must be at least 2 (a FID needs two images per set)"
    );
    ensure!(args.batch_size >= 1, "--batch-size must be at least 1");
    let jem = evaluate::load(&last_checkpoint(&args.checkpoint)?, device)?;
    let judge = evaluate::load(baseline, device)?;
    let (cfg, jcfg) = (&jem.config, &judge.config);
    ensure!(
        cfg.data.dataset == jcfg.data.dataset
            && cfg.model.num_classes == jcfg.model.num_classes
            && cfg.model.in_channels == jcfg.model.in_channels,
        "the judge {} was trained on {} ({} classes, {} channels) but the JEM {} on {} ({} classes, {} channels)",
        judge.checkpoint.display(),
        jcfg.data.dataset.name(),
        jcfg.model.num_classes,
        jcfg.model.in_channels,
        jem.checkpoint.display(),
        cfg.data.dataset.name(),
        cfg.model.num_classes,
        cfg.model.in_channels,
    );
    let classes = cfg.model.num_classes;
    let per_class = args.per_class.unwrap_or(args.n / classes).max(1);
    let out = out_dir(&args.out, &jem.checkpoint, "judge")?;
    let buffer = read_buffer_if_any(&jem.checkpoint)?;

    // The data: the test split, and the training split divided as the run divided it.
    let train = load_split(cfg, Split::Train, None)?;
    let test = load_split(cfg, Split::Test, None)?;
    let split = train_valid_split(train.len(), cfg.data.n_valid, cfg.data.seed)?;
    let mut n = args.n.min(test.len()).min(split.valid.len());
    if let Some(b) = &buffer {
        n = n.min(b.samples.size()[0] as usize);
    }
    ensure!(
        n >= 2,
        "a FID needs at least 2 images per set: the run holds out data.n_valid = {} training \
         images{}",
        cfg.data.n_valid,
        if buffer.is_some() {
            " (and the buffer's size bounds N too)"
        } else {
            ""
        }
    );
    if n < args.n {
        tracing::warn!(
            requested = args.n,
            n,
            "fewer images per FID set than requested"
        );
    }
    let shape: Vec<i64> = test.image_shape().iter().map(|&d| d as i64).collect();
    let clock = std::time::Instant::now();
    // The Gaussians of the run's chain start: those its checkpoint stores, else fitted as the
    // trainer fits them (to the training part of the training split, with the run's rank).
    let stored = buffer.as_ref().and_then(|b| b.gaussians.as_ref());
    let (gaussians, gaussian_source) = match stored {
        Some(g) => (
            g.shallow_clone(),
            format!(
                "the chain start stored in {} (rank {})",
                jem.checkpoint.display(),
                g.rank()
            ),
        ),
        None => {
            let fit = train.subset(&split.train)?;
            let g = ClassGaussians::fit(
                &to_model_range(&fit.images.to_kind(Kind::Float))?,
                &fit.labels_vec()?,
                classes as i64,
                cfg.sampler.buffer.init_rank,
            )
            .context("fitting the class-conditional Gaussians to the training split")?;
            let source = format!(
                "fitted to the {} training images the run trained on (rank {})",
                split.train.len(),
                g.rank()
            );
            (g, source)
        }
    };
    // The chains the judge draws itself start where the run's near-data chains start: a
    // mixture start's noise share shapes the energy far from the data during training; samples
    // of p(x|y) are asked of the Gaussians' chains.
    let start = match cfg.sampler.buffer.init {
        InitKind::Uniform => ChainStart::Uniform,
        InitKind::Gaussian => ChainStart::Gaussians(gaussians.shallow_clone()),
    };
    tracing::info!(
        seconds = clock.elapsed().as_secs_f64(),
        rank = gaussians.rank(),
        stored = stored.is_some(),
        "the class-conditional Gaussians"
    );
    let mut rng = Pcg64::seed_from_u64(args.chains.seed);
    let samples = draw_samples(
        args,
        &jem,
        buffer.as_ref(),
        &start,
        &shape,
        n,
        per_class,
        device,
        &mut rng,
    )?;

    // The references, drawn after the samples so that their draws do not depend on --n alone.
    let first: Vec<usize> = (0..n).collect();
    let test_n = test.subset(&first)?;
    let test_x = to_model_range(&test_n.images.to_kind(Kind::Float))?;
    let test_labels: Vec<usize> = test_n.labels_vec()?.iter().map(|&y| y as usize).collect();
    let held_out = train.subset(&split.valid[..n])?;
    let held_out_x = to_model_range(&held_out.images.to_kind(Kind::Float))?;
    let uniform = ChainStart::Uniform.draw(n, &shape, None, Device::Cpu, &mut rng)?;
    let balanced: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    let gaussian = gaussians.sample(&balanced, Device::Cpu, &mut rng)?;
    let gaussian_labels: Vec<i64> = samples
        .conditional_labels
        .iter()
        .map(|&c| c as i64)
        .collect();
    let gaussian_conditional = gaussians.sample(&gaussian_labels, Device::Cpu, &mut rng)?;

    tracing::info!(seconds = clock.elapsed().as_secs_f64(), "drew every set");
    let features = ClassifierFeatures::new(&judge.model, device).with_batch_size(args.batch_size);
    let reference = judged(sets::TEST, &test_x, &features)?;
    let judged_samples = judged(sets::SAMPLES, &samples.unconditional, &features)?;
    let judged_conditional = judged(sets::CONDITIONAL, &samples.conditional, &features)?;
    let judged_gaussian_conditional = judged(sets::GAUSSIAN, &gaussian_conditional, &features)?;
    let agreement = vec![
        agreement_row(&judged_conditional, &samples.conditional_labels)?,
        agreement_row(&judged_gaussian_conditional, &samples.conditional_labels)?,
        agreement_row(&reference, &test_labels)?,
    ];
    let mut fid = vec![fid_row(&judged_samples, &reference)?];
    for (name, x) in [
        (sets::UNIFORM, &uniform),
        (sets::GAUSSIAN, &gaussian),
        (sets::HELD_OUT, &held_out_x),
    ] {
        fid.push(fid_row(&judged(name, x, &features)?, &reference)?);
    }
    fid.push(fid_row(&judged_conditional, &reference)?);
    fid.push(fid_row(&reference, &reference)?);
    let gaussian_fid = fid[2].fid;
    let ratio = fid[0].fid / gaussian_fid;

    tracing::info!(seconds = clock.elapsed().as_secs_f64(), "judged every set");
    let grids = judge_views::write_grids(
        args,
        &jem,
        &samples,
        &gaussian_conditional,
        per_class,
        device,
        &out,
    )?;
    let report = JudgeReport {
        checkpoint: jem.checkpoint.clone(),
        judge: judge.checkpoint.clone(),
        extractor: features.name().to_string(),
        samples_source: samples.unconditional_source.clone(),
        conditional_source: samples.conditional_source.clone(),
        gaussian_source,
        steps: samples.steps,
        seed: args.chains.seed,
        n,
        per_class,
        agreement,
        fid,
        fid_ratio_to_gaussian: ratio,
        grids,
    };
    write_report(
        &out,
        "judge",
        &judge_views::markdown(&report, classes),
        &report,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_counts_the_intended_class_and_averages_confidences() {
        // Three images of 2 classes: class 0 right (0.9), class 0 wrong (0.3 on 0), class 1 right.
        let probs = [0.9f32, 0.1, 0.3, 0.7, 0.4, 0.6];
        let probs = ArrayView2::from_shape((probs.len() / 2, 2), &probs).unwrap();
        let (all, per) = agreement(probs, &[0, 0, 1]).unwrap();
        assert_eq!(all.n, 3);
        assert!((all.agreement - 2.0 / 3.0).abs() < 1e-12);
        assert!((all.confidence - (0.9 + 0.7 + 0.6) / 3.0).abs() < 1e-6);
        assert!((all.intended_probability - (0.9 + 0.3 + 0.6) / 3.0).abs() < 1e-6);
        assert_eq!((per[0].n, per[1].n), (2, 1));
        assert!((per[0].agreement - 0.5).abs() < 1e-12);
        assert!((per[1].agreement - 1.0).abs() < 1e-12);
        assert!((per[0].intended_probability - 0.6).abs() < 1e-6);
        assert!(agreement(probs, &[0, 2, 1]).is_err());
        assert!(agreement(probs, &[0, 0]).is_err());
    }
}
