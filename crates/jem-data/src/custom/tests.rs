//! Tests of the custom data sets on small files written here.

use super::*;
use crate::config::{DataConfig, ImageSize};
use crate::idx::{encode_idx_images, encode_idx_labels};
use crate::load::load;
use crate::npy::write_npy;

fn config(kind: DatasetKind, dir: &Path) -> DataConfig {
    DataConfig {
        dataset: kind,
        data_dir: Some(dir.to_path_buf()),
        n_valid: 1,
        batch_size: 2,
        pad: 1,
        ..DataConfig::default()
    }
}

fn load_split(cfg: &DataConfig, split: Split) -> Result<Dataset> {
    let checked = cfg.clone().check()?;
    load(
        cfg.dataset,
        split,
        cfg.data_dir.as_deref(),
        &checked.load_options(),
    )
}

fn rgb(dir: &Path, name: &str, w: u32, h: u32, v: [u8; 3]) {
    std::fs::create_dir_all(dir).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb(v))
        .save(dir.join(name))
        .unwrap();
}

#[test]
fn folder_of_any_sizes_is_resized_and_its_shape_known_before_loading() {
    let root = tempfile::tempdir().unwrap();
    let train = root.path().join(FOLDER_TRAIN);
    let test = root.path().join(FOLDER_TEST);
    rgb(&train.join("cat"), "a.png", 20, 10, [200, 0, 0]);
    rgb(&train.join("cat"), "b.jpg", 7, 9, [200, 0, 0]);
    rgb(&train.join("dog"), "c.png", 16, 16, [0, 0, 200]);
    rgb(&train.join(".thumbnails"), "x.png", 16, 16, [1, 1, 1]);
    rgb(&test.join("dog"), "t.png", 33, 5, [0, 0, 200]);

    let mut cfg = config(DatasetKind::Folder, root.path());
    cfg.image_size = Some(ImageSize::Square(8));
    let shape = cfg.resolve_shape().unwrap();
    assert_eq!(
        shape,
        DataShape {
            image: [3, 8, 8],
            num_classes: 2
        }
    );
    let tr = load_split(&cfg, Split::Train).unwrap();
    assert_eq!(tr.images.size(), vec![3, 3, 8, 8]);
    assert_eq!(
        (tr.image_shape(), tr.num_classes),
        (shape.image, shape.num_classes)
    );
    assert_eq!(tr.labels_vec().unwrap(), vec![0, 0, 1]);
    assert!((tr.images.double_value(&[2, 2, 4, 4]) - 200.0 / 255.0).abs() < 1e-6);
    let te = load_split(&cfg, Split::Test).unwrap();
    assert_eq!(te.images.size(), vec![1, 3, 8, 8]);
    assert_eq!(te.labels_vec().unwrap(), vec![1]);

    // Grey output on request, any rectangle.
    cfg.image_size = Some(ImageSize::HeightWidth([4, 6]));
    cfg.channels = Some(1);
    assert_eq!(cfg.resolve_shape().unwrap().image, [1, 4, 6]);
    assert_eq!(
        load_split(&cfg, Split::Test).unwrap().images.size(),
        vec![1, 1, 4, 6]
    );

    // Without image_size, sizes may not be mixed: the error names the file.
    cfg.image_size = None;
    cfg.channels = None;
    let e = load_split(&cfg, Split::Train).unwrap_err().to_string();
    assert!(
        e.contains("cat/b.jpg: image is 9x7 (height x width) but"),
        "{e}"
    );
    assert!(e.contains("set data.image_size"), "{e}");

    // num_classes must agree with the folders.
    cfg.image_size = Some(ImageSize::Square(8));
    cfg.num_classes = Some(3);
    let e = cfg.resolve_shape().unwrap_err().to_string();
    assert!(
        e.starts_with(
            "invalid config: `data.num_classes` = 3: must be 2, the number of class directories in"
        ),
        "{e}"
    );
}

