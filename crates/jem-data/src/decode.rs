//! Image decoding shared by the CelebA and image-folder loaders: decode with
//! memory limits, crop, resize, and copy into CHW byte planes.

use std::io::Cursor as IoCursor;
use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits, RgbImage};

use crate::error::{DataError, Result};

/// Largest width or height accepted from an image header. Real inputs are
/// a few hundred pixels; the limit stops a forged header from making the
/// decoder allocate gigabytes.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// Largest total allocation an image decoder may make.
pub const MAX_IMAGE_ALLOC: u64 = 256 << 20;

/// Decodes PNG or JPEG bytes (format sniffed from the content) to 8-bit RGB.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    let mut reader = ImageReader::new(IoCursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    let img = reader.decode().map_err(|source| DataError::Image {
        path: path.to_path_buf(),
        source,
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(DataError::format(path, "image has no pixels"));
    }
    Ok(img)
}

/// Crops the centred square of side `min(side, width, height)`; the offset
/// is rounded down, as torchvision's `CenterCrop` does for even differences.
pub fn center_crop_square(img: &DynamicImage, side: u32) -> DynamicImage {
    let s = side.min(img.width()).min(img.height());
    let left = (img.width() - s) / 2;
    let top = (img.height() - s) / 2;
    img.crop_imm(left, top, s, s)
}

/// Resizes to exactly `width x height` with a triangle (bilinear,
/// antialiased when shrinking) filter, like PIL's bilinear `Resize`.
/// An image that already has that size is returned unchanged, bit for bit.
pub fn resize_exact(img: DynamicImage, width: u32, height: u32) -> DynamicImage {
    if img.width() == width && img.height() == height {
        img
    } else {
        img.resize_exact(width, height, FilterType::Triangle)
    }
}

/// Appends an RGB image as three row-major planes (R, then G, then B).
pub fn push_rgb_planes(img: &RgbImage, out: &mut Vec<u8>) {
    for channel in 0..3 {
        out.extend(img.pixels().map(|p| p.0[channel]));
    }
}

/// Appends an image converted to 8-bit grey as one plane.
pub fn push_grey_plane(img: &DynamicImage, out: &mut Vec<u8>) {
    out.extend_from_slice(img.to_luma8().as_raw());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(img: &RgbImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut IoCursor::new(&mut out), format).unwrap();
        out
    }

    fn png_bytes(img: &RgbImage) -> Vec<u8> {
        encoded(img, image::ImageFormat::Png)
    }

    #[test]
    fn decode_crop_and_planes() {
        let mut img = RgbImage::new(6, 4);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([x as u8, y as u8, 100]);
        }
        let dynimg = decode_image(&png_bytes(&img), Path::new("a.png")).unwrap();
        let crop = center_crop_square(&dynimg, 140).to_rgb8();
        // The 4x4 centre of a 6x4 image starts at column 1.
        assert_eq!(crop.dimensions(), (4, 4));
        assert_eq!(crop.get_pixel(0, 0).0, [1, 0, 100]);
        assert_eq!(crop.get_pixel(3, 2).0, [4, 2, 100]);
        let mut planes = Vec::new();
        push_rgb_planes(&crop, &mut planes);
        assert_eq!(planes.len(), 48);
        assert_eq!(planes[4 + 3], 4); // R plane, row 1, col 3
        assert_eq!(planes[16 + 4 * 2], 2); // G plane, row 2, col 0
        assert_eq!(planes[32], 100);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_and_mutated_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            jpeg in any::<bool>(),
            cut in 0usize..200,
            flips in proptest::collection::vec((0usize..300, any::<u8>()), 0..4),
        ) {
            let _ = decode_image(&bytes, Path::new("r"));
            let format = if jpeg { image::ImageFormat::Jpeg } else { image::ImageFormat::Png };
            let mut png = encoded(&RgbImage::from_pixel(5, 3, image::Rgb([1, 2, 3])), format);
            for &(i, b) in &flips {
                if let Some(x) = png.get_mut(i) { *x = b; }
            }
            png.truncate(png.len().saturating_sub(cut));
            if let Ok(img) = decode_image(&png, Path::new("m")) {
                prop_assert!(img.width() > 0 && img.height() > 0);
                let resized = resize_exact(img, 4, 4);
                prop_assert_eq!((resized.width(), resized.height()), (4, 4));
            }
        }
    }
}
