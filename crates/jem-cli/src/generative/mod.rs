//! `jem generative`: the quality of a JEM's samples.
//!
//! * IS and FID (the paper's Tables 1 and 5, Appendix B; [`score`]): of re-drawn SGLD samples
//!   (as `jem sample` draws them), of the whole replay buffer of the last checkpoint
//!   (`--from-buffer`, "single"), or of the buffers of the newest kept checkpoints lumped
//!   together (`--from-buffer --ensemble K`), optionally only the top percentile by p(y|x).
//! * `--judge BASELINE` ([`judge`]): the samples judged by an independent classifier — the share
//!   of class-conditional samples it assigns to their class, and a FID in its features beside
//!   uniform noise, the class-conditional Gaussian initialisation and real held-out images.
//!
//! Every image set goes to the feature extractor clipped to [-1, 1] and quantised to 8-bit
//! levels, as image files would store it ([`quantize_8bit`]).
//!
//! `jem extremes` ([`extremes`]) lives here too: grids of the images with the highest and lowest
//! log p(x) and max p(y|x) (Figs 10-12).

mod buffers;
mod extremes;
mod judge;
mod judge_views;
mod score;

pub use extremes::{extremes, ExtremesArgs};

use crate::args::ChainArgs;
use anyhow::{Context, Result};
use jem_data::{Dataset, Split};
use jem_eval::features::INCEPTION_SIZE;
use jem_eval::grid::{write_grid, GridSpec, PixelRange};
use jem_train::RunConfig;
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

/// `--reference`: the split the FID reference images come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReferenceArg {
    /// The training split (as the official CIFAR-10 FID statistics).
    Train,
    /// The test split.
    Test,
}

impl ReferenceArg {
    fn split(self) -> Split {
        match self {
            ReferenceArg::Train => Split::Train,
            ReferenceArg::Test => Split::Test,
        }
    }

    fn report(self) -> jem_report::ReferenceSplit {
        match self {
            ReferenceArg::Train => jem_report::ReferenceSplit::Train,
            ReferenceArg::Test => jem_report::ReferenceSplit::Test,
        }
    }
}

/// The IS/FID-only flags, which `--judge` does not take.
const SCORE_ONLY: [&str; 13] = [
    "conditional",
    "from_noise",
    "from_buffer",
    "ensemble",
    "top_percentile",
    "features",
    "classifier",
    "inception_range",
    "inception_size",
    "inception_probs",
    "reference",
    "n_reference",
    "splits",
];

#[derive(clap::Args)]
pub struct GenerativeArgs {
    /// Run directory or checkpoint file of the JEM. With --from-buffer or --judge a run
    /// directory means its last checkpoint (the buffer as training left it); otherwise its best.
    #[arg(long, value_name = "RUN")]
    checkpoint: PathBuf,
    /// Number of samples (with --conditional: per class; with --judge: images per FID set).
    #[arg(long, default_value_t = 1000)]
    n: usize,
    #[command(flatten)]
    pub(crate) chains: ChainArgs,
    /// Score the whole replay buffer of the checkpoint (a run's last.ckpt) as it stands: no
    /// re-drawing, no extra SGLD (Appendix B's "single").
    #[arg(long, conflicts_with_all = ["conditional", "from_noise", "steps", "n"])]
    from_buffer: bool,
    /// With --from-buffer: lump together the buffers of the newest K kept checkpoints
    /// (RUN/checkpoints/ckpt_*.ckpt, kept by `train.keep_checkpoints`; Appendix B's "ensemble").
    #[arg(long, value_name = "K", requires = "from_buffer")]
    ensemble: Option<usize>,
    /// Keep only the samples whose max p(y|x) (the JEM's own) is in the top P percent, as the
    /// paper's reported scores do (P = 10); per class for class-conditional samples or buffers.
    /// Default: keep all.
    #[arg(long, value_name = "P")]
    top_percentile: Option<f64>,
    /// Features for IS/FID: `classifier` (see --classifier; NOT Inception, not comparable to
    /// published numbers) or `inception:PATH`, a TorchScript file mapping float [N, 3, H, W]
    /// images to (features [N, D], logits [N, K]) or to features only.
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
    /// Split of the FID reference images: `train` (as the official CIFAR-10 statistics) or
    /// `test`.
    #[arg(long, value_enum, default_value = "train")]
    reference: ReferenceArg,
    /// Use at most N reference images (the first N of the split; default: the whole split).
    #[arg(long, value_name = "N")]
    n_reference: Option<usize>,
    /// Number of Inception Score splits.
    #[arg(long, default_value_t = jem_eval::DEFAULT_SPLITS)]
    splits: usize,
    /// Also write `scored.npy`: the 8-bit images ([N, C, H, W], uint8) the features were
    /// computed from.
    #[arg(long)]
    save_scored: bool,
    /// Judge the samples instead of IS/FID: the run directory or checkpoint of an independent
    /// classifier (the baseline, trained without p(x)) labels class-conditional samples and
    /// gives the features of a FID beside uniform noise, the Gaussian initialisation and real
    /// held-out images. Writes judge.json, judge.md and PNG grids.
    #[arg(long, value_name = "BASELINE", conflicts_with_all = SCORE_ONLY)]
    judge: Option<PathBuf>,
    /// With --judge: class-conditional samples per class (default: N / classes).
    #[arg(long, value_name = "K", requires = "judge")]
    per_class: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 250)]
    batch_size: usize,
    /// Output directory (default: RUN/generative, with --judge RUN/judge).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn generative(args: &GenerativeArgs, device: Device) -> Result<()> {
    match &args.judge {
        Some(baseline) => judge::judge(args, baseline, device),
        None => score::score(args, device),
    }
}

