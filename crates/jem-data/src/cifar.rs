//! CIFAR-10 and CIFAR-100 "binary version" batches.
//!
//! CIFAR-10 (`cifar-10-batches-bin/data_batch_{1..5}.bin`, `test_batch.bin`):
//! records of 1 label byte followed by 3072 pixel bytes. CIFAR-100
//! (`cifar-100-binary/train.bin`, `test.bin`): records of a coarse label byte,
//! a fine label byte, then 3072 pixel bytes. In both, the pixels are three
//! 32x32 row-major planes in the order red, green, blue — already CHW, so a
//! record's pixel bytes are copied as they are.

use std::path::Path;
use std::time::Instant;

use crate::bytes::read_file;
use crate::dataset::RawImages;
use crate::error::{DataError, Result};

/// Side of a CIFAR image.
pub const CIFAR_SIDE: usize = 32;
/// Bytes of one CIFAR image (3 planes of 32x32).
pub const CIFAR_PIXELS: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;
/// CIFAR-10 classes.
pub const CIFAR10_CLASSES: usize = 10;
/// CIFAR-100 fine classes.
pub const CIFAR100_FINE_CLASSES: usize = 100;
/// CIFAR-100 coarse classes (super-classes).
pub const CIFAR100_COARSE_CLASSES: usize = 20;

/// CIFAR-10 training batch file names, in the order they are concatenated.
pub const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// CIFAR-10 test batch.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";
/// CIFAR-100 training file.
pub const CIFAR100_TRAIN_FILE: &str = "train.bin";
/// CIFAR-100 test file.
pub const CIFAR100_TEST_FILE: &str = "test.bin";
/// Records in each CIFAR-10 batch file (`data_batch_N.bin`, `test_batch.bin`).
pub const CIFAR10_RECORDS_PER_FILE: usize = 10_000;
/// Records in CIFAR-100's `train.bin` and `test.bin`.
pub const CIFAR100_TRAIN_RECORDS: usize = 50_000;
/// Records in CIFAR-100's `test.bin`.
pub const CIFAR100_TEST_RECORDS: usize = 10_000;

/// Which of CIFAR-100's two labels to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cifar100Labels {
    /// The 20 super-classes (first label byte).
    Coarse,
    /// The 100 classes (second label byte); what the JEM paper reports.
    #[default]
    Fine,
}

impl Cifar100Labels {
    /// Number of classes of this label set.
    pub fn num_classes(self) -> usize {
        match self {
            Cifar100Labels::Coarse => CIFAR100_COARSE_CLASSES,
            Cifar100Labels::Fine => CIFAR100_FINE_CLASSES,
        }
    }
}

/// Parses records of `label_bytes` label bytes plus 3072 pixels, taking the
/// label at `label_index` and checking it against `num_classes`. With
/// `expected`, the file must hold exactly that many records: a file cut on
/// a record boundary is an error, not a smaller data set.
fn parse_records(
    bytes: &[u8],
    path: &Path,
    label_bytes: usize,
    label_index: usize,
    num_classes: usize,
    expected: Option<usize>,
) -> Result<RawImages> {
    let record = label_bytes + CIFAR_PIXELS;
    if bytes.is_empty() || bytes.len() % record != 0 {
        let want = expected
            .map(|n| format!(" (expected {n} records, {} bytes)", n * record))
            .unwrap_or_default();
        return Err(DataError::format(
            path,
            format!(
                "size {} bytes is not a positive multiple of the {record}-byte record{want}",
                bytes.len()
            ),
        ));
    }
    let count = bytes.len() / record;
    if let Some(n) = expected.filter(|&n| n != count) {
        return Err(DataError::format(
            path,
            format!(
                "expected {n} records of {record} bytes, found {count} (the file is {} bytes, not {})",
                bytes.len(),
                n * record
            ),
        ));
    }
    let mut pixels = Vec::with_capacity(count * CIFAR_PIXELS);
    let mut labels = Vec::with_capacity(count);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let (head, image) = rec.split_at(label_bytes);
        let label = head.get(label_index).copied().unwrap_or(u8::MAX);
        if usize::from(label) >= num_classes {
            return Err(DataError::format(
                path,
                format!("record {i}: label {label} is outside 0..{num_classes}"),
            ));
        }
        labels.push(i64::from(label));
        pixels.extend_from_slice(image);
    }
    Ok(RawImages {
        pixels,
        labels,
        channels: 3,
        height: CIFAR_SIDE,
        width: CIFAR_SIDE,
    })
}

