//! The reports of the distance-based attacks: curves as CSV, JSON and a PNG plot, and a
//! Markdown table of the robust accuracy at a few budgets.

use super::{AttackArgs, AttackKind, VariantResult};
use crate::evaluate::{write, write_report};
use anyhow::{Context, Result};
use jem_attack::{accuracy_at, eps_grid, Norm, RobustnessCurve, PIXEL_SCALE};
use jem_eval::plot::{line_plot_png, LineSeries};
use std::path::Path;

fn default_report_eps(norm: Norm) -> Vec<f64> {
    match norm {
        Norm::Linf => vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
        Norm::L2 => vec![50.0, 100.0, 200.0, 400.0, 800.0],
    }
}

/// Writes `<attack>.csv`, `.json`, `.md` and `.png` for the per-input distances of every variant.
pub(super) fn report_curves(
    args: &AttackArgs,
    norm: Norm,
    indices: &[usize],
    results: &[VariantResult],
    out: &Path,
) -> Result<()> {
    let name = args.attack.name();
    let report_eps = args
        .report_eps
        .clone()
        .unwrap_or_else(|| default_report_eps(norm));
    // The plot spans every finite distance found (and the reported budgets).
    let largest = results
        .iter()
        .flat_map(|r| r.distances.iter().copied())
        .filter(|d| d.is_finite())
        .fold(0.0f64, f64::max)
        .max(report_eps.iter().copied().fold(0.0, f64::max) / PIXEL_SCALE);
    let grid = eps_grid((1.05 * largest).max(1.0 / PIXEL_SCALE), 101)?;
    let mut csv = String::from("model,refine_steps,eps,eps_pixels,accuracy\n");
    let mut series = Vec::new();
    let mut json_models = Vec::new();
    let unit = match norm {
        Norm::Linf => "L∞",
        Norm::L2 => "L2",
    };
    let mut table = format!(
        "Robust accuracy under the {name} attack ({unit}; budgets on the [0, 255] pixel scale, \
         internal [-1, 1] scale = pixels / {PIXEL_SCALE}); {} test inputs, seed {}\n\n| model |",
        indices.len(),
        args.seed
    );
    for e in &report_eps {
        table.push_str(&format!(" ε = {e} |"));
    }
    table.push_str(" median distance (pixels) |");
    let pointwise = args.attack == AttackKind::Pointwise;
    if pointwise {
        table.push_str(" median L0 |");
    }
    table.push_str(&format!(
        "\n|---|{}---|{}\n",
        "---|".repeat(report_eps.len()),
        if pointwise { "---|" } else { "" }
    ));
    for r in results {
        let curve = RobustnessCurve::on_grid(norm, &r.distances, &grid)?;
        for p in &curve.points {
            csv.push_str(&format!(
                "{},{},{},{},{}\n",
                csv_field(&r.label),
                r.refine_steps,
                p.eps,
                p.eps_pixels,
                p.accuracy
            ));
        }
        series.push(LineSeries::new(
            r.label.clone(),
            curve
                .points
                .iter()
                .map(|p| (p.eps_pixels, p.accuracy))
                .collect(),
        ));
        let mut sorted = r.distances.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        table.push_str(&format!("| {} |", r.label));
        let mut robust = Vec::new();
        for e in &report_eps {
            let acc = accuracy_at(&r.distances, e / PIXEL_SCALE)?;
            robust.push(jem_report::RobustPoint {
                eps_pixels: *e,
                eps: e / PIXEL_SCALE,
                accuracy: acc,
            });
            table.push_str(&format!(" {:.1}% |", 100.0 * acc));
        }
        if median.is_finite() {
            table.push_str(&format!(" {:.1} |", median * PIXEL_SCALE));
        } else {
            table.push_str(" ∞ |");
        }
        if pointwise {
            match r.extra.median_l0 {
                Some(l0) => table.push_str(&format!(" {l0} |")),
                None => table.push_str(" - |"),
            }
        }
        table.push('\n');
        json_models.push(jem_report::AttackModel {
            model: r.label.clone(),
            refine_steps: r.refine_steps,
            clean_accuracy: accuracy_at(&r.distances, 0.0)?,
            robust_accuracy: robust,
            // None = not broken within the attack's budget.
            distances: r
                .distances
                .iter()
                .map(|&d| d.is_finite().then_some(d))
                .collect(),
            curve: crate::report::curve(&curve),
            details: r.extra.clone(),
        });
    }
    write(&out.join(format!("{name}.csv")), &csv)?;
    let png = out.join(format!("{name}.png"));
    line_plot_png(
        &series,
        &format!("{name}: accuracy under attack"),
        &format!(
            "ε ({}, [0, 255] pixel scale)",
            if norm == Norm::Linf { "L∞" } else { "L2" }
        ),
        "accuracy",
        &png,
    )
    .with_context(|| format!("writing {}", png.display()))?;
    let report = jem_report::AttackReport {
        attack: name.to_string(),
        norm: crate::report::norm(norm),
        seed: args.seed,
        test_indices: indices.to_vec(),
        eot_chains: args.eot,
        pgd: jem_report::PgdSettings {
            iterations: args.iterations,
            restarts: args.restarts,
            bisection_steps: args.bisection_steps,
            initial_eps_fraction: Some(args.initial_eps_fraction),
        },
        refinement: jem_report::RefinementSettings {
            step_size: args.refine_step_size,
            noise: args.refine_noise,
            clamp: args.refine_clamp,
            eot_noise: args.eot_noise,
        },
        models: json_models,
    };
    write_report(out, name, &table, &report)
}

/// Quotes a CSV field when it holds a separator or a quote.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
