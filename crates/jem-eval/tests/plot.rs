//! Tests of the PNG plots: bars, curves and histograms where the data puts
//! them, text (with the paper's symbols) that renders, legends that avoid
//! the data, PNG round trips, and input errors naming the argument.

use std::path::PathBuf;

use jem_eval::plot::{
    bar_chart_figure, bar_chart_png, format_value, line_plot_figure, line_plot_png,
    reliability_diagram_figure, reliability_diagram_png, score_histograms_figure,
    score_histograms_png, BarGroup, Figure, HistogramSeries, LineSeries, PlotError, PlotStyle, Rgb,
    RgbImage, ACCURACY_COLOR, BACKGROUND, GAP_ALPHA, GAP_COLOR, GRID_COLOR, LEGEND_BORDER, PALETTE,
};
use jem_eval::{reliability_from_confidences, EvalError, ReliabilityDiagram};
use ndarray::ArrayView1;

fn px(img: &RgbImage, x: i64, y: i64) -> Rgb<u8> {
    *img.get_pixel(x as u32, y as u32)
}

/// Each channel within `tol` of the other colour's.
fn near(a: Rgb<u8>, b: Rgb<u8>, tol: u8) -> bool {
    a.0.iter().zip(b.0).all(|(&x, y)| x.abs_diff(y) <= tol)
}

/// `top` painted with opacity `alpha` over `bottom`.
fn mix(bottom: Rgb<u8>, top: Rgb<u8>, alpha: f64) -> Rgb<u8> {
    Rgb(std::array::from_fn(|c| {
        (f64::from(top[c]) * alpha + f64::from(bottom[c]) * (1.0 - alpha)).round() as u8
    }))
}

/// Background or a grid line: what an empty part of the plot area shows.
fn empty(p: Rgb<u8>) -> bool {
    near(p, BACKGROUND, 2) || near(p, GRID_COLOR, 2)
}

/// Pixels of `img` that are not background, in the rows `rows`.
fn ink_in_rows(img: &RgbImage, rows: std::ops::Range<u32>) -> usize {
    rows.flat_map(|y| (0..img.width()).map(move |x| (x, y)))
        .filter(|&(x, y)| *img.get_pixel(x, y) != BACKGROUND)
        .count()
}

/// A scratch directory unique to this process and test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jem-eval-plot-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn input_error(e: PlotError) -> EvalError {
    e.input()
        .cloned()
        .unwrap_or_else(|| panic!("not an input error: {e}"))
}

/// 10 bins: bin 9 = (0.9, 1.0] all correct at confidence 1 (accuracy 1),
/// bin 4 = (0.4, 0.5] half correct at confidence 0.45, the rest empty.
fn known_diagram() -> ReliabilityDiagram {
    let conf = [1.0, 1.0, 0.45, 0.45];
    let correct = [true, true, true, false];
    reliability_from_confidences(ArrayView1::from(&conf), ArrayView1::from(&correct), 10).unwrap()
}