/// Parses the bytes of one CIFAR-10 binary batch of any number of records.
pub fn parse_cifar10_batch(bytes: &[u8], path: &Path) -> Result<RawImages> {
    parse_records(bytes, path, 1, 0, CIFAR10_CLASSES, None)
}

/// Parses one CIFAR-10 batch that must hold exactly `expected` records.
pub fn parse_cifar10_batch_expecting(
    bytes: &[u8],
    path: &Path,
    expected: usize,
) -> Result<RawImages> {
    parse_records(bytes, path, 1, 0, CIFAR10_CLASSES, Some(expected))
}

fn cifar100_label_index(labels: Cifar100Labels) -> usize {
    match labels {
        Cifar100Labels::Coarse => 0,
        Cifar100Labels::Fine => 1,
    }
}

/// Parses the bytes of a CIFAR-100 binary file (any number of records)
/// with the chosen labels.
pub fn parse_cifar100(bytes: &[u8], path: &Path, labels: Cifar100Labels) -> Result<RawImages> {
    let index = cifar100_label_index(labels);
    parse_records(bytes, path, 2, index, labels.num_classes(), None)
}

/// Parses a CIFAR-100 file that must hold exactly `expected` records.
pub fn parse_cifar100_expecting(
    bytes: &[u8],
    path: &Path,
    labels: Cifar100Labels,
    expected: usize,
) -> Result<RawImages> {
    let index = cifar100_label_index(labels);
    parse_records(bytes, path, 2, index, labels.num_classes(), Some(expected))
}

/// Loads CIFAR-10 from `dir` (the `cifar-10-batches-bin` directory): the
/// five training batches concatenated in order, or the test batch. Each
/// file must hold its 10000 records.
pub fn load_cifar10(dir: &Path, train: bool) -> Result<RawImages> {
    load_cifar10_expecting(dir, train, CIFAR10_RECORDS_PER_FILE)
}

/// [`load_cifar10`] with another record count per file (small fixtures).
pub fn load_cifar10_expecting(dir: &Path, train: bool, per_file: usize) -> Result<RawImages> {
    let start = Instant::now();
    let names: Vec<&str> = if train {
        CIFAR10_TRAIN_FILES.to_vec()
    } else {
        vec![CIFAR10_TEST_FILE]
    };
    let mut parts = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(name);
        parts.push(parse_cifar10_batch_expecting(
            &read_file(&path)?,
            &path,
            per_file,
        )?);
    }
    let raw = RawImages::concat(parts)?;
    tracing::info!(
        dir = %dir.display(),
        train,
        count = raw.len(),
        elapsed_ms = start.elapsed().as_millis() as u64,
        "loaded CIFAR-10"
    );
    Ok(raw)
}

/// Loads CIFAR-100 from `dir` (the `cifar-100-binary` directory); the file
/// must hold its 50000 (train) or 10000 (test) records.
pub fn load_cifar100(dir: &Path, train: bool, labels: Cifar100Labels) -> Result<RawImages> {
    let expected = if train {
        CIFAR100_TRAIN_RECORDS
    } else {
        CIFAR100_TEST_RECORDS
    };
    load_cifar100_expecting(dir, train, labels, expected)
}

