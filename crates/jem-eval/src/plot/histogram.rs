//! Overlaid, normalised histograms of a score (e.g. `log p(x)`) for several
//! data sets, as in the JEM paper's out-of-distribution figures.

use std::path::Path;

use super::axes::{draw_axes, draw_axis_lines, draw_legend, AxesSpec, LegendEntry, Swatch, XAxis};
use super::draw::{blend_rect, draw_line};
use super::{
    check_series_finite, check_series_nonempty, padded_range, series_color, Figure, PlotError,
    PlotStyle,
};
use crate::error::{EvalError, Result};

/// Opacity of the histogram fills, so overlapping data sets stay visible.
pub const HISTOGRAM_ALPHA: f64 = 0.35;

/// Largest number of bins accepted.
pub const MAX_BINS: usize = 4096;

/// One data set of a histogram plot.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries {
    /// Legend text.
    pub label: String,
    /// The samples (all finite, at least one).
    pub values: Vec<f64>,
}

impl HistogramSeries {
    /// A series from a label and values.
    pub fn new(label: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            label: label.into(),
            values,
        }
    }
}

/// Shared bin edges over the pooled range and each series' density
/// `count / (n · bin_width)` per bin.
fn densities(series: &[HistogramSeries], bins: usize) -> ((f64, f64), Vec<Vec<f64>>) {
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.values.iter())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = padded_range(lo, hi, 0.0);
    let width = (hi - lo) / bins as f64;
    let densities = series
        .iter()
        .map(|s| {
            let mut counts = vec![0usize; bins];
            for &v in &s.values {
                let b = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
                counts[b] += 1;
            }
            let n = s.values.len() as f64;
            counts.iter().map(|&c| c as f64 / (n * width)).collect()
        })
        .collect();
    ((lo, hi), densities)
}

/// Renders overlaid histograms, one per series, over `bins` equal bins
/// spanning the pooled range of all values (widened around a single value).
/// Each histogram is normalised to unit area (y axis "density"), filled with
/// opacity [`HISTOGRAM_ALPHA`] in [`series_color`]`(i)` (green first, for the
/// in-distribution set) and outlined in the opaque colour; a legend names
/// the series.
///
/// Errors if `series` is empty, a series has no values or a non-finite one,
/// `bins` is not in `1..=`[`MAX_BINS`], or `style` is invalid.
pub fn score_histograms_figure(
    series: &[HistogramSeries],
    bins: usize,
    title: &str,
    x_label: &str,
    style: &PlotStyle,
) -> Result<Figure> {
    style.validate()?;
    crate::error::check_min_len("series", series.len(), 1)?;
    if !(1..=MAX_BINS).contains(&bins) {
        return Err(EvalError::InvalidParameter {
            arg: "bins",
            value: bins.to_string(),
            reason: "must be in 1..=4096",
        });
    }
    for (i, s) in series.iter().enumerate() {
        check_series_nonempty("series", i, &s.label, "values", s.values.len())?;
        check_series_finite("series", i, &s.label, "values", s.values.iter().copied())?;
    }
    let ((lo, hi), densities) = densities(series, bins);
    let top = densities.iter().flatten().fold(0.0f64, |m, &d| m.max(d));
    let x_range = padded_range(lo, hi, 0.02);
    let edge = |k: usize| lo + (hi - lo) * k as f64 / bins as f64;

    let s = style.font_scale;
    let legend: Vec<LegendEntry> = series
        .iter()
        .enumerate()
        .map(|(i, ser)| LegendEntry {
            label: ser.label.clone(),
            color: series_color(i),
            swatch: Swatch::Patch {
                alpha: HISTOGRAM_ALPHA,
            },
        })
        .collect();

    // Raise the y range until the legend covers no bars.
    let mut best: Option<(Figure, usize)> = None;
    for headroom in [1.08, 1.3, 1.6, 2.0] {
        let mut img = style.canvas();
        let spec = AxesSpec {
            title,
            x_label,
            y_label: "density",
            x: XAxis::Numeric {
                range: x_range,
                ticks: None,
            },
            y_range: (0.0, top * headroom),
            y_ticks: None,
        };
        let frame = draw_axes(&mut img, style, &spec)?;
        let thickness = s.max(2);
        for (i, dens) in densities.iter().enumerate() {
            let color = series_color(i);
            for (k, &d) in dens.iter().enumerate() {
                if d > 0.0 {
                    let x0 = frame.x_px(edge(k)).round() as i64;
                    let x1 = frame.x_px(edge(k + 1)).round() as i64;
                    let y = frame.y_px(d).round() as i64;
                    blend_rect(
                        &mut img,
                        x0.max(frame.left + 1),
                        y,
                        x1,
                        frame.bottom,
                        color,
                        HISTOGRAM_ALPHA,
                    );
                }
            }
        }
        // Step outlines on top of all fills.
        for (i, dens) in densities.iter().enumerate() {
            let color = series_color(i);
            let mut prev_y = frame.bottom;
            for (k, &d) in dens.iter().enumerate() {
                let x0 = frame.x_px(edge(k)).round() as i64;
                let x1 = frame.x_px(edge(k + 1)).round() as i64;
                let y = if d > 0.0 {
                    frame.y_px(d).round() as i64
                } else {
                    frame.bottom
                };
                if y != prev_y {
                    draw_line(&mut img, (x0, prev_y), (x0, y), thickness, color);
                }
                if y != frame.bottom {
                    draw_line(&mut img, (x0, y), (x1 - 1, y), thickness, color);
                }
                prev_y = y;
            }
            if prev_y != frame.bottom {
                let x = frame.x_px(hi).round() as i64 - 1;
                draw_line(&mut img, (x, prev_y), (x, frame.bottom), thickness, color);
            }
        }
        draw_axis_lines(&mut img, &frame, s);
        let (_, cost) = draw_legend(&mut img, &frame, s, &legend, &[]);
        let better = best.as_ref().is_none_or(|(_, c)| cost < *c);
        if better {
            best = Some((Figure { image: img, frame }, cost));
        }
        if cost == 0 {
            break;
        }
    }
    Ok(best.expect("at least one attempt").0)
}

/// [`score_histograms_figure`] at [`PlotStyle::default`], written as a PNG
/// to `path` (parent directories are created).
pub fn score_histograms_png(
    series: &[HistogramSeries],
    bins: usize,
    title: &str,
    x_label: &str,
    path: impl AsRef<Path>,
) -> std::result::Result<(), PlotError> {
    score_histograms_figure(series, bins, title, x_label, &PlotStyle::default())?.save(path)
}
