//! IDX files (MNIST, Fashion-MNIST): `*-images-idx3-ubyte` and
//! `*-labels-idx1-ubyte`, gzipped or raw.
//!
//! Layout (all integers big-endian): a 4-byte magic whose third byte is the
//! element type (0x08 = unsigned byte) and fourth the number of dimensions,
//! then one u32 per dimension, then the elements in row-major order.

use std::path::Path;
use std::time::Instant;

use crate::bytes::{maybe_gunzip, read_file, Cursor, Endian, MAX_DECOMPRESSED_BYTES};
use crate::dataset::RawImages;
use crate::error::{DataError, Result};

/// Magic of an image file: unsigned bytes, 3 dimensions (count, rows, cols).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of a label file: unsigned bytes, 1 dimension (count).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// The contents of an IDX image file: `count` grey images of `rows x cols`,
/// row-major, one byte per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

fn check_magic(cur: &mut Cursor<'_>, expected: u32, path: &Path) -> Result<()> {
    let magic = cur.u32(Endian::Big, "IDX magic")?;
    if magic != expected {
        return Err(DataError::format(
            path,
            format!("bad IDX magic 0x{magic:08x}, expected 0x{expected:08x}"),
        ));
    }
    Ok(())
}

fn check_no_trailing(cur: &Cursor<'_>, path: &Path) -> Result<()> {
    if cur.is_empty() {
        Ok(())
    } else {
        Err(DataError::format(
            path,
            format!(
                "{} unexpected trailing bytes after offset {}",
                cur.remaining(),
                cur.position()
            ),
        ))
    }
}

/// Parses the (already decompressed) bytes of an IDX image file.
/// `path` is only used in error messages.
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    let mut cur = Cursor::new(bytes, path);
    check_magic(&mut cur, IDX_IMAGES_MAGIC, path)?;
    let count = cur.u32(Endian::Big, "image count")? as usize;
    let rows = cur.u32(Endian::Big, "row count")? as usize;
    let cols = cur.u32(Endian::Big, "column count")? as usize;
    if rows == 0 || cols == 0 {
        return Err(DataError::format(
            path,
            format!("images of {rows}x{cols} pixels are empty"),
        ));
    }
    // The declared size is checked against the real byte count before any
    // allocation, so a forged header cannot request gigabytes.
    let expected = count
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .ok_or_else(|| {
            DataError::format(
                path,
                format!("declared size {count}x{rows}x{cols} overflows"),
            )
        })?;
    if cur.remaining() < expected {
        return Err(DataError::format(
            path,
            format!(
                "truncated: expected {expected} pixel bytes, found {}",
                cur.remaining()
            ),
        ));
    }
    let pixels = cur.take(expected, "pixels")?.to_vec();
    check_no_trailing(&cur, path)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Parses the (already decompressed) bytes of an IDX label file; every
/// label must be below `num_classes`.
pub fn parse_idx_labels(bytes: &[u8], path: &Path, num_classes: usize) -> Result<Vec<i64>> {
    let mut cur = Cursor::new(bytes, path);
    check_magic(&mut cur, IDX_LABELS_MAGIC, path)?;
    let count = cur.u32(Endian::Big, "label count")? as usize;
    if cur.remaining() < count {
        return Err(DataError::format(
            path,
            format!(
                "truncated: expected {count} label bytes, found {}",
                cur.remaining()
            ),
        ));
    }
    let raw = cur.take(count, "labels")?;
    check_no_trailing(&cur, path)?;
    if let Some((i, &bad)) = raw
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= num_classes)
    {
        return Err(DataError::format(
            path,
            format!("label {bad} at index {i} is outside 0..{num_classes}"),
        ));
    }
    Ok(raw.iter().map(|&l| i64::from(l)).collect())
}

/// Reads an IDX image file, gunzipping it when it starts with the gzip magic.
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    let bytes = maybe_gunzip(read_file(path)?, path, MAX_DECOMPRESSED_BYTES)?;
    parse_idx_images(&bytes, path)
}

/// Reads an IDX label file, gunzipping it when it starts with the gzip magic.
pub fn read_idx_labels(path: &Path, num_classes: usize) -> Result<Vec<i64>> {
    let bytes = maybe_gunzip(read_file(path)?, path, MAX_DECOMPRESSED_BYTES)?;
    parse_idx_labels(&bytes, path, num_classes)
}

/// Reads a matching pair of image and label files into `[N, 1, rows, cols]`
/// raw images. The two files must hold the same number of items.
pub fn load_idx_pair(
    images_path: &Path,
    labels_path: &Path,
    num_classes: usize,
) -> Result<RawImages> {
    let start = Instant::now();
    let images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path, num_classes)?;
    if images.count != labels.len() {
        return Err(DataError::format(
            labels_path,
            format!(
                "{} labels but {} holds {} images",
                labels.len(),
                images_path.display(),
                images.count
            ),
        ));
    }
    tracing::info!(
        images = %images_path.display(),
        count = images.count,
        elapsed_ms = start.elapsed().as_millis() as u64,
        "loaded IDX data set"
    );
    Ok(RawImages {
        pixels: images.pixels,
        labels,
        channels: 1,
        height: images.rows,
        width: images.cols,
    })
}

