//! Line plots with markers, e.g. robust accuracy against the attack budget
//! ε, or training curves.

use std::path::Path;

use super::axes::{
    draw_axes, draw_axis_lines, draw_legend, marker_radius, AxesSpec, LegendEntry, Swatch, XAxis,
};
use super::draw::{draw_line, draw_marker, Marker};
use super::{
    check_series_finite, check_series_nonempty, padded_range, series_color, Figure, PlotError,
    PlotStyle,
};
use crate::error::Result;

/// One curve of a line plot.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSeries {
    /// Legend text.
    pub label: String,
    /// `(x, y)` points, joined in the given order (all finite, at least one).
    pub points: Vec<(f64, f64)>,
}

impl LineSeries {
    /// A series from a label and points.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
        }
    }
}

/// Renders each series as a line through its points in order, in
/// [`series_color`]`(i)`, with a [`Marker::for_series`]`(i)` marker at every
/// point (markers are left out for a series with more points than its
/// markers would have room for, e.g. long training curves). Both ranges are
/// fitted to the data with a 5 % margin (more at the top when the legend
/// would otherwise hide a curve); the legend names the series.
///
/// Errors if `series` is empty, a series has no points or a non-finite
/// coordinate, or `style` is invalid.
pub fn line_plot_figure(
    series: &[LineSeries],
    title: &str,
    x_label: &str,
    y_label: &str,
    style: &PlotStyle,
) -> Result<Figure> {
    style.validate()?;
    crate::error::check_min_len("series", series.len(), 1)?;
    for (i, s) in series.iter().enumerate() {
        check_series_nonempty("series", i, &s.label, "points", s.points.len())?;
        let coords = s.points.iter().flat_map(|&(x, y)| [x, y]);
        check_series_finite("series", i, &s.label, "points (x, y flattened)", coords)?;
    }
    let all = || series.iter().flat_map(|s| s.points.iter());
    let fold = |f: fn(&(f64, f64)) -> f64| {
        all()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (x_lo, x_hi) = fold(|p| p.0);
    let (y_lo, y_hi) = fold(|p| p.1);
    let x_range = padded_range(x_lo, x_hi, 0.05);
    let y_base = padded_range(y_lo, y_hi, 0.05);

    let s = style.font_scale;
    let radius = marker_radius(s);
    let thickness = s.max(2);

    let mut best: Option<(Figure, usize)> = None;
    for extra in [0.0, 0.2, 0.45, 0.8] {
        let span = y_base.1 - y_base.0;
        let y_range = (y_base.0, y_base.1 + span * extra);
        let mut img = style.canvas();
        let spec = AxesSpec {
            title,
            x_label,
            y_label,
            x: XAxis::Numeric {
                range: x_range,
                ticks: None,
            },
            y_range,
            y_ticks: None,
        };
        let frame = draw_axes(&mut img, style, &spec)?;
        let room = ((frame.right - frame.left) / (3 * (2 * i64::from(radius) + 1))).max(1) as usize;
        let mut legend = Vec::with_capacity(series.len());
        for (i, ser) in series.iter().enumerate() {
            let color = series_color(i);
            let pixels: Vec<(i64, i64)> = ser.points.iter().map(|&(x, y)| frame.px(x, y)).collect();
            for pair in pixels.windows(2) {
                draw_line(&mut img, pair[0], pair[1], thickness, color);
            }
            let marker = (ser.points.len() <= room || ser.points.len() == 1)
                .then_some(Marker::for_series(i));
            if let Some(m) = marker {
                for &(x, y) in &pixels {
                    draw_marker(&mut img, x, y, radius, m, color);
                }
            }
            legend.push(LegendEntry {
                label: ser.label.clone(),
                color,
                swatch: Swatch::Line(marker),
            });
        }
        draw_axis_lines(&mut img, &frame, s);
        let (_, cost) = draw_legend(&mut img, &frame, s, &legend, &[]);
        if best.as_ref().is_none_or(|(_, c)| cost < *c) {
            best = Some((Figure { image: img, frame }, cost));
        }
        if cost == 0 {
            break;
        }
    }
    Ok(best.expect("at least one attempt").0)
}

/// [`line_plot_figure`] at [`PlotStyle::default`], written as a PNG to
/// `path` (parent directories are created).
pub fn line_plot_png(
    series: &[LineSeries],
    title: &str,
    x_label: &str,
    y_label: &str,
    path: impl AsRef<Path>,
) -> std::result::Result<(), PlotError> {
    line_plot_figure(series, title, x_label, y_label, &PlotStyle::default())?.save(path)
}
