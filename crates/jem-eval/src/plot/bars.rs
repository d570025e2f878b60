//! Grouped bar charts, e.g. AUROC per out-of-distribution data set (the
//! categories) for several scores (the groups).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::chart::{
    drawn, format_value, render_best, rgb, swatch, text_style, Chart, Fonts, Ink, Layout, Painted,
    Painter, XTicks,
};
use super::{
    check_nonempty, check_series, series_color, Figure, Frame, PlotResult, PlotStyle, AXIS_COLOR,
};
use crate::error::EvalError;

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

fn validate(categories: &[String], groups: &[BarGroup]) -> PlotResult<()> {
    check_nonempty("categories", categories.len())?;
    check_nonempty("groups", groups.len())?;
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
            }
            .into());
        }
        let values = g.values.iter().copied();
        check_series(("groups", i, &g.label, "values"), g.values.len(), values)?;
    }
    Ok(())
}

/// `[x0, x1)` of the bar of group `g` (of `groups`) in category `c`.
fn bar_span(c: usize, g: usize, groups: usize) -> (f64, f64) {
    let w = CLUSTER_WIDTH / groups as f64;
    let x0 = c as f64 + (1.0 - CLUSTER_WIDTH) / 2.0 + g as f64 * w;
    (x0, x0 + w)
}

/// Draws the bars of every group with their value labels.
struct Bars<'d> {
    categories: &'d [String],
    groups: &'d [BarGroup],
    /// The smallest value, or 0.
    lo: f64,
}

impl Painter for Bars<'_> {
    fn paint<'a, 'b: 'a>(
        &mut self,
        chart: &mut Chart<'a, 'b>,
        frame: &Frame,
        fonts: &Fonts,
    ) -> PlotResult<Painted> {
        let (categories, groups, lo) = (self.categories, self.groups, self.lo);
        let mut ink = Vec::new();
        let bar_px = frame.x_px(CLUSTER_WIDTH / groups.len() as f64) - frame.x_px(0.0);
        for (g, group) in groups.iter().enumerate() {
            let fill = rgb(series_color(g)).filled();
            let bars: Vec<[(f64, f64); 2]> = (0..categories.len())
                .map(|c| {
                    let (x0, x1) = bar_span(c, g, groups.len());
                    [(x0, 0.0), (x1, group.values[c])]
                })
                .collect();
            ink.extend(bars.iter().map(|&[a, b]| Ink::rect(frame, a, b)));
            drawn(chart.draw_series(bars.iter().map(|&r| Rectangle::new(r, fill))))?
                .label(group.label.as_str())
                .legend(swatch(fonts, fill));
            // A background-coloured edge keeps neighbouring bars apart.
            let edge = WHITE.stroke_width(1);
            drawn(chart.draw_series(bars.iter().map(|&r| Rectangle::new(r, edge))))?;
            for ([(x0, _), (x1, v)], label) in bars
                .into_iter()
                .zip(group.values.iter().map(|&v| format_value(v)))
            {
                let Some((element, (across, along))) =
                    value_label(chart, &label, v < 0.0, bar_px, fonts)?
                else {
                    continue;
                };
                let x = (x0 + x1) / 2.0;
                drawn(chart.draw_series(std::iter::once(EmptyElement::at((x, v)) + element)))?;
                // The label's pixels, beyond the bar's end.
                let (cx, cy) = frame.px(x, v);
                let end = if v < 0.0 { cy + along } else { cy - along };
                ink.push(Ink::pixels(
                    (cx - across / 2, cy.min(end)),
                    (cx + across / 2, cy.max(end)),
                ));
            }
        }
        if lo < 0.0 {
            let zero = [(0.0, 0.0), (categories.len() as f64, 0.0)];
            drawn(chart.draw_series(std::iter::once(PathElement::new(zero, rgb(AXIS_COLOR)))))?;
        }
        Ok(Painted {
            ink,
            legend: groups.iter().map(|g| g.label.clone()).collect(),
        })
    }
}

