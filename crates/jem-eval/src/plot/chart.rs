//! What every plot shares: the bundled font, the page layout (title, axis
//! labels and tick labels sized to their text), the legend in the corner
//! where it hides the least data, and plotters' pixels handed over as a
//! [`Figure`].

use std::ops::Range;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::MultiLineText;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::canvas::Canvas;
use super::{Figure, Frame, PlotError, PlotResult, PlotStyle, FONT_FAMILY};
use super::{AXIS_COLOR, BACKGROUND, GRID_COLOR, LEGEND_BORDER, TEXT_COLOR};
use crate::error::EvalError;

/// DejaVu Sans 2.37 (see `fonts/LICENSE`).
pub(super) static FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

/// Registers the bundled font with plotters (which measures text with it)
/// once per process.
fn register_font() -> PlotResult<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    ok.then_some(())
        .ok_or_else(|| PlotError::Draw("the bundled fonts/DejaVuSans.ttf is unreadable".into()))
}

/// plotters' colour for an `image` pixel colour.
pub(super) fn rgb(c: image::Rgb<u8>) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Text in the bundled font at `size` pixels, in the text colour.
pub(super) fn text_style(size: f64) -> TextStyle<'static> {
    (FONT_FAMILY, size).into_font().color(&rgb(TEXT_COLOR))
}

/// Maps a plotters error (drawing or font) to [`PlotError::Draw`].
pub(super) fn drawn<T, E: std::fmt::Display>(result: Result<T, E>) -> PlotResult<T> {
    result.map_err(|e| PlotError::Draw(e.to_string()))
}

/// The text sizes of one figure, in pixels.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fonts {
    /// Title.
    pub title: f64,
    /// Axis labels.
    pub label: f64,
    /// Tick labels, bar values and the legend.
    pub small: f64,
    /// Width of the legend's swatch column (swatch and the gap after it).
    pub swatch: i32,
    /// Width of a drawn swatch.
    pub mark: i32,
}

/// An `f64` axis with the ticks we chose, and no minor grid lines.
pub(super) struct Ticked(RangedCoordf64, Vec<f64>);

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.0.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.1.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.0.range()
    }
}

/// The chart every plot draws on: borrowed for `'a` from a drawing area on
/// a pixel buffer borrowed for `'b`.
pub(super) type Chart<'a, 'b> = ChartContext<'a, Canvas<'b>, Cartesian2d<Ticked, Ticked>>;

/// How the x axis is labelled.
pub(super) enum XTicks<'a> {
    /// Round values chosen by plotters.
    Auto,
    /// These values.
    Fixed(Vec<f64>),
    /// Category `k` is centred on `k + 0.5` of the range `[0, n]`.
    Categories(&'a [String]),
}

/// Titles, ranges and ticks of one figure (`y_ticks: None`: plotters' round values).
pub(super) struct Layout<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub x_ticks: XTicks<'a>,
    pub y_ticks: Option<Vec<f64>>,
}

/// A pixel rectangle `[x0, x1] × [y0, y1]` covered by data, which the
/// legend should avoid.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ink([i64; 4]);

