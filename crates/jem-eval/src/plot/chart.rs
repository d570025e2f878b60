//! What every plot shares: the bundled font, the page layout (title, axis
//! labels and tick labels sized to their text), compact tick labels, the
//! legend in the corner where it hides the least data, and the hand-over of
//! plotters' pixels as a [`Figure`].

use std::ops::Range;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::element::MultiLineText;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::canvas::Canvas;
use super::{
    Figure, Frame, PlotError, PlotResult, PlotStyle, AXIS_COLOR, BACKGROUND, FONT_FAMILY,
    GRID_COLOR, LEGEND_BORDER, TEXT_COLOR,
};
use crate::error::EvalError;

/// DejaVu Sans 2.37 (see `fonts/LICENSE`).
pub(super) static FONT: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

/// Registers the bundled font with plotters once per process.
fn register_font() -> PlotResult<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Draw(
            "the bundled font fonts/DejaVuSans.ttf could not be parsed".into(),
        ))
    }
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

impl Fonts {
    fn of(style: &PlotStyle) -> Self {
        let size = f64::from(style.font_size);
        Self {
            title: 1.25 * size,
            label: size,
            small: 0.9 * size,
            swatch: (2.4 * size).round() as i32,
            mark: (1.8 * size).round() as i32,
        }
    }
}

/// An `f64` axis with ticks chosen by us (plotters' own algorithm for
/// numeric axes, or category centres), and no minor grid lines.
pub(super) struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// The chart type every plot draws on: borrowed for `'a` from a drawing
/// area on a pixel buffer borrowed for `'b`.
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

/// Titles, ranges and ticks of one figure.
pub(super) struct Layout<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub x_ticks: XTicks<'a>,
    /// `None`: round values chosen by plotters.
    pub y_ticks: Option<Vec<f64>>,
}

/// A pixel rectangle `[x0, x1] × [y0, y1]` covered by data, which the
/// legend should avoid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ink {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
}

impl Ink {
    /// The pixels of the data rectangle `[x0, x1] × [y0, y1]`.
    pub fn rect(frame: &Frame, (x0, y0): (f64, f64), (x1, y1): (f64, f64)) -> Self {
        let (a, b) = (frame.px(x0, y0), frame.px(x1, y1));
        Self {
            x0: a.0.min(b.0),
            y0: a.1.min(b.1),
            x1: a.0.max(b.0),
            y1: a.1.max(b.1),
        }
    }

    /// Small squares every few pixels along the polyline through `points`.
    pub fn polyline(frame: &Frame, points: &[(f64, f64)], radius: i64) -> Vec<Self> {
        let pixels: Vec<(f64, f64)> = points
            .iter()
            .map(|&(x, y)| (frame.x_px(x), frame.y_px(y)))
            .collect();
        let mut out = Vec::new();
        let mut dot = |x: f64, y: f64| {
            let (x, y) = (x.round() as i64, y.round() as i64);
            out.push(Self {
                x0: x - radius,
                y0: y - radius,
                x1: x + radius,
                y1: y + radius,
            });
        };
        for &(x, y) in pixels.iter().take(1) {
            dot(x, y);
        }
        for pair in pixels.windows(2) {
            let ((xa, ya), (xb, yb)) = (pair[0], pair[1]);
            let steps = ((xb - xa).hypot(yb - ya) / 3.0).ceil().max(1.0) as usize;
            for k in 1..=steps {
                let t = k as f64 / steps as f64;
                dot(xa + t * (xb - xa), ya + t * (yb - ya));
            }
        }
        out
    }

    fn overlap(&self, other: &Self) -> i64 {
        let w = self.x1.min(other.x1) - self.x0.max(other.x0) + 1;
        let h = self.y1.min(other.y1) - self.y0.max(other.y0) + 1;
        w.max(0) * h.max(0)
    }
}

/// What a figure's series painter did: where its data is, and the labels it
/// gave its series (in order; none means no legend).
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

/// A legend swatch: a filled bar of the swatch width, centred on the line.
pub(super) fn swatch(
    fonts: &Fonts,
    style: ShapeStyle,
) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    let (w, h) = (fonts.mark, (0.3 * fonts.small).round() as i32);
    move |(x, y)| Rectangle::new([(x, y - h), (x + w, y + h)], style)
}

