//! The `[data]` section of a jem run configuration.
//!
//! [`DataConfig`] is what serde reads ("unchecked"); [`DataConfig::check`]
//! validates every field and returns a [`CheckedDataConfig`], or an error
//! naming the field, its value and the allowed range.

use std::ops::Deref;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cifar::Cifar100Labels;
use crate::custom::{self, DataShape};
use crate::error::{DataError, Result};
use crate::load::LoadOptions;
use crate::preprocess::{Augment, Preprocess, DEFAULT_PAD, DEFAULT_SIGMA};
use crate::resolve::{resolve_dataset_dir, DatasetKind};

/// Data settings. Missing keys take the defaults (the paper's CIFAR-10
/// setup); unknown keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Data set to train on: mnist, fashion-mnist, cifar10, cifar100, svhn,
    /// or your own data: folder, idx, npy (see [`crate::custom`]).
    pub dataset: DatasetKind,
    /// Data root; `None` falls back to `$JEM_DATA_DIR` and the well-known
    /// locations (see [`crate::resolve`]). Required for folder, idx and npy,
    /// whose files it holds.
    pub data_dir: Option<PathBuf>,
    /// Custom data sets: the size folder images are resized to, `32` (square)
    /// or `[height, width]`; arrays must already have it. Without it, every
    /// folder image must have the first one's size.
    pub image_size: Option<ImageSize>,
    /// Custom data sets: 1 (grey) or 3 (RGB); by default the first folder
    /// image's, or what the arrays hold.
    pub channels: Option<usize>,
    /// Custom data sets: the number of classes; by default the number of
    /// class folders, or the largest training label plus one.
    pub num_classes: Option<usize>,
    /// Training examples held out for validation.
    pub n_valid: usize,
    /// Labelled examples per class for semi-supervised training; `None`
    /// keeps every label.
    pub labels_per_class: Option<usize>,
    /// Training batch size.
    pub batch_size: usize,
    /// Batch size for evaluation passes.
    pub eval_batch_size: usize,
    /// Standard deviation of the additive Gaussian noise, in model units.
    pub noise_sigma: f64,
    /// Pad/crop/flip augmentation of training batches.
    pub augment: bool,
    /// Random horizontal flips; `None` uses the data set's default (off
    /// for MNIST and SVHN).
    pub hflip: Option<bool>,
    /// Reflect padding before the random crop.
    pub pad: usize,
    /// Skip a final partial training batch.
    pub drop_last: bool,
    /// Seed of the split, labelled subset, batch order, augmentation, noise.
    pub seed: u64,
    /// CIFAR-100 label set.
    pub cifar100_labels: Cifar100Labels,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: DatasetKind::Cifar10,
            data_dir: None,
            image_size: None,
            channels: None,
            num_classes: None,
            n_valid: 5000,
            labels_per_class: None,
            batch_size: 64,
            eval_batch_size: 100,
            noise_sigma: DEFAULT_SIGMA,
            augment: true,
            hflip: None,
            pad: DEFAULT_PAD,
            drop_last: true,
            seed: 1,
            cifar100_labels: Cifar100Labels::Fine,
        }
    }
}

/// Largest batch size accepted (far above anything that fits a GPU).
pub const MAX_BATCH_SIZE: usize = 1 << 16;
/// Largest `image_size` side accepted.
pub const MAX_IMAGE_SIZE: u32 = 4096;
/// Largest `num_classes` accepted.
pub const MAX_CLASSES: usize = 100_000;

/// `image_size`: one number for square images or `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageSize {
    /// `image_size = 32`: 32x32.
    Square(u32),
    /// `image_size = [24, 32]`: 24 rows of 32 pixels.
    HeightWidth([u32; 2]),
}

impl ImageSize {
    /// `[height, width]`.
    pub fn height_width(self) -> [u32; 2] {
        match self {
            ImageSize::Square(s) => [s, s],
            ImageSize::HeightWidth(hw) => hw,
        }
    }
}

