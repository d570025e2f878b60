//! PNG plots of evaluation results, drawn with [`plotters`] on its bitmap
//! backend. Text is rendered through `ab_glyph` with DejaVu Sans, which is
//! bundled with the crate (`fonts/`, with its license), so no system fonts
//! are needed and labels can use the paper's symbols (ε, ∞, σ, ‖·‖, p(y|x)).
//! (plotters measures text with the font registered through its `ab_glyph`
//! feature; the glyphs themselves are set by a thin wrapper of its bitmap
//! backend, which places them at their true bearings.)
//!
//! | Plot | Functions |
//! |---|---|
//! | Reliability diagram (paper Fig. 4) | [`reliability_diagram_png`], [`reliability_diagram_figure`] |
//! | Overlaid score histograms (OOD) | [`score_histograms_png`], [`score_histograms_figure`] |
//! | Line plot (robustness against ε, training curves) | [`line_plot_png`], [`line_plot_figure`] |
//! | Grouped bar chart (AUROC per set and score) | [`bar_chart_png`], [`bar_chart_figure`] |
//!
//! The `*_png` functions use [`PlotStyle::default`] (640×480) and write a PNG,
//! creating missing parent directories. The `*_figure` functions take a
//! [`PlotStyle`] and return a [`Figure`]: the image plus the [`Frame`] that
//! maps data coordinates to pixels, so callers (and tests) can inspect it and
//! save it with [`Figure::save`].
//!
//! Bad input (no data, NaN or infinite values, mismatched lengths, a style
//! too small for its labels) gives [`PlotError::Input`] with an [`EvalError`]
//! naming the argument; nothing is written then.

use std::path::{Path, PathBuf};

pub use image::{Rgb, RgbImage};

mod bars;
mod canvas;
mod chart;
mod histogram;
mod line;
mod reliability;

pub use bars::{bar_chart_figure, bar_chart_png, BarGroup};
pub use chart::format_value;
pub use histogram::{
    score_histograms_figure, score_histograms_png, HistogramSeries, HISTOGRAM_ALPHA, MAX_BINS,
};
pub use line::{line_plot_figure, line_plot_png, LineSeries};
pub use reliability::{
    reliability_diagram_figure, reliability_diagram_png, ACCURACY_COLOR, DIAGONAL_COLOR, GAP_ALPHA,
    GAP_COLOR,
};

use crate::error::EvalError;

/// Page background.
pub const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
/// Axis lines and tick marks.
pub const AXIS_COLOR: Rgb<u8> = Rgb([40, 40, 40]);
/// Grid lines behind the data.
pub const GRID_COLOR: Rgb<u8> = Rgb([226, 226, 226]);
/// Title, labels and tick labels.
pub const TEXT_COLOR: Rgb<u8> = Rgb([25, 25, 25]);
/// Outline of the legend box.
pub const LEGEND_BORDER: Rgb<u8> = Rgb([150, 150, 150]);

/// Series colours, in order: the first (green) is meant for the
/// in-distribution data set, then red, blue, orange, purple, brown, pink,
/// grey, olive and cyan (matplotlib's ten "tab" colours, so ten classes get
/// ten colours); the list repeats after that.
pub const PALETTE: [Rgb<u8>; 10] = [
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
    Rgb([127, 127, 127]),
    Rgb([188, 189, 34]),
    Rgb([23, 190, 207]),
];

/// Colour of the `i`-th series.
pub fn series_color(i: usize) -> Rgb<u8> {
    PALETTE[i % PALETTE.len()]
}

/// The family name under which the bundled DejaVu Sans is registered with
/// plotters.
pub const FONT_FAMILY: &str = "jem DejaVu Sans";

/// Size of the image and of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlotStyle {
    /// Image width in pixels (160..=8192).
    pub width: u32,
    /// Image height in pixels (120..=8192).
    pub height: u32,
    /// Height of axis labels in pixels (8..=96); titles are drawn 1.25 times
    /// larger, tick labels and legends 0.9 times.
    pub font_size: u32,
}