#[test]
fn reliability_bars_follow_the_bins() {
    let d = known_diagram();
    assert_eq!(d.bins[9].accuracy, Some(1.0));
    let fig = reliability_diagram_figure(&d, "Calibration", &PlotStyle::default()).unwrap();
    let (img, f) = (&fig.image, fig.frame);
    assert_eq!(img.dimensions(), (640, 480));
    let col = |x: f64| f.x_px(x).round() as i64;
    let row = |y: f64| f.y_px(y).round() as i64;

    // The accuracy-1 bar fills its column from the x axis to the top, and
    // the legend (which would sit there if it did not avoid data) is elsewhere.
    let x9 = col(0.95);
    for y in (f.top + 2..f.bottom - 1).filter(|&y| (y - row(0.95)).abs() > 3) {
        // (Except where the diagonal crosses it.)
        assert_eq!(px(img, x9, y), ACCURACY_COLOR, "bin 9 at row {y}");
    }
    assert!(empty(px(img, x9, f.top - 3)), "nothing above the plot area");

    // The accuracy-0.5 bar stops at 0.5; the gap from 0.45 up is overlaid.
    let x4 = col(0.45);
    assert_eq!(px(img, x4, row(0.3)), ACCURACY_COLOR);
    let overlaid = px(img, x4, row(0.475));
    assert!(
        near(overlaid, mix(ACCURACY_COLOR, GAP_COLOR, GAP_ALPHA), 2),
        "{overlaid:?}"
    );
    assert!(empty(px(img, x4, row(0.55))));
    assert!(empty(px(img, x4, row(0.8))));

    // The empty bin 6 draws nothing below the diagonal.
    let x6 = col(0.65);
    for y in row(0.55)..f.bottom - 1 {
        assert!(
            empty(px(img, x6, y)),
            "bin 6 at row {y}: {:?}",
            px(img, x6, y)
        );
    }
    // The dashed diagonal passes through (0.25, 0.25) give or take a dash gap.
    let on_diagonal = (-30..=30).any(|k| {
        let t = 0.25 + f64::from(k) * 0.002;
        let p = px(img, col(t), row(t));
        p[0] < 140 && p[0].abs_diff(p[2]) < 10
    });
    assert!(on_diagonal);
    assert!((d.ece - 0.025).abs() < 1e-12);
}

/// Height in pixels of the column at `x` above the x axis that is neither
/// background nor grid.
fn bar_height(img: &RgbImage, x: i64, bottom: i64) -> i64 {
    // Fills stop one row above the frame's bottom row (the y = 0 grid line).
    let mut y = bottom - 1;
    while y >= 0 && !empty(px(img, x, y)) {
        y -= 1;
    }
    bottom - y
}

#[test]
fn histogram_tallest_bar_is_the_fullest_bin() {
    // Bins of width 0.8 over [0, 4]: counts 1, 3, 1, 1, 1.
    let values = vec![0.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0];
    let series = [HistogramSeries::new("CIFAR-10", values)];
    let fig =
        score_histograms_figure(&series, 5, "Scores", "log p(x)", &PlotStyle::default()).unwrap();
    let (img, f) = (&fig.image, fig.frame);
    assert!(f.x_range.0 < 0.0 && f.x_range.1 > 4.0);
    let heights: Vec<i64> = (0..5)
        .map(|k| bar_height(img, f.x_px(0.4 + 0.8 * k as f64).round() as i64, f.bottom))
        .collect();
    // Density = count / (n · width): 3/(7·0.8) for bin 1, 1/(7·0.8) elsewhere.
    let expect = |count: f64| f.bottom - f.y_px(count / (7.0 * 0.8)).round() as i64;
    assert!(
        (heights[1] - expect(3.0)).abs() <= 2,
        "{heights:?} vs {}",
        expect(3.0)
    );
    for k in [0, 2, 3, 4] {
        assert!(
            (heights[k] - expect(1.0)).abs() <= 2,
            "{heights:?} vs {}",
            expect(1.0)
        );
    }
    // Translucent green fill.
    let p = px(img, f.x_px(1.2).round() as i64, f.bottom - 10);
    assert!(near(p, mix(BACKGROUND, PALETTE[0], 0.35), 3), "{p:?}");
}

