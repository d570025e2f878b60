//! PNG image grids of samples (replay buffer, class-conditional samples), free of libtorch.
//!
//! Pixels come as a flat `f32` slice in NCHW order, either in the model's range `[-1, 1]` or in
//! `[0, 1]` ([`PixelRange`]); values outside the range are clamped and non-finite values are drawn
//! black. Images with 1 channel give a grayscale PNG, with 3 channels an RGB PNG. Cells are laid
//! out row-major, `columns` per row, separated by `padding` pixels of the background colour.

use std::path::{Path, PathBuf};

/// The value range of the input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PixelRange {
    /// `[-1, 1]`, the model range of JEM (`-1` is black).
    #[default]
    MinusOneToOne,
    /// `[0, 1]`.
    ZeroToOne,
}

impl PixelRange {
    fn to_u8(self, v: f32) -> u8 {
        if !v.is_finite() {
            return 0;
        }
        let unit = match self {
            PixelRange::MinusOneToOne => (v + 1.0) / 2.0,
            PixelRange::ZeroToOne => v,
        };
        (unit.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// Why a grid could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// The shape does not describe the pixel slice, or is not drawable.
    #[error("invalid image grid: {0}")]
    Shape(String),
    /// Encoding or writing the PNG failed.
    #[error("cannot write image grid {}: {source}", path.display())]
    Write {
        /// The PNG file.
        path: PathBuf,
        /// The underlying encoder or I/O error.
        #[source]
        source: image::ImageError,
    },
}

/// Layout of a grid: NCHW shape of the pixel slice and how to arrange the cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridSpec {
    /// Number of images N.
    pub n: usize,
    /// Channels C (1 or 3).
    pub channels: usize,
    /// Image height H.
    pub height: usize,
    /// Image width W.
    pub width: usize,
    /// Cells per grid row (at least 1).
    pub columns: usize,
    /// Background pixels between and around cells.
    pub padding: usize,
    /// Value range of the pixels.
    pub range: PixelRange,
}

impl GridSpec {
    /// `n` images of `[channels, height, width]` in `[-1, 1]`, in rows of `columns`, padding 2.
    pub fn new(n: usize, channels: usize, height: usize, width: usize, columns: usize) -> Self {
        Self {
            n,
            channels,
            height,
            width,
            columns,
            padding: 2,
            range: PixelRange::MinusOneToOne,
        }
    }

    fn validate(&self, len: usize) -> Result<(), GridError> {
        if self.channels != 1 && self.channels != 3 {
            return Err(GridError::Shape(format!(
                "{} channels; only 1 (grayscale) or 3 (RGB) can be drawn",
                self.channels
            )));
        }
        if self.n == 0 || self.height == 0 || self.width == 0 || self.columns == 0 {
            return Err(GridError::Shape(format!(
                "n = {}, height = {}, width = {}, columns = {}: all must be >= 1",
                self.n, self.height, self.width, self.columns
            )));
        }
        let expected = self
            .n
            .checked_mul(self.channels)
            .and_then(|v| v.checked_mul(self.height))
            .and_then(|v| v.checked_mul(self.width));
        if expected != Some(len) {
            return Err(GridError::Shape(format!(
                "{len} pixel values do not fill {} images of {}x{}x{}",
                self.n, self.channels, self.height, self.width
            )));
        }
        Ok(())
    }

