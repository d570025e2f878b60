//! Hostile inputs that used to cost far more memory than their size, each with the peak of
//! live heap bytes its parse may take now (`tests/common/peak.rs` measures it, per thread).
//! Run on the code before the fixes, the IDX label bomb peaked at 101 MB, the MAT file of
//! unwanted variables at 101 MB and the forged 116-byte PNG at 192 MB.

use std::io::Write;
use std::path::Path;

#[path = "common/peak.rs"]
mod peak;
use peak::{peak_of, OVERHEAD};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A 5x3 PNG (`png`) or JPEG.
fn small_image(png: bool) -> Vec<u8> {
    let img = image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 80, 7]));
    let format = if png {
        image::ImageFormat::Png
    } else {
        image::ImageFormat::Jpeg
    };
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), format)
        .unwrap();
    out
}

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
    let mut f = small_image(png);
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
