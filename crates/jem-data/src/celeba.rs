//! CelebA aligned-and-cropped faces, used only as an out-of-distribution set.
//!
//! Expected layout: `<dir>/img_align_celeba/000001.jpg ...` and
//! `<dir>/list_eval_partition.txt` with lines `000001.jpg 0`, where 0 marks
//! the training split, 1 validation and 2 test.
//!
//! Preprocessing: each 178x218 image is cropped to its centred 140x140
//! square (the crop commonly used for CelebA at low resolution, e.g. by
//! DCGAN/WGAN-GP pipelines; for smaller images the square of the shorter
//! side) and then resized to `size x size` (32 for jem) with a bilinear
//! filter. Cropping first keeps the face's aspect ratio; the reference JEM
//! code only resized. All labels are 0.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::bytes::read_file;
use crate::dataset::RawImages;
use crate::decode::{center_crop_square, decode_image, push_rgb_planes, resize_exact};
use crate::error::{DataError, Result};

/// Directory of the aligned JPEGs.
pub const CELEBA_IMAGE_DIR: &str = "img_align_celeba";
/// The file mapping each image to its partition.
pub const CELEBA_PARTITION_FILE: &str = "list_eval_partition.txt";
/// Side of the centred square cropped from each aligned image.
pub const CELEBA_CROP: u32 = 140;

/// CelebA's official partitions, as numbered in `list_eval_partition.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CelebaPartition {
    /// Partition 0.
    Train = 0,
    /// Partition 1.
    Valid = 1,
    /// Partition 2.
    Test = 2,
}

/// Parses `list_eval_partition.txt`: one `<file name> <0|1|2>` per line.
/// File names must be plain names (no directories), since they are joined
/// onto the image directory.
pub fn parse_partition(text: &[u8], path: &Path) -> Result<Vec<(String, CelebaPartition)>> {
    let text = std::str::from_utf8(text)
        .map_err(|e| DataError::format(path, format!("not UTF-8 text: {e}")))?;
    let mut out = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad =
            |what: &str| DataError::format(path, format!("line {}: {what}: {line:?}", line_no + 1));
        let mut fields = line.split_whitespace();
        let (Some(name), Some(part), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad("expected `<file name> <0|1|2>`"));
        };
        if name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(bad("file name must not contain a directory"));
        }
        let part = match part {
            "0" => CelebaPartition::Train,
            "1" => CelebaPartition::Valid,
            "2" => CelebaPartition::Test,
            _ => return Err(bad("partition must be 0, 1 or 2")),
        };
        out.push((name.to_owned(), part));
    }
    Ok(out)
}

/// Loads the images of one partition from `dir`, cropped and resized to
/// `size x size` RGB, all labelled 0. `max_images` keeps only the first
/// images of the partition (decoding all ~20k test JPEGs takes a while).
pub fn load_celeba(
    dir: &Path,
    partition: CelebaPartition,
    size: u32,
    max_images: Option<usize>,
) -> Result<RawImages> {
    if size == 0 {
        return Err(DataError::InvalidArgument(
            "CelebA image size must be positive".into(),
        ));
    }
    let start = Instant::now();
    let list_path = dir.join(CELEBA_PARTITION_FILE);
    let entries = parse_partition(&read_file(&list_path)?, &list_path)?;
    let names: Vec<PathBuf> = entries
        .into_iter()
        .filter(|(_, p)| *p == partition)
        .map(|(name, _)| dir.join(CELEBA_IMAGE_DIR).join(name))
        .take(max_images.unwrap_or(usize::MAX))
        .collect();
    let side = size as usize;
    let mut pixels = Vec::with_capacity(names.len() * 3 * side * side);
    for path in &names {
        let img = decode_image(&read_file(path)?, path)?;
        let img = resize_exact(center_crop_square(&img, CELEBA_CROP), size, size);
        push_rgb_planes(&img.to_rgb8(), &mut pixels);
    }
    tracing::info!(
        dir = %dir.display(),
        ?partition,
        count = names.len(),
        elapsed_ms = start.elapsed().as_millis() as u64,
        "loaded CelebA"
    );
    Ok(RawImages {
        pixels,
        labels: vec![0; names.len()],
        channels: 3,
        height: side,
        width: side,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A 178x218 face-sized JPEG: blue border, a solid colour in the centred
    /// 140x140 square.
    fn write_face(path: &Path, centre: [u8; 3]) {
        let img = RgbImage::from_fn(178, 218, |x, y| {
            if (19..159).contains(&x) && (39..179).contains(&y) {
                Rgb(centre)
            } else {
                Rgb([0, 0, 255])
            }
        });
        img.save_with_format(path, image::ImageFormat::Jpeg)
            .unwrap();
    }

    #[test]
    fn loads_partition_with_centre_crop() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join(CELEBA_IMAGE_DIR);
        std::fs::create_dir(&images).unwrap();
        write_face(&images.join("000001.jpg"), [200, 30, 30]);
        write_face(&images.join("000002.jpg"), [30, 200, 30]);
        write_face(&images.join("000003.jpg"), [30, 30, 30]);
        write_face(&images.join("000004.jpg"), [250, 250, 250]);
        std::fs::write(
            dir.path().join(CELEBA_PARTITION_FILE),
            "000001.jpg 0\n000002.jpg 2\n000003.jpg 1\n000004.jpg 2\n",
        )
        .unwrap();

        let test = load_celeba(dir.path(), CelebaPartition::Test, 32, None).unwrap();
        assert_eq!(test.len(), 2);
        assert_eq!(test.labels, vec![0, 0]);
        assert_eq!((test.channels, test.height, test.width), (3, 32, 32));
        // Every output pixel comes from the centred square, so none is blue:
        // the crop removed the border. JPEG is lossy, hence the tolerance.
        let close = |a: u8, b: u8| a.abs_diff(b) <= 6;
        for y in 0..32 {
            for x in 0..32 {
                let px = |n, c| test.pixel(n, c, y, x).unwrap();
                assert!(close(px(0, 0), 30) && close(px(0, 1), 200) && close(px(0, 2), 30));
                assert!(close(px(1, 0), 250) && close(px(1, 1), 250) && close(px(1, 2), 250));
            }
        }
        let train = load_celeba(dir.path(), CelebaPartition::Train, 16, None).unwrap();
        assert_eq!((train.len(), train.height), (1, 16));
        assert!(close(train.pixel(0, 0, 8, 8).unwrap(), 200));
        let limited = load_celeba(dir.path(), CelebaPartition::Test, 8, Some(1)).unwrap();
        assert_eq!(limited.len(), 1);
    }

    #[test]
    fn partition_errors_name_file_and_line() {
        let p = Path::new("/c/list_eval_partition.txt");
        let e = parse_partition(b"000001.jpg 0\n000002.jpg 3\n", p)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/c/list_eval_partition.txt: line 2: partition must be 0, 1 or 2"),
            "{e}"
        );
        assert!(parse_partition(b"../etc/passwd 0\n", p).is_err());
        assert!(parse_partition(b"a.jpg\n", p).is_err());
        assert_eq!(
            parse_partition(b"\n a.jpg  1 \r\n", p).unwrap(),
            vec![("a.jpg".into(), CelebaPartition::Valid)]
        );
    }
}
