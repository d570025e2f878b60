//! Your own data: `dataset = "folder"`, `"idx"` or `"npy"` with `data_dir`
//! pointing at the files.
//!
//! | dataset | layout under `data_dir` |
//! |---|---|
//! | `folder` | `train/<class>/*.{png,jpg,jpeg}` and `test/<class>/...`; classes are the training split's visible sub-directories in name order |
//! | `idx` | MNIST's file names: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]` (grey images of any size) |
//! | `npy` | `train_images.npy`, `train_labels.npy`, `test_images.npy`, `test_labels.npy`: images `[N, H, W]` or `[N, C, H, W]` (C = 1 or 3), uint8 in 0..=255 or float32/float64 in [0, 1]; labels `[N]` of any integer type |
//!
//! Folder images of any size are resized to `data.image_size` when it is
//! set; without it every image must have the first one's size (another size
//! is an error naming the file). The channel count is `data.channels` or, for
//! folders, the first image's (grey 1, colour 3). For arrays `image_size` and
//! `channels`, when set, must match what the files hold. The class count is
//! `data.num_classes` when set, otherwise the largest training label plus one
//! (folders: the number of class directories); a label outside it is an error
//! naming the file.
//!
//! [`data_shape`] tells `[C, H, W]` and the class count from the headers and
//! labels alone, before the images are loaded, so a model can be built to fit.

use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::bytes::{gunzip_reader, read_array, read_file, MAX_DECOMPRESSED_BYTES};
use crate::dataset::{Dataset, RawImages};
use crate::error::{DataError, Result};
use crate::folder::{class_names, folder_image_shape, load_class_folder, FolderOptions};
use crate::idx::{decode_idx_labels, load_idx_pair_capped};
use crate::load::{LoadOptions, Split};
use crate::npy::{read_npy, NpyArray, NpyData};
use crate::resolve::{
    idx_file, DatasetKind, IDX_TEST_IMAGES, IDX_TEST_LABELS, IDX_TRAIN_IMAGES, IDX_TRAIN_LABELS,
};

/// File names of the `npy` layout.
pub const NPY_TRAIN_IMAGES: &str = "train_images.npy";
/// Training labels of the `npy` layout.
pub const NPY_TRAIN_LABELS: &str = "train_labels.npy";
/// Test images of the `npy` layout.
pub const NPY_TEST_IMAGES: &str = "test_images.npy";
/// Test labels of the `npy` layout.
pub const NPY_TEST_LABELS: &str = "test_labels.npy";
/// Split directories of the `folder` layout.
pub const FOLDER_TRAIN: &str = "train";
/// The test split directory of the `folder` layout.
pub const FOLDER_TEST: &str = "test";

/// Image shape and class count of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    /// `[C, H, W]` of one image as loaded.
    pub image: [usize; 3],
    /// Number of classes (labels are `0..num_classes`).
    pub num_classes: usize,
}

fn folder_options(options: &LoadOptions) -> FolderOptions {
    FolderOptions {
        size: options.image_size.map(|[h, w]| (h, w)),
        channels: options.channels,
    }
}

fn idx_paths(dir: &Path, split: Split) -> Result<(PathBuf, PathBuf)> {
    let (images, labels) = match split {
        Split::Train => (IDX_TRAIN_IMAGES, IDX_TRAIN_LABELS),
        Split::Test => (IDX_TEST_IMAGES, IDX_TEST_LABELS),
    };
    let find = |name: &str| {
        idx_file(dir, name)
            .ok_or_else(|| DataError::format(dir, format!("missing {name} (or {name}.gz)")))
    };
    Ok((find(images)?, find(labels)?))
}

fn npy_paths(dir: &Path, split: Split) -> (PathBuf, PathBuf) {
    match split {
        Split::Train => (dir.join(NPY_TRAIN_IMAGES), dir.join(NPY_TRAIN_LABELS)),
        Split::Test => (dir.join(NPY_TEST_IMAGES), dir.join(NPY_TEST_LABELS)),
    }
}

/// The labels of an `npy` labels file, as i64.
fn npy_labels(path: &Path) -> Result<Vec<i64>> {
    let a = read_npy(path)?;
    if a.shape.len() != 1 {
        return Err(DataError::format(
            path,
            format!("labels must be 1-D [N], found shape {:?}", a.shape),
        ));
    }
    let labels: Vec<i64> = match a.data {
        NpyData::U8(v) => v.into_iter().map(i64::from).collect(),
        NpyData::I8(v) => v.into_iter().map(i64::from).collect(),
        NpyData::I32(v) => v.into_iter().map(i64::from).collect(),
        NpyData::I64(v) => v,
        NpyData::F32(_) | NpyData::F64(_) => {
            return Err(DataError::format(
                path,
                "labels must be integers (uint8, int8, int32 or int64), found floats",
            ))
        }
    };
    Ok(labels)
}

