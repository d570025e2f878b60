//! `jem attack`: adversarial robustness of trained models (the paper's Sec. 5.4 and Appendix G).
//!
//! Every model is attacked on the same random subset of the test set (chosen by `--seed` only).
//! JEM checkpoints are attacked as JEM-k for each `--refine-steps` k, with `--eot` refinement
//! chains averaged (Eq. 11); a baseline checkpoint is attacked as it is (k = 0). Results: curves
//! of accuracy against the attack budget as CSV, JSON and a PNG plot, and a Markdown table of the
//! robust accuracy at a few budgets, in the paper's [0, 255] pixel units.

mod distal;
mod refinement;
mod report;

use crate::evaluate::{load, out_dir, test_set, Loaded};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use jem_attack::{
    boundary_attack, box_relative_eps, input_dim, minimal_eps, pointwise_attack, random_subset,
    transfer, AttackTarget, BoundaryConfig, Norm, PgdConfig, PointwiseConfig, SearchConfig,
    PIXEL_SCALE,
};
use jem_data::preprocess::to_model_range;
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
    /// Standard deviation of the Gaussian noise added to each EOT chain's copy of the input
    /// before refinement (the reference: 0.03; k = 0 adds none).
    #[arg(
        long,
        default_value_t = jem_attack::DEFAULT_EOT_NOISE,
        value_name = "SIGMA",
        allow_negative_numbers = true
    )]
    eot_noise: f64,
    /// SGLD step size α of the refinement (the paper: 1; never the checkpoint's training
    /// sampler).
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "ALPHA",
        allow_negative_numbers = true
    )]
    refine_step_size: f64,
    /// SGLD noise σ of each refinement step (the paper: 0.01).
    #[arg(
        long,
        default_value_t = 0.01,
        value_name = "SIGMA",
        allow_negative_numbers = true
    )]
    refine_noise: f64,
    /// Clamp every refinement step to [LO, HI] (the paper: no clamp).
    #[arg(long, value_name = "LO,HI", allow_hyphen_values = true, value_parser = refinement::parse_clamp)]
    refine_clamp: Option<(f64, f64)>,
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
    /// Bisection steps of the minimal-ε search (foolbox 2.4, which the paper used: 20).
    #[arg(long, default_value_t = jem_attack::FOOLBOX_BISECTION_STEPS)]
    bisection_steps: usize,
    /// First ε of the minimal-ε search as foolbox 2.4's `epsilon`: a fraction of the box's side
    /// (under L2, of the root-mean-square perturbation). foolbox 2.4, which the paper used: 0.3.
    #[arg(long, default_value_t = jem_attack::FOOLBOX_INITIAL_EPSILON)]
    initial_eps_fraction: f64,
    /// Boundary-attack iterations.
    #[arg(long, default_value_t = 5000)]
    boundary_iterations: usize,
    /// Random directions the boundary attack tries per iteration (foolbox's `max_directions`:
    /// 25); the attack's cost is proportional to iterations × directions.
    #[arg(long, default_value_t = BoundaryConfig::default().candidates)]
    boundary_candidates: usize,
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
    let f = args.initial_eps_fraction;
    if !(f.is_finite() && f > 0.0) {
        bail!("--initial-eps-fraction must be finite and > 0, got {f}");
    }
    refinement::refinement_sgld(args)
        .check()
        .context("the refinement's SGLD settings (--refine-step-size, --refine-noise)")?;
    if !(args.eot_noise.is_finite() && args.eot_noise >= 0.0) {
        bail!(
            "--eot-noise must be finite and >= 0, got {}",
            args.eot_noise
        );
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
        return distal::distal(args, &variants, &test, device, &out);
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
    report::report_curves(args, norm, &indices, &results, &out)
}

/// The model-range ([-1, 1]) images of `data` without the training noise (the attack, not the
/// noise, is what perturbs them) and their labels, on `device`.
fn clean_inputs(data: &jem_data::Dataset, device: Device) -> Result<(Tensor, Tensor)> {
    let x = to_model_range(&data.images.f_to_kind(Kind::Float)?)?.f_to_device(device)?;
    let labels = data.labels.f_to_kind(Kind::Int64)?.f_to_device(device)?;
    Ok((x, labels))
}

/// The minimal-ε search of `args` for inputs of `dim` coordinates each. Its start is capped at
/// the largest ε, as the library's default start is, so a small `--max-eps` stays valid.
fn search_config(args: &AttackArgs, norm: Norm, dim: usize) -> SearchConfig {
    let mut cfg = SearchConfig {
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
    };
    let start = box_relative_eps(norm, dim, args.initial_eps_fraction);
    cfg.initial_eps = Some(start.min(cfg.max_eps_for(dim)));
    cfg
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
    let cfg = search_config(args, norm, input_dim(x));
    let mut results = Vec::new();
    for v in variants {
        let target = v.target(args)?;
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
    let cfg = search_config(args, norm, input_dim(x));
    let source_target = source.target(args)?;
    let source_label = format!("{} (source)", source.label);
    let (source_eps, adversarials) =
        min_eps_of(args, &cfg, &source_target, &source_label, x, labels)?;
    let mut results = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let target = v.target(args)?;
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
        let target = v.target(args)?;
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
            candidates: args.boundary_candidates,
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
