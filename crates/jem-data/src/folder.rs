//! Image folders: `root/<class name>/*.{png,jpg,jpeg}`. Classes are the
//! sub-directories sorted by name (index 0 is the first); files are read in
//! name order and resized to the requested size.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::bytes::read_file;
use crate::dataset::RawImages;
use crate::decode::{decode_image, push_grey_plane, push_rgb_planes, resize_exact};
use crate::error::{DataError, Result};

/// A loaded image folder: the images and the class names by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFolder {
    pub images: RawImages,
    pub class_names: Vec<String>,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        entries.push(entry.map_err(|e| DataError::io(dir, e))?.path());
    }
    entries.sort();
    Ok(entries)
}

fn is_image_file(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Loads every image under `root/<class>/`, resized to `height x width`,
/// as RGB (3 channels) or, with `grayscale`, one grey channel.
pub fn load_image_folder(
    root: &Path,
    height: u32,
    width: u32,
    grayscale: bool,
) -> Result<ImageFolder> {
    if height == 0 || width == 0 {
        return Err(DataError::InvalidArgument(format!(
            "image folder size {height}x{width} must be positive"
        )));
    }
    let start = Instant::now();
    let class_dirs: Vec<PathBuf> = sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if class_dirs.is_empty() {
        return Err(DataError::format(
            root,
            "no class sub-directories (expected root/<class name>/*.png|jpg|jpeg)",
        ));
    }
    let mut class_names = Vec::with_capacity(class_dirs.len());
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (class_index, class_dir) in class_dirs.iter().enumerate() {
        class_names.push(
            class_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        for file in sorted_entries(class_dir)?
            .into_iter()
            .filter(|p| is_image_file(p))
        {
            let img = resize_exact(decode_image(&read_file(&file)?, &file)?, width, height);
            if grayscale {
                push_grey_plane(&img, &mut pixels);
            } else {
                push_rgb_planes(&img.to_rgb8(), &mut pixels);
            }
            labels.push(class_index as i64);
        }
    }
    if labels.is_empty() {
        return Err(DataError::format(
            root,
            "no .png/.jpg/.jpeg images in any class directory",
        ));
    }
    tracing::info!(
        root = %root.display(),
        classes = class_names.len(),
        count = labels.len(),
        elapsed_ms = start.elapsed().as_millis() as u64,
        "loaded image folder"
    );
    Ok(ImageFolder {
        images: RawImages {
            pixels,
            labels,
            channels: if grayscale { 1 } else { 3 },
            height: height as usize,
            width: width as usize,
        },
        class_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn classes_sorted_by_name_and_pixels_exact() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["zebra", "ant"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
        }
        let img =
            |r: u8| RgbImage::from_fn(3, 2, move |x, y| Rgb([r, x as u8 * 10, y as u8 * 100]));
        img(1).save(dir.path().join("zebra/b.png")).unwrap();
        img(2).save(dir.path().join("zebra/a.PNG")).unwrap();
        img(3).save(dir.path().join("ant/x.png")).unwrap();
        std::fs::write(dir.path().join("ant/notes.txt"), "ignored").unwrap();

        let folder = load_image_folder(dir.path(), 2, 3, false).unwrap();
        assert_eq!(folder.class_names, vec!["ant", "zebra"]);
        assert_eq!(folder.images.labels, vec![0, 1, 1]);
        let raw = &folder.images;
        // ant/x.png, then zebra/a.PNG, then zebra/b.png.
        assert_eq!(raw.pixel(0, 0, 0, 0), Some(3));
        assert_eq!(raw.pixel(1, 0, 1, 2), Some(2));
        assert_eq!(raw.pixel(2, 0, 0, 0), Some(1));
        assert_eq!(raw.pixel(2, 1, 1, 2), Some(20));
        assert_eq!(raw.pixel(2, 2, 1, 2), Some(100));

        let small = load_image_folder(dir.path(), 1, 1, true).unwrap();
        assert_eq!(
            (
                small.images.channels,
                small.images.height,
                small.images.pixels.len()
            ),
            (1, 1, 3)
        );
    }

    #[test]
    fn empty_or_corrupt_folders_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_image_folder(dir.path(), 4, 4, false).is_err());
        std::fs::create_dir(dir.path().join("c")).unwrap();
        let e = load_image_folder(dir.path(), 4, 4, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no .png/.jpg/.jpeg images"), "{e}");
        std::fs::write(dir.path().join("c/bad.png"), b"not a png").unwrap();
        let e = load_image_folder(dir.path(), 4, 4, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.png: cannot decode image"), "{e}");
    }
}