impl Default for PlotStyle {
    /// 640×480 pixels, 16-pixel text.
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            font_size: 16,
        }
    }
}

impl PlotStyle {
    /// Errors unless the size and font size are in range, naming the field.
    pub fn validate(&self) -> crate::Result<()> {
        for (arg, value, lo, hi, reason) in [
            (
                "style.width",
                self.width,
                160,
                8192,
                "must be in 160..=8192",
            ),
            (
                "style.height",
                self.height,
                120,
                8192,
                "must be in 120..=8192",
            ),
            (
                "style.font_size",
                self.font_size,
                8,
                96,
                "must be in 8..=96",
            ),
        ] {
            if !(lo..=hi).contains(&value) {
                let value = value.to_string();
                return Err(EvalError::InvalidParameter { arg, value, reason });
            }
        }
        Ok(())
    }
}

/// Where the data area of a figure is: the pixel rectangle of the plotted
/// ranges and the linear map from data coordinates to pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Pixel column of `x_range.0`.
    pub left: i64,
    /// Pixel column of `x_range.1`.
    pub right: i64,
    /// Pixel row of `y_range.1`.
    pub top: i64,
    /// Pixel row of `y_range.0`.
    pub bottom: i64,
    /// The x data range shown.
    pub x_range: (f64, f64),
    /// The y data range shown.
    pub y_range: (f64, f64),
}

impl Frame {
    /// Pixel column (not rounded) of data coordinate `x`.
    pub fn x_px(&self, x: f64) -> f64 {
        let (lo, hi) = self.x_range;
        self.left as f64 + (x - lo) / (hi - lo) * (self.right - self.left) as f64
    }

    /// Pixel row (not rounded) of data coordinate `y`.
    pub fn y_px(&self, y: f64) -> f64 {
        let (lo, hi) = self.y_range;
        self.bottom as f64 - (y - lo) / (hi - lo) * (self.bottom - self.top) as f64
    }

    /// Rounded pixel of the data point `(x, y)`.
    pub fn px(&self, x: f64, y: f64) -> (i64, i64) {
        (self.x_px(x).round() as i64, self.y_px(y).round() as i64)
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
    pub fn save(&self, path: impl AsRef<Path>) -> PlotResult<()> {
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

/// Result alias of the plotting functions.
pub type PlotResult<T> = std::result::Result<T, PlotError>;

/// Why a plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The data or style cannot be plotted.
    #[error(transparent)]
    Input(#[from] EvalError),
    /// plotters failed while drawing (e.g. the bundled font could not be read).
    #[error("cannot draw the plot: {0}")]
    Draw(String),
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

/// Errors if entry `i` of `arg` (labelled `label`) has no `field` values
/// (`len` of them) or a NaN or infinite one, naming the entry and position.
fn check_series(
    (arg, i, label, field): (&'static str, usize, &str, &str),
    len: usize,
    values: impl IntoIterator<Item = f64>,
) -> PlotResult<()> {
    let bad =
        |value: String, reason| Err(EvalError::InvalidParameter { arg, value, reason }.into());
    if len == 0 {
        return bad(
            format!("{arg}[{i}].{field} (label {label:?}) with 0 entries"),
            "every series needs at least one value",
        );
    }
    match values.into_iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((j, v)) => bad(
            format!("{v} at {arg}[{i}].{field}[{j}] (label {label:?})"),
            "plotted values must be finite",
        ),
        None => Ok(()),
    }
}

/// Errors if `arg` has no entries.
fn check_nonempty(arg: &'static str, len: usize) -> PlotResult<()> {
    crate::input::check_min_len(arg, len, 1).map_err(PlotError::from)
}

/// `(lo, hi)` widened to a non-empty range, then padded by `margin` of its
/// span on both sides.
fn padded_range(lo: f64, hi: f64, margin: f64) -> (f64, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        let half = if lo == 0.0 { 0.5 } else { lo.abs() * 0.1 };
        (lo - half, hi + half)
    };
    let pad = (hi - lo) * margin;
    (lo - pad, hi + pad)
}

/// Smallest and largest of `values` (infinities for none).
fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}