/// The class count: the configured one, else the largest training label + 1.
fn class_count(labels: &[i64], path: &Path, configured: Option<usize>) -> Result<usize> {
    if let Some(k) = configured {
        return Ok(k);
    }
    match labels.iter().max() {
        Some(&max) if max >= 0 => Ok(max as usize + 1),
        _ => Err(DataError::format(
            path,
            "no labels to count the classes from",
        )),
    }
}

fn check_labels(labels: &[i64], path: &Path, classes: usize) -> Result<()> {
    if let Some((i, &bad)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l < 0 || l as usize >= classes)
    {
        return Err(DataError::format(
            path,
            format!("label {bad} at index {i} is outside 0..{classes} (data.num_classes)"),
        ));
    }
    Ok(())
}

/// `[C, H, W]` of an `npy` images array (`[N, H, W]` or `[N, C, H, W]`).
fn npy_image_shape(shape: &[usize], path: &Path) -> Result<[usize; 3]> {
    match *shape {
        [_, h, w] => Ok([1, h, w]),
        [_, c @ (1 | 3), h, w] => Ok([c, h, w]),
        _ => Err(DataError::format(
            path,
            format!(
                "images must be [N, H, W] or [N, C, H, W] with C = 1 or 3, found shape {shape:?}"
            ),
        )),
    }
}

/// For arrays: configured `image_size`/`channels` must match the file.
fn check_configured(image: [usize; 3], path: &Path, options: &LoadOptions) -> Result<()> {
    if let Some([h, w]) = options.image_size {
        if [h as usize, w as usize] != [image[1], image[2]] {
            return Err(crate::config::invalid(
                "image_size",
                format!("[{h}, {w}]"),
                format!(
                    "must match {}, which holds {}x{} images (arrays are not resized)",
                    path.display(),
                    image[1],
                    image[2]
                ),
            ));
        }
    }
    if let Some(c) = options.channels.filter(|&c| c != image[0]) {
        return Err(crate::config::invalid(
            "channels",
            c.to_string(),
            format!(
                "must match {}, which holds {}-channel images",
                path.display(),
                image[0]
            ),
        ));
    }
    Ok(())
}

/// Reads only the header of an IDX image file: `(count, rows, cols)`.
fn idx_header(path: &Path) -> Result<(usize, usize, usize)> {
    let bytes = read_file(path)?;
    let mut reader = gunzip_reader(&bytes);
    let h: [u8; 16] = read_array(&mut reader, path, "IDX image header")?;
    let word = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as usize;
    if word(0) != crate::idx::IDX_IMAGES_MAGIC as usize {
        return Err(DataError::format(
            path,
            format!("bad IDX magic 0x{:08x}, expected 0x00000803", word(0)),
        ));
    }
    Ok((word(4), word(8), word(12)))
}

/// Shape and class count of a custom data set in `dir`, from headers and
/// labels only (the images are not decoded, except a folder's first image
/// when the options leave its size or channels open).
pub fn data_shape(kind: DatasetKind, dir: &Path, options: &LoadOptions) -> Result<DataShape> {
    match kind {
        DatasetKind::Folder => {
            let train = dir.join(FOLDER_TRAIN);
            let classes = class_names(&train)?.len();
            let image = folder_image_shape(&train, &folder_options(options))?;
            if let Some(k) = options.num_classes.filter(|&k| k != classes) {
                return Err(num_classes_mismatch(k, classes, &train));
            }
            Ok(DataShape {
                image,
                num_classes: classes,
            })
        }
        DatasetKind::Idx => {
            let (images, labels) = idx_paths(dir, Split::Train)?;
            let (_, rows, cols) = idx_header(&images)?;
            let image = [1, rows, cols];
            check_configured(image, &images, options)?;
            let labels_v = decode_idx_labels(&read_file(&labels)?, &labels, 256, usize::MAX)?;
            Ok(DataShape {
                image,
                num_classes: class_count(&labels_v, &labels, options.num_classes)?,
            })
        }
        DatasetKind::Npy => {
            let (images, labels) = npy_paths(dir, Split::Train);
            let header = crate::npy::read_npy_shape(&images)?;
            let image = npy_image_shape(&header, &images)?;
            check_configured(image, &images, options)?;
            let labels_v = npy_labels(&labels)?;
            Ok(DataShape {
                image,
                num_classes: class_count(&labels_v, &labels, options.num_classes)?,
            })
        }
        other => Err(DataError::InvalidArgument(format!(
            "{other} is a built-in data set: its shape is {:?} with {} classes",
            other.image_shape(),
            other.num_classes()
        ))),
    }
}

fn num_classes_mismatch(configured: usize, found: usize, train: &Path) -> DataError {
    crate::config::invalid(
        "num_classes",
        configured.to_string(),
        format!(
            "must be {found}, the number of class directories in {} (or left out)",
            train.display()
        ),
    )
}