#[test]
fn folder_grey_images_and_same_size_without_resizing() {
    let root = tempfile::tempdir().unwrap();
    for (split, class, v) in [("train", "0", 10u8), ("train", "1", 20), ("test", "1", 30)] {
        let dir = root.path().join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        image::GrayImage::from_pixel(5, 3, image::Luma([v]))
            .save(dir.join("i.png"))
            .unwrap();
    }
    let cfg = config(DatasetKind::Folder, root.path());
    assert_eq!(
        cfg.resolve_shape().unwrap(),
        DataShape {
            image: [1, 3, 5],
            num_classes: 2
        }
    );
    let te = load_split(&cfg, Split::Test).unwrap();
    assert_eq!(te.images.size(), vec![1, 1, 3, 5]);
    assert!((te.images.double_value(&[0, 0, 2, 4]) - 30.0 / 255.0).abs() < 1e-6);
    // A test image of another size is an error, not a mixed shape.
    image::GrayImage::from_pixel(6, 3, image::Luma([1]))
        .save(root.path().join("test/1/j.png"))
        .unwrap();
    let e = load_split(&cfg, Split::Test).unwrap_err().to_string();
    assert!(e.contains("test/1/j.png: image is 3x6"), "{e}");
}

#[test]
fn idx_arrays_of_any_size_and_class_count() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    let px: Vec<u8> = (0..90).collect();
    std::fs::write(d.join(IDX_TRAIN_IMAGES), encode_idx_images(3, 6, 5, &px)).unwrap();
    std::fs::write(d.join(IDX_TRAIN_LABELS), encode_idx_labels(&[0, 3, 1])).unwrap();
    std::fs::write(
        d.join(format!("{IDX_TEST_IMAGES}.gz")),
        crate::bytes::tests_gzip(&encode_idx_images(1, 6, 5, &px[..30])),
    )
    .unwrap();
    std::fs::write(d.join(IDX_TEST_LABELS), encode_idx_labels(&[2])).unwrap();
    let mut cfg = config(DatasetKind::Idx, d);
    assert_eq!(
        cfg.resolve_shape().unwrap(),
        DataShape {
            image: [1, 6, 5],
            num_classes: 4
        }
    );
    let tr = load_split(&cfg, Split::Train).unwrap();
    assert_eq!((tr.images.size(), tr.num_classes), (vec![3, 1, 6, 5], 4));
    assert!((tr.images.double_value(&[2, 0, 5, 4]) - 89.0 / 255.0).abs() < 1e-6);
    assert_eq!(
        load_split(&cfg, Split::Test).unwrap().labels_vec().unwrap(),
        vec![2]
    );

    cfg.num_classes = Some(10);
    assert_eq!(cfg.resolve_shape().unwrap().num_classes, 10);
    cfg.num_classes = Some(3);
    let e = load_split(&cfg, Split::Train).unwrap_err().to_string();
    assert!(
        e.contains(
            "train-labels-idx1-ubyte: label 3 at index 1 is outside 0..3 (data.num_classes)"
        ),
        "{e}"
    );
    cfg.num_classes = None;
    cfg.image_size = Some(ImageSize::Square(28));
    let e = cfg.resolve_shape().unwrap_err().to_string();
    assert!(
        e.starts_with("invalid config: `data.image_size` = [28, 28]: must match")
            && e.ends_with("which holds 6x5 images (arrays are not resized)"),
        "{e}"
    );
}

#[test]
fn npy_arrays_uint8_or_float_nchw_or_nhw() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    // uint8 [2, 3, 2, 2] colour training images, float [1, 3, 2, 2] test images.
    let px: Vec<u8> = (0..24).map(|v| v * 10).collect();
    write_npy(&d.join(NPY_TRAIN_IMAGES), &[2, 3, 2, 2], &px).unwrap();
    write_npy(&d.join(NPY_TRAIN_LABELS), &[2], &[1i64, 0]).unwrap();
    let fl: Vec<f32> = (0..12).map(|v| v as f32 / 11.0).collect();
    write_npy(&d.join(NPY_TEST_IMAGES), &[1, 3, 2, 2], &fl).unwrap();
    write_npy(&d.join(NPY_TEST_LABELS), &[1], &[1u8]).unwrap();
    let cfg = config(DatasetKind::Npy, d);
    assert_eq!(
        cfg.resolve_shape().unwrap(),
        DataShape {
            image: [3, 2, 2],
            num_classes: 2
        }
    );
    let tr = load_split(&cfg, Split::Train).unwrap();
    assert_eq!(tr.images.size(), vec![2, 3, 2, 2]);
    assert!((tr.images.double_value(&[1, 2, 1, 1]) - 230.0 / 255.0).abs() < 1e-6);
    let te = load_split(&cfg, Split::Test).unwrap();
    assert!((te.images.double_value(&[0, 2, 1, 1]) - 1.0).abs() < 1e-6);
    assert_eq!(te.labels_vec().unwrap(), vec![1]);

    // Floats outside [0, 1], mismatched counts or shapes, float labels: errors naming the file.
    write_npy(&d.join(NPY_TEST_IMAGES), &[1, 3, 2, 2], &[2.0f32; 12]).unwrap();
    let e = load_split(&cfg, Split::Test).unwrap_err().to_string();
    assert!(
        e.contains("test_images.npy: float image value 2 at index 0 is outside [0, 1]"),
        "{e}"
    );
    write_npy(&d.join(NPY_TEST_IMAGES), &[1, 2, 2], &[0u8; 4]).unwrap();
    let e = load_split(&cfg, Split::Test).unwrap_err().to_string();
    assert!(
        e.contains(
            "test_images.npy: images are [1, 2, 2] ([C, H, W]) but the training images [3, 2, 2]"
        ),
        "{e}"
    );
    write_npy(&d.join(NPY_TEST_IMAGES), &[2, 3, 2, 2], &[0u8; 24]).unwrap();
    let e = load_split(&cfg, Split::Test).unwrap_err().to_string();
    assert!(e.contains("test_labels.npy: 1 labels but"), "{e}");
    write_npy(&d.join(NPY_TRAIN_LABELS), &[2], &[1.0f32, 0.0]).unwrap();
    let e = cfg.resolve_shape().unwrap_err().to_string();
    assert!(
        e.contains("train_labels.npy: labels must be integers"),
        "{e}"
    );
    write_npy(&d.join(NPY_TRAIN_IMAGES), &[2, 2, 2, 2], &[0u8; 16]).unwrap();
    let e = cfg.resolve_shape().unwrap_err().to_string();
    assert!(
        e.contains("with C = 1 or 3, found shape [2, 2, 2, 2]"),
        "{e}"
    );
}

