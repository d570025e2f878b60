//! Tests of the PNG plots: pixel-level checks of text, bars, histograms,
//! markers and value labels, PNG round trips, and input errors.

use std::path::PathBuf;

use jem_eval::plot::draw::{fill_rect, mix};
use jem_eval::plot::font::{
    draw_text, draw_text_vertical, glyph, text_height, text_width, Align, ADVANCE,
};
use jem_eval::plot::{
    bar_chart_figure, bar_chart_png, format_value, line_plot_figure, line_plot_png, nice_ticks,
    reliability_diagram_figure, reliability_diagram_png, score_histograms_figure,
    score_histograms_png, tick_labels, BarGroup, HistogramSeries, LineSeries, PlotError, PlotStyle,
    Rgb, RgbImage, ACCURACY_COLOR, BACKGROUND, GAP_ALPHA, GAP_COLOR, GRID_COLOR, HISTOGRAM_ALPHA,
    PALETTE, TEXT_COLOR,
};
use jem_eval::{reliability_from_confidences, EvalError, ReliabilityDiagram};

const BLACK: Rgb<u8> = Rgb([0, 0, 0]);

fn px(img: &RgbImage, x: i64, y: i64) -> Rgb<u8> {
    *img.get_pixel(x as u32, y as u32)
}

/// A scratch directory unique to this process and test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jem-eval-plot-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Whether `text`, drawn at `scale` in [`TEXT_COLOR`], appears somewhere in
/// `img` (every font pixel of it present at one offset).
fn contains_text(img: &RgbImage, text: &str, scale: u32) -> bool {
    let w = text_width(text, scale);
    let h = text_height(scale);
    let mut template = RgbImage::from_pixel(w, h, BACKGROUND);
    draw_text(&mut template, text, 0, 0, scale, Align::Left, TEXT_COLOR);
    let ink: Vec<(u32, u32)> = template
        .enumerate_pixels()
        .filter(|(_, _, p)| **p == TEXT_COLOR)
        .map(|(x, y, _)| (x, y))
        .collect();
    assert!(!ink.is_empty());
    (0..=img.height().saturating_sub(h)).any(|oy| {
        (0..=img.width().saturating_sub(w)).any(|ox| {
            ink.iter()
                .all(|&(x, y)| *img.get_pixel(ox + x, oy + y) == TEXT_COLOR)
        })
    })
}

#[test]
fn text_puts_ink_where_the_glyphs_say_and_none_for_a_space() {
    let mut img = RgbImage::from_pixel(120, 40, BACKGROUND);
    // A space draws nothing at all.
    draw_text(&mut img, "   ", 5, 5, 3, Align::Left, BLACK);
    assert!(img.pixels().all(|p| *p == BACKGROUND));

    // "-|" at scale 3: the dash is row 3 of its cell, the bar column 2 of the next.
    let (x0, y0, s) = (10i64, 5i64, 3i64);
    draw_text(&mut img, "-|", x0, y0, 3, Align::Left, BLACK);
    for x in x0..x0 + 5 * s {
        assert_eq!(px(&img, x, y0 + 3 * s), BLACK, "dash at x={x}");
        assert_eq!(
            px(&img, x, y0 + 2 * s),
            BACKGROUND,
            "above the dash at x={x}"
        );
    }
    let bar_x = x0 + i64::from(ADVANCE) * s + 2 * s;
    for y in y0..y0 + 8 * s {
        assert_eq!(px(&img, bar_x + 1, y), BLACK, "bar at y={y}");
        assert_eq!(
            px(&img, bar_x - 1, y),
            BACKGROUND,
            "left of the bar at y={y}"
        );
    }
    // The blank column between the characters stays blank.
    for y in y0..y0 + 8 * s {
        assert_eq!(px(&img, x0 + 5 * s + 1, y), BACKGROUND);
    }

    // Every font pixel of "A" is a solid block exactly where the table says.
    let mut img = RgbImage::from_pixel(40, 40, BACKGROUND);
    draw_text(&mut img, "A", 4, 4, 2, Align::Left, BLACK);
    let rows = glyph('A').unwrap();
    for (r, bits) in rows.iter().enumerate() {
        for c in 0..5 {
            let on = bits & (1 << (4 - c)) != 0;
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = px(&img, 4 + 2 * c + dx, 4 + 2 * r as i64 + dy);
                assert_eq!(p == BLACK, on, "A row {r} col {c}");
            }
        }
    }
    // "A" has ink in rows 0 and 6 (apex and legs) and none in the descender row.
    assert!(rows[0] != 0 && rows[6] != 0 && rows[7] == 0);

    // Centre alignment: the symmetric "I" has its stem on the anchor column.
    let mut img = RgbImage::from_pixel(100, 20, BACKGROUND);
    draw_text(&mut img, "I", 50, 2, 1, Align::Centre, BLACK);
    assert_eq!(px(&img, 50, 4), BLACK);
    assert_eq!(px(&img, 49, 4), BACKGROUND);
    assert_eq!(px(&img, 51, 4), BACKGROUND);
    // Right alignment ends the text just left of the anchor.
    let mut img = RgbImage::from_pixel(100, 20, BACKGROUND);
    draw_text(&mut img, "-", 50, 2, 1, Align::Right, BLACK);
    assert_eq!(px(&img, 49, 5), BLACK);
    assert_eq!(px(&img, 50, 5), BACKGROUND);
    assert_eq!(px(&img, 45, 5), BLACK);
    assert_eq!(px(&img, 44, 5), BACKGROUND);

    // Rotated text: the dash becomes a vertical stroke at font row 3.
    let mut img = RgbImage::from_pixel(40, 40, BACKGROUND);
    draw_text_vertical(&mut img, "-", 10, 20, 2, BLACK);
    let column: Vec<i64> = (0..40).filter(|&y| px(&img, 10 + 6, y) == BLACK).collect();
    assert_eq!(column.len(), 10, "{column:?}");
    assert!(column.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(px(&img, 10 + 4, 20), BACKGROUND);
}

