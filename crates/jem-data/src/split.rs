//! Deterministic splitting and batching.
//!
//! Everything random here is driven by [`rand_pcg::Pcg64`] seeded by the
//! caller, so a seed fully determines the validation set, the labelled
//! subset and the batch order.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use tch::Tensor;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// `0..n` in an order shuffled by `seed`.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut Pcg64::seed_from_u64(seed));
    idx
}

/// Indices of a training set split into a training part and a held-out
/// validation part of `n_valid` examples, as the reference code does:
/// shuffle `0..n` with the seed, the first `n_valid` are validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainValid {
    /// Indices to train on.
    pub train: Vec<usize>,
    /// Held-out validation indices.
    pub valid: Vec<usize>,
}

///
/// `n_valid` is the config's `data.n_valid`, so an out-of-range value is a
/// [`DataError::InvalidConfig`] naming that field, its value and the range the
/// loaded training split allows.
pub fn train_valid_split(n: usize, n_valid: usize, seed: u64) -> Result<TrainValid> {
    if n_valid >= n {
        let allowed = match n {
            0 => "must leave examples to train on, but the training split is empty".to_owned(),
            n => format!(
                "must be in 0..={} (the training split has {n} examples and at least one must be left to train on)",
                n - 1
            ),
        };
        return Err(crate::config::invalid(
            "n_valid",
            n_valid.to_string(),
            allowed,
        ));
    }
    let mut idx = shuffled_indices(n, seed);
    let train = idx.split_off(n_valid);
    Ok(TrainValid { train, valid: idx })
}

/// The semi-supervised split of some training indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledSplit {
    /// `labels_per_class` indices of each class, class 0 first.
    pub labeled: Vec<usize>,
    /// All other indices (their labels are to be ignored).
    pub unlabeled: Vec<usize>,
}

/// Keeps the first `labels_per_class` examples of each class, in the order
/// of `indices` shuffled by `seed`, as labelled; the rest are unlabelled.
/// Fails if some class has fewer than `labels_per_class` examples.
pub fn labeled_subset(
    labels: &[i64],
    indices: &[usize],
    num_classes: usize,
    labels_per_class: usize,
    seed: u64,
) -> Result<LabeledSplit> {
    let mut order = indices.to_vec();
    order.shuffle(&mut Pcg64::seed_from_u64(seed));
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); num_classes];
    for &i in &order {
        let label = labels.get(i).copied().ok_or_else(|| {
            DataError::InvalidArgument(format!(
                "index {i} out of range for {} labels",
                labels.len()
            ))
        })?;
        let bucket = usize::try_from(label)
            .ok()
            .and_then(|l| per_class.get_mut(l))
            .ok_or_else(|| {
                DataError::InvalidArgument(format!("label {label} outside 0..{num_classes}"))
            })?;
        bucket.push(i);
    }
    let mut labeled = Vec::with_capacity(labels_per_class * num_classes);
    let mut unlabeled = Vec::with_capacity(order.len());
    for (class, members) in per_class.into_iter().enumerate() {
        if members.len() < labels_per_class {
            return Err(DataError::InvalidArgument(format!(
                "class {class} has {} examples, fewer than labels_per_class = {labels_per_class}",
                members.len()
            )));
        }
        let (head, tail) = members.split_at(labels_per_class);
        labeled.extend_from_slice(head);
        unlabeled.extend_from_slice(tail);
    }
    Ok(LabeledSplit { labeled, unlabeled })
}

/// An iterator over `(images, labels)` batches of a data set.
///
/// Built by [`batches`]. Indices are checked when it is built, so the
/// batches only fail if libtorch itself fails.
#[derive(Debug)]
pub struct Batches<'a> {
    dataset: &'a Dataset,
    order: Vec<i64>,
    batch_size: usize,
    drop_last: bool,
    next: usize,
}

/// Batches of `batch_size` of the examples at `indices`. With `shuffle`,
/// the indices are shuffled by that generator first (pass the same
/// generator every epoch to get a new but reproducible order each time).
/// With `drop_last`, a final partial batch is skipped.
pub fn batches<'a>(
    dataset: &'a Dataset,
    indices: &[usize],
    batch_size: usize,
    drop_last: bool,
    shuffle: Option<&mut Pcg64>,
) -> Result<Batches<'a>> {
    if batch_size == 0 {
        return Err(DataError::InvalidArgument(
            "batch size must be positive".into(),
        ));
    }
    let n = dataset.len();
    if let Some(bad) = indices.iter().find(|&&i| i >= n) {
        return Err(DataError::InvalidArgument(format!(
            "index {bad} out of range for a data set of {n} examples"
        )));
    }
    let mut order: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    if let Some(rng) = shuffle {
        order.shuffle(rng);
    }
    Ok(Batches {
        dataset,
        order,
        batch_size,
        drop_last,
        next: 0,
    })
}

