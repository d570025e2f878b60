//! Provision libtorch 2.13.0 from PyPI's `torch` wheel.
//!
//! The wheel holds `torch/lib` and `torch/include`, which is all tch needs. On a
//! machine without a GPU only two more wheels are required: `libtorch_cpu.so`
//! links `libcudart.so.13` and `libcupti.so.13`. On a CUDA machine the CUDA
//! libraries the wheel declares are installed too, and a marker file tells the
//! jem build scripts to keep `libtorch_cuda.so` linked.
//!
//! The install goes to `<cache>/libtorch-2.13.0-<flavour>` where `<cache>` is
//! `$JEM_CACHE_DIR`, else `$XDG_CACHE_HOME/jem`, else `~/.cache/jem`. It is
//! built in a `.partial` directory and renamed when complete, so an interrupted
//! install is retried, never half-used. An existing `LIBTORCH` is respected.

use crate::util::{has_program, run_checked, workspace_root};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TORCH_VERSION: &str = "2.13.0";

/// Wheels needed besides `torch` itself on a machine without a GPU (versions as
/// pinned by torch 2.13.0's `cuda-toolkit==13.0.3` requirement).
const CPU_EXTRA_WHEELS: &[&str] = &["nvidia-cuda-runtime==13.0.96", "nvidia-cuda-cupti==13.0.85"];

/// The Linux CUDA requirements of torch 2.13.0 (from its wheel METADATA), less the
/// Python-only ones (triton, cuda-bindings).
pub const CUDA_WHEELS: &[&str] = &[
    "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3",
    "nvidia-cudnn-cu13==9.20.0.48",
    "nvidia-cusparselt-cu13==0.8.1",
    "nvidia-nccl-cu13==2.29.7",
    "nvidia-nvshmem-cu13==3.4.5",
];

/// Marker (same name as `jem_build::CUDA_MARKER`) written into a CUDA install.
const CUDA_MARKER: &str = "jem-cuda";
const COMPLETE_MARKER: &str = ".jem-complete";

/// Where libtorch is, and whether it carries CUDA.
pub struct Libtorch {
    pub dir: PathBuf,
    pub cuda: bool,
}

/// The link inside `target/` that `.cargo/config.toml` points `LIBTORCH` at.
pub fn target_link() -> PathBuf {
    workspace_root().join("target").join("libtorch")
}

/// The cache directory for downloaded artefacts.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("JEM_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("jem"));
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("jem")),
        None => bail!("cannot choose a cache directory: set JEM_CACHE_DIR (or HOME)"),
    }
}

/// True when this machine has an NVIDIA GPU (`JEM_CUDA=0|1` overrides).
pub fn gpu_present() -> bool {
    match std::env::var("JEM_CUDA").as_deref() {
        Ok("1") | Ok("true") => return true,
        Ok("0") | Ok("false") => return false,
        _ => {}
    }
    Path::new("/dev/nvidia0").exists()
        || Command::new("nvidia-smi")
            .arg("-L")
            .output()
            .map(|o| o.status.success() && !o.stdout.is_empty())
            .unwrap_or(false)
}

/// A `LIBTORCH` the user set themselves (not the value `.cargo/config.toml` supplies).
fn user_libtorch() -> Option<PathBuf> {
    let value = PathBuf::from(std::env::var_os("LIBTORCH").filter(|v| !v.is_empty())?);
    if value == target_link() {
        None
    } else {
        Some(value)
    }
}

/// Make sure libtorch is available and `target/libtorch` points at it.
pub fn ensure() -> Result<Libtorch> {
    let libtorch = match user_libtorch() {
        Some(dir) => {
            check_layout(&dir).with_context(|| {
                format!(
                    "LIBTORCH={} does not look like libtorch {TORCH_VERSION}",
                    dir.display()
                )
            })?;
            eprintln!("using LIBTORCH={} from the environment", dir.display());
            let cuda = dir.join(CUDA_MARKER).is_file();
            Libtorch { dir, cuda }
        }
        None => provision(gpu_present())?,
    };
    link_into_target(&libtorch.dir)?;
    Ok(libtorch)
}

