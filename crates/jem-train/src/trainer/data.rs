//! The data of a run: the loaded splits, the validation split carved from the training set, the
//! labelled subset of semi-supervised runs, and the preprocessing of `[data]`.

use jem_data::preprocess::{to_model_range, Preprocess};
use jem_data::split::{labeled_subset, train_valid_split};
use jem_data::{load, Dataset, Split};
use tch::{Kind, Tensor};

use crate::config::RunConfig;
use crate::error::{Result, TrainError};

/// Training and test images (in `[0, 1]`, as loaded by jem-data) with labels.
#[derive(Debug)]
pub struct TrainData {
    /// The official training split (the validation split is carved out of it).
    pub train: Dataset,
    /// The test split.
    pub test: Dataset,
}

impl TrainData {
    /// Loads the training and test splits named by `[data]`.
    pub fn load(cfg: &jem_data::DataConfig) -> Result<Self> {
        let checked = cfg.clone().check()?;
        let opts = checked.load_options();
        let dir = cfg.data_dir.as_deref();
        Ok(Self {
            train: load(cfg.dataset, Split::Train, dir, &opts)?,
            test: load(cfg.dataset, Split::Test, dir, &opts)?,
        })
    }
}

/// Index sets and preprocessing derived from the data config.
pub(super) struct Prepared {
    pub(super) train: Dataset,
    pub(super) test: Dataset,
    pub(super) train_idx: Vec<usize>,
    pub(super) valid_idx: Vec<usize>,
    pub(super) labeled_idx: Option<Vec<usize>>,
    pub(super) train_pre: Preprocess,
    pub(super) eval_pre: Preprocess,
    pub(super) iterations_per_epoch: u64,
}

pub(super) fn prepare(cfg: &RunConfig, data: TrainData) -> Result<Prepared> {
    let TrainData { train, test } = data;
    let classes = cfg.model.num_classes;
    for (name, ds) in [("train", &train), ("test", &test)] {
        if ds.num_classes != classes || ds.image_shape()[0] != cfg.model.in_channels {
            cfg.check_data_shape(ds.image_shape(), ds.num_classes)?;
        }
        if ds.is_empty() {
            return Err(TrainError::DataMismatch(format!(
                "the {name} split is empty"
            )));
        }
    }
    let d = &cfg.data;
    if d.n_valid >= train.len() {
        return Err(TrainError::invalid(
            "data.n_valid",
            d.n_valid,
            format!(
                "< {} (the training split's size), leaving at least one training example",
                train.len()
            ),
        ));
    }
    let split = train_valid_split(train.len(), d.n_valid, d.seed)?;
    let labeled_idx = match d.labels_per_class {
        Some(k) => {
            let labels = train.labels_vec()?;
            Some(labeled_subset(&labels, &split.train, classes, k, d.seed)?.labeled)
        }
        None => None,
    };
    let n = split.train.len() as u64;
    let b = d.batch_size as u64;
    let iterations_per_epoch = if d.drop_last { n / b } else { n.div_ceil(b) };
    if iterations_per_epoch == 0 {
        return Err(TrainError::DataMismatch(format!(
            "{n} training examples make no full batch of {b} (data.drop_last = true)"
        )));
    }
    cfg.train.check_schedule(iterations_per_epoch)?;
    let side = train.image_shape()[1].min(train.image_shape()[2]);
    if d.augment && d.pad >= side {
        return Err(TrainError::invalid(
            "data.pad",
            d.pad,
            format!("< {side} (the image side)"),
        ));
    }
    let checked = d.clone().check()?;
    Ok(Prepared {
        train,
        test,
        train_idx: split.train,
        valid_idx: split.valid,
        labeled_idx,
        train_pre: checked.train_preprocess(),
        eval_pre: checked.eval_preprocess(),
        iterations_per_epoch,
    })
}

impl Prepared {
    /// The training examples (the validation split left out) in the chains' range `[-1, 1]`,
    /// without noise or augmentation, with their labels: what the Gaussian chain start is fitted
    /// to.
    pub(super) fn training_images(&self) -> Result<(Tensor, Vec<i64>)> {
        let sub = self.train.subset(&self.train_idx)?;
        let x = to_model_range(&sub.images.f_to_kind(Kind::Float)?)?;
        Ok((x, sub.labels_vec()?))
    }
}