/// Renders `layout` and `painter` into a figure of `style`'s size, with the
/// legend in the corner of least overlap; returns that overlap (in pixels)
/// too, so callers can retry with more headroom.
pub(super) fn render(
    style: &PlotStyle,
    layout: &Layout<'_>,
    painter: &mut impl Painter,
) -> PlotResult<(Figure, i64)> {
    style.validate()?;
    register_font()?;
    let fonts = Fonts::of(style);
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

/// Renders the layouts in turn (e.g. with growing headroom above the data)
/// until the legend hides no data, and returns the figure whose legend hides
/// the least.
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

type Root<'b> = DrawingArea<Canvas<'b>, plotters::coord::Shift>;

fn text_width(root: &Root<'_>, text: &str, size: f64) -> PlotResult<i64> {
    if text.is_empty() {
        return Ok(0);
    }
    Ok(i64::from(
        drawn(root.estimate_text_size(text, &text_style(size)))?.0,
    ))
}

/// `text` at the largest size in `[min, size]` (in steps of 5 %) whose width
/// is at most `room`; at `min`, cut with an ellipsis until it fits.
fn fit_text(
    root: &Root<'_>,
    text: &str,
    size: f64,
    min: f64,
    room: i64,
) -> PlotResult<(String, f64)> {
    let mut s = size;
    while s > min && text_width(root, text, s)? > room {
        s = (s * 0.95).max(min);
    }
    let mut fitted = text.to_string();
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() && text_width(root, &fitted, s)? > room {
        chars.pop();
        fitted = chars.iter().collect::<String>().trim_end().to_string() + "…";
    }
    Ok((fitted, s))
}

fn cramped(style: &PlotStyle, why: String) -> PlotError {
    PlotError::Input(EvalError::InvalidParameter {
        arg: "style",
        value: format!(
            "{}x{} pixels with {}-pixel text ({why})",
            style.width, style.height, style.font_size
        ),
        reason: "the plot area must be at least 3 text heights wide and high",
    })
}

fn draw_page(
    root: &Root<'_>,
    style: &PlotStyle,
    fonts: &Fonts,
    layout: &Layout<'_>,
    painter: &mut impl Painter,
) -> PlotResult<(Frame, i64)> {
    let (w, h) = (i64::from(style.width), i64::from(style.height));
    let size = f64::from(style.font_size);
    let auto = |(lo, hi): (f64, f64), n: usize| RangedCoordf64::from(lo..hi).key_points(n);

    let y_ticks = layout.y_ticks.clone().unwrap_or_else(|| {
        auto(
            layout.y_range,
            (h / (3 * i64::from(style.font_size))).clamp(2, 10) as usize,
        )
    });
    let y_labels = tick_labels(&y_ticks);
    let mut y_label_width = 0;
    for label in &y_labels {
        y_label_width = y_label_width.max(text_width(root, label, fonts.small)?);
    }

    let (x_ticks, mut x_labels, mut x_tick_size) = match &layout.x_ticks {
        XTicks::Auto => {
            let ticks = auto(
                layout.x_range,
                (w / (6 * i64::from(style.font_size))).clamp(2, 10) as usize,
            );
            let labels = tick_labels(&ticks);
            (ticks, labels, fonts.small)
        }
        XTicks::Fixed(ticks) => (ticks.clone(), tick_labels(ticks), fonts.small),
        XTicks::Categories(names) => (
            (0..names.len()).map(|k| k as f64 + 0.5).collect(),
            names.to_vec(),
            fonts.small,
        ),
    };

    let margin = (0.6 * size).round() as i64;
    let last_x_label = x_labels
        .last()
        .map_or(Ok(0), |l| text_width(root, l, x_tick_size))?;
    let right = margin.max(last_x_label / 2 + 2);
    let y_area = y_label_width
        + (0.6 * size) as i64
        + if layout.y_label.is_empty() {
            0
        } else {
            (1.5 * fonts.label) as i64
        };
    let x_area = (1.6 * fonts.small) as i64
        + if layout.x_label.is_empty() {
            0
        } else {
            (1.4 * fonts.label) as i64
        };

    let (title, title_size) =
        fit_text(root, layout.title, fonts.title, fonts.label, w - 2 * margin)?;
    let title_h = if title.is_empty() {
        0
    } else {
        (1.2 * title_size) as i64 + 5
    };
    let plot_w = w - margin - y_area - right;
    let plot_h = h - margin - title_h - x_area - margin;
    let min = 3 * i64::from(style.font_size);
    if plot_w < min || plot_h < min {
        return Err(cramped(
            style,
            format!("{plot_w}x{plot_h} pixels left for the data"),
        ));
    }

    if let XTicks::Categories(_) = layout.x_ticks {
        // Shrink category names, then cut them, to fit their slots.
        let slot = plot_w / x_labels.len() as i64 - 4;
        let mut smallest = x_tick_size;
        for label in &x_labels {
            smallest =
                smallest.min(fit_text(root, label, x_tick_size, 0.75 * fonts.small, slot)?.1);
        }
        x_tick_size = smallest;
        for label in &mut x_labels {
            *label = fit_text(root, label, x_tick_size, x_tick_size, slot)?.0;
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
    let axis = |(lo, hi): (f64, f64), ticks: Vec<f64>| Ticked {
        inner: RangedCoordf64::from(lo..hi),
        ticks,
    };
    let mut chart = drawn(builder.build_cartesian_2d(
        axis(layout.x_range, x_ticks.clone()),
        axis(layout.y_range, y_ticks.clone()),
    ))?;

    let label_of = |ticks: &[f64], labels: &[String], v: f64| {
        ticks
            .iter()
            .position(|t| (t - v).abs() <= 1e-9 * (1.0 + t.abs()))
            .map_or_else(String::new, |i| labels[i].clone())
    };
    let x_formatter = |v: &f64| label_of(&x_ticks, &x_labels, *v);
    let y_formatter = |v: &f64| label_of(&y_ticks, &y_labels, *v);
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(rgb(GRID_COLOR))
        .light_line_style(TRANSPARENT)
        .axis_style(rgb(AXIS_COLOR))
        .x_labels(x_ticks.len())
        .y_labels(y_ticks.len())
        .x_label_style(text_style(x_tick_size))
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
    let cost = if painted.legend.is_empty() {
        0
    } else {
        draw_legend(&mut chart, &frame, fonts, &painted.legend, &painted.ink)?
    };
    Ok((frame, cost))
}

/// Draws the legend of the labelled series in the corner where it covers
/// the fewest data pixels (preferring the top right, then the top left);
/// returns how many it covers there.
fn draw_legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    frame: &Frame,
    fonts: &Fonts,
    lines: &[String],
    ink: &[Ink],
) -> PlotResult<i64> {
    let style = text_style(fonts.small);
    let mut text = MultiLineText::<(i32, i32), &str>::new((0, 0), &style);
    for line in lines {
        text.push_line(line.as_str());
    }
    let (tw, th) = drawn(text.estimate_dimension())?;
    let margin = (0.5 * fonts.small).round() as i32;
    let (bw, bh) = (
        i64::from(tw + fonts.swatch + 2 * margin),
        i64::from(th + 2 * margin),
    );
    let (left, top, right, bottom) = (frame.left, frame.top, frame.right + 1, frame.bottom + 1);
    let candidates = [
        (SeriesLabelPosition::UpperRight, right - bw - 5, top + 5),
        (SeriesLabelPosition::UpperLeft, left + 5, top + 5),
        (
            SeriesLabelPosition::LowerRight,
            right - bw - 5,
            bottom - bh - 5,
        ),
        (SeriesLabelPosition::LowerLeft, left + 5, bottom - bh - 5),
    ];
    let (position, cost) = candidates
        .into_iter()
        .map(|(position, x, y)| {
            let area = Ink {
                x0: x - 3,
                y0: y - 3,
                x1: x + bw + 3,
                y1: y + bh + 3,
            };
            (position, ink.iter().map(|i| i.overlap(&area)).sum::<i64>())
        })
        .min_by_key(|&(_, cost)| cost)
        .expect("four candidates");
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

/// Number of decimals (up to 6) that `x` needs to be written exactly, up to
/// a relative rounding error.
fn decimals_needed(x: f64) -> usize {
    let x = x.abs();
    (0..=6)
        .find(|&d| {
            let scaled = x * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() <= 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6)
}

/// `m.mme±x` with `decimals` mantissa decimals, trailing zeros trimmed
/// (`-1.2e3`, `5e-4`).
fn scientific(v: f64, decimals: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let mut exp = v.abs().log10().floor() as i32;
    let mut mantissa = v / 10f64.powi(exp);
    // Rounding may carry the mantissa to 10.
    if (mantissa.abs() * 10f64.powi(decimals as i32)).round() >= 10f64.powi(decimals as i32 + 1) {
        exp += 1;
        mantissa /= 10.0;
    }
    let mantissa = format!("{mantissa:.decimals$}");
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        &mantissa
    };
    format!("{mantissa}e{exp}")
}

/// Labels for evenly spaced ticks: fixed-point with as many decimals as the
/// spacing needs (`0.0 0.2 … 1.0`, `-1200`, `12.5`), or compact scientific
/// notation (`-1.2e4`, `5e-4`) when the magnitudes reach 1e5 or stay below
/// 1e-3. A lone tick is written with [`format_value`].
///
/// # Examples
///
/// ```
/// use jem_eval::plot::tick_labels;
///
/// assert_eq!(tick_labels(&[0.0, 0.25, 0.5]), ["0.00", "0.25", "0.50"]);
/// assert_eq!(tick_labels(&[-1400.0, -1200.0]), ["-1400", "-1200"]);
/// assert_eq!(tick_labels(&[0.0, 1e5, 2e5]), ["0", "1e5", "2e5"]);
/// ```
pub fn tick_labels(ticks: &[f64]) -> Vec<String> {
    if ticks.len() < 2 {
        return ticks.iter().map(|&v| format_value(v)).collect();
    }
    let step = (ticks[1] - ticks[0]).abs();
    let max_abs = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let decimals = decimals_needed(step);
    let scientific_needed = max_abs >= 1e5 || (max_abs > 0.0 && max_abs < 1e-3) || decimals > 4;
    ticks
        .iter()
        .map(|&v| {
            if v.abs() < step * 1e-9 {
                // Exactly zero, whatever rounding left (and never "-0").
                if scientific_needed {
                    "0".into()
                } else {
                    format!("{:.decimals$}", 0.0)
                }
            } else if scientific_needed {
                let exp = v.abs().log10().floor() as i32;
                scientific(v, decimals_needed(step / 10f64.powi(exp)).min(3))
            } else {
                format!("{v:.decimals$}")
            }
        })
        .collect()
}

/// A single value with three significant digits, compactly: `0.912`,
/// `12.5`, `1234`, `1.23e6`, `4.5e-4`.
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
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-3..5).contains(&magnitude) {
        return scientific(v, 2);
    }
    let decimals = (2 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
