//! `cargo xtask bench`: the speed of our JEM iteration next to an independent PyTorch one.
//!
//! For each configuration it alternates the peer script (`torch_jem_step.py`, on the project's
//! own torch 2.13.0 Python package, so both sides use the same libtorch kernels) and `jem
//! bench-step` for `--rounds` rounds (peer, jem, peer, jem, ...), each run a fresh process with
//! identical flags, thread variables and glibc allocator thresholds, and writes `bench.md`
//! (tables: medians over rounds, ratio jem / peer with its per-round spread, peak resident
//! memory) and `bench.json` (every JSON line in full) under `runs/bench/`. xtask depends on no jem
//! crate: it drives the `jem` binary.

mod child;
mod report;
mod stats;

use crate::libtorch::{self, pip_install, Libtorch, CUDA_WHEELS, TORCH_VERSION};
use crate::setup::{self, SetupArgs};
use crate::util::{build_release_jem, describe, workspace_root, write_results};
use anyhow::{bail, Context, Result};
use child::{run_side, shared_env};
use report::{markdown, report_json, ConfigResult, RunInfo};
use stats::{check_reported, Round, TIMED_KEYS};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Rounds per configuration: each runs the peer, then jem (ABAB...); the report gives each
    /// side's median over rounds and the spread of the per-round ratios.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Timed iterations per measurement (each side reports the median).
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Untimed warm-up iterations before each measurement.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Intra-op CPU threads of both sides (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Add the paper's model (WRN-28-10, 3x32x32, batch 64, 20 SGLD steps): minutes per iteration on a CPU.
    #[arg(long)]
    pub paper: bool,
    /// Run only these configurations (comma-separated names, e.g. `wrn-10-1`).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// The PyTorch peer script (relative paths are taken from the repository root).
    #[arg(long, default_value = "../shared/peer/torch_jem_step.py")]
    pub peer: PathBuf,
    /// Time only jem (no Python, no torch Python package needed).
    #[arg(long)]
    pub no_peer: bool,
    /// Where bench.md and bench.json go (default: runs/bench).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Arithmetic of jem's SGLD passes (`train.sgld_precision`), as the cpu preset trains: `auto`
    /// (bfloat16 autocast where the CPU computes bfloat16 natively, float32 elsewhere), `bf16`
    /// or `fp32`. The peer always runs in float32.
    #[arg(long, default_value = "auto", value_parser = ["fp32", "bf16", "auto"])]
    pub sgld_precision: String,
    /// Arithmetic of jem's training passes (`train.train_precision`): `fp32`, `bf16` or `auto`.
    #[arg(long, default_value = "fp32", value_parser = ["fp32", "bf16", "auto"])]
    pub train_precision: String,
}

/// One benchmarked shape (the peer's and `jem bench-step`'s flags).
struct BenchConfig {
    name: &'static str,
    description: &'static str,
    depth: usize,
    width: usize,
    channels: usize,
    size: usize,
    batch: usize,
    sgld_steps: usize,
}

impl BenchConfig {
    fn flags(&self, args: &BenchArgs, threads: usize) -> Vec<String> {
        [
            ("--depth", self.depth),
            ("--width", self.width),
            ("--channels", self.channels),
            ("--size", self.size),
            ("--batch", self.batch),
            ("--sgld-steps", self.sgld_steps),
            ("--iters", args.iters),
            ("--warmup", args.warmup),
            ("--threads", threads),
            ("--seed", 0),
        ]
        .iter()
        .flat_map(|(flag, value)| [flag.to_string(), value.to_string()])
        .collect()
    }

    /// What each side must report having run (its JSON line's keys).
    fn expected(&self, threads: usize) -> Vec<(&'static str, u64)> {
        [
            ("depth", self.depth),
            ("width", self.width),
            ("channels", self.channels),
            ("size", self.size),
            ("batch", self.batch),
            ("sgld_steps", self.sgld_steps),
            ("threads", threads),
        ]
        .into_iter()
        .map(|(key, value)| (key, value as u64))
        .collect()
    }
}