    /// Width and height of the grid image in pixels.
    pub fn image_size(&self) -> (usize, usize) {
        let cols = self.columns.min(self.n).max(1);
        let rows = self.n.div_ceil(self.columns.max(1));
        (
            cols * (self.width + self.padding) + self.padding,
            rows * (self.height + self.padding) + self.padding,
        )
    }
}

/// Arranges the images as interleaved 8-bit pixels (`channels` bytes per pixel) and returns
/// `(width, height, bytes)` of the grid; the background is black.
pub fn grid_pixels(pixels: &[f32], spec: &GridSpec) -> Result<(u32, u32, Vec<u8>), GridError> {
    spec.validate(pixels.len())?;
    let (gw, gh) = spec.image_size();
    let (c, h, w, pad) = (spec.channels, spec.height, spec.width, spec.padding);
    let too_large = || GridError::Shape(format!("grid of {gw}x{gh} pixels is too large"));
    let gw32 = u32::try_from(gw).map_err(|_| too_large())?;
    let gh32 = u32::try_from(gh).map_err(|_| too_large())?;
    let mut out = vec![
        0u8;
        gw.checked_mul(gh)
            .and_then(|v| v.checked_mul(c))
            .ok_or_else(too_large)?
    ];
    for i in 0..spec.n {
        let (row, col) = (i / spec.columns, i % spec.columns);
        let (x0, y0) = (pad + col * (w + pad), pad + row * (h + pad));
        let image = &pixels[i * c * h * w..(i + 1) * c * h * w];
        for y in 0..h {
            for x in 0..w {
                let dst = ((y0 + y) * gw + x0 + x) * c;
                for ch in 0..c {
                    out[dst + ch] = spec.range.to_u8(image[(ch * h + y) * w + x]);
                }
            }
        }
    }
    Ok((gw32, gh32, out))
}

/// Writes the images as one PNG grid to `path` (grayscale for 1 channel, RGB for 3).
pub fn write_grid(path: &Path, pixels: &[f32], spec: &GridSpec) -> Result<(), GridError> {
    let (w, h, bytes) = grid_pixels(pixels, spec)?;
    let color = if spec.channels == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    image::save_buffer_with_format(path, &bytes, w, h, color, image::ImageFormat::Png).map_err(
        |source| GridError::Write {
            path: path.to_path_buf(),
            source,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_cells_with_padding_and_maps_ranges() {
        // Two 1x1x2 images in [-1, 1]: [-1, 1] and [0, 3 (clamped)].
        let pixels = [-1.0, 1.0, 0.0, 3.0];
        let spec = GridSpec {
            padding: 1,
            ..GridSpec::new(2, 1, 1, 2, 1)
        };
        assert_eq!(spec.image_size(), (4, 5));
        let (w, h, bytes) = grid_pixels(&pixels, &spec).unwrap();
        assert_eq!((w, h), (4, 5));
        #[rustfmt::skip]
        let expected = vec![
            0, 0, 0, 0,
            0, 0, 255, 0,
            0, 0, 0, 0,
            0, 128, 255, 0,
            0, 0, 0, 0,
        ];
        assert_eq!(bytes, expected);

        let unit = GridSpec {
            padding: 0,
            range: PixelRange::ZeroToOne,
            ..GridSpec::new(1, 3, 1, 1, 4)
        };
        let (w, h, bytes) = grid_pixels(&[0.0, 0.5, f32::NAN], &unit).unwrap();
        assert_eq!((w, h, bytes), (1, 1, vec![0, 128, 0]));
    }

    #[test]
    fn rejects_bad_shapes() {
        let e = grid_pixels(&[0.0; 3], &GridSpec::new(1, 1, 2, 2, 1)).unwrap_err();
        assert!(e.to_string().contains("3 pixel values"), "{e}");
        let e = grid_pixels(&[0.0; 8], &GridSpec::new(1, 2, 2, 2, 1)).unwrap_err();
        assert!(e.to_string().contains("2 channels"), "{e}");
        assert!(grid_pixels(&[], &GridSpec::new(0, 1, 2, 2, 1)).is_err());
    }

    #[test]
    fn writes_a_readable_png() {
        let dir = std::env::temp_dir().join(format!("jem-data-grid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("grid.png");
        let pixels: Vec<f32> = (0..5 * 3 * 4 * 4)
            .map(|i| (i % 7) as f32 / 3.0 - 1.0)
            .collect();
        write_grid(&path, &pixels, &GridSpec::new(5, 3, 4, 4, 2)).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), (2 * 6 + 2, 3 * 6 + 2));
        assert_eq!(img.color(), image::ColorType::Rgb8);
        let e = write_grid(
            &dir.join("missing/grid.png"),
            &pixels,
            &GridSpec::new(5, 3, 4, 4, 2),
        )
        .unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
