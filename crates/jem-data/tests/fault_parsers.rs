//! Fault tests for every jem-data parser: IDX, CIFAR, SVHN/MAT, npy, CSV, CelebA
//! partition lists and image decoding.
//!
//! Each target feeds random bytes and mutations of a valid file of its format (flipped
//! bytes, forged size words, cuts, spliced garbage) to the parser for a fixed number of
//! cases (the seed comes from `PROPTEST_RNG_SEED` in `.cargo/config.toml`), and asserts
//! that it returns instead of panicking and that the peak of live heap bytes during the call
//! stays within a small multiple of the input plus the cap the parser was given. The peak
//! is measured by a counting global allocator, per thread, so tests running in parallel do
//! not see each other's allocations. Targeted cases then pin down hostile inputs that used
//! to demand far more memory than their size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::Path;

use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Peak live bytes per thread.

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grow(n: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(n);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrink(n: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(n)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// plain thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            // The old and new blocks may both be live while realloc copies.
            grow(new_size);
            shrink(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the peak of live bytes above the level at the
/// start (what `f` allocated at most at once, its result included).
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, peak - base)
}

/// Decoder state, error strings and other fixed costs of one call.
const OVERHEAD: usize = 512 << 10;

/// Asserts a measured peak is within `multiple * input + cap + OVERHEAD`.
fn check_bound(
    what: &str,
    peak: usize,
    input: usize,
    multiple: usize,
    cap: u64,
) -> Result<(), TestCaseError> {
    let bound = multiple * input + cap as usize + OVERHEAD;
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

const IDX_PIXEL_CAP: u64 = 64 << 10;
const IDX_LABEL_CAP: usize = 4096;
const MAT_CAP: u64 = 64 << 10;
const CSV_ROWS: usize = 16;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_parsers_are_bounded(bytes in input(valid::idx())) {
        let p = Path::new("f.idx");
        let (r, peak) = peak_of(|| jem_data::idx::decode_idx_images(&bytes, p, IDX_PIXEL_CAP));
        check_bound("IDX images", peak, bytes.len(), 2, 2 * IDX_PIXEL_CAP)?;
        if let Ok(images) = r {
            prop_assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
        }
        let (r, peak) = peak_of(|| jem_data::idx::decode_idx_labels(&bytes, p, 10, IDX_LABEL_CAP));
        check_bound("IDX labels", peak, bytes.len(), 2, 16 * IDX_LABEL_CAP as u64)?;
        if let Ok(labels) = r {
            prop_assert!(labels.len() <= IDX_LABEL_CAP && labels.iter().all(|l| (0..10).contains(l)));
        }
    }

    #[test]
    fn cifar_parsers_are_bounded(bytes in input(valid::cifar())) {
        let p = Path::new("data_batch_1.bin");
        let (r, peak) = peak_of(|| jem_data::cifar::parse_cifar10_batch(&bytes, p));
        check_bound("CIFAR-10", peak, bytes.len(), 9, 0)?;
        if let Ok(raw) = r {
            prop_assert_eq!(raw.pixels.len(), raw.len() * 3072);
            prop_assert!(raw.labels.iter().all(|l| (0..10).contains(l)));
        }
        let (r, peak) = peak_of(|| {
            jem_data::cifar::parse_cifar100(&bytes, p, jem_data::cifar::Cifar100Labels::Fine)
        });
        check_bound("CIFAR-100", peak, bytes.len(), 9, 0)?;
        if let Ok(raw) = r {
            prop_assert!(raw.labels.iter().all(|l| (0..100).contains(l)));
        }
        let (r, peak) = peak_of(|| jem_data::cifar::parse_cifar10_batch_expecting(&bytes, p, 2));
        check_bound("CIFAR-10 expecting 2", peak, bytes.len(), 9, 0)?;
        if let Ok(raw) = r {
            prop_assert_eq!(raw.len(), 2);
        }
    }

    #[test]
    fn mat_and_svhn_parsers_are_bounded(bytes in input(valid::mat())) {
        let p = Path::new("train_32x32.mat");
        let keep = ["X", "y"];
        let limits = jem_data::mat::MatLimits { keep: Some(&keep), max_data_bytes: MAT_CAP };
        let (r, peak) = peak_of(|| jem_data::mat::parse_mat_with(&bytes, p, &limits));
        check_bound("MAT", peak, bytes.len(), 4, 3 * MAT_CAP)?;
        if let Ok(arrays) = r {
            for a in arrays {
                prop_assert!(keep.contains(&a.name.as_str()));
                prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
            }
        }
        let (r, peak) = peak_of(|| jem_data::svhn::parse_svhn_limited(&bytes, p, 16));
        let cap = jem_data::svhn::svhn_mat_limits(16).max_data_bytes;
        check_bound("SVHN", peak, bytes.len(), 4, 4 * cap)?;
        if let Ok(raw) = r {
            prop_assert!(raw.len() <= 16);
            prop_assert_eq!(raw.pixels.len(), raw.len() * raw.image_len());
            prop_assert!(raw.labels.iter().all(|l| (0..10).contains(l)));
        }
    }

    #[test]
    fn npy_parser_is_bounded(bytes in input(valid::npy())) {
        let (r, peak) = peak_of(|| jem_data::npy::parse_npy(&bytes, Path::new("a.npy")));
        // The header parser (py_literal, a PEG parser) keeps a token queue of a few dozen
        // bytes per header byte; the data is copied at most twice.
        check_bound("npy", peak, bytes.len(), 64, 0)?;
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
        check_bound("CSV", peak, bytes.len(), 8, 3 * cap)?;
        if let Ok(raw) = r {
            prop_assert!(raw.len() <= CSV_ROWS);
            prop_assert_eq!(raw.pixels.len(), raw.len() * 4);
        }
    }

    #[test]
    fn celeba_partition_parser_is_bounded(bytes in input(valid::partition())) {
        let (r, peak) = peak_of(|| jem_data::celeba::parse_partition(&bytes, Path::new("l.txt")));
        check_bound("CelebA list", peak, bytes.len(), 16, 0)?;
        if let Ok(entries) = r {
            for (name, _) in entries {
                prop_assert!(!name.contains('/') && !name.contains('\\'));
            }
        }
    }

    #[test]
    fn image_decoder_is_bounded(bytes in input(valid::images())) {
        let (r, peak) = peak_of(|| jem_data::decode::decode_image(&bytes, Path::new("i.png")));
        let cap = jem_data::decode::image_alloc_limit(bytes.len());
        check_bound("image", peak, bytes.len(), 4, 2 * cap)?;
        if let Ok(img) = r {
            prop_assert!(img.width() > 0 && img.height() > 0);
            prop_assert!(u64::from(img.width()) * u64::from(img.height()) * 4 <= cap);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hostile inputs that used to cost far more than their size.

fn assert_small(what: &str, peak: usize, limit: usize) {
    assert!(
        peak <= limit,
        "{what}: peak {peak} live bytes, expected at most {limit}"
    );
}

#[test]
fn idx_label_bomb_is_refused_without_inflating_it() {
    // 3 labels, then 32 MiB of zeros compressed to ~32 KB: read past the header's 3 labels,
    // it is refused at the first extra byte. Before, the whole 32 MiB was inflated under the
    // shared 4 GiB cap first.
    let mut bomb = jem_data::idx::encode_idx_labels(&[1, 2, 3]);
    bomb.resize(bomb.len() + (32 << 20), 0);
    let bomb = gz(&bomb);
    let (r, peak) = peak_of(|| jem_data::idx::parse_idx_labels(&bomb, Path::new("l.gz"), 10));
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("unexpected trailing bytes"));
    assert_small("IDX label bomb", peak, OVERHEAD);
}

#[test]
fn idx_image_header_declaring_more_than_the_data_costs_nothing() {
    // MNIST's full 47 MB declared, 1 KB present.
    let file = gz(&jem_data::idx::encode_idx_images(
        60_000, 28, 28, &[7; 1024],
    ));
    let (r, peak) = peak_of(|| jem_data::idx::parse_idx_images(&file, Path::new("i.gz")));
    assert!(r.unwrap_err().to_string().contains("truncated"));
    assert_small("IDX images", peak, OVERHEAD);
}

#[test]
fn mat_skips_unwanted_variables_without_inflating_them() {
    use jem_data::mat::write::{mat_file, MatVar, CLASS_UINT8, TYPE_UINT8};
    use jem_data::mat::Endian;
    // Four 16 MiB variables nobody asked for, each ~16 KB of zlib, then X and y. Before,
    // every numeric variable was inflated and kept: 64 MiB and more for a 70 KB file.
    let junk = vec![0u8; 16 << 20];
    let x = vec![1u8; 3072];
    let mut vars: Vec<MatVar<'_>> = (0..4)
        .map(|_| MatVar {
            name: "junk",
            class_code: CLASS_UINT8,
            dims: &[16 << 20, 1],
            data_type: TYPE_UINT8,
            data: &junk,
        })
        .collect();
    vars.push(MatVar {
        name: "X",
        class_code: CLASS_UINT8,
        dims: &[32, 32, 3, 1],
        data_type: TYPE_UINT8,
        data: &x,
    });
    vars.push(MatVar {
        name: "y",
        class_code: CLASS_UINT8,
        dims: &[1, 1],
        data_type: TYPE_UINT8,
        data: &[10],
    });
    let file = mat_file(&vars, Endian::Little, true);
    drop(junk);
    assert!(file.len() < 1 << 20, "{}", file.len());
    let p = Path::new("/d/test_32x32.mat");
    let (r, peak) = peak_of(|| jem_data::svhn::parse_svhn(&file, p));
    assert_eq!(r.unwrap().labels, vec![0]);
    assert_small("MAT with unwanted variables", peak, OVERHEAD);
}

#[test]
fn mat_variable_declaring_more_than_the_budget_is_refused_before_reading() {
    use jem_data::mat::write::{mat_file, MatVar, CLASS_UINT8, TYPE_UINT8};
    use jem_data::mat::Endian;
    // X declares 30000 SVHN images (92 MB) in a 3 KB file: the header is refused against
    // test_32x32.mat's budget of 26032 images before anything is allocated for the data.
    let x = vec![3u8; 3072];
    let mut file = mat_file(
        &[MatVar {
            name: "X",
            class_code: CLASS_UINT8,
            dims: &[32, 32, 3, 1],
            data_type: TYPE_UINT8,
            data: &x,
        }],
        Endian::Little,
        false,
    );
    // Rewrite the dimension 1 -> 30000 and the real part's byte count to match.
    let dims_at = 128 + 8 + 16 + 8 + 12;
    file[dims_at..dims_at + 4].copy_from_slice(&30_000u32.to_le_bytes());
    let data_len_at = 128 + 8 + 16 + 24 + 8 + 4;
    file[data_len_at..data_len_at + 4].copy_from_slice(&(30_000u32 * 3072).to_le_bytes());
    let (r, peak) = peak_of(|| jem_data::svhn::parse_svhn(&file, Path::new("test_32x32.mat")));
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("92160000 data bytes exceed what this file may hold"),
        "{e}"
    );
    assert_small("MAT forged X", peak, OVERHEAD);
}

#[test]
fn npy_header_declaring_more_than_the_data_costs_nothing() {
    // ndarray-npy alone allocates the declared 400 MB before reading (and aborts the
    // process on a 4 TB declaration); the header check refuses both first.
    for shape in ["(100000000,)", "(1000000000, 1000)"] {
        let h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut f = b"\x93NUMPY\x01\x00".to_vec();
        f.extend_from_slice(&(h.len() as u16).to_le_bytes());
        f.extend_from_slice(h.as_bytes());
        f.extend_from_slice(&[0; 8]);
        let (r, peak) = peak_of(|| jem_data::npy::parse_npy(&f, Path::new("a.npy")));
        assert!(r.unwrap_err().to_string().contains("data bytes, found 8"));
        assert_small("npy forged shape", peak, OVERHEAD);
    }
}

#[test]
fn csv_bomb_is_cut_off_at_the_row_cap() {
    // 64 MiB of spaces in 64 KB of gzip, where 5000 rows of 785 values are expected.
    let text = format!("0,1,2,3,4\n{}", " ".repeat(64 << 20));
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(text.as_bytes()).unwrap();
    let bomb = enc.finish().unwrap();
    drop(text);
    assert!(bomb.len() < 100 << 10, "{}", bomb.len());
    let (r, peak) = peak_of(|| {
        jem_data::csv::parse_pixel_label_csv(
            bomb.clone(),
            Path::new("m.csv.gz"),
            [1, 2, 2],
            10,
            5000,
        )
    });
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("decompresses to more than"));
    let cap = jem_data::csv::csv_text_cap(5000, 5) as usize;
    assert_small("CSV bomb", peak, 2 * cap + 2 * bomb.len() + OVERHEAD);
}

/// A valid PNG/JPEG of 5x3 pixels with the declared size forged to `w x h`.
fn forged_image(png: bool, w: u16, h: u16) -> Vec<u8> {
    let files = valid::images();
    let mut f = files[usize::from(!png)].clone();
    if png {
        // IHDR data starts at 16: width, height (u32 big-endian); its CRC follows the 13
        // data bytes and covers the type and data.
        f[16..20].copy_from_slice(&u32::from(w).to_be_bytes());
        f[20..24].copy_from_slice(&u32::from(h).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&f[12..29]);
        f[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    } else {
        // Baseline SOF0 marker FF C0: length (2), precision (1), height (2), width (2).
        let at = f.windows(2).position(|m| m == [0xff, 0xc0]).unwrap();
        f[at + 5..at + 7].copy_from_slice(&h.to_be_bytes());
        f[at + 7..at + 9].copy_from_slice(&w.to_be_bytes());
    }
    f
}

#[test]
fn forged_image_sizes_are_refused_before_their_buffer_is_allocated() {
    // 8000x8000 RGB is 192 MB, under the former fixed 256 MiB limit: a ~100-byte file made
    // the decoder allocate it. Now the limit follows the file's size.
    for png in [true, false] {
        let f = forged_image(png, 8000, 8000);
        assert!(f.len() < 1024);
        let (r, peak) = peak_of(|| jem_data::decode::decode_image(&f, Path::new("x")));
        let e = r.unwrap_err().to_string();
        assert!(e.starts_with("x: cannot decode image"), "{e}");
        assert_small(
            if png { "forged PNG" } else { "forged JPEG" },
            peak,
            2 << 20,
        );
    }
}

#[test]
fn highly_compressible_real_images_still_decode() {
    // The most compressible images there are, a flat colour, stay within the ratio limit.
    let img = image::RgbImage::from_pixel(2000, 1500, image::Rgb([10, 200, 30]));
    for format in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), format)
            .unwrap();
        let decoded = jem_data::decode::decode_image(&out, Path::new("flat")).unwrap();
        assert_eq!(
            (decoded.width(), decoded.height()),
            (2000, 1500),
            "{format:?}, {} bytes",
            out.len()
        );
    }
}
