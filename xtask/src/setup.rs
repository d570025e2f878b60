//! `cargo xtask setup`: everything a fresh machine needs before building jem.
//!
//! Every wheel is installed by sha256 (`libtorch::pins`), the cached libtorch is checked
//! against the sizes and hashes pip recorded and re-provisioned when damaged, and the cache
//! is locked while it is checked or changed (`libtorch::cache`).

use crate::{dataset, libtorch};
use anyhow::Result;

#[derive(clap::Args)]
pub struct SetupArgs {
    /// Skip the Fashion-MNIST check/install.
    #[arg(long)]
    pub no_data: bool,
}

pub fn run(args: &SetupArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let torch = libtorch::ensure()?;
    eprintln!(
        "libtorch {}: {} ({})",
        libtorch::TORCH_VERSION,
        torch.dir.display(),
        if torch.cuda { "with CUDA" } else { "CPU only" }
    );
    if !args.no_data {
        let dir = dataset::ensure_fashion_mnist()?;
        eprintln!("Fashion-MNIST: {}", dir.display());
    }
    eprintln!("set-up done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
