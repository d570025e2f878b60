//! Loading a named data set split: resolve its directory, pick the format's
//! loader, convert to tensors.

use std::path::Path;

use crate::celeba::{load_celeba, CelebaPartition};
use crate::cifar::{load_cifar10, load_cifar100, Cifar100Labels};
use crate::csv::{load_pixel_label_csv, MNIST_5K_FILE, MNIST_5K_ROWS};
use crate::custom::load_custom;
use crate::dataset::{Dataset, RawImages};
use crate::error::{DataError, Result};
use crate::idx::load_idx_pair_capped;
use crate::resolve::{
    idx_file, resolve_dataset_dir, DatasetKind, IDX_TEST_IMAGES, IDX_TEST_LABELS, IDX_TRAIN_IMAGES,
    IDX_TRAIN_LABELS,
};
use crate::svhn::load_svhn;

/// The official training or test split (for CelebA: partitions 0 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

/// Format-specific choices when loading by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// CIFAR-100's coarse or fine labels.
    pub cifar100_labels: Cifar100Labels,
    /// Side of the square CelebA images after crop and resize.
    pub celeba_size: u32,
    /// Load only the first images of the CelebA partition.
    pub celeba_max_images: Option<usize>,
    /// Custom data sets: `[height, width]` folder images are resized to
    /// (arrays must already have it).
    pub image_size: Option<[u32; 2]>,
    /// Custom data sets: 1 (grey) or 3 (RGB) channels.
    pub channels: Option<usize>,
    /// Custom data sets: the class count (else learned from the labels).
    pub num_classes: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            cifar100_labels: Cifar100Labels::Fine,
            celeba_size: 32,
            celeba_max_images: None,
            image_size: None,
            channels: None,
            num_classes: None,
        }
    }
}

/// Loads a split from `dir`, the data set's own directory (as returned by
/// [`resolve_dataset_dir`]), without converting to tensors.
pub fn load_raw_from(
    kind: DatasetKind,
    split: Split,
    dir: &Path,
    options: &LoadOptions,
) -> Result<RawImages> {
    let train = split == Split::Train;
    match kind {
        DatasetKind::Folder | DatasetKind::Idx | DatasetKind::Npy => {
            Err(DataError::InvalidArgument(format!(
                "dataset = {kind} loads as tensors only: use load_from or load"
            )))
        }
        DatasetKind::Mnist | DatasetKind::FashionMnist => {
            let (images, labels) = if train {
                (IDX_TRAIN_IMAGES, IDX_TRAIN_LABELS)
            } else {
                (IDX_TEST_IMAGES, IDX_TEST_LABELS)
            };
            let find = |name: &str| {
                idx_file(dir, name)
                    .ok_or_else(|| DataError::format(dir, format!("missing {name} (or {name}.gz)")))
            };
            // The header may declare at most the official training set's
            // pixels, so a forged count cannot make a small file inflate
            // to gigabytes.
            let [c, h, w] = kind.image_shape();
            let max_pixels = (kind.train_size() * c * h * w) as u64;
            load_idx_pair_capped(
                &find(images)?,
                &find(labels)?,
                kind.num_classes(),
                max_pixels,
            )
        }
        DatasetKind::Cifar10 => load_cifar10(dir, train),
        DatasetKind::Cifar100 => load_cifar100(dir, train, options.cifar100_labels),
        DatasetKind::Svhn => load_svhn(dir, train),
        DatasetKind::Celeba => load_celeba(
            dir,
            if train {
                CelebaPartition::Train
            } else {
                CelebaPartition::Test
            },
            options.celeba_size,
            options.celeba_max_images,
        ),
        DatasetKind::Mnist5k => {
            if train {
                return Err(DataError::InvalidArgument(
                    "mnist-5k has only a test split (it is an OOD set); use split `test`".into(),
                ));
            }
            load_pixel_label_csv(
                &dir.join(MNIST_5K_FILE),
                kind.image_shape(),
                kind.num_classes(),
                MNIST_5K_ROWS,
            )
        }
    }
}

/// Loads a split from the data set's own directory as tensors (images in
/// `[0, 1]`).
pub fn load_from(
    kind: DatasetKind,
    split: Split,
    dir: &Path,
    options: &LoadOptions,
) -> Result<Dataset> {
    if kind.is_custom() {
        return load_custom(kind, split, dir, options);
    }
    let classes = match kind {
        DatasetKind::Cifar100 => options.cifar100_labels.num_classes(),
        other => other.num_classes(),
    };
    load_raw_from(kind, split, dir, options)?.into_dataset(classes)
}

/// Resolves the data set's directory (`data_dir`, then `$JEM_DATA_DIR`,
/// then well-known places) and loads a split as tensors.
pub fn load(
    kind: DatasetKind,
    split: Split,
    data_dir: Option<&Path>,
    options: &LoadOptions,
) -> Result<Dataset> {
    let dir = resolve_dataset_dir(kind, data_dir)?;
    load_from(kind, split, &dir, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::{encode_idx_images, encode_idx_labels};

    #[test]
    fn loads_by_name_from_an_explicit_root() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mnist");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join(IDX_TRAIN_IMAGES),
            encode_idx_images(1, 2, 2, &[1, 2, 3, 4]),
        )
        .unwrap();
        std::fs::write(dir.join(IDX_TRAIN_LABELS), encode_idx_labels(&[5])).unwrap();
        std::fs::write(
            dir.join(IDX_TEST_IMAGES),
            encode_idx_images(2, 2, 2, &[255; 8]),
        )
        .unwrap();
        std::fs::write(dir.join(IDX_TEST_LABELS), encode_idx_labels(&[0, 9])).unwrap();

        let opts = LoadOptions::default();
        let test = load(DatasetKind::Mnist, Split::Test, Some(root.path()), &opts).unwrap();
        assert_eq!(test.images.size(), vec![2, 1, 2, 2]);
        assert_eq!(test.labels_vec().unwrap(), vec![0, 9]);
        assert_eq!(test.num_classes, 10);
        let train = load_raw_from(DatasetKind::Mnist, Split::Train, &dir, &opts).unwrap();
        assert_eq!((train.labels, train.pixels), (vec![5], vec![1, 2, 3, 4]));

        let e = load_from(DatasetKind::Cifar10, Split::Test, &dir, &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("test_batch.bin"), "{e}");
    }
}
