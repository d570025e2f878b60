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
/// Most decoded bytes an image may have per byte of its file. PNG pixels are
/// a deflate stream, which cannot expand more than about 1032:1, and a JPEG
/// spends at least a few bits on every 8x8 block, so no real image comes
/// near this; a forged header in a small file (a 100-byte PNG declaring
/// 8000x8000 pixels) is refused before its buffer is allocated.
pub const MAX_IMAGE_RATIO: u64 = 2048;

/// The decoder's allocation limit for a file of `input_len` bytes:
/// [`MAX_IMAGE_RATIO`] times its size plus 1 MiB, at most [`MAX_IMAGE_ALLOC`].
pub fn image_alloc_limit(input_len: usize) -> u64 {
    (input_len as u64)
        .saturating_mul(MAX_IMAGE_RATIO)
        .saturating_add(1 << 20)
        .min(MAX_IMAGE_ALLOC)
}

/// Decodes PNG or JPEG bytes (format sniffed from the content) to 8-bit RGB.
/// The decoder may allocate at most [`image_alloc_limit`] of the input's
/// size, and no side may exceed [`MAX_IMAGE_SIDE`].
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    let mut reader = ImageReader::new(IoCursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(image_alloc_limit(bytes.len()));
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
}