#[test]
fn font_covers_printable_ascii_with_distinct_glyphs() {
    assert_eq!(text_width("", 3), 0);
    assert_eq!(text_width("ab", 2), (2 * 6 - 1) * 2);
    let all: Vec<char> = (32u8..=126).map(char::from).collect();
    for &c in &all[1..] {
        let g = glyph(c).unwrap_or_else(|| panic!("no glyph for {c:?}"));
        assert!(g.iter().any(|&row| row != 0), "{c:?} is blank");
        assert!(g.iter().all(|&row| row < 32), "{c:?} is wider than 5");
    }
    assert!(glyph(' ').unwrap().iter().all(|&row| row == 0));
    assert!(glyph('\u{3b5}').is_none() && glyph('\n').is_none());
    for (i, &a) in all.iter().enumerate() {
        for &b in &all[i + 1..] {
            assert_ne!(glyph(a), glyph(b), "{a:?} and {b:?} look the same");
        }
    }
    // Descenders use the last row, capitals and digits do not.
    for c in ['g', 'j', 'p', 'q', 'y', '_'] {
        assert_ne!(glyph(c).unwrap()[7], 0, "{c:?}");
    }
    for c in ('A'..='Z').chain('0'..='9') {
        assert_eq!(glyph(c).unwrap()[7], 0, "{c:?}");
    }
}

#[test]
fn ticks_and_numbers_are_round_and_compact() {
    let (ticks, step) = nice_ticks(0.0, 1.0, 5);
    assert_eq!(step, 0.2);
    let labels = tick_labels(&ticks, step);
    assert_eq!(labels, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);

    let (ticks, step) = nice_ticks(-1234.0, -310.0, 5);
    assert_eq!(step, 200.0);
    assert_eq!(
        tick_labels(&ticks, step),
        ["-1200", "-1000", "-800", "-600", "-400"]
    );
    let (ticks, step) = nice_ticks(0.0, 10.0, 4);
    assert_eq!(step, 2.5);
    assert_eq!(
        tick_labels(&ticks, step),
        ["0.0", "2.5", "5.0", "7.5", "10.0"]
    );
    let (ticks, step) = nice_ticks(0.0, 3.2e5, 4);
    assert_eq!(tick_labels(&ticks, step), ["0", "1e5", "2e5", "3e5"]);
    let (ticks, step) = nice_ticks(-2.0e4, 1.0e5, 6);
    assert_eq!(
        tick_labels(&ticks, step),
        ["-2e4", "0", "2e4", "4e4", "6e4", "8e4", "1e5"]
    );
    let (ticks, _) = nice_ticks(-1.5e4, 1.0e5, 5);
    assert!(
        ticks.iter().all(|t| (-1.5e4..=1.0e5).contains(t)),
        "{ticks:?}"
    );

    assert_eq!(format_value(0.9123), "0.912");
    assert_eq!(format_value(12.46), "12.5");
    assert_eq!(format_value(-1234.4), "-1234");
    assert_eq!(format_value(1.5e6), "1.5e6");
    assert_eq!(format_value(-1.23e7), "-1.23e7");
    assert_eq!(format_value(4.5e-4), "4.5e-4");
    assert_eq!(format_value(0.0), "0");
    assert_eq!(format_value(0.5), "0.5");
}

