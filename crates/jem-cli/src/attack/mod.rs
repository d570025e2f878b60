//! `jem attack`: adversarial robustness of trained models (the paper's Sec. 5.4 and Appendix G).
//!
//! Every model is attacked on the same random subset of the test set (chosen by `--seed` only).
//! JEM checkpoints are attacked as JEM-k for each `--refine-steps` k, with `--eot` refinement
//! chains averaged (Eq. 11); a baseline checkpoint is attacked as it is (k = 0). Results: curves
//! of accuracy against the attack budget as CSV, JSON and a PNG plot, and a Markdown table of the
//! robust accuracy at a few budgets, in the paper's [0, 255] pixel units.

use crate::evaluate::{load, out_dir, test_set, write, write_report, Loaded};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use jem_attack::{
    accuracy_at, boundary_attack, distal_adversarials, eps_grid, minimal_eps, pointwise_attack,
    random_subset, transfer, AttackTarget, BoundaryConfig, DistalConfig, Norm, PgdConfig,
    PointwiseConfig, RefinedClassifier, RobustnessCurve, SearchConfig, PIXEL_SCALE,
};
use jem_data::preprocess::to_model_range;
use jem_eval::grid::{write_grid, GridSpec};
use jem_eval::plot::{line_plot_png, LineSeries};
use jem_sampler::Pcg64;
use jem_train::Mode;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Which attack to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttackKind {
    /// PGD under the L∞ norm; minimal ε per input by exponential search and bisection (Fig 5).
    PgdLinf,
    /// PGD under the L2 norm; minimal ε per input (Fig 14).
    PgdL2,
    /// Decision-based boundary attack, L2 distances (Fig 15).
    Boundary,
    /// Pointwise attack: few changed pixels, L2 distances and L0 counts (Fig 15).
    Pointwise,
    /// Minimal-ε adversarials found against the first model's JEM-0, shown to every model (Fig 17).
    Transfer,
    /// Distal adversarials: from noise to p(y = c | x) > 0.9 for every class (Fig 6).
    Distal,
}

impl AttackKind {
    fn name(self) -> &'static str {
        match self {
            Self::PgdLinf => "pgd-linf",
            Self::PgdL2 => "pgd-l2",
            Self::Boundary => "boundary",
            Self::Pointwise => "pointwise",
            Self::Transfer => "transfer",
            Self::Distal => "distal",
        }
    }
}

/// `--norm`: jem-attack's [`Norm`] as a command-line value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NormArg {
    Linf,
    L2,
}

impl From<NormArg> for Norm {
    fn from(n: NormArg) -> Self {
        match n {
            NormArg::Linf => Norm::Linf,
            NormArg::L2 => Norm::L2,
        }
    }
}

#[derive(clap::Args)]
pub struct AttackArgs {
    /// Models to attack: run directories or checkpoint files, each optionally named
    /// `NAME=RUN` (repeat the flag or separate with commas).
    #[arg(
        long,
        value_name = "[NAME=]RUN",
        value_delimiter = ',',
        required = true
    )]
    checkpoint: Vec<String>,
    /// The attack.
    #[arg(long, value_enum)]
    attack: AttackKind,
    /// SGLD refinement steps k of the JEM-k classifiers attacked (baselines: k = 0 only).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    refine_steps: Vec<usize>,
    /// Refinement chains whose log p(y|x) is averaged (expectation over transformations).
    #[arg(long, default_value_t = jem_attack::DEFAULT_CHAINS)]
    eot: usize,
    /// Number of test inputs attacked: a random subset chosen by --seed, the same for every model.
    #[arg(long, default_value_t = 300)]
    n: usize,
    /// Seed of the subset and of every attack's randomness.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Norm of the transfer attack's source PGD.
    #[arg(long, value_enum, default_value = "linf")]
    norm: NormArg,
    /// PGD iterations per restart.
    #[arg(long, default_value_t = 40)]
    iterations: usize,
    /// PGD random restarts (the best adversarial over all restarts is kept).
    #[arg(long, default_value_t = 20)]
    restarts: usize,
    /// Largest ε the minimal-ε search tries, [0, 255] pixel scale (default: the box's diameter).
    #[arg(long)]
    max_eps: Option<f64>,
    /// Bisection steps of the minimal-ε search.
    #[arg(long, default_value_t = 10)]
    bisection_steps: usize,
    /// Boundary-attack iterations.
    #[arg(long, default_value_t = 5000)]
    boundary_iterations: usize,
    /// Budgets ([0, 255] pixel scale) at which the table reports robust accuracy
    /// (default: 1,2,4,8,16,32 for L∞; 50,100,200,400,800 for L2).
    #[arg(long, value_delimiter = ',')]
    report_eps: Option<Vec<f64>>,
    /// Inputs per attack call: the progress bar's step and the memory bound.
    #[arg(long, default_value_t = 50)]
    batch_size: usize,
    /// Distal adversarials per class.
    #[arg(long, default_value_t = 8)]
    per_class: usize,
    /// Most gradient steps of a distal adversarial (it stops earlier once p(y = c|x) > 0.9).
    #[arg(long, default_value_t = 1000)]
    distal_steps: usize,
    /// Output directory (default: the first model's RUN/attack).
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// A loaded checkpoint and its name in the outputs.
struct NamedModel {
    name: String,
    loaded: Loaded,
}