impl Ink {
    /// The pixels of the data rectangle with corners `a` and `b`.
    pub fn rect(frame: &Frame, a: (f64, f64), b: (f64, f64)) -> Self {
        let (a, b) = (frame.px(a.0, a.1), frame.px(b.0, b.1));
        Self([a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1)])
    }

    /// The pixels from `(x0, y0)` to `(x1, y1)`.
    pub fn pixels((x0, y0): (i64, i64), (x1, y1): (i64, i64)) -> Self {
        Self([x0, y0, x1, y1])
    }

    /// The pixels within `r` of `(x, y)`.
    pub fn around((x, y): (i64, i64), r: i64) -> Self {
        Self([x - r, y - r, x + r, y + r])
    }

    /// Squares of half-size `r` every few pixels along the polyline.
    pub fn polyline(frame: &Frame, points: &[(f64, f64)], r: i64) -> Vec<Self> {
        let px: Vec<(f64, f64)> = points
            .iter()
            .map(|&(x, y)| (frame.x_px(x), frame.y_px(y)))
            .collect();
        let mut out = vec![Self::around(frame.px(points[0].0, points[0].1), r)];
        for w in px.windows(2) {
            let ((xa, ya), (xb, yb)) = (w[0], w[1]);
            let steps = ((xb - xa).hypot(yb - ya) / 3.0).ceil().max(1.0) as usize;
            out.extend((1..=steps).map(|k| {
                let t = k as f64 / steps as f64;
                let at = (xa + t * (xb - xa), ya + t * (yb - ya));
                Self::around((at.0.round() as i64, at.1.round() as i64), r)
            }));
        }
        out
    }

    fn area(&self) -> i64 {
        (self.0[2] - self.0[0] + 1).max(0) * (self.0[3] - self.0[1] + 1).max(0)
    }

    fn overlap(&self, o: &Self) -> i64 {
        let w = self.0[2].min(o.0[2]) - self.0[0].max(o.0[0]) + 1;
        let h = self.0[3].min(o.0[3]) - self.0[1].max(o.0[1]) + 1;
        w.max(0) * h.max(0)
    }
}

/// What a figure's painter did: where its data is, and the labels it gave
/// its series, in order (none: no legend).
pub(super) struct Painted {
    pub ink: Vec<Ink>,
    pub legend: Vec<String>,
}

/// Draws the series of one figure on its chart.
pub(super) trait Painter {
    /// Draws and labels the series; `frame` maps data to pixels.
    fn paint<'a, 'b: 'a>(
        &mut self,
        chart: &mut Chart<'a, 'b>,
        frame: &Frame,
        fonts: &Fonts,
    ) -> PlotResult<Painted>;
}

/// A legend swatch: a filled bar, centred on the legend line.
pub(super) fn swatch(
    fonts: &Fonts,
    style: ShapeStyle,
) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    let (w, h) = (fonts.mark, (0.3 * fonts.small).round() as i32);
    move |(x, y)| Rectangle::new([(x, y - h), (x + w, y + h)], style)
}

/// Renders the layouts in turn (e.g. with growing headroom above the data)
/// until the legend hides no data and no data sticks out of the plot area,
/// and returns the figure where the least does.
pub(super) fn render_best<'a>(
    style: &PlotStyle,
    layouts: impl IntoIterator<Item = Layout<'a>>,
    painter: &mut impl Painter,
) -> PlotResult<Figure> {
    let mut best: Option<(Figure, i64)> = None;
    for layout in layouts {
        let (figure, cost) = render(style, &layout, painter)?;
        if best.as_ref().is_none_or(|(_, c)| cost < *c) {
            best = Some((figure, cost));
        }
        if cost == 0 {
            break;
        }
    }
    best.map(|(figure, _)| figure)
        .ok_or_else(|| PlotError::Draw("no layout to render".into()))
}

/// Renders one layout; returns the figure and how many data pixels its
/// legend hides or fall outside the plot area.
pub(super) fn render(
    style: &PlotStyle,
    layout: &Layout<'_>,
    painter: &mut impl Painter,
) -> PlotResult<(Figure, i64)> {
    style.validate()?;
    register_font()?;
    let size = f64::from(style.font_size);
    let fonts = Fonts {
        title: 1.25 * size,
        label: size,
        small: 0.9 * size,
        swatch: (2.4 * size).round() as i32,
        mark: (1.8 * size).round() as i32,
    };
    let (w, h) = (style.width, style.height);
    let mut buffer = vec![0u8; w as usize * h as usize * 3];
    let (frame, cost) = {
        let root = Canvas(BitMapBackend::with_buffer(&mut buffer, (w, h))).into_drawing_area();
        drawn(root.fill(&rgb(BACKGROUND)))?;
        let result = draw_page(&root, style, &fonts, layout, painter)?;
        drawn(root.present())?;
        result
    };
    let image = image::RgbImage::from_raw(w, h, buffer)
        .ok_or_else(|| PlotError::Draw("plotters returned a buffer of the wrong size".into()))?;
    Ok((Figure { image, frame }, cost))
}

