//! What a person reads of `jem generative --judge`: the PNG grids and `judge.md`.

use super::judge::Samples;
use super::{evenly_spaced, grid_png, rows, square_columns, GenerativeArgs};
use crate::evaluate::Loaded;
use anyhow::Result;
use jem_eval::grid::PixelRange;
use jem_model::JointEnergyModel;
use jem_report::judge_sets as sets;
use jem_report::{JudgeGrids, JudgeReport};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Columns of the per-class grids.
const GRID_COLUMNS: usize = 10;
/// Most samples in the unconditional grid.
const GRID_MAX: usize = 100;

/// `log p(x)` of `x` under the JEM, batched, on the CPU.
fn log_px(
    model: &dyn JointEnergyModel,
    x: &Tensor,
    batch: usize,
    device: Device,
) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    let n = x.size()[0];
    for start in (0..n).step_by(batch) {
        let len = (batch as i64).min(n - start);
        let xb = x.narrow(0, start, len).to_device(device);
        let v = tch::no_grad(|| model.log_px(&xb, false))?;
        out.extend(Vec::<f32>::try_from(
            v.to_device(Device::Cpu).to_kind(Kind::Float),
        )?);
    }
    Ok(out)
}

/// The samples grid, the per-class grid, its rows ordered by log p(x), and the Gaussian rows.
pub(super) fn write_grids(
    args: &GenerativeArgs,
    jem: &Loaded,
    samples: &Samples,
    gaussian_conditional: &Tensor,
    per_class: usize,
    device: Device,
    out: &Path,
) -> Result<JudgeGrids> {
    let classes = jem.config.model.num_classes;
    let columns = per_class.min(GRID_COLUMNS);
    let n = samples.unconditional.size()[0] as usize;
    let shown = evenly_spaced(n, GRID_MAX);
    let grids = JudgeGrids {
        samples: out.join("samples.png"),
        per_class: out.join("per_class.png"),
        per_class_by_logpx: out.join("per_class_by_logpx.png"),
        gaussian: out.join("gaussian.png"),
    };
    grid_png(
        &grids.samples,
        &rows(&samples.unconditional, &shown),
        square_columns(shown.len()),
        PixelRange::MinusOneToOne,
    )?;
    // Class c's samples are rows c·per_class .. (c+1)·per_class.
    let firsts: Vec<usize> = (0..classes)
        .flat_map(|c| (0..columns).map(move |i| c * per_class + i))
        .collect();
    grid_png(
        &grids.per_class,
        &rows(&samples.conditional, &firsts),
        columns,
        PixelRange::MinusOneToOne,
    )?;
    grid_png(
        &grids.gaussian,
        &rows(gaussian_conditional, &firsts),
        columns,
        PixelRange::MinusOneToOne,
    )?;
    // Fig 9: each row ordered by log p(x), highest on the left, spanning the class's range.
    let scores = log_px(&jem.model, &samples.conditional, args.batch_size, device)?;
    let mut ordered = Vec::with_capacity(classes * columns);
    for c in 0..classes {
        let mut row: Vec<usize> = (c * per_class..(c + 1) * per_class).collect();
        row.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let spread = if per_class <= columns {
            (0..per_class).collect()
        } else {
            (0..columns)
                .map(|i| i * (per_class - 1) / (columns - 1).max(1))
                .collect::<Vec<_>>()
        };
        ordered.extend(spread.into_iter().map(|i| row[i]));
    }
    grid_png(
        &grids.per_class_by_logpx,
        &rows(&samples.conditional, &ordered),
        columns,
        PixelRange::MinusOneToOne,
    )?;
    Ok(grids)
}

fn pct(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

/// The Markdown of `judge.md`.
pub(super) fn markdown(r: &JudgeReport, classes: usize) -> String {
    let mut t = format!(
        "Samples of {} judged by {} (an independent classifier; FID in its penultimate \
         features: **classifier features, not Inception**)\n\n\
         - samples: {}\n- class-conditional samples: {}\n- Gaussian initialisation: {}\n\n\
         ## Agreement of the independent classifier\n\n\
         | set | images | assigned to the intended class | mean confidence | mean p(intended) |\n\
         |---|---|---|---|---|\n",
        r.checkpoint.display(),
        r.judge.display(),
        r.samples_source,
        r.conditional_source,
        r.gaussian_source,
    );
    for row in &r.agreement {
        let a = &row.overall;
        t.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} |\n",
            row.set,
            a.n,
            pct(a.agreement),
            a.confidence,
            a.intended_probability
        ));
    }
    t.push_str("\nPer class (assigned to the intended class / mean confidence):\n\n| set |");
    for c in 0..classes {
        t.push_str(&format!(" {c} |"));
    }
    t.push_str(&format!("\n|---|{}\n", "---|".repeat(classes)));
    for row in &r.agreement {
        t.push_str(&format!("| {} |", row.set));
        for a in &row.per_class {
            t.push_str(&format!(" {} / {:.2} |", pct(a.agreement), a.confidence));
        }
        t.push('\n');
    }
    t.push_str(&format!(
        "\n## FID to {} test images in the judge's features (not Inception)\n\n\
         | set | images | FID | FID / FID(Gaussian initialisation) |\n|---|---|---|---|\n",
        r.n
    ));
    let gaussian = r.fid_of(sets::GAUSSIAN).unwrap_or(f64::NAN);
    for row in &r.fid {
        t.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} |\n",
            row.set,
            row.n,
            row.fid,
            row.fid / gaussian
        ));
    }
    t.push_str(&format!(
        "\nFID(samples) / FID(Gaussian initialisation) = **{:.3}** (below 1: the samples beat \
         the trivial generator). The last row, the test images against themselves, is the \
         computation's floor.\n\n\
         Grids: {}, {}, {} (rows ordered by log p(x), highest left), {}.\n",
        r.fid_ratio_to_gaussian,
        name(&r.grids.samples),
        name(&r.grids.per_class),
        name(&r.grids.per_class_by_logpx),
        name(&r.grids.gaussian),
    ));
    t
}

fn name(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}
