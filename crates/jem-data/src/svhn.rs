//! SVHN "cropped digits" (`train_32x32.mat`, `test_32x32.mat`,
//! `extra_32x32.mat`).
//!
//! Each file holds `X`, a uint8 array of MATLAB shape `[32, 32, 3, N]`
//! (row, column, channel, image) in column-major order, and `y`, an `[N, 1]`
//! array of labels 1..=10 where 10 stands for the digit 0. The released
//! files store `y` as double; uint8 is accepted too.

use std::path::Path;
use std::time::Instant;

use crate::dataset::RawImages;
use crate::error::{DataError, Result};
use crate::mat::{parse_mat_with, MatArray, MatData, MatLimits};

/// The training file.
pub const SVHN_TRAIN_FILE: &str = "train_32x32.mat";
/// The test file.
pub const SVHN_TEST_FILE: &str = "test_32x32.mat";
/// The extra training file.
pub const SVHN_EXTRA_FILE: &str = "extra_32x32.mat";
/// SVHN classes (digits 0-9).
pub const SVHN_CLASSES: usize = 10;
/// Bytes of one SVHN image (32x32 RGB).
pub const SVHN_IMAGE_BYTES: usize = 32 * 32 * 3;
/// Images in the released files.
pub const SVHN_TRAIN_IMAGES: usize = 73_257;
/// Images in `test_32x32.mat`.
pub const SVHN_TEST_IMAGES: usize = 26_032;
/// Images in `extra_32x32.mat`.
pub const SVHN_EXTRA_IMAGES: usize = 531_131;
/// The variables an SVHN file holds; any other variable is skipped unread.
pub const SVHN_VARIABLES: [&str; 2] = ["X", "y"];

/// Most images a file of this name may hold: the released count for the
/// three official names, the largest of them (`extra`) otherwise.
pub fn svhn_max_images(path: &Path) -> usize {
    match path.file_name().and_then(|n| n.to_str()) {
        Some(SVHN_TRAIN_FILE) => SVHN_TRAIN_IMAGES,
        Some(SVHN_TEST_FILE) => SVHN_TEST_IMAGES,
        _ => SVHN_EXTRA_IMAGES,
    }
}

/// The MAT-file limits for an SVHN file of at most `max_images` images:
/// only `X` and `y` are read, and their data may take at most what `X` as
/// bytes and `y` as doubles need for that many images (the released
/// files' storage types), so a small hostile file cannot inflate to more.
pub fn svhn_mat_limits(max_images: usize) -> MatLimits<'static> {
    MatLimits {
        keep: Some(&SVHN_VARIABLES),
        max_data_bytes: (max_images as u64) * (SVHN_IMAGE_BYTES as u64 + 8),
    }
}

/// Converts the `X` and `y` variables of an SVHN file to NCHW images with
/// labels 0..=9 (label 10 becomes 0).
pub fn svhn_from_arrays(arrays: &[MatArray], path: &Path) -> Result<RawImages> {
    let find = |name: &str| {
        arrays
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| DataError::format(path, format!("no numeric variable `{name}`")))
    };
    let x = find("X")?;
    let y = find("y")?;
    let &[height, width, channels, count] = x.dims.as_slice() else {
        return Err(DataError::format(
            path,
            format!(
                "`X` has dimensions {:?}, expected [rows, cols, channels, N]",
                x.dims
            ),
        ));
    };
    let y_len = y.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if y_len != Some(count) || y.dims.iter().filter(|&&d| d != 1).count() > 1 {
        return Err(DataError::format(
            path,
            format!("`y` has dimensions {:?}, expected [{count}, 1]", y.dims),
        ));
    }

    let mut labels = Vec::with_capacity(count);
    for i in 0..count {
        let v = y.data.get_f64(i).unwrap_or(f64::NAN);
        if !(v.fract() == 0.0 && (1.0..=10.0).contains(&v)) {
            return Err(DataError::format(
                path,
                format!("`y`[{i}] = {v} is not a label in 1..=10 (SVHN stores the digit 0 as 10)"),
            ));
        }
        labels.push(if v == 10.0 { 0 } else { v as i64 });
    }

    // X[r, c, ch, n] sits at r + H*(c + W*(ch + C*n)); NCHW wants
    // ((n*C + ch)*H + r)*W + c. Each (n, ch) plane is a transpose.
    let total = [height, width, channels, count]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| DataError::format(path, format!("`X` dimensions {:?} overflow", x.dims)))?;
    if x.data.len() != total {
        return Err(DataError::format(
            path,
            format!("`X` holds {} values, expected {total}", x.data.len()),
        ));
    }
    let plane = height * width;
    let mut pixels = vec![0u8; total];
    let mut put = |src_index: usize, value: u8| {
        let r = src_index % height;
        let c = (src_index / height) % width;
        let nc = src_index / plane;
        if let Some(dst) = pixels.get_mut(nc * plane + r * width + c) {
            *dst = value;
        }
    };
    match &x.data {
        MatData::U8(v) => {
            for (i, &value) in v.iter().enumerate() {
                put(i, value);
            }
        }
        other => {
            // Stored in another type (e.g. re-saved as double): accept only
            // whole numbers that fit a byte.
            for i in 0..total {
                let v = other.get_f64(i).unwrap_or(f64::NAN);
                if !(v.fract() == 0.0 && (0.0..=255.0).contains(&v)) {
                    return Err(DataError::format(
                        path,
                        format!("`X` value {v} at index {i} is not a byte"),
                    ));
                }
                put(i, v as u8);
            }
        }
    }
    Ok(RawImages {
        pixels,
        labels,
        channels,
        height,
        width,
    })
}