type Root<'b> = DrawingArea<Canvas<'b>, Shift>;

fn text_width(root: &Root<'_>, text: &str, size: f64) -> PlotResult<i64> {
    Ok(i64::from(
        drawn(root.estimate_text_size(text, &text_style(size)))?.0,
    ))
}

/// The largest size in `[min, size]` (in 5 % steps) at which `text` is at
/// most `room` wide.
fn fitting_size(root: &Root<'_>, text: &str, size: f64, min: f64, room: i64) -> PlotResult<f64> {
    let mut s = size;
    while s > min && text_width(root, text, s)? > room {
        s = (s * 0.95).max(min);
    }
    Ok(s)
}

/// `text`, cut with an ellipsis until it is at most `room` wide at `size`.
fn cut_to_fit(root: &Root<'_>, text: &str, size: f64, room: i64) -> PlotResult<String> {
    let mut chars: Vec<char> = text.chars().collect();
    let mut fitted = text.to_string();
    while !chars.is_empty() && text_width(root, &fitted, size)? > room {
        chars.pop();
        fitted = chars.iter().collect::<String>().trim_end().to_string() + "…";
    }
    Ok(fitted)
}

fn draw_page(
    root: &Root<'_>,
    style: &PlotStyle,
    fonts: &Fonts,
    layout: &Layout<'_>,
    painter: &mut impl Painter,
) -> PlotResult<(Frame, i64)> {
    let (w, h) = (i64::from(style.width), i64::from(style.height));
    let em = i64::from(style.font_size);
    let auto = |(lo, hi): (f64, f64), n: i64| {
        RangedCoordf64::from(lo..hi).key_points(n.clamp(2, 10) as usize)
    };
    let y_ticks = layout
        .y_ticks
        .clone()
        .unwrap_or_else(|| auto(layout.y_range, h / (3 * em)));
    let (x_ticks, mut x_labels) = match &layout.x_ticks {
        XTicks::Auto => {
            let ticks = auto(layout.x_range, w / (6 * em));
            let labels = tick_labels(&ticks);
            (ticks, labels)
        }
        XTicks::Fixed(ticks) => (ticks.clone(), tick_labels(ticks)),
        XTicks::Categories(names) => (
            (0..names.len()).map(|k| k as f64 + 0.5).collect(),
            names.to_vec(),
        ),
    };
    let y_labels = tick_labels(&y_ticks);
    let mut y_label_width = 0;
    for label in &y_labels {
        y_label_width = y_label_width.max(text_width(root, label, fonts.small)?);
    }

    // Margins, label areas and the title, all sized to their text.
    let margin = (0.6 * fonts.label).round() as i64;
    let last_x = x_labels
        .last()
        .map_or(Ok(0), |l| text_width(root, l, fonts.small))?;
    let right = margin.max(last_x / 2 + 2);
    let room_for = |label: &str, factor: f64| {
        if label.is_empty() {
            0
        } else {
            (factor * fonts.label) as i64
        }
    };
    let y_area = y_label_width + margin + room_for(layout.y_label, 1.5);
    let x_area = (1.6 * fonts.small) as i64 + room_for(layout.x_label, 1.4);
    let title_size = fitting_size(root, layout.title, fonts.title, fonts.label, w - 2 * margin)?;
    let title = cut_to_fit(root, layout.title, title_size, w - 2 * margin)?;
    let title_h = if title.is_empty() {
        0
    } else {
        (1.2 * title_size) as i64 + 5
    };
    let (plot_w, plot_h) = (
        w - margin - y_area - right,
        h - 2 * margin - title_h - x_area,
    );
    if plot_w < 3 * em || plot_h < 3 * em {
        return Err(EvalError::InvalidParameter {
            arg: "style",
            value: format!(
                "{}x{} pixels with {em}-pixel text ({plot_w}x{plot_h} left for the data)",
                style.width, style.height
            ),
            reason: "the plot area must be at least 3 text heights wide and high",
        }
        .into());
    }

    // Category names share one size, the largest down to 75 % at which
    // they fit their slots; longer ones are cut.
    let mut x_size = fonts.small;
    if let XTicks::Categories(_) = layout.x_ticks {
        let slot = plot_w / x_labels.len() as i64 - 4;
        for label in &x_labels {
            x_size = x_size.min(fitting_size(
                root,
                label,
                fonts.small,
                0.75 * fonts.small,
                slot,
            )?);
        }
        for label in &mut x_labels {
            *label = cut_to_fit(root, label, x_size, slot)?;
        }
    }

    let mut builder = ChartBuilder::on(root);
    builder
        .margin_top(margin as i32)
        .margin_left(margin as i32)
        .margin_right(right as i32)
        .margin_bottom(margin as i32)
        .x_label_area_size(x_area as i32)
        .y_label_area_size(y_area as i32);
    if !title.is_empty() {
        builder.caption(&title, text_style(title_size));
    }
    let axis =
        |(lo, hi): (f64, f64), ticks: &[f64]| Ticked(RangedCoordf64::from(lo..hi), ticks.to_vec());
    let mut chart = drawn(builder.build_cartesian_2d(
        axis(layout.x_range, &x_ticks),
        axis(layout.y_range, &y_ticks),
    ))?;

    let label_of = |ticks: &[f64], labels: &[String], v: f64| {
        let i = ticks
            .iter()
            .position(|t| (t - v).abs() <= 1e-9 * (1.0 + t.abs()));
        i.map_or_else(String::new, |i| labels[i].clone())
    };
    let x_formatter = |v: &f64| label_of(&x_ticks, &x_labels, *v);
    let y_formatter = |v: &f64| label_of(&y_ticks, &y_labels, *v);
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(rgb(GRID_COLOR))
        .light_line_style(TRANSPARENT)
        .axis_style(rgb(AXIS_COLOR))
        .x_labels(x_ticks.len())
        .y_labels(y_ticks.len())
        .x_label_style(text_style(x_size))
        .y_label_style(text_style(fonts.small))
        .x_label_formatter(&x_formatter)
        .y_label_formatter(&y_formatter)
        .axis_desc_style(text_style(fonts.label))
        .set_all_tick_mark_size(4);
    if !layout.x_label.is_empty() {
        mesh.x_desc(layout.x_label);
    }
    if !layout.y_label.is_empty() {
        mesh.y_desc(layout.y_label);
    }
    if let XTicks::Categories(_) = layout.x_ticks {
        mesh.disable_x_mesh();
    }
    drawn(mesh.draw())?;

    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let frame = Frame {
        left: i64::from(xs.start),
        right: i64::from(xs.end - 1),
        top: i64::from(ys.start),
        bottom: i64::from(ys.end - 1),
        x_range: layout.x_range,
        y_range: layout.y_range,
    };
    let painted = painter.paint(&mut chart, &frame, fonts)?;
    // Data (e.g. a bar's value label) sticking out of the plot area costs
    // as much as data hidden by the legend.
    let inside = Ink([frame.left, frame.top, frame.right, frame.bottom]);
    let outside: i64 = painted
        .ink
        .iter()
        .map(|i| i.area() - i.overlap(&inside))
        .sum();
    let hidden = match painted.legend.is_empty() {
        true => 0,
        false => draw_legend(&mut chart, &frame, fonts, &painted)?,
    };
    Ok((frame, outside + hidden))
}