#[test]
fn histograms_share_bins_over_the_pooled_range_and_the_legend_avoids_them() {
    let series = [
        HistogramSeries::new("in", vec![0.0, 0.1, 0.2, 0.2]),
        HistogramSeries::new("out", vec![10.0, 9.9, 9.8]),
    ];
    let fig = score_histograms_figure(&series, 10, "", "score", &PlotStyle::default()).unwrap();
    let (img, f) = (&fig.image, fig.frame);
    assert!(f.x_range.0 < 0.0 && f.x_range.1 > 10.0);
    // Bin 0 = [0, 1) holds all of "in" (green), bin 9 all of "out" (red);
    // bin 5 is empty. Both densities are 1/width, so the bars are equally tall.
    let at = |x: f64| px(img, f.x_px(x).round() as i64, f.bottom - 10);
    assert!(
        near(at(0.5), mix(BACKGROUND, PALETTE[0], 0.35), 3),
        "{:?}",
        at(0.5)
    );
    assert!(
        near(at(9.5), mix(BACKGROUND, PALETTE[1], 0.35), 3),
        "{:?}",
        at(9.5)
    );
    assert!(empty(at(5.5)));
    let h0 = bar_height(img, f.x_px(0.5).round() as i64, f.bottom);
    let h9 = bar_height(img, f.x_px(9.5).round() as i64, f.bottom);
    assert!((h0 - h9).abs() <= 1, "{h0} vs {h9}");
    // Full-height bars at both ends: the legend goes to the empty middle
    // only if the y range grows; its border is then not over any bar.
    let border: Vec<(u32, u32)> = img
        .enumerate_pixels()
        .filter(|(_, _, p)| **p == LEGEND_BORDER)
        .map(|(x, y, _)| (x, y))
        .collect();
    assert!(!border.is_empty(), "a legend is drawn");
    let bars = [f.x_px(0.0)..f.x_px(1.0), f.x_px(9.0)..f.x_px(10.0)];
    let covered = |&(x, y): &(u32, u32)| {
        bars.iter().any(|r| r.contains(&f64::from(x))) && f64::from(y) > f.y_px(1.0)
    };
    assert!(!border.iter().any(covered), "the legend covers a bar");
}

#[test]
fn line_plot_markers_sit_on_their_points_in_series_colours() {
    let series = [
        LineSeries::new("JEM", vec![(0.0, 0.9), (0.01, 0.6), (0.03, 0.2)]),
        LineSeries::new("baseline", vec![(0.0, 0.95), (0.01, 0.3), (0.03, 0.0)]),
    ];
    let fig = line_plot_figure(
        &series,
        "Robustness",
        "ε",
        "accuracy",
        &PlotStyle::default(),
    )
    .unwrap();
    let (img, f) = (&fig.image, fig.frame);
    assert!(f.x_range.0 < 0.0 && f.x_range.1 > 0.03);
    assert!(f.y_range.0 < 0.0 && f.y_range.1 > 0.95);
    // Pixels of exactly `color` in the 9×9 box around `(x, y)`.
    let solid = |img: &RgbImage, (cx, cy): (i64, i64), color| {
        let box_ = (-4..=4).flat_map(|dy| (-4..=4).map(move |dx| (cx + dx, cy + dy)));
        box_.filter(|&(x, y)| px(img, x, y) == color).count()
    };
    // Series 0 has round markers, series 1 triangles: each fills over half
    // the box around its point (44 to 55 pixels), the lines through a point
    // of an unmarked curve about 31.
    for (i, s) in series.iter().enumerate() {
        for &(x, y) in &s.points[1..] {
            let n = solid(img, f.px(x, y), PALETTE[i]);
            assert!(n >= 40, "{} at ({x}, {y}): {n} pixels", s.label);
        }
    }
    // A long curve has no markers: only its line passes its points.
    let long: Vec<(f64, f64)> = (0..400)
        .map(|k| (f64::from(k), f64::from(k) / 400.0))
        .collect();
    let long_series = [LineSeries::new("long", long.clone())];
    let plain = line_plot_figure(&long_series, "", "", "", &PlotStyle::default()).unwrap();
    let (x, y) = long[200];
    let n = solid(&plain.image, plain.frame.px(x, y), PALETTE[0]);
    assert!(n < 40, "{n} pixels: a marker was drawn");
    // Between the curves, far from every point, the plot is empty.
    let (ex, ey) = f.px(0.025, 0.7);
    assert!(empty(px(img, ex, ey)));
    // Halfway along the first segment of "JEM" the line is drawn.
    let (mx, my) = f.px(0.005, 0.75);
    assert!((-2..=2).any(|d| px(img, mx, my + d) == PALETTE[0]));
}

