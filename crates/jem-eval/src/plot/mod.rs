//! PNG plots of evaluation results, drawn without system fonts or a
//! plotting library: shapes are rasterised into an [`RgbImage`] by
//! [`draw`], and text uses the built-in 5×8 bitmap [`font`] scaled by an
//! integer factor.
//!
//! | Plot | Functions |
//! |---|---|
//! | Reliability diagram (paper Fig. 4) | [`reliability_diagram_png`], [`reliability_diagram_figure`] |
//! | Overlaid score histograms (OOD) | [`score_histograms_png`], [`score_histograms_figure`] |
//! | Line plot (robustness, training curves) | [`line_plot_png`], [`line_plot_figure`] |
//! | Grouped bar chart (AUROC per set and score) | [`bar_chart_png`], [`bar_chart_figure`] |
//!
//! The `*_png` functions use [`PlotStyle::default`] (640×480) and write a PNG,
//! creating missing parent directories. The `*_figure` functions take a
//! [`PlotStyle`] and return a [`Figure`]: the image plus the [`Frame`] that
//! maps data coordinates to pixels, so callers (and tests) can inspect or
//! annotate it and save it with [`Figure::save`].
//!
//! Bad input (no data, NaN or infinite values, mismatched lengths, a style
//! too small for its labels) gives an [`EvalError`] naming the argument;
//! writing adds the I/O failures of [`PlotError`].

use std::path::{Path, PathBuf};

pub use image::{Rgb, RgbImage};

mod axes;
mod bars;
pub mod draw;
pub mod font;
mod histogram;
mod line;
mod reliability;

pub use axes::{format_value, nice_ticks, tick_labels, Frame};
pub use bars::{bar_chart_figure, bar_chart_png, BarGroup};
pub use histogram::{
    score_histograms_figure, score_histograms_png, HistogramSeries, HISTOGRAM_ALPHA, MAX_BINS,
};
pub use line::{line_plot_figure, line_plot_png, LineSeries};
pub use reliability::{
    reliability_diagram_figure, reliability_diagram_png, ACCURACY_COLOR, DIAGONAL_COLOR, GAP_ALPHA,
    GAP_COLOR,
};

use crate::error::{EvalError, Result};

/// Page background.
pub const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
/// Axis lines and tick marks.
pub const AXIS_COLOR: Rgb<u8> = Rgb([40, 40, 40]);
/// Grid lines behind the data.
pub const GRID_COLOR: Rgb<u8> = Rgb([226, 226, 226]);
/// Title, labels and tick labels.
pub const TEXT_COLOR: Rgb<u8> = Rgb([25, 25, 25]);
/// Outline of legend boxes.
pub const LEGEND_BORDER: Rgb<u8> = Rgb([150, 150, 150]);

/// Series colours, in order: the first (green) is meant for the
/// in-distribution data set, then red, blue, orange, purple, brown, pink,
/// grey; the list repeats after that.
pub const PALETTE: [Rgb<u8>; 8] = [
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
    Rgb([127, 127, 127]),
];

/// Colour of the `i`-th series.
pub fn series_color(i: usize) -> Rgb<u8> {
    PALETTE[i % PALETTE.len()]
}

/// Size of the image and of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlotStyle {
    /// Image width in pixels (at least 160).
    pub width: u32,
    /// Image height in pixels (at least 120).
    pub height: u32,
    /// Every font pixel is drawn as a `font_scale × font_scale` block
    /// (1..=8); titles use one step more when they fit.
    pub font_scale: u32,
}

impl Default for PlotStyle {
    /// 640×480 pixels, font scale 2 (12-pixel character advance).
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            font_scale: 2,
        }
    }
}

impl PlotStyle {
    /// Errors unless the size and font scale are in range.
    pub fn validate(&self) -> Result<()> {
        let check = |arg: &'static str, value: u32, lo: u32, hi: u32, reason: &'static str| {
            if (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err(EvalError::InvalidParameter {
                    arg,
                    value: value.to_string(),
                    reason,
                })
            }
        };
        check(
            "style.width",
            self.width,
            160,
            8192,
            "must be in 160..=8192",
        )?;
        check(
            "style.height",
            self.height,
            120,
            8192,
            "must be in 120..=8192",
        )?;
        check(
            "style.font_scale",
            self.font_scale,
            1,
            8,
            "must be in 1..=8",
        )
    }

    /// A white canvas of this size.
    pub(crate) fn canvas(&self) -> RgbImage {
        RgbImage::from_pixel(self.width, self.height, BACKGROUND)
    }
}

/// A rendered plot: the image and where its data area is.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The pixels.
    pub image: RgbImage,
    /// Maps data coordinates to pixels of `image`.
    pub frame: Frame,
}

impl Figure {
    /// Writes the image as a PNG to `path`, creating missing parent
    /// directories.
    pub fn save(&self, path: impl AsRef<Path>) -> std::result::Result<(), PlotError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| PlotError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        self.image
            .save_with_format(path, image::ImageFormat::Png)
            .map_err(|source| PlotError::Write {
                path: path.to_path_buf(),
                source,
            })
    }

    /// The pixels alone.
    pub fn into_image(self) -> RgbImage {
        self.image
    }
}

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The data or style cannot be plotted.
    #[error(transparent)]
    Input(#[from] EvalError),
    /// The output directory could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding or writing the PNG failed.
    #[error("cannot write plot {}: {source}", path.display())]
    Write {
        /// The PNG file.
        path: PathBuf,
        /// The encoder or I/O error.
        #[source]
        source: image::ImageError,
    },
}

impl PlotError {
    /// The input error, if this is one.
    pub fn input(&self) -> Option<&EvalError> {
        match self {
            PlotError::Input(e) => Some(e),
            _ => None,
        }
    }
}

/// Errors if `values` (field `field` of entry `i` of `arg`, labelled
/// `label`) holds NaN or infinity, naming the entry and position.
pub(crate) fn check_series_finite(
    arg: &'static str,
    i: usize,
    label: &str,
    field: &str,
    values: impl IntoIterator<Item = f64>,
) -> Result<()> {
    for (j, v) in values.into_iter().enumerate() {
        if !v.is_finite() {
            return Err(EvalError::InvalidParameter {
                arg,
                value: format!("{v} at {arg}[{i}].{field}[{j}] (label {label:?})"),
                reason: "plotted values must be finite",
            });
        }
    }
    Ok(())
}

/// Errors if series/group `i` of `arg` has no data.
pub(crate) fn check_series_nonempty(
    arg: &'static str,
    i: usize,
    label: &str,
    field: &str,
    len: usize,
) -> Result<()> {
    if len == 0 {
        Err(EvalError::InvalidParameter {
            arg,
            value: format!("{arg}[{i}].{field} (label {label:?}) with 0 entries"),
            reason: "every series needs at least one value",
        })
    } else {
        Ok(())
    }
}

/// `(lo, hi)` widened to a non-empty range, then padded by `margin` of its
/// span on both sides.
pub(crate) fn padded_range(lo: f64, hi: f64, margin: f64) -> (f64, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        let half = if lo == 0.0 { 0.5 } else { lo.abs() * 0.1 };
        (lo - half, hi + half)
    };
    let pad = (hi - lo) * margin;
    (lo - pad, hi + pad)
}