/// Parses the bytes of an SVHN `.mat` file, reading only `X` and `y` and
/// at most the images [`svhn_max_images`] allows for the file's name.
pub fn parse_svhn(bytes: &[u8], path: &Path) -> Result<RawImages> {
    parse_svhn_limited(bytes, path, svhn_max_images(path))
}

/// Parses the bytes of an SVHN `.mat` file holding at most `max_images`
/// images; the MAT reader's budget ([`svhn_mat_limits`]) stops a larger
/// `X` before its data is read or inflated.
pub fn parse_svhn_limited(bytes: &[u8], path: &Path, max_images: usize) -> Result<RawImages> {
    let raw = svhn_from_arrays(
        &parse_mat_with(bytes, path, &svhn_mat_limits(max_images))?,
        path,
    )?;
    if raw.len() > max_images {
        return Err(DataError::format(
            path,
            format!(
                "holds {} images, a file of this name at most {max_images}",
                raw.len()
            ),
        ));
    }
    Ok(raw)
}

/// Loads one SVHN file (`train_32x32.mat`, `test_32x32.mat`, ...).
pub fn load_svhn_file(path: &Path) -> Result<RawImages> {
    let start = Instant::now();
    let raw = parse_svhn(&crate::bytes::read_file(path)?, path)?;
    tracing::info!(
        path = %path.display(),
        count = raw.len(),
        elapsed_ms = start.elapsed().as_millis() as u64,
        "loaded SVHN"
    );
    Ok(raw)
}

