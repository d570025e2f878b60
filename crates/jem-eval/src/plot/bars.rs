//! Grouped bar charts, e.g. AUROC per out-of-distribution data set (the
//! categories) for several scores (the groups).

use std::path::Path;

use super::axes::{
    draw_axes, draw_axis_lines, draw_legend, format_value, AxesSpec, LegendEntry, Swatch, XAxis,
};
use super::draw::fill_rect;
use super::font::{draw_text, draw_text_vertical, text_height, text_width, Align};
use super::{
    check_series_finite, series_color, Figure, PlotError, PlotStyle, AXIS_COLOR, TEXT_COLOR,
};
use crate::error::{EvalError, Result};

/// Fraction of each category's slot taken by its bars.
const CLUSTER_WIDTH: f64 = 0.8;

/// One group of bars: one value per category, drawn in one colour.
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    /// Legend text.
    pub label: String,
    /// One finite value per category, in category order.
    pub values: Vec<f64>,
}

impl BarGroup {
    /// A group from a label and values.
    pub fn new(label: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            label: label.into(),
            values,
        }
    }
}

fn validate(categories: &[String], groups: &[BarGroup]) -> Result<()> {
    crate::error::check_min_len("categories", categories.len(), 1)?;
    crate::error::check_min_len("groups", groups.len(), 1)?;
    for (i, g) in groups.iter().enumerate() {
        if g.values.len() != categories.len() {
            return Err(EvalError::InvalidParameter {
                arg: "groups",
                value: format!(
                    "groups[{i}].values (label {:?}) with {} entries for {} categories",
                    g.label,
                    g.values.len(),
                    categories.len()
                ),
                reason: "every group needs exactly one value per category",
            });
        }
        check_series_finite("groups", i, &g.label, "values", g.values.iter().copied())?;
    }
    Ok(())
}

/// Renders grouped bars: for category `c` (named under the x axis) the
/// groups' bars stand side by side, group `g` in [`series_color`]`(g)`, each
/// from 0 to its value with the value written above it (below it for a
/// negative value) with three significant digits. The y range covers 0 and
/// every value with room for the labels and the legend, which names the
/// groups.
///
/// Errors if `categories` or `groups` is empty, a group does not have one
/// value per category, a value is not finite, or `style` is invalid.
pub fn bar_chart_figure(
    categories: &[String],
    groups: &[BarGroup],
    title: &str,
    y_label: &str,
    style: &PlotStyle,
) -> Result<Figure> {
    style.validate()?;
    validate(categories, groups)?;
    let (lo, hi) = groups
        .iter()
        .flat_map(|g| g.values.iter())
        .fold((0.0f64, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let hi = if lo == hi { 1.0 } else { hi };
    let span = hi - lo;

    let s = style.font_scale;
    let legend: Vec<LegendEntry> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| LegendEntry {
            label: g.label.clone(),
            color: series_color(i),
            swatch: Swatch::Patch { alpha: 1.0 },
        })
        .collect();

    let mut best: Option<(Figure, usize)> = None;
    for extra in [0.12, 0.3, 0.5, 0.8] {
        let y_range = (
            if lo < 0.0 { lo - 0.12 * span } else { 0.0 },
            if hi > 0.0 { hi + extra * span } else { 0.0 },
        );
        let mut img = style.canvas();
        let spec = AxesSpec {
            title,
            x_label: "",
            y_label,
            x: XAxis::Categories(categories),
            y_range,
            y_ticks: None,
        };
        let frame = draw_axes(&mut img, style, &spec)?;
        let y_zero = frame.y_px(0.0).round() as i64;
        let bar_w = CLUSTER_WIDTH / groups.len() as f64;
        let bar_px = frame.x_px(bar_w) - frame.x_px(0.0);
        for (c, _) in categories.iter().enumerate() {
            for (g, group) in groups.iter().enumerate() {
                let v = group.values[c];
                let a = c as f64 + (1.0 - CLUSTER_WIDTH) / 2.0 + g as f64 * bar_w;
                let x0 = frame.x_px(a).round() as i64;
                let x1 = frame.x_px(a + bar_w).round() as i64;
                let x1 = if x1 - x0 > 3 { x1 - 1 } else { x1 };
                let y_v = frame.y_px(v).round() as i64;
                fill_rect(
                    &mut img,
                    x0,
                    y_v.min(y_zero),
                    x1,
                    y_v.max(y_zero),
                    series_color(g),
                );
                value_label(
                    &mut img,
                    &format_value(v),
                    (x0 + x1) / 2,
                    y_v,
                    v < 0.0,
                    bar_px,
                    s,
                );
            }
        }
        if lo < 0.0 {
            fill_rect(
                &mut img,
                frame.left,
                y_zero,
                frame.right + 1,
                y_zero + 1,
                AXIS_COLOR,
            );
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

/// Writes `text` centred on column `x`, just above row `y` (below it when
/// `below`), at the largest scale up to `s` that fits the bar width; if even
/// scale 1 is too wide, rotated.
fn value_label(
    img: &mut image::RgbImage,
    text: &str,
    x: i64,
    y: i64,
    below: bool,
    bar_px: f64,
    s: u32,
) {
    let gap = i64::from(s) + 2;
    let fits = (1..=s)
        .rev()
        .find(|&sc| f64::from(text_width(text, sc)) <= bar_px + 2.0);
    match fits {
        Some(sc) => {
            let h = i64::from(text_height(sc));
            let top = if below {
                y + gap
            } else {
                y - gap - h + i64::from(sc)
            };
            draw_text(img, text, x, top, sc, Align::Centre, TEXT_COLOR);
        }
        None => {
            let len = i64::from(text_width(text, 1));
            let h = i64::from(text_height(1));
            let centre = if below {
                y + gap + len / 2
            } else {
                y - gap - len / 2
            };
            draw_text_vertical(img, text, x - h / 2, centre, 1, TEXT_COLOR);
        }
    }
}

/// [`bar_chart_figure`] at [`PlotStyle::default`], written as a PNG to
/// `path` (parent directories are created).
pub fn bar_chart_png(
    categories: &[String],
    groups: &[BarGroup],
    title: &str,
    y_label: &str,
    path: impl AsRef<Path>,
) -> std::result::Result<(), PlotError> {
    bar_chart_figure(categories, groups, title, y_label, &PlotStyle::default())?.save(path)
}