/// One classifier under attack: a model at one refinement depth.
struct Variant<'a> {
    label: String,
    model: &'a NamedModel,
    refine_steps: usize,
}

impl Variant<'_> {
    fn target(&self, eot: usize) -> Result<RefinedClassifier<'_>> {
        let config = &self.model.loaded.config;
        // Without refinement the classifier is deterministic: one chain is the same as many.
        let chains = if self.refine_steps == 0 { 1 } else { eot };
        Ok(RefinedClassifier::new(
            &self.model.loaded.model,
            config.model.num_classes as i64,
            self.refine_steps,
            chains,
            config.sampler.sgld.clone(),
        )?)
    }
}

/// Distances of every attacked input under one variant, and what to report besides.
struct VariantResult {
    label: String,
    refine_steps: usize,
    /// Per input, internal units: minimal ε or adversarial distance (0 = misclassified clean,
    /// infinity = not broken).
    distances: Vec<f64>,
    extra: jem_report::AttackDetails,
}

fn parse_checkpoint(spec: &str) -> (Option<String>, PathBuf) {
    match spec.split_once('=') {
        Some((name, path)) if !name.is_empty() => (Some(name.to_string()), PathBuf::from(path)),
        _ => (None, PathBuf::from(spec)),
    }
}

fn default_name(loaded: &Loaded, path: &Path) -> String {
    let run_dir = if path.is_file() {
        path.parent().unwrap_or(path)
    } else {
        path
    };
    match run_dir.file_name().and_then(|s| s.to_str()) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => format!("{:?}", loaded.config.train.mode).to_lowercase(),
    }
}