fn provision(cuda: bool) -> Result<Libtorch> {
    let flavour = if cuda { "cu130" } else { "cpu" };
    let cache = cache_dir()?;
    let install = cache.join(format!("libtorch-{TORCH_VERSION}-{flavour}"));
    let torch = install.join("torch");
    if install.join(COMPLETE_MARKER).is_file() {
        check_layout(&torch)?;
        return Ok(Libtorch { dir: torch, cuda });
    }
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create the cache directory {}", cache.display()))?;
    let partial = cache.join(format!("libtorch-{TORCH_VERSION}-{flavour}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove the stale {}", partial.display()))?;
    }
    eprintln!(
        "provisioning libtorch {TORCH_VERSION} ({flavour}) from PyPI into {} (about 1 GiB, once)",
        install.display()
    );
    let python = python()?;
    let torch_wheel = format!("torch=={TORCH_VERSION}");
    let mut packages = vec![torch_wheel.as_str()];
    packages.extend(CPU_EXTRA_WHEELS);
    pip_install(&python, &partial, &packages, true)
        .context("downloading the torch wheel with pip failed")?;
    if cuda {
        // These bring their own nvidia-* dependencies, so no --no-deps here.
        pip_install(&python, &partial, CUDA_WHEELS, false)
            .context("downloading the CUDA wheels with pip failed")?;
    }
    let partial_torch = partial.join("torch");
    check_layout(&partial_torch)?;
    link_nvidia_libs(&partial)?;
    std::fs::write(
        partial_torch.join("build-version"),
        format!("{TORCH_VERSION}\n"),
    )?;
    if cuda {
        std::fs::write(partial_torch.join(CUDA_MARKER), "cu130\n")?;
    }
    std::fs::write(partial.join(COMPLETE_MARKER), "")?;
    if install.exists() {
        std::fs::remove_dir_all(&install)?;
    }
    std::fs::rename(&partial, &install)
        .with_context(|| format!("cannot move {} into place", partial.display()))?;
    Ok(Libtorch { dir: torch, cuda })
}

/// libtorch's RPATH reaches the CUDA libraries as `$ORIGIN/../../nvidia/*/lib`, which
/// only holds when the library is loaded through its real path. Links next to
/// `libtorch_cpu.so` (covered by its `$ORIGIN` entry) make any path work.
fn link_nvidia_libs(site: &Path) -> Result<()> {
    let lib_dir = site.join("torch").join("lib");
    let nvidia = site.join("nvidia");
    let Ok(packages) = std::fs::read_dir(&nvidia) else {
        return Ok(());
    };
    for package in packages {
        let package_lib = package?.path().join("lib");
        let Ok(entries) = std::fs::read_dir(&package_lib) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let target = lib_dir.join(&name);
            if name.contains(".so") && !target.exists() {
                let relative = Path::new("../..")
                    .join("nvidia")
                    .join(package_lib.strip_prefix(&nvidia)?)
                    .join(&name);
                std::os::unix::fs::symlink(&relative, &target)
                    .with_context(|| format!("cannot link {}", target.display()))?;
            }
        }
    }
    Ok(())
}

/// `pip install --target <target> <packages>`, quietly.
pub fn pip_install(python: &str, target: &Path, packages: &[&str], no_deps: bool) -> Result<()> {
    let mut pip = Command::new(python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--disable-pip-version-check",
    ])
    .arg("--target")
    .arg(target);
    if no_deps {
        pip.arg("--no-deps");
    }
    run_checked(pip.args(packages))
}

fn check_layout(dir: &Path) -> Result<()> {
    for needed in [
        "lib/libtorch_cpu.so",
        "lib/libc10.so",
        "include/torch/csrc/api/include/torch/torch.h",
    ] {
        if !dir.join(needed).exists() {
            bail!("{} is missing {needed}", dir.display());
        }
    }
    Ok(())
}

pub fn python() -> Result<String> {
    if let Ok(python) = std::env::var("JEM_PYTHON") {
        return Ok(python);
    }
    for candidate in ["python3", "python"] {
        if has_program(candidate) {
            return Ok(candidate.to_string());
        }
    }
    bail!(
        "libtorch is provisioned from PyPI with pip, but no python3 was found: install python3 with \
         pip, set JEM_PYTHON, or point LIBTORCH at a libtorch {TORCH_VERSION} install"
    )
}

fn link_into_target(dir: &Path) -> Result<()> {
    let link = target_link();
    std::fs::create_dir_all(link.parent().expect("target/libtorch has a parent"))?;
    if let Ok(current) = std::fs::read_link(&link) {
        if current == dir {
            return Ok(());
        }
    }
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link)
            .with_context(|| format!("cannot replace {}", link.display()))?;
    }
    std::os::unix::fs::symlink(dir, &link)
        .with_context(|| format!("cannot link {} to {}", link.display(), dir.display()))
}