#[test]
fn bar_chart_bars_reach_their_values() {
    let categories: Vec<String> = ["SVHN", "CIFAR-100", "CelebA"].map(String::from).to_vec();
    let groups = [
        BarGroup::new("log p(x)", vec![0.91, 0.87, 0.79]),
        BarGroup::new("‖∂ log p(x)/∂x‖", vec![0.5, 0.6, -0.2]),
    ];
    let fig = bar_chart_figure(
        &categories,
        &groups,
        "AUROC",
        "AUROC",
        &PlotStyle::default(),
    )
    .unwrap();
    let (img, f) = (&fig.image, fig.frame);
    assert_eq!(f.x_range, (0.0, 3.0));
    // Category c, group g occupies [c + 0.1 + 0.4 g, c + 0.5 + 0.4 g).
    let centre = |c: usize, g: usize| f.x_px(c as f64 + 0.3 + 0.4 * g as f64).round() as i64;
    let row = |y: f64| f.y_px(y).round() as i64;
    assert_eq!(px(img, centre(0, 0), row(0.45)), PALETTE[0]);
    assert_eq!(px(img, centre(0, 0), row(0.91) + 2), PALETTE[0]);
    assert!(empty(px(img, centre(0, 0), row(0.91) - 2)));
    assert_eq!(px(img, centre(1, 1), row(0.59)), PALETTE[1]);
    assert!(empty(px(img, centre(1, 1), row(0.6) - 2)));
    // The negative bar hangs below zero, with its label below it.
    assert_eq!(px(img, centre(2, 1), row(-0.1)), PALETTE[1]);
    assert!(empty(px(img, centre(2, 1), row(0.1))));
    // Each value label puts dark ink just above its bar.
    for (c, g, v) in [(0, 0, 0.91), (1, 1, 0.6), (2, 0, 0.79)] {
        let label_rows = (row(v) - 20).max(0)..row(v) - 2;
        let dark = label_rows
            .flat_map(|y| (centre(c, g) - 12..centre(c, g) + 12).map(move |x| (x, y)))
            .filter(|&(x, y)| px(img, x, y)[0] < 100)
            .count();
        assert!(dark > 10, "no label above bar ({c}, {g}): {dark}");
    }
}

#[test]
fn labels_with_the_papers_symbols_render_as_glyphs() {
    let lines = [LineSeries::new("a", vec![(0.0, 1.0), (1.0, 0.0)])];
    let style = PlotStyle::default();
    let plot = |x_label: &str| {
        line_plot_figure(&lines, "", x_label, "", &style)
            .unwrap()
            .image
    };
    // A space takes the label's room but draws nothing: the same figure
    // without the glyph.
    let blank = plot(" ");
    // No glyph for a private-use character: the font's "missing" box.
    let missing = plot("\u{E000}");
    let bottom = |img: &RgbImage| ink_in_rows(img, 440..480);
    assert!(bottom(&missing) > bottom(&blank));
    for symbol in ["ε", "∞", "σ", "‖", "∂", "₂", "p(y|x)"] {
        let img = plot(symbol);
        assert!(bottom(&img) > bottom(&blank), "{symbol} drew nothing");
        assert!(img != missing, "{symbol} has no glyph");
    }
    // A title puts ink in the top rows; the margin above the plot stays blank.
    let titled = |t: &str| line_plot_figure(&lines, t, "", "", &style).unwrap().image;
    let top = |img: &RgbImage| ink_in_rows(img, 0..40);
    assert!(top(&titled("ε-robustness")) > top(&titled(" ")) + 50);
    assert_eq!(ink_in_rows(&plot(""), 0..8), 0);
}

#[test]
fn bar_values_are_compact() {
    assert_eq!(format_value(0.9123), "0.912");
    assert_eq!(format_value(12.46), "12.5");
    assert_eq!(format_value(-1234.4), "-1234");
    assert_eq!(format_value(1.5e6), "1.5e6");
    assert_eq!(format_value(-1.23e7), "-1.23e7");
    assert_eq!(format_value(4.5e-4), "4.5e-4");
    assert_eq!(format_value(0.0), "0");
    assert_eq!(format_value(0.5), "0.5");
}

