//! Build-script helper shared by every jem crate that links libtorch.
//!
//! Cargo only applies `rustc-link-arg` to the targets of the package whose
//! build script printed it, so each crate that links libtorch calls
//! [`link_libtorch`] from its own `build.rs`. It reads the libtorch location
//! that `torch-sys` publishes (`DEP_TCH_LIBTORCH_LIB`, which requires a direct
//! `torch-sys` dependency) and:
//!
//! * embeds that directory as an rpath, so binaries, tests and examples find
//!   `libtorch*.so` without `LD_LIBRARY_PATH`;
//! * when the libtorch install is marked as CUDA-capable (a `jem-cuda` file
//!   next to `lib/`, written by `cargo xtask setup` on a machine with a GPU),
//!   forces `libtorch_cuda.so` into the binary's `DT_NEEDED` list. Without it
//!   the linker's `--as-needed` rule drops the library (no symbol of it is
//!   referenced directly) and libtorch silently reports no CUDA device.

use std::path::{Path, PathBuf};

/// Name of the marker file, next to libtorch's `lib/` directory, that says
/// the install carries the CUDA runtime libraries.
pub const CUDA_MARKER: &str = "jem-cuda";

/// Emit the link arguments described in the crate docs. Call it from `build.rs`.
pub fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!(
            "cargo:warning=DEP_TCH_LIBTORCH_LIB is not set: add a direct `torch-sys` dependency \
             so the libtorch rpath can be embedded"
        );
        return;
    };
    for line in link_directives(Path::new(&lib)) {
        println!("{line}");
    }
}

/// The `cargo:` lines of [`link_libtorch`] for the libtorch `lib/` directory `lib`.
///
/// A file named in `rerun-if-changed` that does not exist makes cargo rerun the build script on
/// every build, and so recompile every crate above it (about a minute of release build per
/// `cargo xtask reproduce`, measured 2026-12-07). The CUDA marker is watched only where it
/// exists: an install directory never gains or loses it (`cargo xtask setup` writes it before
/// the install is moved into place, and CUDA and CPU installs live in different directories,
/// which `DEP_TCH_LIBTORCH_LIB` tells apart).
pub fn link_directives(lib: &Path) -> Vec<String> {
    // Canonicalise: libtorch's own RPATH is `$ORIGIN/../../nvidia/...`, and
    // `$ORIGIN` is taken from the path the loader used, so it must be the real
    // directory, not a symlink into `target/`.
    let lib = std::fs::canonicalize(lib).unwrap_or_else(|_| lib.to_path_buf());
    let mut lines = vec![format!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display())];
    if let Some(root) = lib.parent() {
        let marker = root.join(CUDA_MARKER);
        if marker.is_file() {
            lines.push(format!("cargo:rerun-if-changed={}", marker.display()));
        }
        if has_cuda(root) {
            lines.push("cargo:rustc-link-arg=-Wl,--no-as-needed".into());
            lines.push("cargo:rustc-link-arg=-ltorch_cuda".into());
            lines.push("cargo:rustc-link-arg=-Wl,--as-needed".into());
        }
    }
    lines
}

/// Compiles C++ sources against libtorch's ATen headers into a static library `name` linked into
/// the calling crate (for operators tch does not expose). Uses the libtorch `torch-sys` found,
/// the C++17 standard and the C++11 ABI of the PyPI wheels (`LIBTORCH_CXX11_ABI`, default 1, as
/// torch-sys). Call it from `build.rs` after [`link_libtorch`].
pub fn compile_cpp(name: &str, sources: &[&str]) {
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    for s in sources {
        println!("cargo:rerun-if-changed={s}");
    }
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        panic!("DEP_TCH_LIBTORCH_LIB is not set: add a direct `torch-sys` dependency");
    };
    let lib = PathBuf::from(lib);
    let lib = std::fs::canonicalize(&lib).unwrap_or(lib);
    let root = lib
        .parent()
        .expect("libtorch's lib directory has a parent")
        .to_path_buf();
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    cc::Build::new()
        .cpp(true)
        .files(sources)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .opt_level(2)
        .compile(name);
}

/// True when the libtorch install at `root` was provisioned with CUDA libraries.
pub fn has_cuda(root: &Path) -> bool {
    root.join(CUDA_MARKER).is_file() && root.join("lib").join("libtorch_cuda.so").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A libtorch-like tree in a fresh temporary directory: `<tmp>/torch/lib`.
    fn install(name: &str) -> PathBuf {
        let root = std::env::temp_dir()
            .join(format!("jem-build-test-{}-{name}", std::process::id()))
            .join("torch");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("lib")).unwrap();
        root
    }

    #[test]
    fn a_cpu_install_watches_no_missing_file() {
        let root = install("cpu");
        let lines = link_directives(&root.join("lib"));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("cargo:rustc-link-arg=-Wl,-rpath,"));
        assert!(lines[0].ends_with("/torch/lib"), "{lines:?}");
        // Every file a build script asks cargo to watch must exist, or cargo reruns it always.
        for line in &lines {
            if let Some(path) = line.strip_prefix("cargo:rerun-if-changed=") {
                assert!(Path::new(path).exists(), "{path}");
            }
        }
        std::fs::remove_dir_all(root.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_cuda_install_watches_its_marker_and_links_torch_cuda() {
        let root = install("cuda");
        std::fs::write(root.join(CUDA_MARKER), "cu130\n").unwrap();
        std::fs::write(root.join("lib").join("libtorch_cuda.so"), b"").unwrap();
        let lines = link_directives(&root.join("lib"));
        let marker = std::fs::canonicalize(root.join(CUDA_MARKER)).unwrap();
        assert!(
            lines.contains(&format!("cargo:rerun-if-changed={}", marker.display())),
            "{lines:?}"
        );
        assert!(lines.contains(&"cargo:rustc-link-arg=-ltorch_cuda".to_string()));
        std::fs::remove_dir_all(root.parent().unwrap()).unwrap();
    }
}
