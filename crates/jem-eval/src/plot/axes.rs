//! Axes: tick choice and number formatting, the page layout (title, axis
//! labels, tick labels around a plot area), grid lines and legends.

use image::{Rgb, RgbImage};

use super::draw::{draw_dashed_line, draw_line, draw_marker, fill_rect, stroke_rect, Marker};
use super::font::{draw_text, draw_text_vertical, text_height, text_width, Align, ADVANCE};
use super::{PlotStyle, AXIS_COLOR, BACKGROUND, GRID_COLOR, LEGEND_BORDER, TEXT_COLOR};
use crate::error::{EvalError, Result};

/// Round tick positions covering `[lo, hi]` with about `target` intervals,
/// spaced by 1, 2, 2.5 or 5 times a power of ten. Returns the ticks (all
/// inside `[lo, hi]`, up to rounding) and their spacing. Needs finite
/// `lo < hi`; otherwise returns `lo` alone with spacing 1.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return (vec![lo], 1.0);
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last)
        .map(|k| {
            let v = k as f64 * step;
            // Snap to the decimal the label will show, and avoid -0.
            if v.abs() < step * 1e-9 {
                0.0
            } else {
                v
            }
        })
        .collect();
    (ticks, step)
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

/// Drops trailing zeros (and a then-trailing point) after a decimal point.
fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Writes `v` as `m.mme±x` with `decimals` mantissa decimals, trailing
/// zeros trimmed (`-1.2e3`, `5e-4`).
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
    format!("{}e{exp}", trim_zeros(format!("{mantissa:.decimals$}")))
}

/// Labels for ticks spaced by `step`: fixed-point with as many decimals as
/// the spacing needs (`0.0 0.2 … 1.0`, `-1200`, `12.5`), or compact
/// scientific notation (`-1.2e4`, `5e-4`) when the magnitudes are at least
/// 1e5 or below 1e-3.
pub fn tick_labels(ticks: &[f64], step: f64) -> Vec<String> {
    let max_abs = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let fixed_decimals = decimals_needed(step);
    let scientific_needed =
        max_abs >= 1e5 || (max_abs > 0.0 && max_abs < 1e-3) || fixed_decimals > 4;
    ticks
        .iter()
        .map(|&v| {
            if scientific_needed {
                if v == 0.0 {
                    return "0".into();
                }
                let exp = v.abs().log10().floor() as i32;
                scientific(v, decimals_needed(step / 10f64.powi(exp)).min(3))
            } else {
                let s = format!("{v:.fixed_decimals$}");
                // "-0.0" after rounding a tiny negative.
                if s.trim_start_matches('-')
                    .chars()
                    .all(|c| c == '0' || c == '.')
                {
                    s.trim_start_matches('-').to_string()
                } else {
                    s
                }
            }
        })
        .collect()
}

/// A single value with three significant digits, compactly: `0.912`,
/// `12.5`, `1234`, `1.23e6`, `4.5e-4`.
pub fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        trim_zeros(format!("{v:.decimals$}"))
    } else {
        scientific(v, 2)
    }
}

/// Where a plot's data area lies in the image and which data ranges it
/// shows. The axes are drawn along column `left` and row `bottom`; data
/// `x_range.0` maps to column `left` and `x_range.1` to column `right`,
/// `y_range.0` to row `bottom` and `y_range.1` to row `top`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Pixel column of the y axis (data `x_range.0`).
    pub left: i64,
    /// Pixel row of data `y_range.1`.
    pub top: i64,
    /// Pixel column of data `x_range.1`.
    pub right: i64,
    /// Pixel row of the x axis (data `y_range.0`).
    pub bottom: i64,
    /// Data x shown from `left` to `right`.
    pub x_range: (f64, f64),
    /// Data y shown from `bottom` to `top`.
    pub y_range: (f64, f64),
}

impl Frame {
    /// Pixel column (unrounded) of data `x`.
    pub fn x_px(&self, x: f64) -> f64 {
        let (x0, x1) = self.x_range;
        self.left as f64 + (x - x0) / (x1 - x0) * (self.right - self.left) as f64
    }