impl std::fmt::Display for ImageSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageSize::Square(s) => write!(f, "{s}"),
            ImageSize::HeightWidth([h, w]) => write!(f, "[{h}, {w}]"),
        }
    }
}

/// A `[data]` key out of range.
pub(crate) fn invalid(
    field: &str,
    value: impl std::fmt::Display,
    allowed: impl Into<String>,
) -> DataError {
    jem_params::InvalidParam::requires("data", field, value, allowed).into()
}

impl DataConfig {
    /// Options for [`crate::load::load`].
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            cifar100_labels: self.cifar100_labels,
            image_size: self.image_size.map(ImageSize::height_width),
            channels: self.channels,
            num_classes: self.num_classes,
            ..LoadOptions::default()
        }
    }

    /// Image shape `[C, H, W]` and class count of the configured data set,
    /// before loading it: fixed for the built-in sets, read from the files'
    /// headers and labels for folder, idx and npy (see [`crate::custom`]).
    /// Flow it into the model config, or compare and report both values.
    pub fn resolve_shape(&self) -> Result<DataShape> {
        self.check_ref()?;
        let kind = self.dataset;
        if kind.is_custom() {
            let dir = resolve_dataset_dir(kind, self.data_dir.as_deref())?;
            return custom::data_shape(kind, &dir, &self.load_options());
        }
        Ok(DataShape {
            image: kind.image_shape(),
            num_classes: match kind {
                DatasetKind::Cifar100 => self.cifar100_labels.num_classes(),
                other => other.num_classes(),
            },
        })
    }

    /// Checks of the keys only custom data sets use.
    fn check_custom(&self) -> Result<()> {
        let kind = self.dataset;
        if !kind.is_custom() {
            let set = [
                ("image_size", self.image_size.map(|v| v.to_string())),
                ("channels", self.channels.map(|v| v.to_string())),
                ("num_classes", self.num_classes.map(|v| v.to_string())),
            ];
            if let Some((field, Some(value))) = set.into_iter().find(|(_, v)| v.is_some()) {
                return Err(invalid(
                    field,
                    value,
                    format!("applies only to dataset = folder, idx or npy ({kind} has a fixed shape); leave it out"),
                ));
            }
            return Ok(());
        }
        if self.data_dir.is_none() {
            return Err(invalid(
                "data_dir",
                "(not set)",
                format!("must name the directory holding your data for dataset = {kind}"),
            ));
        }
        if let Some(size) = self.image_size {
            let [h, w] = size.height_width();
            if !(1..=MAX_IMAGE_SIZE).contains(&h) || !(1..=MAX_IMAGE_SIZE).contains(&w) {
                return Err(invalid(
                    "image_size",
                    size,
                    format!("must have each side in 1..={MAX_IMAGE_SIZE}"),
                ));
            }
        }
        if let Some(c) = self.channels.filter(|c| ![1, 3].contains(c)) {
            return Err(invalid("channels", c, "must be 1 (grey) or 3 (RGB)"));
        }
        if let Some(k) = self.num_classes.filter(|k| !(2..=MAX_CLASSES).contains(k)) {
            return Err(invalid(
                "num_classes",
                k,
                format!("must be in 2..={MAX_CLASSES}"),
            ));
        }
        if let Some(k) = self.labels_per_class.filter(|&k| k == 0) {
            return Err(invalid("labels_per_class", k, "must be at least 1"));
        }
        Ok(())
    }

    /// Validates the values without consuming the config.
    pub fn check_ref(&self) -> Result<()> {
        let kind = self.dataset;
        let train = kind.train_size();
        self.check_custom()?;
        if self
            .data_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return Err(invalid(
                "data_dir",
                "\"\"",
                "must be a directory path (or left out to search $JEM_DATA_DIR and the usual places)",
            ));
        }
        if matches!(kind, DatasetKind::Celeba | DatasetKind::Mnist5k) {
            return Err(invalid(
                "dataset",
                kind,
                "must be a labelled training set: mnist, fashion-mnist, cifar10, cifar100, svhn, or your own folder, idx or npy (celeba and mnist-5k are OOD-only)",
            ));
        }
        for (field, value) in [
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
        ] {
            if !(1..=MAX_BATCH_SIZE).contains(&value) {
                return Err(invalid(
                    field,
                    value,
                    format!("must be in 1..={MAX_BATCH_SIZE}"),
                ));
            }
        }
        if kind.is_custom() {
            // Sizes are known once the files are read: the split checks
            // n_valid and labels_per_class then, naming the fields.
            if !(self.noise_sigma.is_finite() && (0.0..=1.0).contains(&self.noise_sigma)) {
                return Err(invalid(
                    "noise_sigma",
                    self.noise_sigma,
                    "must be in [0, 1]",
                ));
            }
            if let Some(size) = self.image_size {
                let [h, w] = size.height_width();
                let side = h.min(w) as usize;
                if self.pad >= side {
                    return Err(invalid(
                        "pad",
                        self.pad,
                        format!("must be in 0..={} for {side}-pixel images", side - 1),
                    ));
                }
            }
            return Ok(());
        }
        if self.n_valid >= train {
            return Err(invalid(
                "n_valid",
                self.n_valid,
                format!(
                    "must be in 0..={} ({kind} has {train} training images)",
                    train - 1
                ),
            ));
        }
        let left = train - self.n_valid;
        if self.drop_last && self.batch_size > left {
            return Err(invalid(
                "batch_size",
                self.batch_size,
                format!(
                    "must be in 1..={left} with drop_last ({kind} leaves {left} training images after n_valid = {})",
                    self.n_valid
                ),
            ));
        }
        let classes = match kind {
            DatasetKind::Cifar100 => self.cifar100_labels.num_classes(),
            other => other.num_classes(),
        };
        if let Some(k) = self.labels_per_class {
            let max = (train - self.n_valid) / classes;
            if !(1..=max).contains(&k) {
                return Err(invalid(
                    "labels_per_class",
                    k,
                    format!("must be in 1..={max} ({} training images after n_valid over {classes} classes)", train - self.n_valid),
                ));
            }
        }
        if !(self.noise_sigma.is_finite() && (0.0..=1.0).contains(&self.noise_sigma)) {
            return Err(invalid(
                "noise_sigma",
                self.noise_sigma,
                "must be in [0, 1]",
            ));
        }
        let side = kind.image_shape()[1].min(kind.image_shape()[2]);
        if self.pad >= side {
            return Err(invalid(
                "pad",
                self.pad,
                format!("must be in 0..={} for {side}-pixel images", side - 1),
            ));
        }
        Ok(())
    }

    /// Validates the values.
    pub fn check(self) -> Result<CheckedDataConfig> {
        self.check_ref()?;
        Ok(CheckedDataConfig(self))
    }
}

