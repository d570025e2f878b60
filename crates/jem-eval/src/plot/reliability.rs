//! Reliability diagram in the style of the JEM paper's Fig. 4 (after Guo et
//! al., 2017): per-bin accuracy bars against confidence, the gap to the
//! bin's mean confidence, the diagonal of perfect calibration, and the ECE.

use std::path::Path;

use super::axes::{draw_axes, draw_axis_lines, draw_legend, AxesSpec, LegendEntry, Swatch, XAxis};
use super::draw::{blend_rect, draw_dashed_line, fill_rect, stroke_rect};
use super::{Figure, PlotError, PlotStyle};
use crate::calibration::ReliabilityDiagram;
use crate::error::{EvalError, Result};
use image::Rgb;

/// Fill of the accuracy ("outputs") bars.
pub const ACCURACY_COLOR: Rgb<u8> = Rgb([31, 119, 180]);
/// Colour of the gap between a bin's accuracy and its mean confidence.
pub const GAP_COLOR: Rgb<u8> = Rgb([214, 39, 40]);
/// Opacity of the gap overlay.
pub const GAP_ALPHA: f64 = 0.4;
/// The dashed "perfect calibration" diagonal.
pub const DIAGONAL_COLOR: Rgb<u8> = Rgb([90, 90, 90]);

fn check_unit(arg: &'static str, index: usize, value: f64) -> Result<()> {
    if !value.is_finite() {
        Err(EvalError::NonFinite { arg, index, value })
    } else if !(0.0..=1.0).contains(&value) {
        Err(EvalError::NotAProbability { arg, index, value })
    } else {
        Ok(())
    }
}

fn validate(diagram: &ReliabilityDiagram) -> Result<()> {
    crate::error::check_min_len("diagram.bins", diagram.bins.len(), 1)?;
    check_unit("diagram.ece", 0, diagram.ece)?;
    for (i, bin) in diagram.bins.iter().enumerate() {
        check_unit("diagram.bins.lo", i, bin.lo)?;
        check_unit("diagram.bins.hi", i, bin.hi)?;
        if let Some(acc) = bin.accuracy {
            check_unit("diagram.bins.accuracy", i, acc)?;
        }
        if let Some(conf) = bin.mean_confidence {
            check_unit("diagram.bins.mean_confidence", i, conf)?;
        }
    }
    Ok(())
}

/// Renders a reliability diagram: for every non-empty bin a bar from 0 to
/// its accuracy spanning the bin's confidence interval, a translucent red
/// box between the accuracy and the bin's mean confidence (the gap
/// `|acc − conf|`), the dashed diagonal of perfect calibration, a legend,
/// and a box with the ECE (as a percentage) and the sample count. Both axes
/// run over `[0, 1]` with ticks every 0.2; empty bins draw nothing.
///
/// Errors if the diagram has no bins or holds a NaN, infinite or
/// out-of-`[0, 1]` edge, accuracy, confidence or ECE, or if `style` is
/// invalid.
pub fn reliability_diagram_figure(
    diagram: &ReliabilityDiagram,
    title: &str,
    style: &PlotStyle,
) -> Result<Figure> {
    style.validate()?;
    validate(diagram)?;
    let mut img = style.canvas();
    let ticks: Vec<f64> = (0..=5).map(|k| f64::from(k) * 0.2).collect();
    let spec = AxesSpec {
        title,
        x_label: "confidence",
        y_label: "accuracy",
        x: XAxis::Numeric {
            range: (0.0, 1.0),
            ticks: Some(ticks.clone()),
        },
        y_range: (0.0, 1.0),
        y_ticks: Some(ticks),
    };
    let frame = draw_axes(&mut img, style, &spec)?;
    let s = style.font_scale;

    for bin in &diagram.bins {
        let (Some(acc), Some(conf)) = (bin.accuracy, bin.mean_confidence) else {
            continue;
        };
        if bin.count == 0 {
            continue;
        }
        let x0 = frame.x_px(bin.lo).round() as i64;
        let x1 = frame.x_px(bin.hi).round() as i64;
        // One background column between neighbouring bars when there is room.
        let x0 = if x1 - x0 > 3 { x0 + 1 } else { x0 };
        let x0 = x0.max(frame.left + 1);
        let y_acc = frame.y_px(acc).round() as i64;
        fill_rect(&mut img, x0, y_acc, x1, frame.bottom, ACCURACY_COLOR);
        let y_conf = frame.y_px(conf).round() as i64;
        let (g0, g1) = (y_acc.min(y_conf), y_acc.max(y_conf));
        if g1 > g0 {
            blend_rect(&mut img, x0, g0, x1, g1, GAP_COLOR, GAP_ALPHA);
            stroke_rect(&mut img, x0, g0, x1, g1, GAP_COLOR);
        }
    }

    let dash = (4 * s) as usize;
    draw_dashed_line(
        &mut img,
        frame.px(0.0, 0.0),
        frame.px(1.0, 1.0),
        s.max(2),
        (dash, dash),
        DIAGONAL_COLOR,
    );
    draw_axis_lines(&mut img, &frame, s);

    let legend = [
        LegendEntry {
            label: "Outputs".into(),
            color: ACCURACY_COLOR,
            swatch: Swatch::Patch { alpha: 1.0 },
        },
        LegendEntry {
            label: "Gap".into(),
            color: GAP_COLOR,
            swatch: Swatch::Patch { alpha: GAP_ALPHA },
        },
        LegendEntry {
            label: "Perfect calibration".into(),
            color: DIAGONAL_COLOR,
            swatch: Swatch::Dashed,
        },
    ];
    let (legend_box, _) = draw_legend(&mut img, &frame, s, &legend, &[]);
    let summary = [
        LegendEntry {
            label: format!("ECE = {:.2}%", diagram.ece * 100.0),
            color: Rgb([0, 0, 0]),
            swatch: Swatch::None,
        },
        LegendEntry {
            label: format!("n = {}", diagram.num_samples),
            color: Rgb([0, 0, 0]),
            swatch: Swatch::None,
        },
    ];
    draw_legend(&mut img, &frame, s, &summary, &[legend_box]);
    Ok(Figure { image: img, frame })
}

/// [`reliability_diagram_figure`] at [`PlotStyle::default`], written as a
/// PNG to `path` (parent directories are created).
pub fn reliability_diagram_png(
    diagram: &ReliabilityDiagram,
    title: &str,
    path: impl AsRef<Path>,
) -> std::result::Result<(), PlotError> {
    reliability_diagram_figure(diagram, title, &PlotStyle::default())?.save(path)
}