    /// Pixel row (unrounded) of data `y`.
    pub fn y_px(&self, y: f64) -> f64 {
        let (y0, y1) = self.y_range;
        self.bottom as f64 - (y - y0) / (y1 - y0) * (self.bottom - self.top) as f64
    }

    /// The pixel nearest to data point `(x, y)`.
    pub fn px(&self, x: f64, y: f64) -> (i64, i64) {
        (self.x_px(x).round() as i64, self.y_px(y).round() as i64)
    }
}

/// What the x axis shows.
pub(crate) enum XAxis<'a> {
    /// Numbers over a range, with automatic ticks unless given.
    Numeric {
        range: (f64, f64),
        ticks: Option<Vec<f64>>,
    },
    /// Named categories at `0.5, 1.5, …` over the range `(0, n)`.
    Categories(&'a [String]),
}

/// Everything the layout needs to know.
pub(crate) struct AxesSpec<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x: XAxis<'a>,
    pub y_range: (f64, f64),
    /// Fixed y ticks, or `None` for automatic ones.
    pub y_ticks: Option<Vec<f64>>,
}

/// Spacing unit of the layout for a font scale.
fn pad(scale: u32) -> i64 {
    3 * i64::from(scale) + 2
}

/// Thickness of axis lines.
fn axis_thickness(scale: u32) -> i64 {
    1 + i64::from(scale) / 2
}

