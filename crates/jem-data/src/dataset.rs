//! In-memory data sets: the libtorch-free [`RawImages`] every parser produces
//! and the tensor-backed [`Dataset`] the rest of jem consumes.

use tch::{Kind, Tensor};

use crate::error::{DataError, Result};

/// Decoded images as raw bytes, before any conversion to tensors.
///
/// `pixels` is in NCHW order (image, channel, row, column), one byte per
/// sample with the file's own 0..=255 value; `labels[i]` belongs to image `i`.
/// Parsers return this type so they can be tested without libtorch and so
/// format errors are found before any tensor is allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawImages {
    /// NCHW bytes, 0..=255.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<i64>,
    /// Channels per image.
    pub channels: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
}

impl RawImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image (`channels * height * width`).
    pub fn image_len(&self) -> usize {
        self.channels
            .saturating_mul(self.height)
            .saturating_mul(self.width)
    }

    /// The byte at image `n`, channel `c`, row `y`, column `x`, if in range.
    pub fn pixel(&self, n: usize, c: usize, y: usize, x: usize) -> Option<u8> {
        if c >= self.channels || y >= self.height || x >= self.width {
            return None;
        }
        let idx = n
            .checked_mul(self.channels)
            .and_then(|v| v.checked_add(c)?.checked_mul(self.height))
            .and_then(|v| v.checked_add(y)?.checked_mul(self.width))
            .and_then(|v| v.checked_add(x))?;
        self.pixels.get(idx).copied()
    }

    /// Concatenates several batches with the same image shape (CIFAR-10's
    /// five training files, for instance).
    pub fn concat(parts: Vec<RawImages>) -> Result<RawImages> {
        let mut iter = parts.into_iter();
        let Some(mut out) = iter.next() else {
            return Err(DataError::InvalidArgument(
                "cannot concatenate zero image batches".into(),
            ));
        };
        for part in iter {
            if (part.channels, part.height, part.width) != (out.channels, out.height, out.width) {
                return Err(DataError::InvalidArgument(format!(
                    "cannot concatenate images of shape {}x{}x{} with {}x{}x{}",
                    part.channels, part.height, part.width, out.channels, out.height, out.width
                )));
            }
            out.pixels.extend_from_slice(&part.pixels);
            out.labels.extend_from_slice(&part.labels);
        }
        Ok(out)
    }

    /// Converts to a [`Dataset`]: images become f32 `[N, C, H, W]` tensors
    /// with values `pixel / 255` in `[0, 1]`, labels an i64 `[N]` tensor.
    pub fn into_dataset(self, num_classes: usize) -> Result<Dataset> {
        let n = self.len();
        let expected = self
            .channels
            .checked_mul(self.height)
            .and_then(|v| v.checked_mul(self.width))
            .and_then(|v| v.checked_mul(n));
        if expected != Some(self.pixels.len()) {
            return Err(DataError::InvalidArgument(format!(
                "{} pixel bytes do not fill {n} images of {}x{}x{}",
                self.pixels.len(),
                self.channels,
                self.height,
                self.width
            )));
        }
        let shape = [
            n as i64,
            self.channels as i64,
            self.height as i64,
            self.width as i64,
        ];
        let images = Tensor::f_from_slice(&self.pixels)?
            .f_to_kind(Kind::Float)?
            .f_div_scalar(255.0)?
            .f_reshape(shape)?;
        let labels = Tensor::f_from_slice(&self.labels)?;
        Ok(Dataset {
            images,
            labels,
            num_classes,
        })
    }
}

/// A data set held as tensors.
///
/// * `images`: f32 `[N, C, H, W]`. Loaders return values in `[0, 1]`
///   (pixel / 255); see [`crate::preprocess`] for the model's `[-1, 1]` range.
/// * `labels`: i64 `[N]` with values in `0..num_classes` (all 0 for
///   unlabelled out-of-distribution sets).
#[derive(Debug)]
pub struct Dataset {
    /// f32 `[N, C, H, W]`.
    pub images: Tensor,
    /// i64 `[N]`.
    pub labels: Tensor,
    /// Number of classes the labels index.
    pub num_classes: usize,
}

impl Dataset {
    /// Builds a data set from tensors, checking that their shapes agree.
    pub fn new(images: Tensor, labels: Tensor, num_classes: usize) -> Result<Dataset> {
        let isize = images.size();
        let lsize = labels.size();
        if isize.len() != 4 || lsize.len() != 1 || isize[0] != lsize[0] {
            return Err(DataError::InvalidArgument(format!(
                "images must be [N, C, H, W] and labels [N]; got {isize:?} and {lsize:?}"
            )));
        }
        Ok(Dataset {
            images,
            labels,
            num_classes,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.size().first().copied().unwrap_or(0).max(0) as usize
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[C, H, W]` of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        let s = self.images.size();
        let dim = |i: usize| s.get(i).copied().unwrap_or(0).max(0) as usize;
        [dim(1), dim(2), dim(3)]
    }

    /// The labels copied to a `Vec` (used by the splitting helpers).
    pub fn labels_vec(&self) -> Result<Vec<i64>> {
        Ok(Vec::<i64>::try_from(
            &self.labels.f_to_device(tch::Device::Cpu)?,
        )?)
    }

    /// The examples at `indices`, in that order (indices are checked).
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        let n = self.len();
        if let Some(bad) = indices.iter().find(|&&i| i >= n) {
            return Err(DataError::InvalidArgument(format!(
                "index {bad} out of range for a data set of {n} examples"
            )));
        }
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let idx = Tensor::f_from_slice(&idx)?;
        let image_idx = idx.f_to_device(self.images.device())?;
        let label_idx = idx.f_to_device(self.labels.device())?;
        Ok(Dataset {
            images: self.images.f_index_select(0, &image_idx)?,
            labels: self.labels.f_index_select(0, &label_idx)?,
            num_classes: self.num_classes,
        })
    }

    /// A cheap copy sharing the same storage.
    pub fn shallow_clone(&self) -> Dataset {
        Dataset {
            images: self.images.shallow_clone(),
            labels: self.labels.shallow_clone(),
            num_classes: self.num_classes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pixels: Vec<u8>, labels: Vec<i64>) -> RawImages {
        RawImages {
            pixels,
            labels,
            channels: 1,
            height: 1,
            width: 2,
        }
    }

    #[test]
    fn conversion_concat_and_subset() {
        let a = raw(vec![0, 255], vec![4]);
        let b = raw(vec![51, 102], vec![7]);
        let both = RawImages::concat(vec![a, b]).unwrap();
        assert_eq!(both.pixel(1, 0, 0, 1), Some(102));
        assert_eq!(both.pixel(2, 0, 0, 0), None);
        assert_eq!(both.pixel(usize::MAX, 0, 0, 0), None);
        let ds = both.into_dataset(10).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.image_shape(), [1, 1, 2]);
        let sub = ds.subset(&[1, 1, 0]).unwrap();
        assert_eq!(sub.labels_vec().unwrap(), vec![7, 7, 4]);
        assert!((sub.images.double_value(&[0, 0, 0, 0]) - 0.2).abs() < 1e-6);
        assert!(ds.subset(&[2]).is_err());

        assert!(raw(vec![0; 3], vec![1]).into_dataset(10).is_err());
        let mut other = raw(vec![0; 2], vec![1]);
        other.width = 1;
        other.height = 2;
        assert!(RawImages::concat(vec![raw(vec![0; 2], vec![0]), other]).is_err());
        assert!(RawImages::concat(Vec::new()).is_err());
    }
}
