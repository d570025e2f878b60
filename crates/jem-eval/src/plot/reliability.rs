//! Reliability diagram in the style of the JEM paper's Fig. 4 (after Guo et
//! al., 2017): per-bin accuracy bars against confidence, the gap to the
//! bin's mean confidence, the diagonal of perfect calibration, and the ECE.

use std::path::Path;

use image::Rgb;
use plotters::prelude::*;

use super::chart::{
    drawn, render, rgb, swatch, Chart, Fonts, Ink, Layout, Painted, Painter, XTicks,
};
use super::{Figure, Frame, PlotResult, PlotStyle};
use crate::calibration::ReliabilityDiagram;
use crate::error::EvalError;

/// Fill of the accuracy ("outputs") bars.
pub const ACCURACY_COLOR: Rgb<u8> = Rgb([31, 119, 180]);
/// Colour of the gap between a bin's accuracy and its mean confidence.
pub const GAP_COLOR: Rgb<u8> = Rgb([214, 39, 40]);
/// Opacity of the gap overlay.
pub const GAP_ALPHA: f64 = 0.4;
/// The dashed "perfect calibration" diagonal.
pub const DIAGONAL_COLOR: Rgb<u8> = Rgb([90, 90, 90]);
/// Outline of the accuracy bars.
const BAR_EDGE: RGBColor = RGBColor(20, 70, 110);

fn check_unit(arg: &'static str, index: usize, value: f64) -> PlotResult<()> {
    if !value.is_finite() {
        Err(EvalError::NonFinite { arg, index, value }.into())
    } else if !(0.0..=1.0).contains(&value) {
        Err(EvalError::NotAProbability { arg, index, value }.into())
    } else {
        Ok(())
    }
}

fn validate(diagram: &ReliabilityDiagram) -> PlotResult<()> {
    super::check_nonempty("diagram.bins", diagram.bins.len())?;
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

/// Draws the bars, gaps, diagonal and summary lines of a diagram.
struct Reliability<'d>(&'d ReliabilityDiagram);

impl Painter for Reliability<'_> {
    fn paint<'a, 'b: 'a>(
        &mut self,
        chart: &mut Chart<'a, 'b>,
        frame: &Frame,
        fonts: &Fonts,
    ) -> PlotResult<Painted> {
        let diagram = self.0;
        let bins: Vec<(f64, f64, f64, f64)> = diagram
            .bins
            .iter()
            .filter(|b| b.count > 0)
            .filter_map(|b| Some((b.lo, b.hi, b.accuracy?, b.mean_confidence?)))
            .collect();
        let accuracy = rgb(ACCURACY_COLOR);
        drawn(
            chart.draw_series(bins.iter().map(|&(lo, hi, acc, _)| {
                Rectangle::new([(lo, 0.0), (hi, acc)], accuracy.filled())
            })),
        )?
        .label("Outputs")
        .legend(swatch(fonts, accuracy.filled()));
        drawn(chart.draw_series(bins.iter().map(|&(lo, hi, acc, _)| {
            Rectangle::new([(lo, 0.0), (hi, acc)], BAR_EDGE.stroke_width(1))
        })))?;
        let gap = rgb(GAP_COLOR);
        let gap_box = |&(lo, hi, acc, conf): &(f64, f64, f64, f64)| {
            [(lo, acc.min(conf)), (hi, acc.max(conf))]
        };
        drawn(
            chart.draw_series(
                bins.iter()
                    .map(|b| Rectangle::new(gap_box(b), gap.mix(GAP_ALPHA).filled())),
            ),
        )?
        .label("Gap")
        .legend(swatch(fonts, gap.mix(GAP_ALPHA).filled()));
        drawn(
            chart.draw_series(
                bins.iter()
                    .map(|b| Rectangle::new(gap_box(b), gap.stroke_width(1))),
            ),
        )?;
        let mut ink: Vec<Ink> = bins
            .iter()
            .map(|&(lo, hi, acc, conf)| Ink::rect(frame, (lo, 0.0), (hi, acc.max(conf))))
            .collect();

        let diagonal = rgb(DIAGONAL_COLOR).stroke_width(2);
        let dash = (fonts.small / 2.0).round() as u32;
        drawn(chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            dash,
            dash,
            diagonal,
        )))?
        .label("Perfect calibration")
        .legend(move |(x, y)| {
            let d = dash as i32;
            EmptyElement::at((x, y))
                + PathElement::new([(0, 0), (d, 0)], diagonal)
                + PathElement::new([(2 * d, 0), (3 * d, 0)], diagonal)
        });
        ink.extend(Ink::polyline(frame, &[(0.0, 0.0), (1.0, 1.0)], 1));

        // Two text-only legend lines carry the summary.
        let summary = [
            format!("ECE = {:.2}%", diagram.ece * 100.0),
            format!("n = {}", diagram.num_samples),
        ];
        for line in &summary {
            drawn(chart.draw_series(std::iter::empty::<Rectangle<(f64, f64)>>()))?
                .label(line.as_str())
                .legend(|(x, y)| EmptyElement::at((x, y)));
        }
        let mut legend: Vec<String> = ["Outputs", "Gap", "Perfect calibration"]
            .map(String::from)
            .to_vec();
        legend.extend(summary);
        Ok(Painted { ink, legend })
    }
}

/// Renders a reliability diagram: for every non-empty bin a bar from 0 to
/// its accuracy spanning the bin's confidence interval, a translucent red
/// box between the accuracy and the bin's mean confidence (the gap
/// `|acc − conf|`), the dashed diagonal of perfect calibration, and a legend
/// with the ECE (as a percentage) and the sample count. Both axes run over
/// `[0, 1]` with ticks every 0.2; empty bins draw nothing.
///
/// Errors if the diagram has no bins or holds a NaN, infinite or
/// out-of-`[0, 1]` edge, accuracy, confidence or ECE, or if `style` is
/// invalid.
pub fn reliability_diagram_figure(
    diagram: &ReliabilityDiagram,
    title: &str,
    style: &PlotStyle,
) -> PlotResult<Figure> {
    validate(diagram)?;
    let ticks: Vec<f64> = (0..=5).map(|k| f64::from(k) * 0.2).collect();
    let layout = Layout {
        title,
        x_label: "confidence, max p(y|x)",
        y_label: "accuracy",
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
        x_ticks: XTicks::Fixed(ticks.clone()),
        y_ticks: Some(ticks),
    };
    Ok(render(style, &layout, &mut Reliability(diagram))?.0)
}

/// [`reliability_diagram_figure`] at [`PlotStyle::default`], written as a
/// PNG to `path` (parent directories are created).
pub fn reliability_diagram_png(
    diagram: &ReliabilityDiagram,
    title: &str,
    path: impl AsRef<Path>,
) -> PlotResult<()> {
    reliability_diagram_figure(diagram, title, &PlotStyle::default())?.save(path)
}