/// Shortens `text` with a trailing ".." until it is at most `max_px` wide at
/// `scale`.
fn truncate_to(text: &str, scale: u32, max_px: u32) -> String {
    if text_width(text, scale) <= max_px {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (0..chars.len()).rev() {
        let candidate: String = chars[..keep].iter().chain(['.', '.'].iter()).collect();
        if text_width(&candidate, scale) <= max_px {
            return candidate;
        }
    }
    String::new()
}

/// The largest scale from `preferred` down to 1 at which `text` fits in
/// `max_px`, and the text (truncated if even scale 1 is too wide).
fn fit_text(text: &str, preferred: u32, max_px: u32) -> (String, u32) {
    for scale in (1..=preferred.max(1)).rev() {
        if text_width(text, scale) <= max_px {
            return (text.to_string(), scale);
        }
    }
    (truncate_to(text, 1, max_px), 1)
}

fn too_small(style: &PlotStyle) -> EvalError {
    EvalError::InvalidParameter {
        arg: "style",
        value: format!(
            "{}x{} pixels at font_scale {}",
            style.width, style.height, style.font_scale
        ),
        reason: "the image is too small for the labels at this font scale",
    }
}

/// Lays out the page, draws the title, axis labels, grid, ticks, tick labels
/// and axis lines, and returns the plot area.
pub(crate) fn draw_axes(
    img: &mut RgbImage,
    style: &PlotStyle,
    spec: &AxesSpec<'_>,
) -> Result<Frame> {
    let s = style.font_scale;
    let si = i64::from(s);
    let (width, height) = (i64::from(style.width), i64::from(style.height));
    let pad = pad(s);
    let line_h = i64::from(text_height(s));
    let char_w = i64::from(ADVANCE * s);
    let tick_len = 2 * si + 1;

    // Title, at one size larger than the rest when it fits.
    let title_space = (width - 2 * pad).max(1) as u32;
    let (title, title_scale) = fit_text(spec.title, s + 1, title_space);
    let title_h = if title.is_empty() {
        0
    } else {
        i64::from(text_height(title_scale)) + pad
    };

    let top = pad + title_h + line_h / 2;
    let x_label_h = if spec.x_label.is_empty() {
        0
    } else {
        line_h + pad
    };
    let bottom = height - (tick_len + pad + line_h + x_label_h + pad);
    let plot_h = bottom - top;
    if plot_h < 4 * line_h {
        return Err(too_small(style));
    }

    // Y ticks decide the left margin.
    let (y_ticks, y_labels) = match &spec.y_ticks {
        Some(ticks) => {
            let step = ticks
                .windows(2)
                .map(|w| (w[1] - w[0]).abs())
                .fold(f64::INFINITY, f64::min);
            let step = if step.is_finite() { step } else { 1.0 };
            (ticks.clone(), tick_labels(ticks, step))
        }
        None => {
            let target = (plot_h / (3 * line_h)).clamp(2, 10) as usize;
            let (ticks, step) = nice_ticks(spec.y_range.0, spec.y_range.1, target);
            let labels = tick_labels(&ticks, step);
            (ticks, labels)
        }
    };
    let y_label_w = y_labels
        .iter()
        .map(|l| i64::from(text_width(l, s)))
        .max()
        .unwrap_or(0);
    let y_axis_label_w = if spec.y_label.is_empty() {
        0
    } else {
        line_h + pad
    };
    let left = pad + y_axis_label_w + y_label_w + pad / 2 + tick_len;
    let right = width - pad - 3 * char_w;
    let plot_w = right - left;
    if plot_w < 4 * line_h {
        return Err(too_small(style));
    }

    let x_range = match spec.x {
        XAxis::Numeric { range, .. } => range,
        XAxis::Categories(names) => (0.0, names.len() as f64),
    };
    let frame = Frame {
        left,
        top,
        right,
        bottom,
        x_range,
        y_range: spec.y_range,
    };

    // Horizontal grid lines, y ticks and labels.
    let label_gap = pad / 2;
    for (tick, label) in y_ticks.iter().zip(&y_labels) {
        let y = frame.y_px(*tick).round() as i64;
        if y < top - 1 || y > bottom + 1 {
            continue;
        }
        if y < bottom {
            fill_rect(img, left + 1, y, right + 1, y + 1, GRID_COLOR);
        }
        fill_rect(img, left - tick_len, y, left, y + 1, AXIS_COLOR);
        draw_text(
            img,
            label,
            left - tick_len - label_gap,
            y - line_h / 2 + si / 2,
            s,
            Align::Right,
            TEXT_COLOR,
        );
    }

    // X ticks (vertical grid lines) or category names.
    let x_text_y = bottom + tick_len + pad;
    match &spec.x {
        XAxis::Numeric { range, ticks } => {
            let (ticks, labels) = match ticks {
                Some(t) => {
                    let step = t
                        .windows(2)
                        .map(|w| (w[1] - w[0]).abs())
                        .fold(f64::INFINITY, f64::min);
                    let step = if step.is_finite() { step } else { 1.0 };
                    (t.clone(), tick_labels(t, step))
                }
                None => auto_x_ticks(*range, plot_w, s),
            };
            for (tick, label) in ticks.iter().zip(&labels) {
                let x = frame.x_px(*tick).round() as i64;
                if x < left - 1 || x > right + 1 {
                    continue;
                }
                if x > left {
                    fill_rect(img, x, top, x + 1, bottom, GRID_COLOR);
                }
                fill_rect(img, x, bottom, x + 1, bottom + tick_len, AXIS_COLOR);
                let half = i64::from(text_width(label, s)) / 2;
                let cx = x.clamp(half + 1, width - half - 1);
                draw_text(img, label, cx, x_text_y, s, Align::Centre, TEXT_COLOR);
            }
        }
        XAxis::Categories(names) => {
            let slot = plot_w as f64 / names.len() as f64;
            let max_px = (slot - char_w as f64).max(char_w as f64) as u32;
            // One scale for all names, so they look alike.
            let scale = (1..=s)
                .rev()
                .find(|&sc| names.iter().all(|n| text_width(n, sc) <= max_px))
                .unwrap_or(1);
            for (i, name) in names.iter().enumerate() {
                let name = truncate_to(name, scale, max_px);
                let x = frame.x_px(i as f64 + 0.5).round() as i64;
                fill_rect(img, x, bottom, x + 1, bottom + tick_len, AXIS_COLOR);
                draw_text(img, &name, x, x_text_y, scale, Align::Centre, TEXT_COLOR);
            }
        }
    }

    // Axis labels and title.
    if !spec.x_label.is_empty() {
        let (text, scale) = fit_text(spec.x_label, s, (width - 2 * pad).max(1) as u32);
        let cx = (left + right) / 2;
        let half = i64::from(text_width(&text, scale)) / 2;
        let cx = cx.clamp(half + pad, (width - half - pad).max(half + pad));
        draw_text(
            img,
            &text,
            cx,
            x_text_y + line_h + pad,
            scale,
            Align::Centre,
            TEXT_COLOR,
        );
    }
    if !spec.y_label.is_empty() {
        let (text, scale) = fit_text(spec.y_label, s, (height - 2 * pad).max(1) as u32);
        let half = i64::from(text_width(&text, scale)) / 2;
        let cy = ((top + bottom) / 2).clamp(half + pad, (height - half - pad).max(half + pad));
        draw_text_vertical(img, &text, pad, cy, scale, TEXT_COLOR);
    }
    if !title.is_empty() {
        let half = i64::from(text_width(&title, title_scale)) / 2;
        let cx = ((left + right) / 2).clamp(half + pad, (width - half - pad).max(half + pad));
        draw_text(img, &title, cx, pad, title_scale, Align::Centre, TEXT_COLOR);
    }

    draw_axis_lines(img, &frame, s);
    Ok(frame)
}

/// Automatic x ticks: as many as fit without their labels touching.
fn auto_x_ticks(range: (f64, f64), plot_w: i64, s: u32) -> (Vec<f64>, Vec<String>) {
    let char_w = f64::from(ADVANCE * s);
    let most = ((plot_w as f64 / (char_w * 4.0)) as usize).clamp(2, 10);
    let mut best = None;
    for target in (2..=most).rev() {
        let (ticks, step) = nice_ticks(range.0, range.1, target);
        let labels = tick_labels(&ticks, step);
        let widest = labels.iter().map(|l| text_width(l, s)).max().unwrap_or(0);
        let spacing = step / (range.1 - range.0) * plot_w as f64;
        let fits = spacing >= f64::from(widest) + 2.0 * char_w;
        best = Some((ticks, labels));
        if fits {
            break;
        }
    }
    best.unwrap_or_default()
}

/// Draws (or redraws, over the content) the y axis and x axis lines.
pub(crate) fn draw_axis_lines(img: &mut RgbImage, frame: &Frame, s: u32) {
    let t = axis_thickness(s);
    fill_rect(
        img,
        frame.left - t + 1,
        frame.top,
        frame.left + 1,
        frame.bottom + t,
        AXIS_COLOR,
    );
    fill_rect(
        img,
        frame.left - t + 1,
        frame.bottom,
        frame.right + 1,
        frame.bottom + t,
        AXIS_COLOR,
    );
}

/// How a legend row shows its series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Swatch {
    /// A filled box blended with opacity `alpha`, outlined in the colour.
    Patch { alpha: f64 },
    /// A line, with a marker in its middle if given.
    Line(Option<Marker>),
    /// A dashed line.
    Dashed,
    /// Text only.
    None,
}