const CONFIGS: &[BenchConfig] = &[
    BenchConfig {
        name: "wrn-10-1",
        description: "cpu preset: WRN-10-1, 1x28x28, batch 32, 5 SGLD steps",
        depth: 10,
        width: 1,
        channels: 1,
        size: 28,
        batch: 32,
        sgld_steps: 5,
    },
    BenchConfig {
        name: "wrn-10-2",
        description: "WRN-10-2, 3x32x32, batch 64, 20 SGLD steps",
        depth: 10,
        width: 2,
        channels: 3,
        size: 32,
        batch: 64,
        sgld_steps: 20,
    },
];

const PAPER_CONFIG: BenchConfig = BenchConfig {
    name: "wrn-28-10",
    description: "paper: WRN-28-10, 3x32x32, batch 64, 20 SGLD steps",
    depth: 28,
    width: 10,
    channels: 3,
    size: 32,
    batch: 64,
    sgld_steps: 20,
};

/// What `import torch` needs besides the wheel itself (torch 2.13.0's Requires-Dist, pure
/// Python, with their own dependencies pinned too: mpmath for sympy, MarkupSafe for jinja2).
/// setuptools is left out: torch only needs it to build extensions. numpy is optional for torch
/// and unused by the peer.
const PEER_PYTHON_DEPS: &[&str] = &[
    "typing_extensions==4.15.0",
    "sympy==1.14.0",
    "mpmath==1.3.0",
    "networkx==3.4.2",
    "jinja2==3.1.6",
    "MarkupSafe==3.0.3",
    "fsspec==2025.9.0",
    "filelock==3.19.1",
];

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.iters == 0 {
        bail!("--iters must be at least 1");
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let root = workspace_root();
    let mut configs: Vec<&BenchConfig> = CONFIGS.iter().collect();
    if args.paper {
        configs.push(&PAPER_CONFIG);
    }
    if !args.only.is_empty() {
        let all: Vec<&str> = CONFIGS
            .iter()
            .chain([&PAPER_CONFIG])
            .map(|c| c.name)
            .collect();
        for name in &args.only {
            if !all.contains(&name.as_str()) {
                bail!(
                    "unknown configuration `{name}` in --only: expected {}",
                    all.join(", ")
                );
            }
        }
        configs = CONFIGS
            .iter()
            .chain([&PAPER_CONFIG])
            .filter(|c| args.only.iter().any(|o| o == c.name))
            .collect();
    }
    let peer = if args.no_peer {
        None
    } else {
        let path = root.join(&args.peer);
        if !path.is_file() {
            bail!(
                "the PyTorch peer script {} is absent (it ships in shared/peer/ beside the repository): \
                 pass --peer PATH, or --no-peer to time jem alone",
                path.display()
            );
        }
        // Canonical, so the echoed command line shows where the script really is.
        Some(std::fs::canonicalize(&path).unwrap_or(path))
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    setup::run(&SetupArgs { no_data: true })?;
    let peer_runtime = match &peer {
        Some(script) => Some((script.clone(), PeerRuntime::ensure(&libtorch::ensure()?)?)),
        None => None,
    };
    let jem = build_release_jem(&root)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("runs").join("bench"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let env = shared_env(threads);
    let mut results = Vec::new();
    for config in &configs {
        let flags = config.flags(args, threads);
        let expected = config.expected(threads);
        let mut rounds = Vec::with_capacity(args.rounds);
        for round in 1..=args.rounds {
            eprintln!(
                "== {} ({}), round {round} of {}",
                config.name, config.description, args.rounds
            );
            let peer = match &peer_runtime {
                Some((script, runtime)) => {
                    let run = run_side(&mut runtime.command(&root, script, &flags, &env))?;
                    check_reported(&run.json, &expected, &format!("the peer in round {round}"))?;
                    Some(run)
                }
                None => None,
            };
            let mut jem_flags = flags.clone();
            jem_flags.extend([
                "--sgld-precision".to_string(),
                args.sgld_precision.clone(),
                "--train-precision".to_string(),
                args.train_precision.clone(),
            ]);
            let jem = run_side(&mut jem_command(&root, &jem, &jem_flags, &env))?;
            check_reported(&jem.json, &expected, &format!("jem in round {round}"))?;
            rounds.push(Round { peer, jem });
        }
        let result = ConfigResult::new(config, flags, rounds)?;
        for (summary, (_, what)) in result.summaries.iter().zip(TIMED_KEYS) {
            eprintln!(
                "   {what}: peer {} s, jem {:.4} s, jem/peer {}",
                summary.peer.map_or("-".into(), |p| format!("{p:.4}")),
                summary.jem,
                summary.ratio.as_ref().map_or("-".into(), |r| format!(
                    "{:.2} (rounds {:.2} [{:.2}, {:.2}])",
                    r.of_medians, r.median, r.min, r.max
                )),
            );
        }
        results.push(result);
    }

    let info = RunInfo {
        iters: args.iters,
        warmup: args.warmup,
        rounds: args.rounds,
        threads,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        env,
        peer: peer_runtime
            .as_ref()
            .map(|(script, _)| script.display().to_string()),
    };
    write_results(
        &out,
        "bench",
        &markdown(&results, &info),
        &report_json(&results, &info),
    )?;
    Ok(())
}

/// `jem bench-step` with `flags` and the shared environment. `--threads` is a global option of
/// `jem`; clap takes it after the subcommand too.
fn jem_command(root: &Path, jem: &Path, flags: &[String], env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(jem);
    cmd.current_dir(root)
        .arg("bench-step")
        .args(flags)
        .envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// How to start Python so that `import torch` loads the project's torch 2.13.0.
struct PeerRuntime {
    python: String,
    /// The torch install's site directory and the directory of its runtime dependencies.
    python_path: String,
    /// CUDA library directories of a CPU install (see [`PeerRuntime::ensure`]).
    library_path: Option<String>,
}

impl PeerRuntime {
    /// Installs what `import torch` needs next to the libtorch install, once, and checks that
    /// the import works.
    ///
    /// The torch wheel on PyPI is the CUDA build: its Python extension links `libtorch_cuda.so`
    /// and through it cuDNN, cuBLAS, NCCL and the rest, even on a machine without a GPU. The jem
    /// binaries drop that link, Python cannot, so on a CPU install the CUDA wheels (about 3 GB)
    /// are installed here too. A CUDA install already holds them.
    fn ensure(torch: &Libtorch) -> Result<Self> {
        let site = torch
            .dir
            .parent()
            .context("the libtorch directory has no parent")?;
        if !torch.dir.join("__init__.py").is_file() {
            bail!(
                "{} is not the torch Python package (no __init__.py), so the PyTorch peer cannot \
                 import it: unset LIBTORCH to use the install of `cargo xtask setup`, or run with --no-peer",
                torch.dir.display()
            );
        }
        let python = libtorch::python()?;
        let flavour = if torch.cuda { "cu130" } else { "cpu" };
        let cache = libtorch::cache_dir()?;
        let deps = cache.join(format!("torch-python-deps-{TORCH_VERSION}-{flavour}"));
        libtorch::install_once(&deps, |partial| {
            eprintln!(
                "installing the Python runtime of torch {TORCH_VERSION} for the PyTorch peer into {}{}",
                deps.display(),
                if torch.cuda {
                    ""
                } else {
                    " (with the CUDA libraries its Python extension links: about 3 GB, once)"
                }
            );
            pip_install(&python, partial, PEER_PYTHON_DEPS, true)
                .context("installing torch's Python dependencies with pip failed")?;
            if !torch.cuda {
                // These bring their own nvidia-* dependencies, so no --no-deps here.
                pip_install(&python, partial, CUDA_WHEELS, false).context(
                    "installing the CUDA libraries torch's Python extension links failed",
                )?;
            }
            Ok(())
        })?;
        let python_path = std::env::join_paths([site, deps.as_path()])?
            .to_string_lossy()
            .into_owned();
        let library_path = cuda_library_dirs(&deps)?;
        let runtime = Self {
            python,
            python_path,
            library_path,
        };
        runtime.check_import()?;
        Ok(runtime)
    }

    /// The peer script with `flags`, the shared environment and what `import torch` needs.
    fn command(
        &self,
        root: &Path,
        script: &Path,
        flags: &[String],
        env: &[(&str, String)],
    ) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.current_dir(root)
            .arg(script)
            .args(flags)
            .env("PYTHONPATH", &self.python_path)
            .envs(env.iter().map(|(k, v)| (k, v)));
        if let Some(paths) = &self.library_path {
            cmd.env("LD_LIBRARY_PATH", paths);
        }
        cmd
    }

    fn check_import(&self) -> Result<()> {
        let mut cmd = Command::new(&self.python);
        cmd.args(["-c", "import torch; print(torch.__version__)"])
            .env("PYTHONPATH", &self.python_path);
        if let Some(paths) = &self.library_path {
            cmd.env("LD_LIBRARY_PATH", paths);
        }
        let output = cmd
            .output()
            .with_context(|| format!("could not start `{}`", describe(&cmd)))?;
        if !output.status.success() {
            bail!(
                "`import torch` fails with PYTHONPATH={}:\n{}",
                self.python_path,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        eprintln!(
            "PyTorch peer runtime: torch {}",
            String::from_utf8_lossy(&output.stdout).trim()
        );
        Ok(())
    }
}

/// `<deps>/nvidia/*/lib`, joined for `LD_LIBRARY_PATH` (the torch libraries' RPATH points into
/// their own install, not here); `None` when there are none.
fn cuda_library_dirs(deps: &Path) -> Result<Option<String>> {
    let Ok(packages) = std::fs::read_dir(deps.join("nvidia")) else {
        return Ok(None);
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    for package in packages {
        let lib = package?.path().join("lib");
        if lib.is_dir() {
            dirs.push(lib);
        }
    }
    if dirs.is_empty() {
        return Ok(None);
    }
    dirs.sort();
    if let Some(existing) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&existing));
    }
    Ok(Some(
        std::env::join_paths(dirs)?.to_string_lossy().into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::ffi::OsStr;

    fn envs(cmd: &Command) -> BTreeMap<String, String> {
        cmd.get_envs()
            .filter_map(|(k, v)| Some((k, v?)))
            .map(|(k, v): (&OsStr, &OsStr)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn both_sides_get_the_same_threads_and_allocator() {
        let runtime = PeerRuntime {
            python: "python3".into(),
            python_path: "/site:/deps".into(),
            library_path: Some("/deps/nvidia/cublas/lib".into()),
        };
        let config = &CONFIGS[1];
        let args = BenchArgs {
            rounds: 5,
            iters: 4,
            warmup: 1,
            threads: None,
            paper: false,
            only: vec![],
            peer: PathBuf::from("peer.py"),
            no_peer: false,
            out: None,
            sgld_precision: "bf16".into(),
            train_precision: "fp32".into(),
        };
        let flags = config.flags(&args, 3);
        let env = shared_env(3);
        let root = Path::new("/repo");
        let peer = runtime.command(root, Path::new("/p/peer.py"), &flags, &env);
        let jem = jem_command(root, Path::new("/repo/target/release/jem"), &flags, &env);

        let (peer_env, jem_env) = (envs(&peer), envs(&jem));
        for key in ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "GLIBC_TUNABLES"] {
            assert!(peer_env.contains_key(key), "the peer lacks {key}");
            assert_eq!(peer_env.get(key), jem_env.get(key), "{key} differs");
        }
        assert_eq!(peer_env["OMP_NUM_THREADS"], "3");
        // Only the peer needs Python's paths; jem must not get the CUDA libraries.
        assert_eq!(peer_env["PYTHONPATH"], "/site:/deps");
        assert!(!jem_env.contains_key("LD_LIBRARY_PATH"));

        // Same flags on both sides, the thread count among them, after the script / subcommand.
        let args_of = |cmd: &Command| -> Vec<String> {
            cmd.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(args_of(&peer)[1..], flags[..]);
        assert_eq!(args_of(&jem)[1..], flags[..]);
        let threads = flags.iter().position(|f| f == "--threads").unwrap();
        assert_eq!(flags[threads + 1], "3");
        assert_eq!(
            config.expected(3),
            [
                ("depth", 10),
                ("width", 2),
                ("channels", 3),
                ("size", 32),
                ("batch", 64),
                ("sgld_steps", 20),
                ("threads", 3)
            ]
        );
    }
}
