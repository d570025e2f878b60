//! Fault tests for every jem-data parser: IDX, CIFAR, SVHN/MAT, npy, CSV, CelebA
//! partition lists and image decoding.
//!
//! Each target feeds random bytes and mutations of a valid file of its format (flipped
//! bytes, forged size words, cuts, spliced garbage) to the parser for a fixed number of
//! cases (the seed comes from `PROPTEST_RNG_SEED` in `.cargo/config.toml`), and asserts
//! that it returns instead of panicking and that the peak of live heap bytes during the call
//! stays within a small multiple of the input plus the cap the parser was given. The peak
//! is measured by a counting global allocator, per thread (`tests/common/peak.rs`).
//! `tests/fault_hostile.rs` pins down hostile inputs that used to demand far more memory
//! than their size.

use std::io::Write;
use std::path::Path;

#[path = "common/peak.rs"]
mod peak;
use peak::{peak_of, OVERHEAD};

use proptest::prelude::*;

/// Most bytes a deflate stream can inflate to per compressed byte (its format limit).
const DEFLATE_RATIO: usize = 1032;

/// Asserts a measured peak is within `multiple` bytes per input byte, at most `multiple`
/// times `cap`, plus [`OVERHEAD`]. Parsers size buffers by the data they actually read, so
/// the peak follows the input (raw formats: a few copies of it; compressed ones: what it can
/// inflate to), never the sizes a header declares.
fn check_bound(
    what: &str,
    peak: usize,
    input: usize,
    multiple: usize,
    cap: u64,
) -> Result<(), TestCaseError> {
    let bound = (multiple * input).min(multiple.saturating_mul(cap as usize)) + OVERHEAD;
    prop_assert!(
        peak <= bound,
        "{what}: peak {peak} live bytes for a {input}-byte input (bound {bound})"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Inputs: random bytes, or a valid file with forged words, flipped bytes, a cut and splice.

/// Size words that make parsers believe in huge data.
const FORGED: [u32; 6] = [u32::MAX, 0x7fff_ffff, 0x0100_0000, 0x0001_0000, 60_000, 0];

#[derive(Debug, Clone)]
struct Mutation {
    words: Vec<(usize, usize, bool)>,
    flips: Vec<(usize, u8)>,
    cut: usize,
    splice: Vec<u8>,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        proptest::collection::vec((0usize..4096, 0..FORGED.len(), any::<bool>()), 0..3),
        proptest::collection::vec((0usize..4096, any::<u8>()), 0..6),
        0usize..64,
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(words, flips, cut, splice)| Mutation {
            words,
            flips,
            cut,
            splice,
        })
}

fn apply(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    if bytes.is_empty() {
        return m.splice.clone();
    }
    let n = bytes.len();
    for &(at, which, big_endian) in &m.words {
        let w = FORGED[which];
        let word = if big_endian {
            w.to_be_bytes()
        } else {
            w.to_le_bytes()
        };
        let at = at % n;
        for (i, b) in word.iter().enumerate() {
            if let Some(x) = bytes.get_mut(at + i) {
                *x = *b;
            }
        }
    }
    for &(at, b) in &m.flips {
        bytes[at % n] = b;
    }
    bytes.truncate(n - m.cut.min(n));
    if !m.splice.is_empty() {
        let at = m.cut % (bytes.len() + 1);
        bytes.splice(at..at, m.splice.iter().copied());
    }
    bytes
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A valid file picked by `which` among `files`, mutated, or random bytes.
fn input(files: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = files.len();
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..512),
        4 => (0..n, mutation()).prop_map(move |(i, m)| apply(files[i].clone(), &m)),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 384,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Valid files of each format.

mod valid {
    use super::gz;
    use jem_data::idx::{encode_idx_images, encode_idx_labels};
    use jem_data::mat::write::{
        mat_file, MatVar, CLASS_DOUBLE, CLASS_UINT8, TYPE_DOUBLE, TYPE_UINT8,
    };
    use jem_data::mat::Endian;

    pub fn idx() -> Vec<Vec<u8>> {
        let images = encode_idx_images(3, 4, 5, &(0..60).collect::<Vec<u8>>());
        let labels = encode_idx_labels(&[1, 2, 9]);
        vec![gz(&images), gz(&labels), images, labels]
    }

    pub fn cifar() -> Vec<Vec<u8>> {
        let record = |labels: &[u8]| {
            let mut r = labels.to_vec();
            r.extend((0..3072).map(|i| (i % 251) as u8));
            r
        };
        vec![
            [record(&[3]), record(&[9])].concat(),
            [record(&[19, 99]), record(&[0, 5])].concat(),
        ]
    }

    pub fn mat() -> Vec<Vec<u8>> {
        let x: Vec<u8> = (0..120).collect();
        let y: Vec<u8> = [10.0f64, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let y_be: Vec<u8> = [10.0f64, 3.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let junk = vec![5u8; 300];
        let file = |endian: Endian, compress: bool, y: &[u8]| {
            mat_file(
                &[
                    MatVar {
                        name: "junk",
                        class_code: CLASS_UINT8,
                        dims: &[300, 1],
                        data_type: TYPE_UINT8,
                        data: &junk,
                    },
                    MatVar {
                        name: "X",
                        class_code: CLASS_UINT8,
                        dims: &[4, 5, 3, 2],
                        data_type: TYPE_UINT8,
                        data: &x,
                    },
                    MatVar {
                        name: "y",
                        class_code: CLASS_DOUBLE,
                        dims: &[2, 1],
                        data_type: TYPE_DOUBLE,
                        data: y,
                    },
                ],
                endian,
                compress,
            )
        };
        vec![
            file(Endian::Little, true, &y),
            file(Endian::Little, false, &y),
            file(Endian::Big, true, &y_be),
        ]
    }

    pub fn npy() -> Vec<Vec<u8>> {
        let fortran = {
            let h = "{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3), }\n";
            let mut f = b"\x93NUMPY\x01\x00".to_vec();
            f.extend_from_slice(&(h.len() as u16).to_le_bytes());
            f.extend_from_slice(h.as_bytes());
            f.extend((0..6i32).flat_map(|v| v.to_be_bytes()));
            f
        };
        vec![
            jem_data::npy::encode_npy(&[2, 3], &[1.5f32, 2.0, -3.0, 4.0, 5.0, 6.0]).unwrap(),
            jem_data::npy::encode_npy(&[4], &[1i64, -2, 3, 4]).unwrap(),
            jem_data::npy::encode_npy(&[], &[7u8]).unwrap(),
            fortran,
        ]
    }

    pub fn csv() -> Vec<Vec<u8>> {
        let text = b"0,255,7,9,3\n1,2,3,4,0\n\n9,9,9,9,9\n".to_vec();
        vec![gz(&text), text]
    }

    pub fn partition() -> Vec<Vec<u8>> {
        vec![b"000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n".to_vec()]
    }

    pub fn images() -> Vec<Vec<u8>> {
        let img =
            image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 80, 7]));
        [image::ImageFormat::Png, image::ImageFormat::Jpeg]
            .into_iter()
            .map(|format| {
                let mut out = Vec::new();
                img.write_to(&mut std::io::Cursor::new(&mut out), format)
                    .unwrap();
                out
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The targets.

// The caps the loaders use for the real data sets (MNIST's training images and labels,
// SVHN's training file, the MNIST-5k CSV): large against the inputs, so a parser that
// allocated what a header declares would exceed the bounds below.
const IDX_PIXEL_CAP: u64 = 60_000 * 784;
const IDX_LABEL_CAP: usize = 60_000;
const SVHN_IMAGES: usize = jem_data::svhn::SVHN_TRAIN_IMAGES;
const CSV_ROWS: usize = jem_data::csv::MNIST_5K_ROWS;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_parsers_are_bounded(bytes in input(valid::idx())) {
        let p = Path::new("f.idx");
        let (r, peak) = peak_of(|| jem_data::idx::decode_idx_images(&bytes, p, IDX_PIXEL_CAP));
        check_bound("IDX images", peak, bytes.len(), 2 * DEFLATE_RATIO, IDX_PIXEL_CAP)?;
        if let Ok(images) = r {
            prop_assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
        }
        let (r, peak) = peak_of(|| jem_data::idx::decode_idx_labels(&bytes, p, 10, IDX_LABEL_CAP));
        check_bound("IDX labels", peak, bytes.len(), 2 * DEFLATE_RATIO, IDX_LABEL_CAP as u64)?;
        if let Ok(labels) = r {
            prop_assert!(labels.len() <= IDX_LABEL_CAP && labels.iter().all(|l| (0..10).contains(l)));
        }
    }

    #[test]
    fn cifar_parsers_are_bounded(bytes in input(valid::cifar())) {
        let p = Path::new("data_batch_1.bin");
        let (r, peak) = peak_of(|| jem_data::cifar::parse_cifar10_batch(&bytes, p));
        check_bound("CIFAR-10", peak, bytes.len(), 4, u64::MAX)?;
        if let Ok(raw) = r {
            prop_assert_eq!(raw.pixels.len(), raw.len() * 3072);
            prop_assert!(raw.labels.iter().all(|l| (0..10).contains(l)));
        }
        let (r, peak) = peak_of(|| {
            jem_data::cifar::parse_cifar100(&bytes, p, jem_data::cifar::Cifar100Labels::Fine)
        });
        check_bound("CIFAR-100", peak, bytes.len(), 4, u64::MAX)?;
        if let Ok(raw) = r {
            prop_assert!(raw.labels.iter().all(|l| (0..100).contains(l)));
        }
        let (r, peak) = peak_of(|| jem_data::cifar::parse_cifar10_batch_expecting(&bytes, p, 2));
        check_bound("CIFAR-10 expecting 2", peak, bytes.len(), 4, u64::MAX)?;
        if let Ok(raw) = r {
            prop_assert_eq!(raw.len(), 2);
        }
    }

    #[test]
    fn mat_and_svhn_parsers_are_bounded(bytes in input(valid::mat())) {
        let p = Path::new("train_32x32.mat");
        let keep = ["X", "y"];
        let limits = jem_data::svhn::svhn_mat_limits(SVHN_IMAGES);
        let (r, peak) = peak_of(|| jem_data::mat::parse_mat_with(&bytes, p, &limits));
        // Inflated data, at most one decoded copy of it.
        check_bound("MAT", peak, bytes.len(), 3 * DEFLATE_RATIO, limits.max_data_bytes)?;
        if let Ok(arrays) = r {
            for a in arrays {
                prop_assert!(keep.contains(&a.name.as_str()));
                prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
            }
        }
        let (r, peak) = peak_of(|| jem_data::svhn::parse_svhn_limited(&bytes, p, SVHN_IMAGES));
        // ... and the NCHW pixels.
        check_bound("SVHN", peak, bytes.len(), 4 * DEFLATE_RATIO, limits.max_data_bytes)?;
        if let Ok(raw) = r {
            prop_assert!(raw.len() <= SVHN_IMAGES);
            prop_assert_eq!(raw.pixels.len(), raw.len() * raw.image_len());
            prop_assert!(raw.labels.iter().all(|l| (0..10).contains(l)));
        }
    }

    #[test]
    fn npy_parser_is_bounded(bytes in input(valid::npy())) {
        let (r, peak) = peak_of(|| jem_data::npy::parse_npy(&bytes, Path::new("a.npy")));
        // The header parser (py_literal, a PEG parser) keeps a token queue of a few dozen
        // bytes per header byte; the data is copied at most twice.
        check_bound("npy", peak, bytes.len(), 64, u64::MAX)?;
        if let Ok(a) = r {
            prop_assert_eq!(a.data.len(), a.shape.iter().product::<usize>());
        }
    }

    #[test]
    fn csv_parser_is_bounded(bytes in input(valid::csv())) {
        let cap = jem_data::csv::csv_text_cap(CSV_ROWS, 5);
        let (r, peak) = peak_of(|| {
            jem_data::csv::parse_pixel_label_csv(bytes.clone(), Path::new("m.csv"), [1, 2, 2], 10, CSV_ROWS)
        });
        // The input's copy, the inflated text (grown by doubling), pixels and labels.
        check_bound("CSV", peak, bytes.len(), 4 * DEFLATE_RATIO, cap)?;
        if let Ok(raw) = r {
            prop_assert!(raw.len() <= CSV_ROWS);
            prop_assert_eq!(raw.pixels.len(), raw.len() * 4);
        }
    }

    #[test]
    fn celeba_partition_parser_is_bounded(bytes in input(valid::partition())) {
        let (r, peak) = peak_of(|| jem_data::celeba::parse_partition(&bytes, Path::new("l.txt")));
        check_bound("CelebA list", peak, bytes.len(), 16, u64::MAX)?;
        if let Ok(entries) = r {
            for (name, _) in entries {
                prop_assert!(!name.contains('/') && !name.contains('\\'));
            }
        }
    }

    #[test]
    fn image_decoder_is_bounded(bytes in input(valid::images())) {
        let (r, peak) = peak_of(|| jem_data::decode::decode_image(&bytes, Path::new("i.png")));
        // The decoder's buffer may take what image_alloc_limit allows for this size.
        let cap = jem_data::decode::image_alloc_limit(bytes.len()) as usize;
        prop_assert!(peak <= 2 * cap + OVERHEAD, "image: peak {peak} for {} bytes", bytes.len());
        if let Ok(img) = r {
            prop_assert!(img.width() > 0 && img.height() > 0);
            prop_assert!(u64::from(img.width()) * u64::from(img.height()) * 4 <= cap as u64);
        }
    }
}