/// One legend row.
#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub color: Rgb<u8>,
    pub swatch: Swatch,
}

/// A pixel box `[x0, x1) × [y0, y1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PixelBox {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
}

impl PixelBox {
    fn intersects(&self, other: &PixelBox) -> bool {
        self.x0 < other.x1 && other.x0 < self.x1 && self.y0 < other.y1 && other.y0 < self.y1
    }
}

/// Number of pixels in `b` that already carry content (neither background
/// nor grid).
fn ink_in(img: &RgbImage, b: &PixelBox) -> usize {
    let mut n = 0;
    for y in b.y0.max(0)..b.y1.min(i64::from(img.height())) {
        for x in b.x0.max(0)..b.x1.min(i64::from(img.width())) {
            let p = *img.get_pixel(x as u32, y as u32);
            if p != BACKGROUND && p != GRID_COLOR {
                n += 1;
            }
        }
    }
    n
}

/// Draws a boxed legend in the corner of the plot area where it covers the
/// fewest already-drawn pixels (ties: top right, top left, bottom right,
/// bottom left), never over a box in `avoid`. Returns where it went and how
/// many content pixels it covers.
pub(crate) fn draw_legend(
    img: &mut RgbImage,
    frame: &Frame,
    s: u32,
    entries: &[LegendEntry],
    avoid: &[PixelBox],
) -> (PixelBox, usize) {
    let area_w = (frame.right - frame.left).max(1);
    // Shrink the text until the box fits the plot area's width.
    let scale = (1..=s)
        .rev()
        .find(|&sc| legend_size(entries, sc).0 + 2 * pad(sc) <= area_w)
        .unwrap_or(1);
    let (w, h) = legend_size(entries, scale);
    let margin = pad(scale);
    let (l, r) = (frame.left + margin + 1, frame.right - margin - w);
    let (t, b) = (frame.top + margin / 2, frame.bottom - margin - h);
    let candidates = [(r, t), (l, t), (r, b), (l, b)];
    let mut best: Option<(PixelBox, usize)> = None;
    for (x, y) in candidates {
        let candidate = PixelBox {
            x0: x,
            y0: y,
            x1: x + w,
            y1: y + h,
        };
        let cost = ink_in(img, &candidate)
            + if avoid.iter().any(|a| a.intersects(&candidate)) {
                usize::MAX / 2
            } else {
                0
            };
        if best.is_none_or(|(_, c)| cost < c) {
            best = Some((candidate, cost));
        }
    }
    let (placed, cost) = best.expect("four candidates");
    paint_legend(img, &placed, scale, entries);
    (placed, cost)
}

