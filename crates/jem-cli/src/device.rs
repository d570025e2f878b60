//! `--device` parsing: a CUDA request on a machine without a GPU is an error,
//! never a silent fall-back to the CPU.

use anyhow::{bail, Context, Result};
use tch::{Cuda, Device};

pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("cpu") {
        return Ok(Device::Cpu);
    }
    let index = match spec.to_ascii_lowercase().as_str() {
        "cuda" | "gpu" => 0,
        other => match other.strip_prefix("cuda:") {
            Some(n) => n
                .parse::<usize>()
                .with_context(|| format!("--device {spec}: `{n}` is not a GPU index"))?,
            None => bail!("--device {spec}: expected `cpu`, `cuda` or `cuda:N`"),
        },
    };
    let count = Cuda::device_count();
    if count <= 0 {
        bail!(
            "--device {spec}: no CUDA device is available (libtorch sees 0 GPUs{}). Use --device cpu, \
             or on a machine with a GPU run `cargo xtask setup` there so the CUDA libraries are installed \
             and linked",
            if cuda_linked() { "" } else { "; this binary was built without libtorch_cuda" }
        );
    }
    if index as i64 >= count {
        bail!(
            "--device {spec}: only {count} CUDA device(s), numbered 0..{}",
            count - 1
        );
    }
    Ok(Device::Cuda(index))
}

/// Whether libtorch_cuda.so is loaded into this process (it is only when the
/// build kept it linked, see jem-build).
pub fn cuda_linked() -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .map(|maps| maps.contains("libtorch_cuda.so"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_accepted_in_any_case() {
        assert_eq!(parse_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device(" CPU ").unwrap(), Device::Cpu);
    }

    #[test]
    fn malformed_specs_name_the_value() {
        let err = parse_device("tpu").unwrap_err().to_string();
        assert!(err.contains("--device tpu"), "{err}");
        let err = parse_device("cuda:x").unwrap_err().to_string();
        assert!(err.contains("`x` is not a GPU index"), "{err}");
    }

    #[test]
    fn cuda_without_gpu_is_an_error() {
        if Cuda::device_count() > 0 {
            return; // only meaningful on machines without a GPU (CI)
        }
        let err = parse_device("cuda").unwrap_err().to_string();
        assert!(err.contains("no CUDA device is available"), "{err}");
    }
}