#[test]
fn png_files_decode_to_the_rendered_figures() {
    let dir = scratch("png");
    let d = known_diagram();
    let paths = [
        dir.join("nested/deeper/reliability.png"),
        dir.join("hist.png"),
        dir.join("line.png"),
        dir.join("bars.png"),
    ];
    reliability_diagram_png(&d, "Reliability", &paths[0]).unwrap();
    let hist = [HistogramSeries::new("a", vec![1.0, 2.0, 2.5])];
    score_histograms_png(&hist, 4, "Hist", "x", &paths[1]).unwrap();
    let lines = [LineSeries::new("a", vec![(1.0, 2.0), (3.0, 1.0)])];
    line_plot_png(&lines, "Line", "x", "y", &paths[2]).unwrap();
    let cats = vec!["a".to_string(), "b".to_string()];
    let groups = [BarGroup::new("g", vec![1.0, 2.0])];
    bar_chart_png(&cats, &groups, "Bars", "y", &paths[3]).unwrap();

    let style = PlotStyle::default();
    let expected: [Figure; 4] = [
        reliability_diagram_figure(&d, "Reliability", &style).unwrap(),
        score_histograms_figure(&hist, 4, "Hist", "x", &style).unwrap(),
        line_plot_figure(&lines, "Line", "x", "y", &style).unwrap(),
        bar_chart_figure(&cats, &groups, "Bars", "y", &style).unwrap(),
    ];
    for (path, fig) in paths.iter().zip(&expected) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
        let decoded = image::open(path).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (640, 480));
        assert!(decoded.to_rgb8() == fig.image, "{} differs", path.display());
    }

    // A custom style changes the size; a file in the way of the directory fails.
    let style = PlotStyle {
        width: 800,
        height: 300,
        font_size: 10,
    };
    let fig = reliability_diagram_figure(&d, "", &style).unwrap();
    fig.save(dir.join("small.png")).unwrap();
    let decoded = image::open(dir.join("small.png")).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (800, 300));
    let e = fig.save(dir.join("small.png/inside.png")).unwrap_err();
    assert!(matches!(e, PlotError::CreateDir { .. }), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_are_errors_naming_the_argument() {
    let style = PlotStyle::default();
    let dir = scratch("errors");
    let out = dir.join("never.png");

    let e = input_error(score_histograms_figure(&[], 10, "", "", &style).unwrap_err());
    assert!(
        matches!(
            e,
            EvalError::TooFewSamples {
                arg: "series",
                got: 0,
                ..
            }
        ),
        "{e}"
    );
    let nan = [
        HistogramSeries::new("ok", vec![1.0]),
        HistogramSeries::new("bad", vec![1.0, 2.0, f64::NAN]),
    ];
    let e = input_error(score_histograms_png(&nan, 10, "", "", &out).unwrap_err());
    let msg = e.to_string();
    assert!(
        msg.contains("series[1].values[2]") && msg.contains("NaN") && msg.contains("\"bad\""),
        "{msg}"
    );
    let empty_series = [HistogramSeries::new("none", vec![])];
    let e = score_histograms_figure(&empty_series, 10, "", "", &style).unwrap_err();
    assert!(e.to_string().contains("series[0].values"), "{e}");
    let ok = [HistogramSeries::new("ok", vec![1.0])];
    let e = input_error(score_histograms_figure(&ok, 0, "", "", &style).unwrap_err());
    assert!(
        matches!(e, EvalError::InvalidParameter { arg: "bins", .. }),
        "{e}"
    );

    let e = input_error(line_plot_figure(&[], "", "", "", &style).unwrap_err());
    assert!(
        matches!(e, EvalError::TooFewSamples { arg: "series", .. }),
        "{e}"
    );
    let inf = [LineSeries::new("c", vec![(0.0, 1.0), (1.0, f64::INFINITY)])];
    let e = input_error(line_plot_png(&inf, "", "", "", &out).unwrap_err());
    assert!(e.to_string().contains("series[0].points"), "{e}");
    let e = line_plot_figure(&[LineSeries::new("c", vec![])], "", "", "", &style).unwrap_err();
    assert!(e.to_string().contains("series[0].points"), "{e}");

    let cats = vec!["a".to_string(), "b".to_string()];
    let e = input_error(
        bar_chart_figure(&[], &[BarGroup::new("g", vec![])], "", "", &style).unwrap_err(),
    );
    assert!(
        matches!(
            e,
            EvalError::TooFewSamples {
                arg: "categories",
                ..
            }
        ),
        "{e}"
    );
    let e = input_error(bar_chart_figure(&cats, &[], "", "", &style).unwrap_err());
    assert!(
        matches!(e, EvalError::TooFewSamples { arg: "groups", .. }),
        "{e}"
    );
    let short = [BarGroup::new("g", vec![1.0])];
    let e = input_error(bar_chart_png(&cats, &short, "", "", &out).unwrap_err());
    let msg = e.to_string();
    assert!(
        msg.contains("groups[0].values") && msg.contains("1 entries for 2 categories"),
        "{msg}"
    );
    let nan = [BarGroup::new("g", vec![1.0, f64::NAN])];
    let e = input_error(bar_chart_figure(&cats, &nan, "", "", &style).unwrap_err());
    assert!(e.to_string().contains("groups[0].values[1]"), "{e}");

    let mut d = known_diagram();
    d.bins[4].accuracy = Some(f64::NAN);
    let e = input_error(reliability_diagram_png(&d, "", &out).unwrap_err());
    assert!(
        matches!(
            e,
            EvalError::NonFinite {
                arg: "diagram.bins.accuracy",
                index: 4,
                ..
            }
        ),
        "{e}"
    );
    let mut d = known_diagram();
    d.bins.clear();
    let e = input_error(reliability_diagram_figure(&d, "", &style).unwrap_err());
    assert!(
        matches!(
            e,
            EvalError::TooFewSamples {
                arg: "diagram.bins",
                ..
            }
        ),
        "{e}"
    );
    let mut d = known_diagram();
    d.ece = 1.5;
    let e = input_error(reliability_diagram_figure(&d, "", &style).unwrap_err());
    assert!(
        matches!(
            e,
            EvalError::NotAProbability {
                arg: "diagram.ece",
                ..
            }
        ),
        "{e}"
    );

    let bad_style = PlotStyle {
        font_size: 0,
        ..style
    };
    let e = input_error(reliability_diagram_figure(&known_diagram(), "", &bad_style).unwrap_err());
    assert!(
        matches!(
            e,
            EvalError::InvalidParameter {
                arg: "style.font_size",
                ..
            }
        ),
        "{e}"
    );
    let cramped = PlotStyle {
        width: 160,
        height: 120,
        font_size: 40,
    };
    let e = input_error(reliability_diagram_figure(&known_diagram(), "", &cramped).unwrap_err());
    assert!(
        matches!(e, EvalError::InvalidParameter { arg: "style", .. }),
        "{e}"
    );

    assert!(!out.exists(), "nothing is written for bad input");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Deterministic pseudo-random normal samples (LCG + Box–Muller).
fn normals(seed: u64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            mean + sd * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

/// Realistic plots; written to `$JEM_PLOT_SAMPLES` when set (to look at),
/// otherwise to a scratch directory that is removed.
#[test]
fn sample_plots_render() {
    let (dir, keep) = match std::env::var_os("JEM_PLOT_SAMPLES") {
        Some(d) => (PathBuf::from(d), true),
        None => (scratch("samples"), false),
    };

    // An over-confident classifier: accuracy lags confidence by ~5 points.
    let conf: Vec<f64> = normals(1, 4000, 0.85, 0.12)
        .into_iter()
        .map(|c| c.clamp(0.1, 1.0))
        .collect();
    let u = normals(2, 4000, 0.0, 1.0);
    let correct: Vec<bool> = conf
        .iter()
        .zip(&u)
        .map(|(c, z)| (0.5 + 0.5 * (z * 0.7).tanh()) < c - 0.05)
        .collect();
    let d = reliability_from_confidences(ArrayView1::from(&conf), ArrayView1::from(&correct), 20)
        .unwrap();
    reliability_diagram_png(&d, "JEM on CIFAR-10", dir.join("reliability.png")).unwrap();

    let hist = [
        HistogramSeries::new("CIFAR-10 (in)", normals(3, 3000, -1200.0, 60.0)),
        HistogramSeries::new("SVHN", normals(4, 3000, -1050.0, 80.0)),
        HistogramSeries::new("CIFAR-100", normals(5, 3000, -1230.0, 70.0)),
        HistogramSeries::new("CelebA", normals(6, 3000, -1400.0, 90.0)),
    ];
    score_histograms_png(
        &hist,
        60,
        "log p(x) by data set",
        "log p(x)",
        dir.join("hist.png"),
    )
    .unwrap();

    let eps = [0.0, 2.0, 4.0, 8.0, 12.0, 16.0, 22.0, 30.0];
    let curve = |k: f64| {
        eps.iter()
            .map(|&e| (e, 0.92 * (-e / k).exp()))
            .collect::<Vec<_>>()
    };
    let lines = [
        LineSeries::new("JEM (0 steps)", curve(9.0)),
        LineSeries::new("JEM (10 steps)", curve(14.0)),
        LineSeries::new("Baseline", curve(3.0)),
    ];
    line_plot_png(
        &lines,
        "PGD robustness (L∞)",
        "ε (L∞, [0, 255] pixel scale)",
        "accuracy",
        dir.join("line.png"),
    )
    .unwrap();
    let training: Vec<(f64, f64)> = (0..400)
        .map(|i| {
            (
                f64::from(i) * 50.0,
                2.3 * (-f64::from(i) / 80.0).exp() + 0.1,
            )
        })
        .collect();
    line_plot_png(
        &[LineSeries::new("train loss", training)],
        "Training",
        "step",
        "cross-entropy",
        dir.join("training.png"),
    )
    .unwrap();

    let cats: Vec<String> = ["SVHN", "CIFAR-100", "CelebA", "Interp"]
        .map(String::from)
        .to_vec();
    let groups = [
        BarGroup::new("log p(x)", vec![0.91, 0.87, 0.79, 0.66]),
        BarGroup::new("max p(y|x)", vec![0.93, 0.87, 0.78, 0.53]),
        BarGroup::new("−‖∂ log p(x)/∂x‖₂", vec![0.84, 0.67, 0.74, 0.42]),
    ];
    bar_chart_png(
        &cats,
        &groups,
        "OOD detection",
        "AUROC",
        dir.join("bars.png"),
    )
    .unwrap();

    let small = PlotStyle {
        width: 480,
        height: 300,
        font_size: 11,
    };
    reliability_diagram_figure(
        &d,
        "A long title that must still fit on a small plot",
        &small,
    )
    .unwrap()
    .save(dir.join("reliability_small.png"))
    .unwrap();
    let signed = [
        BarGroup::new("energy gap", vec![-120.5, 40.25, 3.0e4]),
        BarGroup::new("other", vec![15.0, -3.0, 1.2e4]),
    ];
    let cats: Vec<String> = ["a very long category name", "b", "c"]
        .map(String::from)
        .to_vec();
    bar_chart_figure(&cats, &signed, "Signed values", "value", &small)
        .unwrap()
        .save(dir.join("bars_signed.png"))
        .unwrap();

    for name in ["reliability", "hist", "line", "training", "bars"] {
        let img = image::open(dir.join(format!("{name}.png"))).unwrap();
        assert_eq!((img.width(), img.height()), (640, 480), "{name}");
        // Something besides the background was drawn in every quadrant row.
        let rgb = img.to_rgb8();
        let ink = rgb.pixels().filter(|p| **p != BACKGROUND).count();
        assert!(ink > 5000, "{name}: only {ink} drawn pixels");
    }
    // The same figure drawn twice is identical (no hidden state).
    let a = reliability_diagram_figure(&d, "x", &PlotStyle::default()).unwrap();
    let b = reliability_diagram_figure(&d, "x", &PlotStyle::default()).unwrap();
    assert!(a.image == b.image);
    if !keep {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
