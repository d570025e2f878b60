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
    /// The images, labelled by class index.
    pub images: RawImages,
    /// Class names by index (the directory names).
    pub class_names: Vec<String>,
}

/// Entries of `dir` sorted by name, hidden ones (a name starting with `.`)
/// left out: `.git`, `.ipynb_checkpoints` or `.DS_Store` are not data.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden {
            entries.push(path);
        }
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

/// How an image folder's images become one tensor shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FolderOptions {
    /// `(height, width)` every image is resized to; `None` requires every
    /// image to have the size of the first one (a different size is an
    /// error naming the file, never silently mixed).
    pub size: Option<(u32, u32)>,
    /// 1 (grey) or 3 (RGB); `None` takes the first image's (grey images
    /// give 1, everything else 3) and converts the others to it.
    pub channels: Option<usize>,
}

/// Names of the class directories of `root` (visible sub-directories, in
/// name order).
pub fn class_names(root: &Path) -> Result<Vec<String>> {
    let names: Vec<String> = sorted_entries(root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if names.is_empty() {
        return Err(DataError::format(
            root,
            "no class sub-directories (expected root/<class name>/*.png|jpg|jpeg)",
        ));
    }
    Ok(names)
}

/// The first image of the folder (in class, then file name order).
fn first_image(root: &Path, classes: &[String]) -> Result<PathBuf> {
    for class in classes {
        if let Some(file) = sorted_entries(&root.join(class))?
            .into_iter()
            .find(|p| is_image_file(p))
        {
            return Ok(file);
        }
    }
    Err(DataError::format(
        root,
        "no .png/.jpg/.jpeg images in any class directory",
    ))
}

/// `[C, H, W]` the folder's images load as under `opts`, read from the
/// first image's header when the options leave it open.
pub fn folder_image_shape(root: &Path, opts: &FolderOptions) -> Result<[usize; 3]> {
    let classes = class_names(root)?;
    let (size, channels) = match (opts.size, opts.channels) {
        (Some(size), Some(c)) => (size, c),
        _ => {
            let file = first_image(root, &classes)?;
            let img = decode_image(&read_file(&file)?, &file)?;
            (
                opts.size.unwrap_or((img.height(), img.width())),
                opts.channels.unwrap_or_else(|| natural_channels(&img)),
            )
        }
    };
    Ok([channels, size.0 as usize, size.1 as usize])
}

fn natural_channels(img: &image::DynamicImage) -> usize {
    if img.color().has_color() {
        3
    } else {
        1
    }
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
    let opts = FolderOptions {
        size: Some((height, width)),
        channels: Some(if grayscale { 1 } else { 3 }),
    };
    load_class_folder(root, &opts, None)
}

/// Loads `root/<class>/*.{png,jpg,jpeg}` under `opts`. With `classes` (the
/// training split's names, for a test split), labels index that list and a
/// directory not in it is an error; otherwise the classes are `root`'s own
/// directories and each must hold at least one image.
pub fn load_class_folder(
    root: &Path,
    opts: &FolderOptions,
    classes: Option<&[String]>,
) -> Result<ImageFolder> {
    let start = Instant::now();
    if let Some(c) = opts.channels.filter(|c| ![1, 3].contains(c)) {
        return Err(DataError::InvalidArgument(format!(
            "image folder channels must be 1 or 3, got {c}"
        )));
    }
    let own = class_names(root)?;
    let class_names: Vec<String> = match classes {
        Some(train) => {
            if let Some(extra) = own.iter().find(|c| !train.contains(c)) {
                return Err(DataError::format(
                    root.join(extra),
                    format!(
                        "class `{extra}` is not among the training classes [{}]",
                        train.join(", ")
                    ),
                ));
            }
            train.to_vec()
        }
        None => own.clone(),
    };
    let mut shape: Option<(u32, u32, usize, PathBuf)> = opts
        .size
        .zip(opts.channels)
        .map(|((h, w), c)| (h, w, c, PathBuf::new()));
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (class_index, class) in class_names.iter().enumerate() {
        let dir = root.join(class);
        if !own.contains(class) {
            continue;
        }
        let files: Vec<PathBuf> = sorted_entries(&dir)?
            .into_iter()
            .filter(|p| is_image_file(p))
            .collect();
        if files.is_empty() && classes.is_none() {
            return Err(DataError::format(
                &dir,
                "no .png/.jpg/.jpeg images (every class directory needs at least one)",
            ));
        }
        for file in files {
            let img = decode_image(&read_file(&file)?, &file)?;
            let (h, w, c, _) = shape.get_or_insert_with(|| {
                let (h, w) = opts.size.unwrap_or((img.height(), img.width()));
                let c = opts.channels.unwrap_or_else(|| natural_channels(&img));
                (h, w, c, file.clone())
            });
            let (h, w, c) = (*h, *w, *c);
            let img = if opts.size.is_some() {
                resize_exact(img, w, h)
            } else if (img.height(), img.width()) != (h, w) {
                let first = shape
                    .as_ref()
                    .map(|s| s.3.display().to_string())
                    .unwrap_or_default();
                return Err(DataError::format(
                    &file,
                    format!(
                        "image is {}x{} (height x width) but {first} is {h}x{w}; set data.image_size to resize every image",
                        img.height(),
                        img.width()
                    ),
                ));
            } else {
                img
            };
            if c == 1 {
                push_grey_plane(&img, &mut pixels);
            } else {
                push_rgb_planes(&img.to_rgb8(), &mut pixels);
            }
            labels.push(class_index as i64);
        }
    }
    let Some((height, width, channels, _)) = shape.filter(|_| !labels.is_empty()) else {
        return Err(DataError::format(
            root,
            "no .png/.jpg/.jpeg images in any class directory",
        ));
    };
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
            channels,
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

    fn grey(v: u8, w: u32, h: u32) -> image::GrayImage {
        image::GrayImage::from_pixel(w, h, image::Luma([v]))
    }

    #[test]
    fn hidden_entries_are_skipped_and_sizes_never_mixed() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["a", "b", ".git", ".ipynb_checkpoints"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
        }
        grey(10, 4, 3).save(dir.path().join("a/1.png")).unwrap();
        grey(20, 4, 3).save(dir.path().join("b/1.png")).unwrap();
        grey(99, 4, 3).save(dir.path().join(".git/x.png")).unwrap();
        grey(99, 4, 3)
            .save(dir.path().join("a/.hidden.png"))
            .unwrap();
        let f = load_class_folder(dir.path(), &FolderOptions::default(), None).unwrap();
        assert_eq!(f.class_names, ["a", "b"]);
        assert_eq!(f.images.labels, vec![0, 1]);
        // Grey images stay one channel, at their own size.
        assert_eq!(
            (f.images.channels, f.images.height, f.images.width),
            (1, 3, 4)
        );
        assert_eq!(f.images.pixel(1, 0, 2, 3), Some(20));
        assert_eq!(
            folder_image_shape(dir.path(), &FolderOptions::default()).unwrap(),
            [1, 3, 4]
        );

        // A wrong-size image is an error naming it, unless a size is given.
        grey(30, 8, 8).save(dir.path().join("b/2.png")).unwrap();
        let e = load_class_folder(dir.path(), &FolderOptions::default(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b/2.png: image is 8x8 (height x width) but")
                && e.contains("a/1.png is 3x4; set data.image_size"),
            "{e}"
        );
        let opts = FolderOptions {
            size: Some((2, 2)),
            channels: Some(3),
        };
        let f = load_class_folder(dir.path(), &opts, None).unwrap();
        assert_eq!(
            (f.images.channels, f.images.height, f.images.width),
            (3, 2, 2)
        );
        assert_eq!(f.images.pixel(2, 2, 1, 1), Some(30));
        assert_eq!(folder_image_shape(dir.path(), &opts).unwrap(), [3, 2, 2]);

        // A test split indexes the training classes; an unknown class is an error.
        let test = tempfile::tempdir().unwrap();
        std::fs::create_dir(test.path().join("b")).unwrap();
        grey(40, 2, 2).save(test.path().join("b/t.png")).unwrap();
        let names = vec!["a".to_string(), "b".to_string()];
        let t = load_class_folder(test.path(), &opts, Some(&names)).unwrap();
        assert_eq!(t.images.labels, vec![1]);
        std::fs::create_dir(test.path().join("zebra")).unwrap();
        let e = load_class_folder(test.path(), &opts, Some(&names))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("zebra: class `zebra` is not among the training classes [a, b]"),
            "{e}"
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
        assert!(
            e.contains("no .png/.jpg/.jpeg images (every class directory needs at least one)"),
            "{e}"
        );
        std::fs::write(dir.path().join("c/bad.png"), b"not a png").unwrap();
        let e = load_image_folder(dir.path(), 4, 4, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.png: cannot decode image"), "{e}");
    }
}