/// The 8-bit levels `round((x + 1) / 2 · 255)` of `x` clipped to [-1, 1] (half-way values round
/// up, as torchvision's `save_image`), as a uint8 tensor of the same shape. Errors on a value
/// that is not finite (clipping would hide a diverged chain).
pub(crate) fn u8_levels(x: &Tensor) -> Result<Tensor> {
    let x = x.f_to_kind(Kind::Float)?;
    let finite = x.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0;
    anyhow::ensure!(finite, "the images hold values that are not finite");
    Ok(x.f_clamp(-1.0, 1.0)?
        .f_add_scalar(1.0)?
        .f_mul_scalar(127.5)?
        .f_add_scalar(0.5)?
        .f_floor()?
        .f_clamp(0.0, 255.0)?
        .f_to_kind(Kind::Uint8)?)
}

/// `x` as an image file would store it: clipped to [-1, 1] and quantised to the 256 levels
/// `-1 + 2k / 255`, back in the model range (float).
pub(crate) fn quantize_8bit(x: &Tensor) -> Result<Tensor> {
    Ok(u8_levels(x)?
        .f_to_kind(Kind::Float)?
        .f_div_scalar(127.5)?
        .f_sub_scalar(1.0)?)
}

/// Writes `images` (float [N, C, H, W] in `range`) as one PNG grid of `columns` per row.
pub(crate) fn grid_png(
    path: &Path,
    images: &Tensor,
    columns: usize,
    range: PixelRange,
) -> Result<()> {
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

pub(crate) fn square_columns(n: usize) -> usize {
    (n as f64).sqrt().ceil() as usize
}

/// Rows `indices` of `x`.
pub(crate) fn rows(x: &Tensor, indices: &[usize]) -> Tensor {
    let index: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    x.index_select(0, &Tensor::from_slice(&index).to_device(x.device()))
}

/// At most `max` indices of `0..n`, evenly spaced (all of them when `n <= max`).
pub(crate) fn evenly_spaced(n: usize, max: usize) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    (0..max).map(|i| i * n / max).collect()
}

/// A split of the run's data set, at most its first `limit` images.
pub(crate) fn load_split(
    config: &RunConfig,
    split: Split,
    limit: Option<usize>,
) -> Result<Dataset> {
    let checked = config.data.clone().check()?;
    let data = jem_data::load(
        config.data.dataset,
        split,
        config.data.data_dir.as_deref(),
        &checked.load_options(),
    )?;
    Ok(match limit {
        Some(n) if n < data.len() => data.subset(&(0..n).collect::<Vec<_>>())?,
        _ => data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_gives_exactly_the_256_levels_of_an_image_file() {
        // Every level, values just around the half-way points, and out-of-range values.
        let mut values: Vec<f32> = (0..=255).map(|k| -1.0 + 2.0 * k as f32 / 255.0).collect();
        for k in 0..255 {
            let mid = -1.0 + (2.0 * k as f32 + 1.0) / 255.0;
            values.extend([mid - 1e-4, mid + 1e-4]);
        }
        values.extend([-3.0, 7.5, 1.0, -1.0]);
        let x = Tensor::from_slice(&values);
        let levels = Vec::<u8>::try_from(u8_levels(&x).unwrap()).unwrap();
        // Each level maps to itself, so quantising twice changes nothing.
        for (k, &level) in levels[..256].iter().enumerate() {
            assert_eq!(level as usize, k);
        }
        for k in 0..255usize {
            assert_eq!(levels[256 + 2 * k] as usize, k, "below mid {k}");
            assert_eq!(levels[256 + 2 * k + 1] as usize, k + 1, "above mid {k}");
        }
        assert_eq!(&levels[levels.len() - 4..], &[0, 255, 255, 0]);
        let q = quantize_8bit(&x).unwrap();
        let again = quantize_8bit(&q).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(&q).unwrap(),
            Vec::<f32>::try_from(&again).unwrap()
        );
        for v in Vec::<f32>::try_from(&q).unwrap() {
            let level = (v + 1.0) * 127.5;
            assert!((level - level.round()).abs() < 1e-4, "{v} is not a level");
            assert!((-1.0..=1.0).contains(&v));
        }
    }

    #[test]
    fn non_finite_images_are_an_error_not_clipped() {
        let x = Tensor::from_slice(&[0.0f32, f32::NAN]);
        assert!(u8_levels(&x).is_err());
        let x = Tensor::from_slice(&[0.0f32, f32::INFINITY]);
        assert!(u8_levels(&x).is_err());
    }

    #[test]
    fn evenly_spaced_indices() {
        assert_eq!(evenly_spaced(3, 5), vec![0, 1, 2]);
        assert_eq!(evenly_spaced(10, 4), vec![0, 2, 5, 7]);
    }
}