/// Loads one split of a custom data set from `dir` as tensors (images in
/// `[0, 1]`).
pub fn load_custom(
    kind: DatasetKind,
    split: Split,
    dir: &Path,
    options: &LoadOptions,
) -> Result<Dataset> {
    match kind {
        DatasetKind::Folder => {
            let train_dir = dir.join(FOLDER_TRAIN);
            let names = class_names(&train_dir)?;
            if let Some(k) = options.num_classes.filter(|&k| k != names.len()) {
                return Err(num_classes_mismatch(k, names.len(), &train_dir));
            }
            let opts = folder_options(options);
            let folder = match split {
                Split::Train => load_class_folder(&train_dir, &opts, None)?,
                Split::Test => {
                    // The test images take the training images' shape, so the
                    // two splits can never differ.
                    let [c, h, w] = folder_image_shape(&train_dir, &opts)?;
                    let opts = FolderOptions {
                        size: Some((h as u32, w as u32)).filter(|_| opts.size.is_some()),
                        channels: Some(c),
                    };
                    let test = load_class_folder(&dir.join(FOLDER_TEST), &opts, Some(&names))?;
                    if (test.images.height, test.images.width) != (h, w) {
                        return Err(DataError::format(
                            dir.join(FOLDER_TEST),
                            format!(
                                "test images are {}x{} but training images {h}x{w}; set data.image_size to resize both",
                                test.images.height, test.images.width
                            ),
                        ));
                    }
                    test
                }
            };
            folder.images.into_dataset(names.len())
        }
        DatasetKind::Idx => {
            let classes = data_shape(kind, dir, options)?.num_classes;
            let (images, labels) = idx_paths(dir, split)?;
            let raw = load_idx_pair_capped(&images, &labels, 256, MAX_DECOMPRESSED_BYTES)?;
            check_configured([1, raw.height, raw.width], &images, options)?;
            check_labels(&raw.labels, &labels, classes)?;
            raw.into_dataset(classes)
        }
        DatasetKind::Npy => {
            let shape = data_shape(kind, dir, options)?;
            let (images, labels) = npy_paths(dir, split);
            let array = read_npy(&images)?;
            let image = npy_image_shape(&array.shape, &images)?;
            if image != shape.image {
                return Err(DataError::format(
                    &images,
                    format!(
                        "images are {image:?} ([C, H, W]) but the training images {:?}",
                        shape.image
                    ),
                ));
            }
            let labels_v = npy_labels(&labels)?;
            let n = array.shape[0];
            if labels_v.len() != n {
                return Err(DataError::format(
                    &labels,
                    format!(
                        "{} labels but {} holds {n} images",
                        labels_v.len(),
                        images.display()
                    ),
                ));
            }
            check_labels(&labels_v, &labels, shape.num_classes)?;
            let tensor = npy_images_tensor(&array, &images, n, image)?;
            Dataset::new(tensor, Tensor::f_from_slice(&labels_v)?, shape.num_classes)
        }
        other => Err(DataError::InvalidArgument(format!(
            "{other} is a built-in data set, not one of folder, idx, npy"
        ))),
    }
}

/// An `npy` images array as an f32 `[N, C, H, W]` tensor in `[0, 1]`.
fn npy_images_tensor(
    array: &NpyArray,
    path: &Path,
    n: usize,
    [c, h, w]: [usize; 3],
) -> Result<Tensor> {
    let shape = [n as i64, c as i64, h as i64, w as i64];
    let out_of_range = |v: f64, i: usize| {
        DataError::format(
            path,
            format!("float image value {v} at index {i} is outside [0, 1] (scale pixels to [0, 1], or store uint8)"),
        )
    };
    let t = match &array.data {
        NpyData::U8(v) => {
            return Ok(RawImages {
                pixels: v.clone(),
                labels: vec![0; n],
                channels: c,
                height: h,
                width: w,
            }
            .into_dataset(1)?
            .images)
        }
        NpyData::F32(v) => {
            if let Some((i, &x)) = v
                .iter()
                .enumerate()
                .find(|(_, x)| !(0.0..=1.0).contains(*x))
            {
                return Err(out_of_range(f64::from(x), i));
            }
            Tensor::f_from_slice(v)?
        }
        NpyData::F64(v) => {
            if let Some((i, &x)) = v
                .iter()
                .enumerate()
                .find(|(_, x)| !(0.0..=1.0).contains(*x))
            {
                return Err(out_of_range(x, i));
            }
            Tensor::f_from_slice(v)?.f_to_kind(Kind::Float)?
        }
        _ => {
            return Err(DataError::format(
                path,
                "images must be uint8 (0..=255) or float32/float64 in [0, 1]",
            ))
        }
    };
    Ok(t.f_reshape(shape)?)
}

#[cfg(test)]
mod tests;
