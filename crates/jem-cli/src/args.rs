//! Options shared by several commands, flattened into each (`#[command(flatten)]`).

use std::path::PathBuf;

/// How `jem sample` and `jem generative` draw SGLD chains.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ChainArgs {
    /// Sample x ~ p(x|y) with the class-conditional energy f(x)[y], per class (one grid row per
    /// class).
    #[arg(long)]
    pub conditional: bool,
    /// SGLD steps run from the starting points, with the run's SGLD step size and noise (with
    /// `generative --judge`: of the chains drawn when the buffer cannot provide the samples).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Start from fresh U(-1, 1) noise instead of the checkpoint's replay buffer.
    #[arg(long)]
    pub from_noise: bool,
    /// Seed of the chain selection and the SGLD noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The model and outputs of `jem eval` and `jem calibrate`.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ModelArgs {
    /// Run directory or checkpoint file.
    #[arg(long, value_name = "RUN")]
    pub checkpoint: PathBuf,
    /// Output directory (default: a folder named after the command next to the checkpoint,
    /// e.g. RUN/eval or RUN/calibration).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
}