/// 10 bins: bin 9 = (0.9, 1.0] all correct at confidence 1 (accuracy 1),
/// bin 4 = (0.4, 0.5] half correct at confidence 0.45, the rest empty.
fn known_diagram() -> ReliabilityDiagram {
    reliability_from_confidences(&[1.0, 1.0, 0.45, 0.45], &[true, true, true, false], 10).unwrap()
}

#[test]
fn reliability_bars_follow_the_bins() {
    let d = known_diagram();
    assert_eq!(d.bins[9].accuracy, Some(1.0));
    assert_eq!(d.bins[6].count, 0);
    let fig = reliability_diagram_figure(&d, "Calibration", &PlotStyle::default()).unwrap();
    let (img, f) = (&fig.image, fig.frame);
    assert_eq!(img.dimensions(), (640, 480));
    let col = |x: f64| f.x_px(x).round() as i64;
    let row = |y: f64| f.y_px(y).round() as i64;

    // The accuracy-1 bar fills its column from the x axis to the top row.
    let x9 = col(0.95);
    for y in f.top..f.bottom {
        assert_eq!(px(img, x9, y), ACCURACY_COLOR, "bin 9 at row {y}");
    }
    assert_eq!(
        px(img, x9, f.top - 2),
        BACKGROUND,
        "nothing above the plot area"
    );

    // The accuracy-0.5 bar stops at 0.5; the gap up from 0.45 is overlaid.
    let x4 = col(0.45);
    assert_eq!(px(img, x4, row(0.3)), ACCURACY_COLOR);
    assert_eq!(
        px(img, x4, row(0.475)),
        mix(ACCURACY_COLOR, GAP_COLOR, GAP_ALPHA)
    );
    assert_eq!(px(img, x4, row(0.55)), BACKGROUND);
    assert_eq!(px(img, x4, row(0.7)), BACKGROUND);

    // The empty bin 6 draws nothing: only background and grid lines.
    let x6 = col(0.65);
    for y in row(0.55)..f.bottom {
        let p = px(img, x6, y);
        assert!(
            p == BACKGROUND || p == GRID_COLOR,
            "bin 6 at row {y}: {p:?}"
        );
    }

    // The ECE (2.5 %) and the tick labels are printed.
    assert!((d.ece - 0.025).abs() < 1e-12);
    assert!(contains_text(img, "ECE = 2.50%", 2));
    assert!(contains_text(img, "n = 4", 2));
    assert!(contains_text(img, "0.2", 2));
    assert!(contains_text(img, "1.0", 2));
    assert!(contains_text(img, "confidence", 2));
    assert!(!contains_text(img, "ECE = 2.51%", 2));
}