/// Encodes images in the IDX layout (used by tests and examples to write
/// small files in the true format).
pub fn encode_idx_images(count: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    out.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
    for dim in [count, rows, cols] {
        out.extend_from_slice(&(dim as u32).to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Encodes labels in the IDX layout.
pub fn encode_idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_raw_and_gzipped_pairs_exactly() {
        let dir = tempfile::tempdir().unwrap();
        // Two 2x3 images whose bytes are their own positions.
        let pixels: Vec<u8> = (0..12).map(|v| v * 10).collect();
        let images = encode_idx_images(2, 2, 3, &pixels);
        let labels = encode_idx_labels(&[7, 3]);
        let (ri, rl) = (dir.path().join("i"), dir.path().join("l"));
        std::fs::write(&ri, &images).unwrap();
        std::fs::write(&rl, &labels).unwrap();
        let (gi, gl) = (dir.path().join("i.gz"), dir.path().join("l.gz"));
        std::fs::write(&gi, gzip(&images)).unwrap();
        std::fs::write(&gl, gzip(&labels)).unwrap();

        for (ip, lp) in [(&ri, &rl), (&gi, &gl)] {
            let raw = load_idx_pair(ip, lp, 10).unwrap();
            assert_eq!((raw.channels, raw.height, raw.width), (1, 2, 3));
            assert_eq!(raw.labels, vec![7, 3]);
            // image 1, row 1, col 2 is the 12th byte: 110.
            assert_eq!(raw.pixel(1, 0, 1, 2), Some(110));
            assert_eq!(raw.pixel(0, 0, 0, 1), Some(10));
            let ds = raw.into_dataset(10).unwrap();
            assert_eq!(ds.images.size(), vec![2, 1, 2, 3]);
            let v = ds.images.double_value(&[1, 0, 1, 2]);
            assert!((v - 110.0 / 255.0).abs() < 1e-6);
            assert_eq!(ds.labels.int64_value(&[0]), 7);
        }
    }

    #[test]
    fn rejects_bad_magic_truncation_labels_and_count_mismatch() {
        let p = Path::new("/x/train-images-idx3-ubyte.gz");
        let mut bad = encode_idx_images(1, 2, 2, &[0; 4]);
        bad[3] = 0x02;
        let e = parse_idx_images(&bad, p).unwrap_err().to_string();
        assert!(e.contains("bad IDX magic 0x00000802"), "{e}");

        let trunc = encode_idx_images(60000, 28, 28, &[0; 1000]);
        let e = parse_idx_images(&trunc, p).unwrap_err().to_string();
        assert_eq!(
            e,
            "/x/train-images-idx3-ubyte.gz: truncated: expected 47040000 pixel bytes, found 1000"
        );

        let e = parse_idx_labels(&encode_idx_labels(&[1, 10]), p, 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 10 at index 1 is outside 0..10"), "{e}");

        let mut trailing = encode_idx_labels(&[1]);
        trailing.push(0);
        assert!(parse_idx_labels(&trailing, p, 10).is_err());

        let dir = tempfile::tempdir().unwrap();
        let (ip, lp) = (dir.path().join("i"), dir.path().join("l"));
        std::fs::write(&ip, encode_idx_images(2, 1, 1, &[1, 2])).unwrap();
        std::fs::write(&lp, encode_idx_labels(&[1])).unwrap();
        let e = load_idx_pair(&ip, &lp, 10).unwrap_err().to_string();
        assert!(
            e.contains("1 labels but") && e.contains("holds 2 images"),
            "{e}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let p = Path::new("random");
            let _ = parse_idx_images(&bytes, p);
            let _ = parse_idx_labels(&bytes, p, 10);
            let _ = maybe_gunzip(bytes.clone(), p, 1 << 20);
        }

        #[test]
        fn mutated_valid_files_never_panic(
            cut in 0usize..64,
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 0..4),
        ) {
            let p = Path::new("mutated");
            let mut img = encode_idx_images(3, 3, 4, &[9; 36]);
            let mut lab = encode_idx_labels(&[1, 2, 3]);
            for &(i, b) in &flips {
                if let Some(x) = img.get_mut(i) { *x = b; }
                if let Some(x) = lab.get_mut(i % 11) { *x = b; }
            }
            img.truncate(cut.min(img.len()).max(img.len().saturating_sub(cut)));
            if let Ok(parsed) = parse_idx_images(&img, p) {
                prop_assert_eq!(parsed.pixels.len(), parsed.count * parsed.rows * parsed.cols);
            }
            if let Ok(labels) = parse_idx_labels(&lab, p, 10) {
                prop_assert!(labels.iter().all(|&l| (0..10).contains(&l)));
            }
            let gz = gzip(&img);
            let _ = maybe_gunzip(gz[..gz.len().saturating_sub(cut % 8)].to_vec(), p, 1 << 20);
        }
    }
}
