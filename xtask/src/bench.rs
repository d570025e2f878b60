//! `cargo xtask bench`: the speed of our JEM iteration next to an independent PyTorch one.
//!
//! For each configuration it runs the peer script (`torch_jem_step.py`, on the project's own
//! torch 2.13.0 Python package, so both sides use the same libtorch kernels) and `jem bench-step`
//! with identical flags, and writes `bench.md` (a table) and `bench.json` (both JSON lines in
//! full) under `runs/bench/`. xtask depends on no jem crate: it drives the `jem` binary.

use crate::libtorch::{self, pip_install, Libtorch, CUDA_WHEELS, TORCH_VERSION};
use crate::setup::{self, SetupArgs};
use crate::util::{build_release_jem, describe, workspace_root, write_results};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(clap::Args)]
pub struct BenchArgs {
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

const COMPLETE_MARKER: &str = ".jem-complete";

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.iters == 0 {
        bail!("--iters must be at least 1");
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

    let mut results = Vec::new();
    for config in &configs {
        let flags = config.flags(args, threads);
        eprintln!("== {} ({})", config.name, config.description);
        let peer_json = match &peer_runtime {
            Some((script, runtime)) => {
                let mut cmd = Command::new(&runtime.python);
                cmd.current_dir(&root)
                    .arg(script)
                    .args(&flags)
                    .env("PYTHONPATH", &runtime.python_path);
                if let Some(paths) = &runtime.library_path {
                    cmd.env("LD_LIBRARY_PATH", paths);
                }
                Some(json_line(&mut cmd)?)
            }
            None => None,
        };
        // `--threads` is a global option of `jem`; clap takes it after the subcommand too.
        let mut cmd = Command::new(&jem);
        cmd.current_dir(&root).arg("bench-step").args(&flags);
        let jem_json = json_line(&mut cmd)?;
        results.push((*config, peer_json, jem_json));
    }

    let markdown = markdown(&results, args, threads);
    let report = json!({
        "iters": args.iters,
        "warmup": args.warmup,
        "threads": threads,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "configs": results
            .iter()
            .map(|(c, p, j)| json!({
                "name": c.name,
                "description": c.description,
                "flags": c.flags(args, threads),
                "peer": p,
                "jem": j,
            }))
            .collect::<Vec<_>>(),
    });
    write_results(&out, "bench", &markdown, &report)?;
    Ok(())
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
        if !deps.join(COMPLETE_MARKER).is_file() {
            let partial = cache.join(format!(
                "torch-python-deps-{TORCH_VERSION}-{flavour}.partial"
            ));
            if partial.exists() {
                std::fs::remove_dir_all(&partial)
                    .with_context(|| format!("cannot remove the stale {}", partial.display()))?;
            }
            eprintln!(
                "installing the Python runtime of torch {TORCH_VERSION} for the PyTorch peer into {}{}",
                deps.display(),
                if torch.cuda {
                    ""
                } else {
                    " (with the CUDA libraries its Python extension links: about 3 GB, once)"
                }
            );
            pip_install(&python, &partial, PEER_PYTHON_DEPS, true)
                .context("installing torch's Python dependencies with pip failed")?;
            if !torch.cuda {
                // These bring their own nvidia-* dependencies, so no --no-deps here.
                pip_install(&python, &partial, CUDA_WHEELS, false).context(
                    "installing the CUDA libraries torch's Python extension links failed",
                )?;
            }
            std::fs::write(partial.join(COMPLETE_MARKER), "")?;
            if deps.exists() {
                std::fs::remove_dir_all(&deps)?;
            }
            std::fs::rename(&partial, &deps)
                .with_context(|| format!("cannot move {} into place", partial.display()))?;
        }
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

/// Runs `cmd` (stderr shown as it comes) and parses the last stdout line that is a JSON object.
fn json_line(cmd: &mut Command) -> Result<Value> {
    eprintln!("$ {}", describe(cmd));
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{}`", describe(cmd)))?;
    if !output.status.success() {
        bail!("`{}` failed with {}", describe(cmd), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("`{}` printed no JSON line:\n{stdout}", describe(cmd)))?;
    serde_json::from_str(line)
        .with_context(|| format!("parsing the JSON line of `{}`", describe(cmd)))
}

fn seconds(value: &Value) -> String {
    value
        .as_f64()
        .map(|s| {
            if s >= 1.0 {
                format!("{s:.2}")
            } else {
                format!("{s:.4}")
            }
        })
        .unwrap_or_else(|| "-".into())
}

/// `peer / jem` for one key.
fn pair(peer: Option<&Value>, jem: &Value, key: &str, show: impl Fn(&Value) -> String) -> String {
    let peer = peer.map_or_else(|| "-".into(), |p| show(&p[key]));
    format!("{peer} / {}", show(&jem[key]))
}

fn markdown(
    results: &[(&BenchConfig, Option<Value>, Value)],
    args: &BenchArgs,
    threads: usize,
) -> String {
    let mut md = format!(
        "# JEM training speed: jem vs the PyTorch peer\n\n\
         Median seconds over {} timed iterations ({} warm-up), {threads} intra-op threads, CPU, \
         synthetic data; both sides on libtorch {TORCH_VERSION}. Ratio = jem / peer (below 1: jem \
         is faster). SGLD step: one buffer draw + SGLD run + store divided by the steps. \
         Classifier step: forward, cross-entropy, backward, Adam.\n\n\
         | config | peer s/it | jem s/it | ratio | SGLD step peer / jem (s) | classifier step peer / jem (s) |\n\
         |---|---|---|---|---|---|\n",
        args.iters, args.warmup
    );
    for (config, peer, jem) in results {
        let jem_it = jem["jem_sec_per_iter"].as_f64();
        let peer_it = peer.as_ref().and_then(|p| p["jem_sec_per_iter"].as_f64());
        let ratio = match (jem_it, peer_it) {
            (Some(j), Some(p)) if p > 0.0 => format!("{:.2}", j / p),
            _ => "-".into(),
        };
        md.push_str(&format!(
            "| {} ({}) | {} | {} | {ratio} | {} | {} |\n",
            config.name,
            config.description,
            peer.as_ref()
                .map_or_else(|| "-".into(), |p| seconds(&p["jem_sec_per_iter"])),
            seconds(&jem["jem_sec_per_iter"]),
            pair(peer.as_ref(), jem, "sgld_sec_per_step", seconds),
            pair(peer.as_ref(), jem, "clf_sec_per_iter", seconds),
        ));
    }
    md.push_str(
        "\nWhat is compared (peer / jem). The networks are the same Wide-ResNet (biased convolutions, \
         LeakyReLU 0.2, no normalisation), so parameters and MACs agree. A JEM iteration costs \
         different numbers of passes: the peer runs three forward passes with full backward (data, \
         samples, a separate labelled batch, as the reference), jem two (its data batch is the \
         labelled batch: one pass gives the logits and log p(x)). Other CPU: the share of the \
         machine other processes used during the timed JEM iterations (noise in the timings).\n\n\
         | config | parameters | GMACs / image (forward) | forward passes / JEM iteration | achieved GFLOP/s (JEM) | other CPU |\n\
         |---|---|---|---|---|---|\n",
    );
    let int = |v: &Value| v.as_i64().map_or_else(|| "-".into(), |n| n.to_string());
    let gmacs = |v: &Value| v.as_f64().map_or_else(|| "-".into(), |g| format!("{g:.4}"));
    let rate = |v: &Value| v.as_f64().map_or_else(|| "-".into(), |g| format!("{g:.1}"));
    let frac = |v: &Value| v.as_f64().map_or_else(|| "-".into(), |f| format!("{f:.2}"));
    for (config, peer, jem) in results {
        let peer_passes = if peer.is_some() {
            format!("{}", 2 * config.sgld_steps + 9)
        } else {
            "-".into()
        };
        md.push_str(&format!(
            "| {} | {} | {} | {peer_passes} / {} | {} | {} |\n",
            config.name,
            pair(peer.as_ref(), jem, "params", int),
            pair(peer.as_ref(), jem, "gmacs_per_image_fwd", gmacs),
            int(&jem["jem_fwd_passes_per_iter"]),
            pair(peer.as_ref(), jem, "jem_achieved_gflops", rate),
            pair(peer.as_ref(), jem, "jem_other_cpu_frac", frac),
        ));
    }
    md
}
