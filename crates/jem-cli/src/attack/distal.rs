//! Distal adversarials (the paper's Fig 6): from noise to p(y = c | x) > 0.9 for every class.

use super::{progress, AttackArgs, Variant};
use crate::evaluate::write_report;
use anyhow::{Context, Result};
use jem_attack::{distal_adversarials, AttackTarget, DistalConfig};
use jem_eval::grid::{write_grid, GridSpec};
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub(super) fn distal(
    args: &AttackArgs,
    variants: &[Variant],
    test: &jem_data::Dataset,
    device: Device,
    out: &Path,
) -> Result<()> {
    let shape: Vec<i64> = test.image_shape().iter().map(|&d| d as i64).collect();
    let mut table = format!(
        "Distal adversarials: from uniform noise, ascend log p(y = c | x) until p > 0.9; {} per \
         class, seed {}\n\n| model | reached p > 0.9 | mean steps | mean p(c \\| x) |\n|---|---|---|---|\n",
        args.per_class, args.seed
    );
    let mut json_models = Vec::new();
    for v in variants {
        let target = v.target(args)?;
        let classes = target.num_classes();
        let bar = progress(classes as usize, format!("{}: distal", v.label), args.quiet);
        let mut images = Vec::new();
        let mut per_class = Vec::new();
        let (mut reached, mut steps, mut prob, mut count) = (0usize, 0usize, 0.0f64, 0usize);
        for class in 0..classes {
            let cfg = DistalConfig {
                class,
                seed: args.seed.wrapping_add(class as u64),
                max_steps: args.distal_steps,
                ..DistalConfig::default()
            };
            let outcome = distal_adversarials(&target, args.per_class, &shape, device, &cfg)
                .with_context(|| format!("distal adversarials of class {class} on {}", v.label))?;
            reached += outcome.reached.iter().filter(|&&r| r).count();
            steps += outcome.steps.iter().sum::<usize>();
            prob += outcome.probabilities.iter().sum::<f64>();
            count += outcome.reached.len();
            per_class.push(jem_report::DistalClass {
                class,
                probabilities: outcome.probabilities.clone(),
                reached: outcome.reached.clone(),
                steps: outcome.steps.clone(),
            });
            images.push(outcome.images);
            bar.inc(1);
        }
        bar.finish_and_clear();
        let all = Tensor::f_cat(&images, 0)?
            .f_to_kind(Kind::Float)?
            .f_to_device(Device::Cpu)?
            .f_contiguous()?;
        let pixels = Vec::<f32>::try_from(all.f_flatten(0, -1)?)?;
        let spec = GridSpec::new(
            all.size()[0] as usize,
            shape[0] as usize,
            shape[1] as usize,
            shape[2] as usize,
            args.per_class.max(1),
        );
        let file = format!("distal_{}.png", file_stem(&v.label));
        let png = out.join(&file);
        write_grid(&png, &pixels, &spec).with_context(|| format!("writing {}", png.display()))?;
        let count = count.max(1) as f64;
        table.push_str(&format!(
            "| {} | {:.1}% | {:.0} | {:.3} |\n",
            v.label,
            100.0 * reached as f64 / count,
            steps as f64 / count,
            prob / count
        ));
        json_models.push(jem_report::DistalModel {
            model: v.label.clone(),
            grid: file,
            classes: per_class,
        });
    }
    table.push_str("\nOne grid per model (`distal_<model>.png`), one row per class.\n");
    let report = jem_report::DistalReport {
        attack: "distal".to_string(),
        seed: args.seed,
        models: json_models,
    };
    write_report(out, "distal", &table, &report)
}

/// A label as a file-name part: letters, digits and `-`.
fn file_stem(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