/// Loads the SVHN training or test file from `dir`.
pub fn load_svhn(dir: &Path, train: bool) -> Result<RawImages> {
    load_svhn_file(&dir.join(if train {
        SVHN_TRAIN_FILE
    } else {
        SVHN_TEST_FILE
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Endian;
    use crate::mat::write::*;

    /// X[r, c, ch, n] = 100*n + 30*ch + 4*r + c, for 2 images of 3 channels,
    /// 4 rows, 5 columns, written column-major.
    fn x_value(r: usize, c: usize, ch: usize, n: usize) -> u8 {
        (100 * n + 30 * ch + 4 * r + c) as u8
    }

    fn svhn_file(compress: bool, y_double: bool) -> Vec<u8> {
        let (h, w, ch, n) = (4, 5, 3, 2);
        let mut x = Vec::new();
        for ni in 0..n {
            for ci in 0..ch {
                for c in 0..w {
                    for r in 0..h {
                        x.push(x_value(r, c, ci, ni));
                    }
                }
            }
        }
        let y_double_bytes: Vec<u8> = [10.0f64, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let (y_class, y_type, y_bytes): (u32, u32, &[u8]) = if y_double {
            (CLASS_DOUBLE, TYPE_DOUBLE, &y_double_bytes)
        } else {
            (CLASS_UINT8, TYPE_UINT8, &[10, 3])
        };
        mat_file(
            &[
                MatVar {
                    name: "X",
                    class_code: CLASS_UINT8,
                    dims: &[h, w, ch, n],
                    data_type: TYPE_UINT8,
                    data: &x,
                },
                MatVar {
                    name: "y",
                    class_code: y_class,
                    dims: &[n, 1],
                    data_type: y_type,
                    data: y_bytes,
                },
            ],
            Endian::Little,
            compress,
        )
    }

    #[test]
    fn column_major_x_becomes_nchw_and_label_10_becomes_0() {
        let dir = tempfile::tempdir().unwrap();
        for (compress, y_double) in [(false, true), (true, true), (true, false), (false, false)] {
            std::fs::write(
                dir.path().join(SVHN_TEST_FILE),
                svhn_file(compress, y_double),
            )
            .unwrap();
            let raw = load_svhn(dir.path(), false).unwrap();
            assert_eq!(raw.labels, vec![0, 3]);
            assert_eq!((raw.channels, raw.height, raw.width), (3, 4, 5));
            for n in 0..2 {
                for ch in 0..3 {
                    for r in 0..4 {
                        for c in 0..5 {
                            assert_eq!(raw.pixel(n, ch, r, c), Some(x_value(r, c, ch, n)));
                        }
                    }
                }
            }
            let ds = raw.into_dataset(SVHN_CLASSES).unwrap();
            let v = ds.images.double_value(&[1, 2, 3, 1]);
            assert!((v - f64::from(x_value(3, 1, 2, 1)) / 255.0).abs() < 1e-6);
        }
    }

    #[test]
    fn bad_labels_and_missing_variables_are_errors() {
        let p = Path::new("/d/test_32x32.mat");
        let only_x = mat_file(
            &[MatVar {
                name: "X",
                class_code: CLASS_UINT8,
                dims: &[1, 1, 1, 1],
                data_type: TYPE_UINT8,
                data: &[0],
            }],
            Endian::Little,
            false,
        );
        let e = parse_svhn(&only_x, p).unwrap_err().to_string();
        assert_eq!(e, "/d/test_32x32.mat: no numeric variable `y`");
        let bad_y = mat_file(
            &[
                MatVar {
                    name: "X",
                    class_code: CLASS_UINT8,
                    dims: &[1, 1, 1, 1],
                    data_type: TYPE_UINT8,
                    data: &[0],
                },
                MatVar {
                    name: "y",
                    class_code: CLASS_UINT8,
                    dims: &[1, 1],
                    data_type: TYPE_UINT8,
                    data: &[11],
                },
            ],
            Endian::Little,
            false,
        );
        let e = parse_svhn(&bad_y, p).unwrap_err().to_string();
        assert!(e.contains("`y`[0] = 11 is not a label"), "{e}");
    }

    fn x_and_y(x_dims: &[usize], x: &[u8], y: &[u8]) -> Vec<MatVar<'static>> {
        let leak = |v: &[usize]| -> &'static [usize] { Vec::leak(v.to_vec()) };
        let leak_u8 = |v: &[u8]| -> &'static [u8] { Vec::leak(v.to_vec()) };
        vec![
            MatVar {
                name: "X",
                class_code: CLASS_UINT8,
                dims: leak(x_dims),
                data_type: TYPE_UINT8,
                data: leak_u8(x),
            },
            MatVar {
                name: "y",
                class_code: CLASS_UINT8,
                dims: leak(&[y.len(), 1]),
                data_type: TYPE_UINT8,
                data: leak_u8(y),
            },
        ]
    }

    #[test]
    fn label_0_is_rejected_naming_file_and_value() {
        // SVHN stores the digit 0 as 10, so a 0 in `y` is a corrupt file.
        let file = mat_file(
            &x_and_y(&[1, 1, 1, 2], &[5, 6], &[10, 0]),
            Endian::Little,
            true,
        );
        let e = parse_svhn(&file, Path::new("/d/train_32x32.mat"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/d/train_32x32.mat: `y`[1] = 0 is not a label in 1..=10 (SVHN stores the digit 0 as 10)"
        );
    }

    #[test]
    fn only_x_and_y_are_read_and_their_size_is_capped() {
        // A third variable, larger than the whole budget, is skipped unread.
        let junk = vec![7u8; 5000];
        let mut vars = x_and_y(&[1, 1, 1, 2], &[5, 6], &[10, 3]);
        vars.insert(
            0,
            MatVar {
                name: "junk",
                class_code: CLASS_UINT8,
                dims: &[5000, 1],
                data_type: TYPE_UINT8,
                data: &junk,
            },
        );
        for compress in [false, true] {
            let file = mat_file(&vars, Endian::Little, compress);
            let limits = svhn_mat_limits(2);
            assert_eq!(limits.max_data_bytes, 2 * (3072 + 8));
            let arrays = parse_mat_with(&file, Path::new("s.mat"), &limits).unwrap();
            let names: Vec<_> = arrays.iter().map(|a| a.name.as_str()).collect();
            assert_eq!(names, ["X", "y"], "compress = {compress}");
            let raw = parse_svhn_limited(&file, Path::new("s.mat"), 2).unwrap();
            assert_eq!(raw.labels, vec![0, 3]);
            let e = parse_svhn_limited(&file, Path::new("s.mat"), 1)
                .unwrap_err()
                .to_string();
            assert_eq!(e, "s.mat: holds 2 images, a file of this name at most 1");
        }

        // test_32x32.mat holds 26032 images: an `X` declaring 26200 (a few
        // hundred KB of zlib, 80 MB inflated) is refused before its data is
        // inflated.
        let n = 26_200;
        let x = vec![0u8; n * SVHN_IMAGE_BYTES];
        let y = vec![1u8; n];
        let file = mat_file(&x_and_y(&[32, 32, 3, n], &x, &y), Endian::Little, true);
        drop((x, y));
        assert!(file.len() < 1 << 20, "{} bytes", file.len());
        let e = parse_svhn(&file, Path::new("/d/test_32x32.mat"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/d/test_32x32.mat: variable `X`: 80486400 data bytes exceed what this file may hold \
             (80178560 bytes in all, 80178560 left)"
        );
        // The same file under the name of the larger training set is fine.
        let raw = parse_svhn(&file, Path::new("/d/train_32x32.mat")).unwrap();
        assert_eq!(raw.len(), n);
    }
}
