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
//!
//! Every wheel is pinned by sha256 ([`pins`]) and installed with `--require-hashes`. A
//! cached install is checked against the sizes and hashes pip recorded when it unpacked
//! the wheels ([`cache`]); a truncated, missing or rewritten library makes set-up say so
//! and provision the install again. The cache directory is locked while set-up checks or
//! changes it, so two set-ups at once never delete each other's files.

pub mod cache;
pub mod pins;

use crate::util::{has_program, run_checked, workspace_root};
use anyhow::{bail, Context, Result};
use cache::{cache_state, lock_cache, verify_install, CacheState, COMPLETE_MARKER};
use pins::Pin;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TORCH_VERSION: &str = "2.13.0";

/// The Linux CUDA requirements of torch 2.13.0 (from its wheel METADATA), less the
/// Python-only ones (triton, cuda-bindings), by version only; set-up itself installs the
/// hash-pinned [`pins::CUDA`] set.
pub const CUDA_WHEELS: &[&str] = &[
    "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3",
    "nvidia-cudnn-cu13==9.20.0.48",
    "nvidia-cusparselt-cu13==0.8.1",
    "nvidia-nccl-cu13==2.29.7",
    "nvidia-nvshmem-cu13==3.4.5",
];

/// Marker (same name as `jem_build::CUDA_MARKER`) written into a CUDA install.
const CUDA_MARKER: &str = "jem-cuda";

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
    let python = python()?;
    let install = provision_at(&cache_dir()?, cuda, &|partial: &Path| {
        let mut wheels: Vec<&Pin> = vec![&pins::TORCH];
        wheels.extend(pins::CPU_EXTRA);
        pip_install_pinned(&python, partial, &wheels)
            .context("installing the torch wheel with pip failed")?;
        if cuda {
            let cuda_wheels: Vec<&Pin> = pins::CUDA.iter().collect();
            pip_install_pinned(&python, partial, &cuda_wheels)
                .context("installing the CUDA wheels with pip failed")?;
        }
        Ok(())
    })?;
    Ok(Libtorch {
        dir: install.join("torch"),
        cuda,
    })
}

/// Makes sure `<cache>/libtorch-<version>-<flavour>` is complete and intact, calling
/// `install_wheels` on a fresh `.partial` directory when it is absent or damaged, under the
/// cache lock. Returns the install directory.
fn provision_at(
    cache: &Path,
    cuda: bool,
    install_wheels: &dyn Fn(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let flavour = if cuda { "cu130" } else { "cpu" };
    let install = cache.join(format!("libtorch-{TORCH_VERSION}-{flavour}"));
    // Held until this function returns; the kernel drops it if the process dies.
    let _lock = lock_cache(cache)?;
    match cache_state(&install) {
        CacheState::Ready => return Ok(install),
        CacheState::Absent => eprintln!(
            "provisioning libtorch {TORCH_VERSION} ({flavour}) from PyPI into {} (about 1 GiB, once)",
            install.display()
        ),
        CacheState::Damaged(reason) => {
            eprintln!(
                "the cached libtorch in {} is damaged ({reason}); provisioning it again from PyPI",
                install.display()
            );
            std::fs::remove_dir_all(&install)
                .with_context(|| format!("cannot remove the damaged {}", install.display()))?;
        }
    }
    let partial = cache.join(format!("libtorch-{TORCH_VERSION}-{flavour}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove the stale {}", partial.display()))?;
    }
    install_wheels(&partial)?;
    link_nvidia_libs(&partial)?;
    let partial_torch = partial.join("torch");
    std::fs::write(
        partial_torch.join("build-version"),
        format!("{TORCH_VERSION}\n"),
    )
    .with_context(|| format!("cannot write into {}", partial_torch.display()))?;
    if cuda {
        std::fs::write(partial_torch.join(CUDA_MARKER), "cu130\n")?;
    }
    // Hash every library against pip's RECORD now, which also writes the stamp later
    // set-ups compare sizes and times with.
    verify_install(&partial).map_err(|reason| {
        anyhow::anyhow!(
            "the fresh install in {} is broken: {reason}",
            partial.display()
        )
    })?;
    std::fs::write(partial.join(COMPLETE_MARKER), "")?;
    std::fs::rename(&partial, &install)
        .with_context(|| format!("cannot move {} into place", partial.display()))?;
    Ok(install)
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

/// `pip install --target <target> <packages>`, quietly (by version only: the wheels
/// set-up installs go through [`pip_install_pinned`]).
pub fn pip_install(python: &str, target: &Path, packages: &[&str], no_deps: bool) -> Result<()> {
    let mut pip = pip_command(python, target);
    if no_deps {
        pip.arg("--no-deps");
    }
    run_checked(pip.args(packages))
}

/// `pip install --require-hashes --no-deps --target <target> -r <pins>`: every wheel must
/// match one of its pinned sha256 digests, or pip refuses it before unpacking anything.
pub fn pip_install_pinned(python: &str, target: &Path, wheels: &[&Pin]) -> Result<()> {
    let requirements = target.with_extension("requirements.txt");
    std::fs::write(&requirements, pins::requirements(wheels))
        .with_context(|| format!("cannot write {}", requirements.display()))?;
    let mut pip = pip_command(python, target);
    pip.args(["--require-hashes", "--no-deps", "--only-binary=:all:", "-r"])
        .arg(&requirements);
    let result = run_checked(&mut pip);
    let _ = std::fs::remove_file(&requirements);
    result
}

/// Installs into `dir` once: when its complete marker is missing, `install` fills a fresh
/// `<dir>.partial`, which gets the marker and then replaces `dir`, so an interrupted install
/// is never taken for a finished one.
pub fn install_once(dir: &Path, install: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if dir.join(COMPLETE_MARKER).is_file() {
        return Ok(());
    }
    let partial = dir.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove the stale {}", partial.display()))?;
    }
    install(&partial)?;
    std::fs::write(partial.join(COMPLETE_MARKER), "")?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::rename(&partial, dir)
        .with_context(|| format!("cannot move {} into place", partial.display()))
}