/// A [`DataConfig`] whose values passed [`DataConfig::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedDataConfig(DataConfig);

impl Deref for CheckedDataConfig {
    type Target = DataConfig;
    fn deref(&self) -> &DataConfig {
        &self.0
    }
}

impl CheckedDataConfig {
    /// Whether training batches are flipped horizontally.
    pub fn hflip(&self) -> bool {
        self.hflip.unwrap_or_else(|| self.dataset.default_hflip())
    }

    /// Number of classes of the configured labels; for custom data sets the
    /// configured `num_classes`, or 0 when the files decide (use
    /// [`DataConfig::resolve_shape`]).
    pub fn num_classes(&self) -> usize {
        match self.dataset {
            DatasetKind::Cifar100 => self.cifar100_labels.num_classes(),
            kind if kind.is_custom() => self.0.num_classes.unwrap_or(0),
            other => other.num_classes(),
        }
    }

    /// Preprocessing of training batches.
    pub fn train_preprocess(&self) -> Preprocess {
        Preprocess {
            sigma: self.noise_sigma,
            augment: self.augment.then(|| Augment {
                pad: self.pad,
                hflip: self.hflip(),
            }),
        }
    }

    /// Preprocessing of evaluation batches (no augmentation, same noise).
    pub fn eval_preprocess(&self) -> Preprocess {
        Preprocess {
            sigma: self.noise_sigma,
            augment: None,
        }
    }

