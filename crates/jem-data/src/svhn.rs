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
use crate::mat::{parse_mat, MatArray, MatData};

pub const SVHN_TRAIN_FILE: &str = "train_32x32.mat";
pub const SVHN_TEST_FILE: &str = "test_32x32.mat";
pub const SVHN_EXTRA_FILE: &str = "extra_32x32.mat";
pub const SVHN_CLASSES: usize = 10;

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
        if !(v.fract() == 0.0 && (0.0..=10.0).contains(&v)) {
            return Err(DataError::format(
                path,
                format!("`y`[{i}] = {v} is not a label in 1..=10"),
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

/// Parses the bytes of an SVHN `.mat` file.
pub fn parse_svhn(bytes: &[u8], path: &Path) -> Result<RawImages> {
    svhn_from_arrays(&parse_mat(bytes, path)?, path)
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
    use proptest::prelude::*;

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn mutated_svhn_files_never_panic(
            compress in any::<bool>(),
            cut in 0usize..100,
            flips in proptest::collection::vec((128usize..330, any::<u8>()), 0..4),
        ) {
            let mut f = svhn_file(compress, true);
            for &(i, b) in &flips {
                if let Some(x) = f.get_mut(i) { *x = b; }
            }
            f.truncate(f.len().saturating_sub(cut));
            if let Ok(raw) = parse_svhn(&f, Path::new("m")) {
                prop_assert_eq!(raw.pixels.len(), raw.len() * raw.image_len());
                prop_assert!(raw.labels.iter().all(|&l| (0..10).contains(&l)));
            }
        }
    }
}
