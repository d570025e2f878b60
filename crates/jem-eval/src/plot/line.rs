//! Line plots with markers, e.g. robust accuracy against the attack budget
//! ε, or training curves.

use std::path::Path;

use plotters::element::ComposedElement;
use plotters::prelude::*;

use super::chart::{drawn, render_best, rgb, Chart, Fonts, Ink, Layout, Painted, Painter, XTicks};
use super::{
    check_nonempty, check_series, min_max, padded_range, series_color, Figure, Frame, PlotResult,
    PlotStyle,
};

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

/// A line with a marker, in pixels relative to the legend line's start.
type LegendEntry<DB> =
    ComposedElement<(i32, i32), DB, PathElement<(i32, i32)>, Polygon<(i32, i32)>>;

/// The legend entry of series `i`: a line across the swatch (`w` pixels)
/// with the series' marker in its middle (see [`draw_markers`]), the marker
/// drawn as one polygon so that every kind has the same type.
fn legend_entry<DB: DrawingBackend>(
    (x, y): (i32, i32),
    i: usize,
    w: i32,
    r: i32,
    color: RGBColor,
    with_marker: bool,
) -> LegendEntry<DB> {
    let line = PathElement::new([(0, 0), (w, 0)], color.stroke_width(2));
    let outline: Vec<(i32, i32)> = match (with_marker, i % 4) {
        (false, _) => Vec::new(),
        (true, 0) => (0..16)
            .map(|k| {
                let a = f64::from(k) * std::f64::consts::PI / 8.0;
                let r = f64::from(r);
                ((r * a.cos()).round() as i32, (r * a.sin()).round() as i32)
            })
            .collect(),
        (true, 1) => vec![(0, -r - 1), (r + 1, r), (-r - 1, r)],
        (true, 2) => vec![(-r, -r), (r, -r), (r, r), (-r, r)],
        // An X about two pixels thick, as plotters' `Cross` of width 2.
        (true, _) => {
            let (a, b) = (r, r - 2);
            vec![
                (-a, -b),
                (-b, -a),
                (0, -2),
                (b, -a),
                (a, -b),
                (2, 0),
                (a, b),
                (b, a),
                (0, 2),
                (-b, a),
                (-a, b),
                (-2, 0),
            ]
        }
    };
    let outline = outline
        .into_iter()
        .map(|(a, b)| (a + w / 2, b))
        .collect::<Vec<_>>();
    EmptyElement::at((x, y)) + line + Polygon::new(outline, color.filled())
}

/// Markers of series `i` at `points`: filled circles, triangles, squares or
/// crosses for `i % 4` = 0, 1, 2, 3; `r` is their half-size in pixels.
fn draw_markers<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    i: usize,
    points: &[(f64, f64)],
    r: i32,
    color: RGBColor,
) -> PlotResult<()> {
    let fill = color.filled();
    let at = points.iter().copied();
    match i % 4 {
        0 => drawn(chart.draw_series(at.map(|p| Circle::new(p, r, fill))))?,
        1 => drawn(chart.draw_series(at.map(|p| TriangleMarker::new(p, r + 1, fill))))?,
        2 => drawn(chart.draw_series(
            at.map(|p| EmptyElement::at(p) + Rectangle::new([(-r, -r), (r, r)], fill)),
        ))?,
        _ => drawn(chart.draw_series(at.map(|p| Cross::new(p, r, color.stroke_width(2)))))?,
    };
    Ok(())
}

/// Draws each series as a line with markers.
struct Lines<'d>(&'d [LineSeries]);

impl Painter for Lines<'_> {
    fn paint<'a, 'b: 'a>(
        &mut self,
        chart: &mut Chart<'a, 'b>,
        frame: &Frame,
        fonts: &Fonts,
    ) -> PlotResult<Painted> {
        let series = self.0;
        let r = (0.3 * fonts.small).round() as i32;
        let room = ((frame.right - frame.left) / (3 * (2 * i64::from(r) + 1))).max(1) as usize;
        let mut ink = Vec::new();
        for (i, s) in series.iter().enumerate() {
            let color = rgb(series_color(i));
            let line = color.stroke_width(2);
            let markers = s.points.len() <= room || s.points.len() == 1;
            ink.extend(Ink::polyline(
                frame,
                &s.points,
                if markers { i64::from(r) } else { 2 },
            ));
            let drawn_line = drawn(chart.draw_series(plotters::series::LineSeries::new(
                s.points.iter().copied(),
                line,
            )))?;
            let w = fonts.mark;
            drawn_line
                .label(s.label.as_str())
                .legend(move |at| legend_entry(at, i, w, r, color, markers));
            if markers {
                draw_markers(chart, i, &s.points, r, color)?;
            }
        }
        Ok(Painted {
            ink,
            legend: series.iter().map(|s| s.label.clone()).collect(),
        })
    }
}

/// Renders each series as a line through its points in order, in
/// [`series_color`]`(i)`, with a marker at every point (a filled circle,
/// triangle, square or cross by series; markers are left out for a series
/// with more points than they have room for, e.g. long training curves).
/// Both ranges are fitted to the data with a 5 % margin (more at the top
/// when the legend would otherwise hide a curve; a y range from 0 when every
/// y is the same); the legend names the series.
///
/// Errors if `series` is empty, a series has no points or a non-finite
/// coordinate, or `style` is invalid.
pub fn line_plot_figure(
    series: &[LineSeries],
    title: &str,
    x_label: &str,
    y_label: &str,
    style: &PlotStyle,
) -> PlotResult<Figure> {
    check_nonempty("series", series.len())?;
    for (i, s) in series.iter().enumerate() {
        let coords = s.points.iter().flat_map(|&(x, y)| [x, y]);
        let entry = ("series", i, s.label.as_str(), "points (x, y flattened)");
        check_series(entry, s.points.len(), coords)?;
    }
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let (x_lo, x_hi) = min_max(all().map(|p| p.0));
    let (y_lo, y_hi) = min_max(all().map(|p| p.1));
    // A flat curve (e.g. accuracy 0 at every ε) is shown against a range
    // from 0, not centred on a band of values it never takes.
    let (y_lo, y_hi) = match (y_lo == y_hi, y_lo) {
        (true, 0.0) => (0.0, 1.0),
        (true, v) if v > 0.0 => (0.0, 2.0 * v),
        (true, v) => (2.0 * v, 0.0),
        (false, _) => (y_lo, y_hi),
    };
    let y_base = padded_range(y_lo, y_hi, 0.05);

    let mut painter = Lines(series);
    let span = y_base.1 - y_base.0;
    let layouts = [0.0, 0.2, 0.45, 0.8].map(|extra| Layout {
        title,
        x_label,
        y_label,
        x_range: padded_range(x_lo, x_hi, 0.05),
        y_range: (y_base.0, y_base.1 + span * extra),
        x_ticks: XTicks::Auto,
        y_ticks: None,
    });
    render_best(style, layouts, &mut painter)
}

/// [`line_plot_figure`] at [`PlotStyle::default`], written as a PNG to
/// `path` (parent directories are created).
pub fn line_plot_png(
    series: &[LineSeries],
    title: &str,
    x_label: &str,
    y_label: &str,
    path: impl AsRef<Path>,
) -> PlotResult<()> {
    line_plot_figure(series, title, x_label, y_label, &PlotStyle::default())?.save(path)
}
