//! Reads the real Fashion-MNIST files. CI installs them (Debian puts them
//! in /usr/share/datasets/fashion-mnist); when they are missing this test
//! fails with the resolver's message saying where to put them.
//!
//! The pinned values were computed independently with Python's gzip module.

use jem_data::{load_from, resolve_dataset_dir, DatasetKind, LoadOptions, Split};
use tch::Kind;

fn class_counts(labels: &[i64]) -> Vec<usize> {
    let mut counts = vec![0; 10];
    for &l in labels {
        counts[l as usize] += 1;
    }
    counts
}

#[test]
fn real_fashion_mnist() {
    let dir = match resolve_dataset_dir(DatasetKind::FashionMnist, None) {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    };
    let options = LoadOptions::default();

    let train = load_from(DatasetKind::FashionMnist, Split::Train, &dir, &options).unwrap();
    assert_eq!(train.images.size(), vec![60_000, 1, 28, 28]);
    assert_eq!(train.images.kind(), Kind::Float);
    let labels = train.labels_vec().unwrap();
    assert_eq!(labels[..10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert_eq!(class_counts(&labels), vec![6000; 10]);
    // Byte sums of image 0 and the last image; pixel (row 10, col 14) of image 0.
    // Back to exact bytes first, so the sums involve no float rounding.
    let to_bytes = |t: &tch::Tensor| (t * 255.0).round().to_kind(Kind::Int64);
    let byte_sum = |t: &tch::Tensor, i: i64| to_bytes(&t.get(i)).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(byte_sum(&train.images, 0), 76_247);
    assert_eq!(byte_sum(&train.images, 59_999), 16_684);
    assert!((train.images.double_value(&[0, 0, 10, 14]) - 228.0 / 255.0).abs() < 1e-6);
    let total = to_bytes(&train.images).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(total, 3_431_114_169);
    assert_eq!(train.images.min().double_value(&[]), 0.0);
    assert_eq!(train.images.max().double_value(&[]), 1.0);

    let test = load_from(DatasetKind::FashionMnist, Split::Test, &dir, &options).unwrap();
    assert_eq!(test.images.size(), vec![10_000, 1, 28, 28]);
    let labels = test.labels_vec().unwrap();
    assert_eq!(labels[..10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    assert_eq!(class_counts(&labels), vec![1000; 10]);
    assert_eq!(byte_sum(&test.images, 0), 33_456);
    assert_eq!(byte_sum(&test.images, 9_999), 24_390);
}