/// [`load_cifar100`] with another expected record count (small fixtures).
pub fn load_cifar100_expecting(
    dir: &Path,
    train: bool,
    labels: Cifar100Labels,
    expected: usize,
) -> Result<RawImages> {
    let start = Instant::now();
    let path = dir.join(if train {
        CIFAR100_TRAIN_FILE
    } else {
        CIFAR100_TEST_FILE
    });
    let raw = parse_cifar100_expecting(&read_file(&path)?, &path, labels, expected)?;
    tracing::info!(
        path = %path.display(),
        count = raw.len(),
        elapsed_ms = start.elapsed().as_millis() as u64,
        "loaded CIFAR-100"
    );
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record whose R plane is all `r`, G plane `g`, B plane `b`, except the
    /// pixel at row 2, column 5 of the green plane, which is 200.
    fn record(labels: &[u8], r: u8, g: u8, b: u8) -> Vec<u8> {
        let mut rec = labels.to_vec();
        let plane = CIFAR_SIDE * CIFAR_SIDE;
        rec.extend(std::iter::repeat_n(r, plane));
        let mut green = vec![g; plane];
        green[2 * CIFAR_SIDE + 5] = 200;
        rec.extend(green);
        rec.extend(std::iter::repeat_n(b, plane));
        rec
    }

    #[test]
    fn cifar10_planes_are_rgb_and_labels_exact() {
        let dir = tempfile::tempdir().unwrap();
        let mut train_bytes = Vec::new();
        for (i, name) in CIFAR10_TRAIN_FILES.iter().enumerate() {
            let bytes = record(&[i as u8], 10 + i as u8, 20, 30);
            train_bytes.push(bytes.clone());
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let test = [record(&[9], 1, 2, 3), record(&[0], 4, 5, 6)].concat();
        std::fs::write(dir.path().join(CIFAR10_TEST_FILE), test).unwrap();

        let train = load_cifar10_expecting(dir.path(), true, 1).unwrap();
        assert_eq!(train.labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(train.pixel(3, 0, 31, 31), Some(13));
        assert_eq!(train.pixel(3, 1, 2, 5), Some(200));
        assert_eq!(train.pixel(3, 1, 2, 6), Some(20));
        assert_eq!(train.pixel(3, 2, 0, 0), Some(30));

        let test = load_cifar10_expecting(dir.path(), false, 2).unwrap();
        assert_eq!(test.labels, vec![9, 0]);
        let ds = test.into_dataset(10).unwrap();
        assert_eq!(ds.images.size(), vec![2, 3, 32, 32]);
        assert!((ds.images.double_value(&[1, 2, 7, 7]) - 6.0 / 255.0).abs() < 1e-6);
        assert!((ds.images.double_value(&[0, 1, 2, 5]) - 200.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn cifar100_coarse_or_fine() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = [record(&[19, 99], 1, 2, 3), record(&[3, 42], 4, 5, 6)].concat();
        std::fs::write(dir.path().join(CIFAR100_TRAIN_FILE), &bytes).unwrap();
        let fine = load_cifar100_expecting(dir.path(), true, Cifar100Labels::Fine, 2).unwrap();
        assert_eq!(fine.labels, vec![99, 42]);
        let coarse = load_cifar100_expecting(dir.path(), true, Cifar100Labels::Coarse, 2).unwrap();
        assert_eq!(coarse.labels, vec![19, 3]);
        assert_eq!(coarse.pixel(1, 0, 0, 0), Some(4));
        assert_eq!(coarse.pixel(1, 2, 31, 0), Some(6));
        let bad = record(&[20, 0], 0, 0, 0);
        let e = parse_cifar100(&bad, Path::new("c"), Cifar100Labels::Coarse)
            .unwrap_err()
            .to_string();
        assert!(e.contains("record 0: label 20 is outside 0..20"), "{e}");
    }

    #[test]
    fn wrong_sizes_and_missing_files_are_errors() {
        let e = parse_cifar10_batch(&[0; 3072], Path::new("/d/data_batch_1.bin"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/d/data_batch_1.bin: size 3072 bytes"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = load_cifar10(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains("test_batch.bin"), "{e}");
    }

    #[test]
    fn files_cut_on_a_record_boundary_are_errors() {
        // Two whole records where the official file has 10000: before, this
        // loaded as a 2-image test set.
        let dir = tempfile::tempdir().unwrap();
        let two = [record(&[1], 0, 0, 0), record(&[2], 0, 0, 0)].concat();
        std::fs::write(dir.path().join(CIFAR10_TEST_FILE), &two).unwrap();
        let e = load_cifar10(dir.path(), false).unwrap_err().to_string();
        let p = dir.path().join(CIFAR10_TEST_FILE);
        assert_eq!(
            e,
            format!(
                "{}: expected 10000 records of 3073 bytes, found 2 (the file is 6146 bytes, not 30730000)",
                p.display()
            )
        );
        let e = parse_cifar10_batch_expecting(&two[..4000], &p, 10000)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("size 4000 bytes is not a positive multiple of the 3073-byte record (expected 10000 records, 30730000 bytes)"),
            "{e}"
        );
        let c100 = [record(&[1, 2], 0, 0, 0)].concat();
        std::fs::write(dir.path().join(CIFAR100_TRAIN_FILE), &c100).unwrap();
        std::fs::write(dir.path().join(CIFAR100_TEST_FILE), &c100).unwrap();
        for (train, n) in [(true, 50000), (false, 10000)] {
            let e = load_cifar100(dir.path(), train, Cifar100Labels::Fine)
                .unwrap_err()
                .to_string();
            let name = if train { "train.bin" } else { "test.bin" };
            assert!(
                e.contains(name)
                    && e.contains(&format!("expected {n} records of 3074 bytes, found 1")),
                "{e}"
            );
        }
    }
}