fn progress(len: usize, message: String, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} ({eta}) {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

pub fn run(args: &AttackArgs, device: Device) -> Result<()> {
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    if args.eot == 0 {
        bail!("--eot must be at least 1");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let mut models = Vec::new();
    for spec in &args.checkpoint {
        let (name, path) = parse_checkpoint(spec);
        let loaded = load(&path, device)?;
        let name = name.unwrap_or_else(|| default_name(&loaded, &path));
        if models.iter().any(|m: &NamedModel| m.name == name) {
            bail!("two models are named `{name}`: name them with NAME=RUN");
        }
        models.push(NamedModel { name, loaded });
    }
    let first = &models[0].loaded;
    for m in &models[1..] {
        let (a, b) = (&first.config, &m.loaded.config);
        if a.data.dataset != b.data.dataset {
            bail!(
                "`{}` was trained on {} but `{}` on {}: attacks compare models on one data set",
                models[0].name,
                a.data.dataset.name(),
                m.name,
                b.data.dataset.name()
            );
        }
    }
    let test = test_set(&first.config, first.config.data.dataset, None)?;
    let indices = random_subset(test.len(), args.n.min(test.len()), args.seed)?;
    let (x, labels) = clean_inputs(&test.subset(&indices)?, device)?;

    let mut variants = Vec::new();
    for m in &models {
        let baseline = m.loaded.config.train.mode == Mode::Baseline;
        let ks: Vec<usize> = if baseline || args.attack == AttackKind::Distal {
            vec![0]
        } else {
            args.refine_steps.clone()
        };
        for k in ks {
            let label = if baseline {
                m.name.clone()
            } else {
                format!("{} JEM-{k}", m.name)
            };
            variants.push(Variant {
                label,
                model: m,
                refine_steps: k,
            });
        }
    }
    let out = out_dir(&args.out, &first.checkpoint, "attack")?;
    tracing::info!(
        attack = args.attack.name(),
        inputs = indices.len(),
        models = variants.len(),
        "attacking"
    );
    if args.attack == AttackKind::Distal {
        return distal(args, &variants, &test, device, &out);
    }
    let (norm, results) = match args.attack {
        AttackKind::PgdLinf => (
            Norm::Linf,
            pgd_all(args, Norm::Linf, &variants, &x, &labels)?,
        ),
        AttackKind::PgdL2 => (Norm::L2, pgd_all(args, Norm::L2, &variants, &x, &labels)?),
        AttackKind::Boundary => (
            Norm::L2,
            boundary_all(args, &variants, &x, &labels, &test, device)?,
        ),
        AttackKind::Pointwise => (Norm::L2, pointwise_all(args, &variants, &x, &labels)?),
        AttackKind::Transfer => {
            let norm = Norm::from(args.norm);
            (norm, transfer_all(args, norm, &variants, &x, &labels)?)
        }
        AttackKind::Distal => unreachable!("handled above"),
    };
    report_curves(args, norm, &indices, &results, &out)
}

/// The model-range ([-1, 1]) images of `data` without the training noise (the attack, not the
/// noise, is what perturbs them) and their labels, on `device`.
fn clean_inputs(data: &jem_data::Dataset, device: Device) -> Result<(Tensor, Tensor)> {
    let x = to_model_range(&data.images.f_to_kind(Kind::Float)?)?.f_to_device(device)?;
    let labels = data.labels.f_to_kind(Kind::Int64)?.f_to_device(device)?;
    Ok((x, labels))
}

fn search_config(args: &AttackArgs, norm: Norm) -> SearchConfig {
    SearchConfig {
        pgd: PgdConfig {
            norm,
            iterations: args.iterations,
            restarts: args.restarts,
            seed: args.seed,
            ..PgdConfig::default()
        },
        max_eps: args.max_eps.map(|e| e / PIXEL_SCALE),
        bisection_steps: args.bisection_steps,
        ..SearchConfig::default()
    }
}

/// Batches of at most `size` rows of `x` and `labels`, as (start, x, labels).
fn batches(x: &Tensor, labels: &Tensor, size: usize) -> Vec<(usize, Tensor, Tensor)> {
    let n = x.size()[0] as usize;
    (0..n)
        .step_by(size)
        .map(|start| {
            let len = size.min(n - start) as i64;
            (
                start,
                x.narrow(0, start as i64, len),
                labels.narrow(0, start as i64, len),
            )
        })
        .collect()
}

/// Minimal ε of every input under every variant; the closest adversarials are kept for transfer.
fn min_eps_of(
    args: &AttackArgs,
    cfg: &SearchConfig,
    target: &dyn AttackTarget,
    label: &str,
    x: &Tensor,
    labels: &Tensor,
) -> Result<(Vec<f64>, Tensor)> {
    let n = x.size()[0] as usize;
    let bar = progress(n, format!("{label}: minimal ε"), args.quiet);
    let mut eps = Vec::with_capacity(n);
    let mut adversarials = Vec::new();
    for (start, xb, yb) in batches(x, labels, args.batch_size) {
        // Each batch has its own stream, so a batch's result does not depend on the others.
        let mut cfg = cfg.clone();
        cfg.pgd.seed = args.seed.wrapping_add(start as u64);
        let outcome = minimal_eps(target, &xb, &yb, &cfg)
            .with_context(|| format!("minimal-ε search on {label}"))?;
        eps.extend(outcome.min_eps);
        adversarials.push(outcome.adversarials);
        bar.inc(xb.size()[0] as u64);
    }
    bar.finish_and_clear();
    Ok((eps, Tensor::f_cat(&adversarials, 0)?))
}

fn pgd_all(
    args: &AttackArgs,
    norm: Norm,
    variants: &[Variant],
    x: &Tensor,
    labels: &Tensor,
) -> Result<Vec<VariantResult>> {
    let cfg = search_config(args, norm);
    let mut results = Vec::new();
    for v in variants {
        let target = v.target(args.eot)?;
        let (distances, _) = min_eps_of(args, &cfg, &target, &v.label, x, labels)?;
        results.push(VariantResult {
            label: v.label.clone(),
            refine_steps: v.refine_steps,
            distances,
            extra: jem_report::AttackDetails::default(),
        });
    }
    Ok(results)
}

fn transfer_all(
    args: &AttackArgs,
    norm: Norm,
    variants: &[Variant],
    x: &Tensor,
    labels: &Tensor,
) -> Result<Vec<VariantResult>> {
    let Some(source) = variants.iter().find(|v| v.refine_steps == 0) else {
        bail!("the transfer attack needs a JEM-0 source: include 0 in --refine-steps");
    };
    let cfg = search_config(args, norm);
    let source_target = source.target(args.eot)?;
    let source_label = format!("{} (source)", source.label);
    let (source_eps, adversarials) =
        min_eps_of(args, &cfg, &source_target, &source_label, x, labels)?;
    let mut results = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let target = v.target(args.eot)?;
        let mut rng = Pcg64::seed_from_u64(args.seed.wrapping_add(1000 + i as u64));
        let outcome = transfer(&target, &adversarials, labels, &source_eps, &mut rng)
            .with_context(|| format!("transferring to {}", v.label))?;
        let still_fooled = outcome.fooled.iter().filter(|&&f| f).count();
        results.push(VariantResult {
            label: v.label.clone(),
            refine_steps: v.refine_steps,
            distances: outcome.distances,
            extra: jem_report::AttackDetails {
                source: Some(source.label.clone()),
                still_fooled: Some(still_fooled),
                ..Default::default()
            },
        });
    }
    Ok(results)
}

/// One attacked input's distance (internal units; infinity when not broken) and details.
type Attacked = (f64, Option<usize>);

/// Per input of one variant: distances and details.
type PerInput = (Vec<f64>, Vec<Option<usize>>);

/// Runs `attack` on every variant, a batch of inputs at a time under a progress bar. `attack`
/// gets the target, a seed of the batch's own and the batch, and returns one result per input.
fn attack_each_variant(
    args: &AttackArgs,
    variants: &[Variant],
    x: &Tensor,
    labels: &Tensor,
    mut attack: impl FnMut(&dyn AttackTarget, u64, &Tensor, &Tensor) -> Result<Vec<Attacked>>,
) -> Result<Vec<PerInput>> {
    let n = x.size()[0] as usize;
    let mut all = Vec::new();
    for v in variants {
        let target = v.target(args.eot)?;
        let bar = progress(
            n,
            format!("{}: {}", v.label, args.attack.name()),
            args.quiet,
        );
        let (mut distances, mut details) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (start, xb, yb) in batches(x, labels, args.batch_size) {
            let seed = args.seed.wrapping_add(start as u64);
            for (d, detail) in attack(&target, seed, &xb, &yb)
                .with_context(|| format!("{} attack on {}", args.attack.name(), v.label))?
            {
                distances.push(d);
                details.push(detail);
            }
            bar.inc(xb.size()[0] as u64);
        }
        bar.finish_and_clear();
        all.push((distances, details));
    }
    Ok(all)
}

fn boundary_all(
    args: &AttackArgs,
    variants: &[Variant],
    x: &Tensor,
    labels: &Tensor,
    test: &jem_data::Dataset,
    device: Device,
) -> Result<Vec<VariantResult>> {
    // Starting points come from the test set (the paper: a correctly classified image of the
    // top-2 class); 1000 images hold every class many times over.
    let pool = test.subset(&(0..test.len().min(1000)).collect::<Vec<_>>())?;
    let (pool_x, pool_y) = clean_inputs(&pool, device)?;
    let all = attack_each_variant(args, variants, x, labels, |target, seed, xb, yb| {
        let cfg = BoundaryConfig {
            max_iterations: args.boundary_iterations,
            seed,
            ..BoundaryConfig::default()
        };
        let report = boundary_attack(target, xb, yb, &pool_x, &pool_y, &cfg)?;
        Ok(report
            .l2_distances()
            .into_iter()
            .map(|d| (d, None))
            .collect())
    })?;
    Ok(variants
        .iter()
        .zip(all)
        .map(|(v, (distances, _))| VariantResult {
            label: v.label.clone(),
            refine_steps: v.refine_steps,
            distances,
            extra: jem_report::AttackDetails::default(),
        })
        .collect())
}

fn pointwise_all(
    args: &AttackArgs,
    variants: &[Variant],
    x: &Tensor,
    labels: &Tensor,
) -> Result<Vec<VariantResult>> {
    let all = attack_each_variant(args, variants, x, labels, |target, seed, xb, yb| {
        let cfg = PointwiseConfig {
            seed,
            ..PointwiseConfig::default()
        };
        let report = pointwise_attack(target, xb, yb, &cfg)?;
        Ok(report
            .outcomes
            .iter()
            .map(|o| match o.success {
                true => (o.l2_distance, Some(o.l0)),
                false => (f64::INFINITY, None),
            })
            .collect())
    })?;
    Ok(variants
        .iter()
        .zip(all)
        .map(|(v, (distances, l0))| {
            let mut changed: Vec<usize> = l0.iter().flatten().copied().filter(|&c| c > 0).collect();
            changed.sort_unstable();
            let median_l0 = changed.get(changed.len() / 2).copied();
            VariantResult {
                label: v.label.clone(),
                refine_steps: v.refine_steps,
                distances,
                extra: jem_report::AttackDetails {
                    l0: Some(l0),
                    median_l0,
                    ..Default::default()
                },
            }
        })
        .collect())
}

fn default_report_eps(norm: Norm) -> Vec<f64> {
    match norm {
        Norm::Linf => vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0],
        Norm::L2 => vec![50.0, 100.0, 200.0, 400.0, 800.0],
    }
}

/// Writes `<attack>.csv`, `.json`, `.md` and `.png` for the per-input distances of every variant.
fn report_curves(
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
        // The plot font is ASCII: no ε or ∞ glyphs.
        &format!(
            "eps ({}, [0, 255] pixel scale)",
            if norm == Norm::Linf { "Linf" } else { "L2" }
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

fn distal(
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
        let target = v.target(args.eot)?;
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
