//! `jem sample`: draw samples from a trained JEM with SGLD and write them as
//! `.npy` and PNG grids (the paper's Figs 2, 7 and 9).

use crate::args::ChainArgs;
use crate::evaluate;
use anyhow::{bail, Context, Result};
use jem_eval::grid::{write_grid, GridSpec};
use jem_model::JointEnergyModel;
use jem_sampler::{sgld, BufferState, Conditioned, Pcg64, ReplayBuffer, SgldConfig};
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

#[derive(clap::Args)]
pub struct SampleArgs {
    /// Run directory or checkpoint file.
    #[arg(long, value_name = "RUN")]
    pub(crate) checkpoint: PathBuf,
    /// Number of samples (with --conditional: per class).
    #[arg(long, default_value_t = 64)]
    pub(crate) n: usize,
    #[command(flatten)]
    pub(crate) chains: ChainArgs,
    /// Output directory (default: RUN/samples-cli).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

pub fn run(args: &SampleArgs, device: Device) -> Result<()> {
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    let loaded = evaluate::load(&args.checkpoint, device)?;
    let cfg = &loaded.config;
    let classes = cfg.model.num_classes;
    let total = if args.chains.conditional {
        args.n * classes
    } else {
        args.n
    };
    let mut rng = Pcg64::seed_from_u64(args.chains.seed);
    let start = starting_points(args, &loaded, total, &mut rng, device)?;
    let (c, h, w) = (start.size()[1], start.size()[2], start.size()[3]);
    let sgld_cfg = SgldConfig {
        steps: args.chains.steps,
        ..cfg.sampler.sgld.clone()
    };
    let model = &loaded.model;
    let samples = if args.chains.conditional {
        let labels: Vec<i64> = (0..total).map(|i| (i / args.n) as i64).collect();
        let labels = Tensor::from_slice(&labels).to_device(device);
        let energy = |x: &Tensor, y: &Tensor| {
            model
                .log_pxy(x, y, false)
                .map_err(jem_sampler::SamplerError::density)
        };
        let density = Conditioned::new(&energy, &labels);
        sgld(&density, &start, &sgld_cfg, &mut rng)?.0
    } else {
        let energy = |x: &Tensor| {
            model
                .log_px(x, false)
                .map_err(jem_sampler::SamplerError::density)
        };
        sgld(&energy, &start, &sgld_cfg, &mut rng)?.0
    };
    let samples = samples.detach().to_device(Device::Cpu).to_kind(Kind::Float);
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => loaded
            .checkpoint
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("samples-cli"),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let stem = if args.chains.conditional {
        "conditional"
    } else {
        "unconditional"
    };
    jem_data::npy::write_tensor_npy(&out.join(format!("{stem}.npy")), &samples)?;
    let flat = Vec::<f32>::try_from(samples.flatten(0, -1))?;
    let columns = if args.chains.conditional {
        args.n
    } else {
        (total as f64).sqrt().ceil() as usize
    };
    let spec = GridSpec::new(total, c as usize, h as usize, w as usize, columns.max(1));
    let png = out.join(format!("{stem}.png"));
    write_grid(&png, &flat, &spec).with_context(|| format!("writing {}", png.display()))?;
    let mut by_logpx_png = None;
    if args.chains.conditional {
        // The paper's Fig 9: each class row ordered by log p(x), highest on the left.
        let log_px = tch::no_grad(|| model.log_px(&samples.to_device(device), false))?;
        let log_px = Vec::<f32>::try_from(log_px.to_device(Device::Cpu))?;
        let mut order: Vec<i64> = Vec::with_capacity(total);
        for class in 0..classes {
            let mut row: Vec<usize> = (class * args.n..(class + 1) * args.n).collect();
            row.sort_by(|&a, &b| log_px[b].total_cmp(&log_px[a]));
            order.extend(row.into_iter().map(|i| i as i64));
        }
        let sorted = samples.index_select(0, &Tensor::from_slice(&order));
        let flat = Vec::<f32>::try_from(sorted.flatten(0, -1))?;
        let sorted_png = out.join("conditional_by_logpx.png");
        write_grid(&sorted_png, &flat, &spec)
            .with_context(|| format!("writing {}", sorted_png.display()))?;
        by_logpx_png = Some(sorted_png);
    }
    let npy = out.join(format!("{stem}.npy"));
    let report = jem_report::SampleReport {
        checkpoint: loaded.checkpoint.clone(),
        conditional: args.chains.conditional,
        n_samples: total,
        steps: args.chains.steps,
        from_noise: args.chains.from_noise,
        seed: args.chains.seed,
        npy: npy.clone(),
        png: png.clone(),
        by_logpx_png,
    };
    jem_report::write_json(&out.join(jem_report::files::SAMPLE), &report)?;
    println!(
        "wrote {} samples to {} and {}",
        total,
        npy.display(),
        png.display()
    );
    Ok(())
}

/// Random chains of the checkpoint's replay buffer (the paper's samples are buffer
/// samples; with `--conditional`, each from its class's slice of a class-conditional buffer),
/// or U(-1, 1) noise when asked or when the run kept no buffer.
fn starting_points(
    args: &SampleArgs,
    loaded: &evaluate::Loaded,
    total: usize,
    rng: &mut Pcg64,
    device: Device,
) -> Result<Tensor> {
    let checkpoint = &loaded.checkpoint;
    // The config is already loaded; the checkpoint is read again only for its buffer.
    let buffer: Vec<(String, Tensor)> = if args.chains.from_noise {
        Vec::new()
    } else {
        jem_train::checkpoint::read_checkpoint(checkpoint)?
            .tensors
            .into_iter()
            .filter(|(n, _)| n.starts_with("buffer."))
            .collect()
    };
    let [c, h, w] = loaded.config.data.resolve_shape()?.image.map(|v| v as i64);
    if args.chains.from_noise || buffer.is_empty() {
        if !args.chains.from_noise {
            tracing::warn!(
                "{} holds no replay buffer: starting from noise",
                checkpoint.display()
            );
        }
        let values: Vec<f32> = (0..total as i64 * c * h * w)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        return Ok(Tensor::from_slice(&values)
            .reshape([total as i64, c, h, w])
            .to_device(device));
    }
    let buffer = ReplayBuffer::from_state(
        BufferState::from_named_tensors(&buffer, "buffer.")?,
        Device::Cpu,
    )?;
    // Conditional chain i is of class i / n: from a class-conditional buffer it starts in that
    // class's slice (a chain of another class would keep its garment through a few SGLD steps);
    // `class_slots` is the whole buffer otherwise.
    let picks: Vec<i64> = (0..total)
        .map(|i| {
            let slots = if args.chains.conditional {
                buffer.class_slots((i / args.n) as i64)
            } else {
                0..buffer.len() as i64
            };
            rng.random_range(slots)
        })
        .collect();
    Ok(buffer
        .samples()
        .index_select(0, &Tensor::from_slice(&picks))
        .to_device(device))
}
