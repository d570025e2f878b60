//! `jem info`: what libtorch this binary runs on and which devices it sees.

use anyhow::Result;
use tch::{Cuda, Device};

#[derive(clap::Args)]
pub struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &InfoArgs, device: Device) -> Result<()> {
    let cuda_devices = Cuda::device_count();
    let report = jem_report::InfoReport {
        jem_version: env!("CARGO_PKG_VERSION").to_string(),
        libtorch_cuda_linked: crate::device::cuda_linked(),
        cuda_available: Cuda::is_available(),
        cuda_devices,
        cudnn_available: Cuda::cudnn_is_available(),
        cpu_threads: i64::from(tch::get_num_threads()),
        device: format!("{device:?}"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("jem {}", env!("CARGO_PKG_VERSION"));
        println!("device:              {device:?}");
        println!("cpu threads:         {}", tch::get_num_threads());
        println!("libtorch_cuda linked: {}", crate::device::cuda_linked());
        println!("cuda devices:        {cuda_devices}");
        println!("cudnn available:     {}", Cuda::cudnn_is_available());
    }
    Ok(())
}
