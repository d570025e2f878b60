//! IDX files (MNIST, Fashion-MNIST): `*-images-idx3-ubyte` and
//! `*-labels-idx1-ubyte`, gzipped or raw.
//!
//! Layout (all integers big-endian): a 4-byte magic whose third byte is the
//! element type (0x08 = unsigned byte) and fourth the number of dimensions,
//! then one u32 per dimension, then the elements in row-major order.

use std::path::Path;
use std::time::Instant;

use crate::bytes::{
    expect_end, gunzip_reader, read_array, read_exact_growing, read_file, MAX_DECOMPRESSED_BYTES,
};
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
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` bytes, row-major.
    pub pixels: Vec<u8>,
}

fn check_magic(magic: u32, expected: u32, path: &Path) -> Result<()> {
    if magic != expected {
        return Err(DataError::format(
            path,
            format!("bad IDX magic 0x{magic:08x}, expected 0x{expected:08x}"),
        ));
    }
    Ok(())
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        word.copy_from_slice(src);
    }
    u32::from_be_bytes(word)
}

/// Parses an IDX image file, gzipped or raw. The header is read first and
/// the pixel payload it declares (`count * rows * cols` bytes) must not
/// exceed `max_pixel_bytes`; then exactly that many bytes are read, so a
/// compressed file is never inflated past what its header implies.
/// `path` is only used in error messages.
pub fn decode_idx_images(bytes: &[u8], path: &Path, max_pixel_bytes: u64) -> Result<IdxImages> {
    let mut reader = gunzip_reader(bytes);
    let header: [u8; 16] = read_array(&mut reader, path, "IDX image header")?;
    check_magic(be_u32(&header, 0), IDX_IMAGES_MAGIC, path)?;
    let count = be_u32(&header, 4) as usize;
    let rows = be_u32(&header, 8) as usize;
    let cols = be_u32(&header, 12) as usize;
    if rows == 0 || cols == 0 {
        return Err(DataError::format(
            path,
            format!("images of {rows}x{cols} pixels are empty"),
        ));
    }
    let expected = count
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .ok_or_else(|| {
            DataError::format(
                path,
                format!("declared size {count}x{rows}x{cols} overflows"),
            )
        })?;
    if expected as u64 > max_pixel_bytes {
        return Err(DataError::format(
            path,
            format!(
                "header declares {count} images of {rows}x{cols} ({expected} bytes), more than the \
                 {max_pixel_bytes} bytes allowed for this file"
            ),
        ));
    }
    let pixels = read_exact_growing(&mut reader, expected as u64, path, "pixels")?;
    expect_end(&mut reader, path, 16 + expected as u64)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Parses the bytes of an IDX image file (gzipped or raw) with the general
/// cap [`MAX_DECOMPRESSED_BYTES`]. `path` is only used in error messages.
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    decode_idx_images(bytes, path, MAX_DECOMPRESSED_BYTES)
}

/// Parses an IDX label file, gzipped or raw: the header's count must not
/// exceed `max_count` (the images' count when the pair is loaded), then
/// exactly that many label bytes are read; every label must be below
/// `num_classes`.
pub fn decode_idx_labels(
    bytes: &[u8],
    path: &Path,
    num_classes: usize,
    max_count: usize,
) -> Result<Vec<i64>> {
    let mut reader = gunzip_reader(bytes);
    let header: [u8; 8] = read_array(&mut reader, path, "IDX label header")?;
    check_magic(be_u32(&header, 0), IDX_LABELS_MAGIC, path)?;
    let count = be_u32(&header, 4) as usize;
    if count > max_count {
        return Err(DataError::format(
            path,
            format!("header declares {count} labels, more than the {max_count} expected"),
        ));
    }
    let raw = read_exact_growing(&mut reader, count as u64, path, "labels")?;
    expect_end(&mut reader, path, 8 + count as u64)?;
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

/// Parses the bytes of an IDX label file (gzipped or raw); every label
/// must be below `num_classes`.
pub fn parse_idx_labels(bytes: &[u8], path: &Path, num_classes: usize) -> Result<Vec<i64>> {
    decode_idx_labels(bytes, path, num_classes, u32::MAX as usize)
}

/// Reads an IDX image file, gunzipping it when it starts with the gzip magic.
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    parse_idx_images(&read_file(path)?, path)
}

/// Reads an IDX label file, gunzipping it when it starts with the gzip magic.
pub fn read_idx_labels(path: &Path, num_classes: usize) -> Result<Vec<i64>> {
    parse_idx_labels(&read_file(path)?, path, num_classes)
}

/// Reads a matching pair of image and label files into `[N, 1, rows, cols]`
/// raw images. The two files must hold the same number of items.
pub fn load_idx_pair(
    images_path: &Path,
    labels_path: &Path,
    num_classes: usize,
) -> Result<RawImages> {
    load_idx_pair_capped(
        images_path,
        labels_path,
        num_classes,
        MAX_DECOMPRESSED_BYTES,
    )
}

/// [`load_idx_pair`] with a cap on the image payload (`count * rows * cols`
/// bytes) the image file's header may declare; the label file may then
/// declare at most as many labels as there are images.
pub fn load_idx_pair_capped(
    images_path: &Path,
    labels_path: &Path,
    num_classes: usize,
    max_pixel_bytes: u64,
) -> Result<RawImages> {
    let start = Instant::now();
    let images = decode_idx_images(&read_file(images_path)?, images_path, max_pixel_bytes)?;
    // The label file may declare no more labels than there are images, so
    // a forged count cannot make it inflate further.
    let labels = decode_idx_labels(
        &read_file(labels_path)?,
        labels_path,
        num_classes,
        images.count,
    )?;
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
            "/x/train-images-idx3-ubyte.gz: truncated: expected 47040000 bytes of pixels, found 1000"
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

    #[test]
    fn caps_come_from_the_header_not_a_global_limit() {
        let p = Path::new("/x/train-labels-idx1-ubyte.gz");
        // A label file whose header says 3 labels, followed by 8 MiB of
        // zeros: refused as soon as the 4th label byte shows up, instead of
        // inflating everything under the shared 4 GiB cap first.
        let mut bomb = encode_idx_labels(&[1, 2, 3]);
        bomb.resize(bomb.len() + (8 << 20), 0);
        let e = decode_idx_labels(&gzip(&bomb), p, 10, 3)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/x/train-labels-idx1-ubyte.gz: unexpected trailing bytes after offset 11"
        );

        // A label header declaring more labels than the image file holds is
        // refused before any label is read.
        let e = decode_idx_labels(&gzip(&encode_idx_labels(&[0; 5])), p, 10, 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("header declares 5 labels, more than the 2 expected"),
            "{e}"
        );

        // An image header declaring more than the cap is refused up front.
        let e = decode_idx_images(
            &gzip(&encode_idx_images(60001, 28, 28, &[])),
            p,
            60000 * 784,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("header declares 60001 images of 28x28 (47040784 bytes), more than the 47040000 bytes allowed"),
            "{e}"
        );

        let dir = tempfile::tempdir().unwrap();
        let (ip, lp) = (dir.path().join("i"), dir.path().join("l"));
        std::fs::write(&ip, encode_idx_images(2, 1, 1, &[1, 2])).unwrap();
        std::fs::write(&lp, encode_idx_labels(&[1, 2, 3])).unwrap();
        let e = load_idx_pair(&ip, &lp, 10).unwrap_err().to_string();
        assert!(e.contains("3 labels, more than the 2 expected"), "{e}");
    }
}