impl Batches<'_> {
    fn batch_count(&self) -> usize {
        if self.drop_last {
            self.order.len() / self.batch_size
        } else {
            self.order.len().div_ceil(self.batch_size)
        }
    }

    fn make_batch(&self, idx: &[i64]) -> Result<(Tensor, Tensor)> {
        let idx = Tensor::f_from_slice(idx)?;
        let images = self
            .dataset
            .images
            .f_index_select(0, &idx.f_to_device(self.dataset.images.device())?)?;
        let labels = self
            .dataset
            .labels
            .f_index_select(0, &idx.f_to_device(self.dataset.labels.device())?)?;
        Ok((images, labels))
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<(Tensor, Tensor)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.batch_count() {
            return None;
        }
        let start = self.next * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        self.next += 1;
        let idx = self.order.get(start..end)?;
        Some(self.make_batch(idx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch_count().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use tch::Kind;

    fn toy(n: usize, classes: usize) -> Dataset {
        let values: Vec<f32> = (0..n).map(|v| v as f32).collect();
        let labels: Vec<i64> = (0..n).map(|v| (v % classes) as i64).collect();
        Dataset::new(
            Tensor::from_slice(&values).reshape([n as i64, 1, 1, 1]),
            Tensor::from_slice(&labels),
            classes,
        )
        .unwrap()
    }

    #[test]
    fn train_valid_is_deterministic_disjoint_and_covering() {
        let a = train_valid_split(100, 20, 5).unwrap();
        assert_eq!(a, train_valid_split(100, 20, 5).unwrap());
        assert_ne!(a, train_valid_split(100, 20, 6).unwrap());
        assert_eq!((a.train.len(), a.valid.len()), (80, 20));
        let t: BTreeSet<_> = a.train.iter().collect();
        let v: BTreeSet<_> = a.valid.iter().collect();
        assert!(t.is_disjoint(&v));
        assert_eq!(t.union(&v).count(), 100);
        assert!(
            a.valid != (0..20).collect::<Vec<_>>(),
            "validation set is shuffled"
        );
        assert_eq!(
            train_valid_split(10, 10, 0).unwrap_err().to_string(),
            "invalid config: `data.n_valid` = 10: must be in 0..=9 (the training split has 10 \
             examples and at least one must be left to train on)"
        );
        assert!(train_valid_split(0, 0, 0)
            .unwrap_err()
            .to_string()
            .contains(
            "`data.n_valid` = 0: must leave examples to train on, but the training split is empty"
        ));
        assert!(train_valid_split(10, 0, 0).unwrap().valid.is_empty());
    }

    #[test]
    fn labels_per_class_counts() {
        let labels: Vec<i64> = (0..60).map(|v| v % 3).collect();
        let split = train_valid_split(60, 15, 1).unwrap();
        let s = labeled_subset(&labels, &split.train, 3, 4, 2).unwrap();
        assert_eq!(s, labeled_subset(&labels, &split.train, 3, 4, 2).unwrap());
        assert_eq!(s.labeled.len(), 12);
        for class in 0..3 {
            let count = s.labeled.iter().filter(|&&i| labels[i] == class).count();
            assert_eq!(count, 4, "class {class}");
        }
        assert_eq!(s.labeled.len() + s.unlabeled.len(), 45);
        let all: BTreeSet<_> = s.labeled.iter().chain(&s.unlabeled).copied().collect();
        assert_eq!(all, split.train.iter().copied().collect::<BTreeSet<_>>());
        let e = labeled_subset(&labels, &split.train, 3, 100, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("fewer than labels_per_class = 100"), "{e}");
        assert!(labeled_subset(&[5], &[0], 3, 1, 0).is_err());
    }

    #[test]
    fn batches_cover_once_and_are_seeded() {
        let ds = toy(10, 2);
        let idx: Vec<usize> = (0..10).collect();
        let collect = |seed: u64, drop_last: bool| -> Vec<Vec<f32>> {
            let mut rng = Pcg64::seed_from_u64(seed);
            batches(&ds, &idx, 4, drop_last, Some(&mut rng))
                .unwrap()
                .map(|b| {
                    let (x, y) = b.unwrap();
                    // Labels travel with their images.
                    let xs = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
                    let ys = Vec::<i64>::try_from(&y).unwrap();
                    for (xv, yv) in xs.iter().zip(&ys) {
                        assert_eq!(*xv as i64 % 2, *yv);
                    }
                    xs
                })
                .collect()
        };
        let a = collect(9, false);
        assert_eq!(a, collect(9, false));
        assert_ne!(a, collect(10, false));
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut seen: Vec<f32> = a.concat();
        seen.sort_by(f32::total_cmp);
        assert_eq!(seen, (0..10).map(|v| v as f32).collect::<Vec<_>>());
        assert_eq!(collect(9, true).len(), 2);

        let seq: Vec<_> = batches(&ds, &[3, 1], 1, false, None).unwrap().collect();
        assert_eq!(seq.len(), 2);
        let (x, _) = seq.into_iter().next().unwrap().unwrap();
        assert_eq!(x.double_value(&[0, 0, 0, 0]), 3.0);
        assert!(batches(&ds, &[10], 1, false, None).is_err());
        assert!(batches(&ds, &[0], 0, false, None).is_err());
        assert_eq!(ds.images.kind(), Kind::Float);
    }
}