    /// Options for [`crate::load::load`].
    pub fn load_options(&self) -> LoadOptions {
        self.0.load_options()
    }

    /// The unchecked config back.
    pub fn into_inner(self) -> DataConfig {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers_and_valid() {
        let c = DataConfig::default().check().unwrap();
        assert_eq!((c.n_valid, c.batch_size, c.noise_sigma), (5000, 64, 0.03));
        assert!(c.hflip());
        let p = c.train_preprocess();
        assert_eq!(
            p.augment,
            Some(Augment {
                pad: 4,
                hflip: true
            })
        );
        let svhn = DataConfig {
            dataset: DatasetKind::Svhn,
            ..DataConfig::default()
        }
        .check()
        .unwrap();
        assert!(!svhn.hflip());
    }

    #[test]
    fn parses_partial_sections_and_rejects_unknown_keys() {
        let c: DataConfig = serde_json::from_str(
            r#"{"dataset": "fashion-mnist", "labels_per_class": 10, "seed": 3}"#,
        )
        .unwrap();
        assert_eq!(c.dataset, DatasetKind::FashionMnist);
        assert_eq!(c.labels_per_class, Some(10));
        assert_eq!(c.batch_size, 64);
        let e = serde_json::from_str::<DataConfig>(r#"{"batch_szie": 32}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `batch_szie`"), "{e}");
        let e = serde_json::from_str::<DataConfig>(r#"{"dataset": "imagenet"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("imagenet"), "{e}");
    }

    #[test]
    fn out_of_range_values_name_field_value_and_range() {
        let check = |c: DataConfig| c.check().unwrap_err().to_string();
        let e = check(DataConfig {
            batch_size: 0,
            ..Default::default()
        });
        assert_eq!(
            e,
            "invalid config: `data.batch_size` = 0: must be in 1..=65536"
        );
        let e = check(DataConfig {
            n_valid: 50_000,
            ..Default::default()
        });
        assert_eq!(
            e,
            "invalid config: `data.n_valid` = 50000: must be in 0..=49999 (cifar10 has 50000 training images)"
        );
        let e = check(DataConfig {
            noise_sigma: f64::NAN,
            ..Default::default()
        });
        assert!(
            e.contains("`data.noise_sigma` = NaN: must be in [0, 1]"),
            "{e}"
        );
        let e = check(DataConfig {
            labels_per_class: Some(0),
            ..Default::default()
        });
        assert!(
            e.contains("`data.labels_per_class` = 0: must be in 1..=4500"),
            "{e}"
        );
        let e = check(DataConfig {
            pad: 28,
            dataset: DatasetKind::Mnist,
            ..Default::default()
        });
        assert!(e.contains("`data.pad` = 28: must be in 0..=27"), "{e}");
        let e = check(DataConfig {
            dataset: DatasetKind::Celeba,
            ..Default::default()
        });
        assert!(e.contains("`data.dataset` = celeba"), "{e}");
        let e = check(DataConfig {
            n_valid: 49_990,
            batch_size: 64,
            ..Default::default()
        });
        assert_eq!(
            e,
            "invalid config: `data.batch_size` = 64: must be in 1..=10 with drop_last (cifar10 \
             leaves 10 training images after n_valid = 49990)"
        );
        let e = check(DataConfig {
            data_dir: Some(PathBuf::new()),
            ..Default::default()
        });
        assert!(
            e.contains("`data.data_dir` = \"\": must be a directory path"),
            "{e}"
        );
    }
}
