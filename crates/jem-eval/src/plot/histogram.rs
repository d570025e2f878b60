//! Overlaid, normalised histograms of a score (e.g. `log p(x)`) for several
//! data sets, as in the JEM paper's out-of-distribution figures.

use std::path::Path;

use plotters::prelude::*;

use super::chart::{
    drawn, render_best, rgb, swatch, Chart, Fonts, Ink, Layout, Painted, Painter, XTicks,
};
use super::{
    check_nonempty, check_series, min_max, padded_range, series_color, Figure, Frame, PlotResult,
    PlotStyle,
};
use crate::error::EvalError;

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
    let (lo, hi) = min_max(series.iter().flat_map(|s| s.values.iter().copied()));
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

/// The outline of a histogram: one closed step path per run of non-empty bins.
fn outlines(density: &[f64], edge: impl Fn(usize) -> f64) -> Vec<Vec<(f64, f64)>> {
    let mut paths = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for (k, &d) in density.iter().enumerate() {
        if d > 0.0 {
            if current.is_empty() {
                current.push((edge(k), 0.0));
            }
            current.push((edge(k), d));
            current.push((edge(k + 1), d));
        } else if !current.is_empty() {
            current.push((edge(k), 0.0));
            paths.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        current.push((edge(density.len()), 0.0));
        paths.push(current);
    }
    paths
}

/// Draws translucent bars and step outlines of each series' densities.
struct Histograms<'d> {
    series: &'d [HistogramSeries],
    densities: &'d [Vec<f64>],
    edge: &'d dyn Fn(usize) -> f64,
}

impl Painter for Histograms<'_> {
    fn paint<'a, 'b: 'a>(
        &mut self,
        chart: &mut Chart<'a, 'b>,
        frame: &Frame,
        fonts: &Fonts,
    ) -> PlotResult<Painted> {
        let (series, densities, edge) = (self.series, self.densities, self.edge);
        let mut ink = Vec::new();
        // Each run of non-empty bins is filled as one polygon (adjacent
        // rectangles would blend their shared edge twice), then outlined on
        // top of all fills.
        let shapes: Vec<Vec<Vec<(f64, f64)>>> =
            densities.iter().map(|d| outlines(d, edge)).collect();
        for (i, (s, paths)) in series.iter().zip(&shapes).enumerate() {
            let fill = rgb(series_color(i)).mix(HISTOGRAM_ALPHA).filled();
            drawn(chart.draw_series(paths.iter().map(|p| Polygon::new(p.clone(), fill))))?
                .label(s.label.as_str())
                .legend(swatch(fonts, fill));
            for (k, &d) in densities[i].iter().enumerate() {
                if d > 0.0 {
                    ink.push(Ink::rect(frame, (edge(k), 0.0), (edge(k + 1), d)));
                }
            }
        }
        for (i, paths) in shapes.iter().enumerate() {
            let line = rgb(series_color(i)).stroke_width(2);
            drawn(chart.draw_series(paths.iter().map(|p| PathElement::new(p.clone(), line))))?;
        }
        Ok(Painted {
            ink,
            legend: series.iter().map(|s| s.label.clone()).collect(),
        })
    }
}

/// Renders overlaid histograms, one per series, over `bins` equal bins
/// spanning the pooled range of all values (widened around a single value).
/// Each histogram is normalised to unit area (y axis "density"), filled with
/// opacity [`HISTOGRAM_ALPHA`] in [`series_color`]`(i)` (green first, for the
/// in-distribution set) and outlined in the opaque colour; a legend names
/// the series, in the corner where it hides the fewest bars (the y range
/// grows until it hides none, or up to twice the tallest bar).
///
/// Errors if `series` is empty, a series has no values or a non-finite one,
/// `bins` is not in `1..=`[`MAX_BINS`], or `style` is invalid.
pub fn score_histograms_figure(
    series: &[HistogramSeries],
    bins: usize,
    title: &str,
    x_label: &str,
    style: &PlotStyle,
) -> PlotResult<Figure> {
    check_nonempty("series", series.len())?;
    if !(1..=MAX_BINS).contains(&bins) {
        return Err(EvalError::InvalidParameter {
            arg: "bins",
            value: bins.to_string(),
            reason: "must be in 1..=4096",
        }
        .into());
    }
    for (i, s) in series.iter().enumerate() {
        let values = s.values.iter().copied();
        check_series(("series", i, &s.label, "values"), s.values.len(), values)?;
    }
    let ((lo, hi), densities) = densities(series, bins);
    let top = densities.iter().flatten().fold(0.0f64, |m, &d| m.max(d));
    let edge = |k: usize| lo + (hi - lo) * k as f64 / bins as f64;

    let mut painter = Histograms {
        series,
        densities: &densities,
        edge: &edge,
    };
    let layouts = [1.08, 1.3, 1.6, 2.0].map(|headroom| Layout {
        title,
        x_label,
        y_label: "density",
        x_range: padded_range(lo, hi, 0.02),
        y_range: (0.0, top * headroom),
        x_ticks: XTicks::Auto,
        y_ticks: None,
    });
    render_best(style, layouts, &mut painter)
}

/// [`score_histograms_figure`] at [`PlotStyle::default`], written as a PNG
/// to `path` (parent directories are created).
pub fn score_histograms_png(
    series: &[HistogramSeries],
    bins: usize,
    title: &str,
    x_label: &str,
    path: impl AsRef<Path>,
) -> PlotResult<()> {
    score_histograms_figure(series, bins, title, x_label, &PlotStyle::default())?.save(path)
}