/// Height in pixels of the column at `x` above the x axis that is neither
/// background nor grid.
fn bar_height(img: &RgbImage, x: i64, bottom: i64) -> i64 {
    let mut y = bottom - 1;
    while y >= 0 {
        let p = px(img, x, y);
        if p == BACKGROUND || p == GRID_COLOR {
            break;
        }
        y -= 1;
    }
    bottom - 1 - y
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
        .map(|k| {
            bar_height(
                img,
                f.x_px(0.4 + 0.8 * k as f64).round() as i64 + 1,
                f.bottom,
            )
        })
        .collect();
    let tallest = (0..5).max_by_key(|&k| heights[k]).unwrap();
    assert_eq!(tallest, 1, "{heights:?}");
    // Density = count / (n · width): 3/(7·0.8) for bin 1, 1/(7·0.8) elsewhere.
    let expect = |count: f64| f.bottom - f.y_px(count / (7.0 * 0.8)).round() as i64;
    assert!((heights[1] - expect(3.0)).abs() <= 1, "{heights:?}");
    for k in [0, 2, 3, 4] {
        assert!((heights[k] - expect(1.0)).abs() <= 1, "{heights:?}");
    }
    // Translucent green fill (over background or a grid line).
    let p = px(img, f.x_px(1.2).round() as i64 + 1, f.bottom - 3);
    let green = PALETTE[0];
    assert!(
        p == mix(BACKGROUND, green, HISTOGRAM_ALPHA)
            || p == mix(GRID_COLOR, green, HISTOGRAM_ALPHA),
        "{p:?}"
    );
    assert!(contains_text(img, "CIFAR-10", 2));
}

#[test]
fn histograms_share_bins_over_the_pooled_range() {
    let series = [
        HistogramSeries::new("in", vec![0.0, 0.1, 0.2, 0.2]),
        HistogramSeries::new("out", vec![10.0, 9.9, 9.8]),
    ];
    let fig = score_histograms_figure(&series, 10, "", "score", &PlotStyle::default()).unwrap();
    let (img, f) = (&fig.image, fig.frame);
    assert!(f.x_range.0 < 0.0 && f.x_range.1 > 10.0);
    // Bin 0 = [0, 1) holds all of "in" (green); bin 9 all of "out" (red);
    // bin 5 is empty.
    let at = |x: f64| px(img, f.x_px(x).round() as i64 + 1, f.bottom - 3);
    let tint = |c| {
        [
            mix(BACKGROUND, c, HISTOGRAM_ALPHA),
            mix(GRID_COLOR, c, HISTOGRAM_ALPHA),
        ]
    };
    assert!(tint(PALETTE[0]).contains(&at(0.5)), "{:?}", at(0.5));
    assert!(tint(PALETTE[1]).contains(&at(9.5)), "{:?}", at(9.5));
    assert!([BACKGROUND, GRID_COLOR].contains(&at(5.5)));
    // Both densities are 1/width = 1/1, so both bars are equally tall.
    let h0 = bar_height(img, f.x_px(0.5).round() as i64 + 1, f.bottom);
    let h9 = bar_height(img, f.x_px(9.5).round() as i64 + 1, f.bottom);
    assert!((h0 - h9).abs() <= 1, "{h0} vs {h9}");
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
        "epsilon",
        "accuracy",
        &PlotStyle::default(),
    )
    .unwrap();
    let (img, f) = (&fig.image, fig.frame);
    assert!(f.x_range.0 < 0.0 && f.x_range.1 > 0.03);
    assert!(f.y_range.0 < 0.0 && f.y_range.1 > 0.95);
    for (i, s) in series.iter().enumerate() {
        for &(x, y) in &s.points {
            let (cx, cy) = f.px(x, y);
            assert_eq!(px(img, cx, cy), PALETTE[i], "{} at ({x}, {y})", s.label);
            // The marker is wider than the line: its full width is coloured.
            assert_eq!(px(img, cx + 3, cy), PALETTE[i], "{} at ({x}, {y})", s.label);
        }
    }
    // Far from every curve the plot is empty.
    let (ex, ey) = f.px(0.025, 0.7);
    assert!([BACKGROUND, GRID_COLOR].contains(&px(img, ex, ey)));
    assert!(contains_text(img, "baseline", 2));
}