/// Width and height of a legend box.
fn legend_size(entries: &[LegendEntry], s: u32) -> (i64, i64) {
    let p = pad(s);
    let line_h = i64::from(text_height(s));
    let swatch_w = swatch_width(s);
    let text_w = entries
        .iter()
        .map(|e| {
            let sw = if e.swatch == Swatch::None {
                0
            } else {
                swatch_w + p
            };
            sw + i64::from(text_width(&e.label, s))
        })
        .max()
        .unwrap_or(0);
    let rows = entries.len() as i64;
    (
        text_w + 2 * p,
        rows * line_h + (rows - 1).max(0) * (p / 2) + 2 * p - i64::from(s),
    )
}

fn swatch_width(s: u32) -> i64 {
    4 * i64::from(ADVANCE * s)
}

fn paint_legend(img: &mut RgbImage, b: &PixelBox, s: u32, entries: &[LegendEntry]) {
    let p = pad(s);
    let si = i64::from(s);
    let line_h = i64::from(text_height(s));
    let swatch_w = swatch_width(s);
    fill_rect(img, b.x0, b.y0, b.x1, b.y1, BACKGROUND);
    stroke_rect(img, b.x0, b.y0, b.x1, b.y1, LEGEND_BORDER);
    for (i, e) in entries.iter().enumerate() {
        let y = b.y0 + p + i as i64 * (line_h + p / 2);
        let x = b.x0 + p;
        // Centre of the cap height (rows 0..7 of the glyph).
        let mid = y + 7 * si / 2;
        let text_x = match e.swatch {
            Swatch::Patch { alpha } => {
                let (x0, y0, x1, y1) = (x, y, x + swatch_w, y + 7 * si);
                super::draw::blend_rect(img, x0, y0, x1, y1, e.color, alpha);
                stroke_rect(img, x0, y0, x1, y1, e.color);
                x + swatch_w + p
            }
            Swatch::Line(marker) => {
                let t = (s + 1).max(2);
                draw_line(img, (x, mid), (x + swatch_w - 1, mid), t, e.color);
                if let Some(m) = marker {
                    draw_marker(img, x + swatch_w / 2, mid, marker_radius(s), m, e.color);
                }
                x + swatch_w + p
            }
            Swatch::Dashed => {
                let t = s.max(2);
                let dash = (3 * s) as usize;
                draw_dashed_line(
                    img,
                    (x, mid),
                    (x + swatch_w - 1, mid),
                    t,
                    (dash, dash),
                    e.color,
                );
                x + swatch_w + p
            }
            Swatch::None => x,
        };
        draw_text(img, &e.label, text_x, y, s, Align::Left, TEXT_COLOR);
    }
}

/// Marker half-size for a font scale.
pub(crate) fn marker_radius(s: u32) -> u32 {
    2 + s
}