/// Renders grouped bars: for category `c` (named under the x axis) the
/// groups' bars stand side by side, group `g` in [`series_color`]`(g)`, each
/// from 0 to its value with the value written above it (below it for a
/// negative value) with three significant digits, in smaller type or turned
/// upright when the bar is too narrow (and left out when even that does not
/// fit). The y range covers 0 and every value with room for the labels and
/// the legend (which names the groups), as far as 0.8 times the values'
/// span beyond them.
/// Category names too long for their slot are set smaller, then cut with an
/// ellipsis.
///
/// Errors if `categories` or `groups` is empty, a group does not have one
/// value per category, a value is not finite, or `style` is invalid.
pub fn bar_chart_figure(
    categories: &[String],
    groups: &[BarGroup],
    title: &str,
    y_label: &str,
    style: &PlotStyle,
) -> PlotResult<Figure> {
    validate(categories, groups)?;
    let (lo, hi) = groups
        .iter()
        .flat_map(|g| g.values.iter())
        .fold((0.0f64, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let hi = if lo == hi { 1.0 } else { hi };
    let span = hi - lo;

    let mut painter = Bars {
        categories,
        groups,
        lo,
    };

    let layouts = [0.15, 0.3, 0.5, 0.8].map(|extra| Layout {
        title,
        x_label: "",
        y_label,
        x_range: (0.0, categories.len() as f64),
        y_range: (
            if lo < 0.0 { lo - extra * span } else { 0.0 },
            if hi > 0.0 { hi + extra * span } else { 0.0 },
        ),
        x_ticks: XTicks::Categories(categories),
        y_ticks: None,
    });
    render_best(style, layouts, &mut painter)
}

/// A text element placed relative to a point.
type Label = Text<'static, (i32, i32), String>;

/// The value label of a bar, relative to the bar's end, and the pixels it
/// spans (across, along the bar): the largest size down to 60 % at which it
/// fits the bar's width, else turned upright at the largest size down to
/// 70 % at which its height does; `None` when neither fits.
fn value_label(
    chart: &Chart<'_, '_>,
    text: &str,
    below: bool,
    bar_px: f64,
    fonts: &Fonts,
) -> PlotResult<Option<(Label, (i64, i64))>> {
    let gap = (0.25 * fonts.small).round() as i32;
    let offset = if below { gap } else { -gap };
    // Turned by a quarter, text runs up from a positive bar, down from a negative one.
    let upright = if below {
        FontTransform::Rotate90
    } else {
        FontTransform::Rotate270
    };
    let level = Pos::new(HPos::Center, if below { VPos::Top } else { VPos::Bottom });
    for (min, turned) in [(0.6, false), (0.7, true)] {
        let mut size = fonts.small;
        while size >= min * fonts.small {
            let (w, h) = drawn(
                chart
                    .plotting_area()
                    .estimate_text_size(text, &text_style(size)),
            )?;
            let (across, along) = if turned { (h, w) } else { (w, h) };
            if f64::from(across) <= bar_px + 2.0 {
                let style = match turned {
                    true => text_style(size)
                        .transform(upright)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                    false => text_style(size).pos(level),
                };
                let label = Text::new(text.to_string(), (0, offset), style);
                return Ok(Some((
                    label,
                    (i64::from(across), i64::from(along) + i64::from(gap)),
                )));
            }
            size *= 0.9;
        }
    }
    Ok(None)
}

/// [`bar_chart_figure`] at [`PlotStyle::default`], written as a PNG to
/// `path` (parent directories are created).
pub fn bar_chart_png(
    categories: &[String],
    groups: &[BarGroup],
    title: &str,
    y_label: &str,
    path: impl AsRef<Path>,
) -> PlotResult<()> {
    bar_chart_figure(categories, groups, title, y_label, &PlotStyle::default())?.save(path)
}