#[test]
fn bar_chart_bars_reach_their_values_with_labels() {
    let categories: Vec<String> = ["SVHN", "CIFAR-100", "CelebA"].map(String::from).to_vec();
    let groups = [
        BarGroup::new("log p(x)", vec![0.91, 0.87, 0.79]),
        BarGroup::new("grad norm", vec![0.5, 0.6, -0.2]),
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
    assert_ne!(px(img, centre(0, 0), row(0.91) - 2), PALETTE[0]);
    assert_eq!(px(img, centre(1, 1), row(0.59)), PALETTE[1]);
    assert_ne!(px(img, centre(1, 1), row(0.61) - 1), PALETTE[1]);
    // The negative bar hangs below zero.
    assert_eq!(px(img, centre(2, 1), row(-0.1)), PALETTE[1]);
    assert_ne!(px(img, centre(2, 1), row(0.1)), PALETTE[1]);
    for label in [
        "0.91", "0.87", "0.79", "0.5", "0.6", "-0.2", "SVHN", "CelebA",
    ] {
        assert!(contains_text(img, label, 2), "{label}");
    }
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

    let expected = [
        reliability_diagram_figure(&d, "Reliability", &PlotStyle::default()).unwrap(),
        score_histograms_figure(&hist, 4, "Hist", "x", &PlotStyle::default()).unwrap(),
        line_plot_figure(&lines, "Line", "x", "y", &PlotStyle::default()).unwrap(),
        bar_chart_figure(&cats, &groups, "Bars", "y", &PlotStyle::default()).unwrap(),
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
        font_scale: 1,
    };
    let fig = reliability_diagram_figure(&d, "", &style).unwrap();
    fig.save(dir.join("small.png")).unwrap();
    let decoded = image::open(dir.join("small.png")).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (800, 300));
    let e = fig.save(dir.join("small.png/inside.png")).unwrap_err();
    assert!(matches!(e, PlotError::CreateDir { .. }), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn input_error(e: PlotError) -> EvalError {
    e.input()
        .cloned()
        .unwrap_or_else(|| panic!("not an input error: {e}"))
}

#[test]
fn bad_inputs_are_errors_naming_the_argument() {
    let style = PlotStyle::default();
    let dir = scratch("errors");
    let out = dir.join("never.png");

    let e = score_histograms_figure(&[], 10, "", "", &style).unwrap_err();
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
    assert!(
        matches!(e, EvalError::InvalidParameter { arg: "series", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("series[1].values[2]") && msg.contains("NaN"),
        "{msg}"
    );
    let empty = [HistogramSeries::new("none", vec![])];
    let e = score_histograms_figure(&empty, 10, "", "", &style).unwrap_err();
    assert!(e.to_string().contains("series[0].values"), "{e}");
    let ok = [HistogramSeries::new("ok", vec![1.0])];
    let e = score_histograms_figure(&ok, 0, "", "", &style).unwrap_err();
    assert!(
        matches!(e, EvalError::InvalidParameter { arg: "bins", .. }),
        "{e}"
    );

    let e = line_plot_figure(&[], "", "", "", &style).unwrap_err();
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
    let e = bar_chart_figure(&[], &[BarGroup::new("g", vec![])], "", "", &style).unwrap_err();
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
    let e = bar_chart_figure(&cats, &[], "", "", &style).unwrap_err();
    assert!(
        matches!(e, EvalError::TooFewSamples { arg: "groups", .. }),
        "{e}"
    );
    let short = [BarGroup::new("g", vec![1.0])];
    let e = input_error(bar_chart_png(&cats, &short, "", "", &out).unwrap_err());
    assert!(e.to_string().contains("groups[0].values"), "{e}");
    let nan = [BarGroup::new("g", vec![1.0, f64::NAN])];
    let e = bar_chart_figure(&cats, &nan, "", "", &style).unwrap_err();
    assert!(
        matches!(e, EvalError::InvalidParameter { arg: "groups", .. }),
        "{e}"
    );

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
    let e = reliability_diagram_figure(&d, "", &style).unwrap_err();
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
    let e = reliability_diagram_figure(&d, "", &style).unwrap_err();
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
        font_scale: 0,
        ..style
    };
    let e = reliability_diagram_figure(&known_diagram(), "", &bad_style).unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::InvalidParameter {
                arg: "style.font_scale",
                ..
            }
        ),
        "{e}"
    );
    let cramped = PlotStyle {
        width: 160,
        height: 120,
        font_scale: 8,
    };
    let e = reliability_diagram_figure(&known_diagram(), "", &cramped).unwrap_err();
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
    let d = reliability_from_confidences(&conf, &correct, 20).unwrap();
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
        "PGD robustness (L-inf)",
        "epsilon (/255)",
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
        BarGroup::new("grad norm", vec![0.84, 0.67, 0.74, 0.42]),
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
        font_scale: 1,
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
    let mut c = a.image.clone();
    fill_rect(&mut c, 0, 0, 1, 1, Rgb([1, 2, 3]));
    assert!(c != b.image);
    if !keep {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