/// Draws the legend in the corner where it covers the fewest data pixels
/// (preferring the top right, then the top left); returns how many it
/// covers there.
fn draw_legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    frame: &Frame,
    fonts: &Fonts,
    painted: &Painted,
) -> PlotResult<i64> {
    let style = text_style(fonts.small);
    let mut text = MultiLineText::<(i32, i32), &str>::new((0, 0), &style);
    painted
        .legend
        .iter()
        .for_each(|line| text.push_line(line.as_str()));
    let (tw, th) = drawn(text.estimate_dimension())?;
    let margin = (0.5 * fonts.small).round() as i32;
    let (bw, bh) = (
        i64::from(tw + fonts.swatch + 2 * margin),
        i64::from(th + 2 * margin),
    );
    let (x_left, x_right) = (frame.left + 5, frame.right + 1 - bw - 5);
    let (y_top, y_bottom) = (frame.top + 5, frame.bottom + 1 - bh - 5);
    let (position, cost) = [
        (SeriesLabelPosition::UpperRight, x_right, y_top),
        (SeriesLabelPosition::UpperLeft, x_left, y_top),
        (SeriesLabelPosition::LowerRight, x_right, y_bottom),
        (SeriesLabelPosition::LowerLeft, x_left, y_bottom),
    ]
    .into_iter()
    .map(|(position, x, y)| {
        let area = Ink([x - 3, y - 3, x + bw + 3, y + bh + 3]);
        (
            position,
            painted.ink.iter().map(|i| i.overlap(&area)).sum::<i64>(),
        )
    })
    .min_by_key(|&(_, cost)| cost)
    .expect("four corners");
    drawn(
        chart
            .configure_series_labels()
            .position(position)
            .margin(margin)
            .legend_area_size(fonts.swatch)
            .label_font(style.clone())
            .background_style(WHITE.mix(0.9))
            .border_style(rgb(LEGEND_BORDER))
            .draw(),
    )?;
    Ok(cost)
}