#[test]
fn custom_config_errors_name_field_value_and_range() {
    let check = |c: DataConfig| c.check().unwrap_err().to_string();
    let dir = Path::new("/data/mine");
    let e = check(DataConfig {
        data_dir: None,
        ..config(DatasetKind::Folder, dir)
    });
    assert_eq!(
        e,
        "invalid config: `data.data_dir` = (not set): must name the directory holding your data for dataset = folder"
    );
    let e = check(DataConfig {
        channels: Some(2),
        ..config(DatasetKind::Npy, dir)
    });
    assert_eq!(
        e,
        "invalid config: `data.channels` = 2: must be 1 (grey) or 3 (RGB)"
    );
    let e = check(DataConfig {
        image_size: Some(ImageSize::HeightWidth([0, 32])),
        ..config(DatasetKind::Folder, dir)
    });
    assert_eq!(
        e,
        "invalid config: `data.image_size` = [0, 32]: must have each side in 1..=4096"
    );
    let e = check(DataConfig {
        num_classes: Some(1),
        ..config(DatasetKind::Idx, dir)
    });
    assert_eq!(
        e,
        "invalid config: `data.num_classes` = 1: must be in 2..=100000"
    );
    let e = check(DataConfig {
        image_size: Some(ImageSize::Square(4)),
        pad: 4,
        ..config(DatasetKind::Folder, dir)
    });
    assert_eq!(
        e,
        "invalid config: `data.pad` = 4: must be in 0..=3 for 4-pixel images"
    );
    let e = check(DataConfig {
        image_size: Some(ImageSize::Square(16)),
        ..DataConfig::default()
    });
    assert!(
        e.starts_with(
            "invalid config: `data.image_size` = 16: applies only to dataset = folder, idx or npy"
        ),
        "{e}"
    );
    // The keys parse from TOML-like input, a square side or [height, width].
    let c: DataConfig = serde_json::from_str(
        r#"{"dataset": "folder", "data_dir": "/d", "image_size": [24, 32], "channels": 1}"#,
    )
    .unwrap();
    assert_eq!(c.image_size, Some(ImageSize::HeightWidth([24, 32])));
    let c: DataConfig = serde_json::from_str(r#"{"dataset": "npy", "image_size": 28}"#).unwrap();
    assert_eq!(c.image_size.map(ImageSize::height_width), Some([28, 28]));
    // The files must be where data_dir says.
    let empty = tempfile::tempdir().unwrap();
    let e = config(DatasetKind::Npy, empty.path())
        .resolve_shape()
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(".npy data set not found. Put train_images.npy, train_labels.npy, test_images.npy, test_labels.npy (in data_dir itself)"),
        "{e}"
    );
    // n_valid beyond a custom set's size is caught by the split, naming the field.
    let e = crate::split::train_valid_split(3, 5, 0)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("invalid config: `data.n_valid` = 5: must be in 0..=2"),
        "{e}"
    );
}