fn pip_command(python: &str, target: &Path) -> Command {
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
    pip
}

fn check_layout(dir: &Path) -> Result<()> {
    for needed in cache::KEY_FILES {
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

#[cfg(test)]
mod tests {
    use super::cache::tests::fake_install;
    use super::*;
    use std::cell::Cell;

    #[test]
    fn provisions_once_then_reuses_and_reprovisions_a_damaged_cache() {
        let cache = tempfile::tempdir().unwrap();
        let calls = Cell::new(0);
        let installer = |partial: &Path| -> Result<()> {
            calls.set(calls.get() + 1);
            fake_install(partial);
            Ok(())
        };
        let install = provision_at(cache.path(), false, &installer).unwrap();
        assert_eq!(install, cache.path().join("libtorch-2.13.0-cpu"));
        assert_eq!(calls.get(), 1);
        assert!(install.join(COMPLETE_MARKER).is_file());
        assert!(install.join(cache::VERIFIED_STAMP).is_file());
        assert_eq!(
            std::fs::read_to_string(install.join("torch/build-version")).unwrap(),
            "2.13.0\n"
        );
        assert!(!cache.path().join("libtorch-2.13.0-cpu.partial").exists());

        // Intact: reused, nothing installed.
        provision_at(cache.path(), false, &installer).unwrap();
        assert_eq!(calls.get(), 1);

        // Marker present but a library truncated: detected and provisioned again.
        let lib = install.join("torch/lib/libc10.so");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&lib)
            .unwrap()
            .set_len(3)
            .unwrap();
        assert!(
            matches!(cache_state(&install), CacheState::Damaged(r) if r.contains("libc10.so is 3 bytes"))
        );
        provision_at(cache.path(), false, &installer).unwrap();
        assert_eq!(calls.get(), 2);
        assert_eq!(cache_state(&install), CacheState::Ready);

        // A library missing: the same.
        std::fs::remove_file(install.join("torch/lib/libtorch_cpu.so")).unwrap();
        provision_at(cache.path(), false, &installer).unwrap();
        assert_eq!(calls.get(), 3);
        assert_eq!(cache_state(&install), CacheState::Ready);

        // A CUDA install carries the marker the build scripts look for.
        let cuda = provision_at(cache.path(), true, &installer).unwrap();
        assert!(cuda.join("torch").join(CUDA_MARKER).is_file());
    }

    #[test]
    fn a_broken_fresh_install_is_never_marked_complete() {
        let cache = tempfile::tempdir().unwrap();
        let broken = |partial: &Path| -> Result<()> {
            fake_install(partial);
            std::fs::write(
                partial.join("torch/lib/libc10.so"),
                b"not what pip recorded",
            )
            .unwrap();
            Ok(())
        };
        let e = provision_at(cache.path(), false, &broken)
            .unwrap_err()
            .to_string();
        assert!(e.contains("libc10.so is 21 bytes, pip recorded 11"), "{e}");
        assert!(!cache.path().join("libtorch-2.13.0-cpu").exists());
        let failing = |_: &Path| -> Result<()> { bail!("no network") };
        assert!(provision_at(cache.path(), false, &failing).is_err());
        assert!(!cache.path().join("libtorch-2.13.0-cpu").exists());
    }
}