/// Labels of evenly spaced ticks, with as many decimals as their spacing
/// needs (at most 6): `0.0 0.2 … 1.0`, `-1200`, `0.005`.
fn tick_labels(ticks: &[f64]) -> Vec<String> {
    let step = match ticks {
        [a, b, ..] => (b - a).abs(),
        _ => 1.0,
    };
    let decimals = (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() <= 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6);
    // Rounding noise around 0 prints as 0, never "-0.0".
    let tidy = |v: f64| if v.abs() < step * 1e-9 { 0.0 } else { v };
    ticks
        .iter()
        .map(|&v| format!("{:.decimals$}", tidy(v)))
        .collect()
}

/// A single value with three significant digits, compactly: `0.912`,
/// `12.5`, `1234`, `1.5e6`, `4.5e-4`.
///
/// # Examples
///
/// ```
/// use jem_eval::plot::format_value;
///
/// assert_eq!(format_value(0.9123), "0.912");
/// assert_eq!(format_value(-1234.4), "-1234");
/// assert_eq!(format_value(1.5e6), "1.5e6");
/// assert_eq!(format_value(4.5e-4), "4.5e-4");
/// ```
pub fn format_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    let s = if (-3..5).contains(&magnitude) {
        format!("{v:.*}", (2 - magnitude).max(0) as usize)
    } else {
        format!("{v:.2e}")
    };
    let (mantissa, exponent) = s
        .split_once('e')
        .map_or((s.as_str(), None), |(m, e)| (m, Some(e)));
    let mantissa = match mantissa.contains('.') {
        true => mantissa.trim_end_matches('0').trim_end_matches('.'),
        false => mantissa,
    };
    match exponent {
        Some(e) => format!("{mantissa}e{e}"),
        None => mantissa.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::tick_labels;

    #[test]
    fn tick_labels_have_the_decimals_of_their_spacing() {
        let labels = tick_labels(&[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(tick_labels(&[-1200.0, -1000.0]), ["-1200", "-1000"]);
        assert_eq!(tick_labels(&[0.0, 2.5, 5.0]), ["0.0", "2.5", "5.0"]);
        assert_eq!(
            tick_labels(&[0.0, 0.005, 0.01]),
            ["0.000", "0.005", "0.010"]
        );
        // Rounding noise from the tick arithmetic does not show.
        assert_eq!(
            tick_labels(&[0.1, 0.2, 0.30000000000000004]),
            ["0.1", "0.2", "0.3"]
        );
        assert_eq!(tick_labels(&[-1e-17, 0.5]), ["0.0", "0.5"]);
        assert_eq!(tick_labels(&[3.0]), ["3"]);
    }
}
