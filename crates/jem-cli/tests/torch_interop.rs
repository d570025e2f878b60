//! Checkpoints across jem and PyTorch:
//!
//! * `jem import` of a checkpoint in the official JEM layout, written by torch 2.13
//!   (`fixtures/make_reference_ckpt.py`): jem's logits equal PyTorch's within 1e-5, the buffer
//!   comes along, and the run works with the commands that read runs;
//! * a jem checkpoint opened from Python with `safetensors.safe_open` and checked against
//!   the reference's module names and jem's logits, twice:
//!   - with numpy (`python/check_jem_checkpoint_numpy.py`): the reference WRN's forward pass
//!     in numpy from the loaded tensors. `cargo xtask test` installs numpy and safetensors
//!     (pinned by sha256) and sets `JEM_SAFETENSORS_PYTHONPATH`, which makes the check
//!     required; under a plain `cargo test` it runs when `python3` imports both and is
//!     skipped, saying why, otherwise;
//!   - with torch (`python/check_jem_checkpoint.py`): a torch WRN with the reference's names
//!     loads the state dict (`strict=True`). That needs a Python whose `import torch` works,
//!     which `cargo xtask setup` alone does not give (the wheel's extension needs the runtime
//!     `cargo xtask bench` installs next to it, about 3 GB with the CUDA libraries it links):
//!     - with `JEM_TORCH_PYTHON` set (plus `JEM_TORCH_PYTHONPATH`, `JEM_TORCH_LD_LIBRARY_PATH`)
//!       the check must run, with `safe_open`, and fails when it cannot;
//!     - otherwise `python3` with the cached torch install is tried: when `import torch` fails
//!       the test prints why it is skipped and passes; `safe_open` is required when
//!       `JEM_SAFETENSORS_PYTHONPATH` is set, else the file is read with torch alone when the
//!       package is missing (the script says so).

mod common;

use common::{jem, ok, s, tiny_config};
use jem_model::JointEnergyModel;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reference_pt() -> PathBuf {
    fixtures().join("reference_wrn10_1.pt")
}

/// The fixture's model (WRN-10-1, batch norm, 1 channel, 10 classes) on Fashion-MNIST with a
/// buffer of `buffer` slots.
fn reference_config(dir: &Path, buffer: usize) -> PathBuf {
    let text = tiny_config(16, buffer, "", "")
        .replace("in_channels = 1", "in_channels = 1\nnorm = \"batch\"");
    let path = dir.join("reference.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_imported_reference_checkpoint_gives_pytorchs_logits_and_works_as_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = reference_config(dir.path(), 10);
    let run = dir.path().join("imported");
    let stdout = ok(&[
        "import",
        "--from",
        &s(&reference_pt()),
        "--config",
        &s(&config),
        "--out",
        &s(&run),
    ]);
    assert!(stdout.contains("model tensors: 48"), "{stdout}");
    assert!(
        stdout.contains("replay buffer: [20, 1, 28, 28]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("f.linear.weight") && stdout.contains("f.bn1.num_batches_tracked"),
        "{stdout}"
    );

    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("reference_wrn10_1.json")).unwrap(),
    )
    .unwrap();
    let ckpt = run.join("last.ckpt");
    let (cfg, _vs, model) = jem_train::load_model(&ckpt, Device::Cpu).unwrap();
    // The buffer size came from the file, not the config's 10.
    assert_eq!(cfg.sampler.buffer.size, 20);
    for case in golden["cases"].as_array().unwrap() {
        let shape: Vec<i64> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_i64().unwrap())
            .collect();
        let x = Tensor::from_slice(&floats(&case["input"])).view(shape.as_slice());
        let want = Tensor::from_slice(&floats(&case["logits"])).view([shape[0], -1]);
        let got = tch::no_grad(|| model.logits(&x, false)).unwrap();
        let diff = max_abs_diff(&got, &want);
        assert!(
            diff <= 1e-5,
            "inputs {shape:?}: jem's logits differ from PyTorch's by {diff:e}"
        );
        // The comparison is not vacuous: logits spread well beyond the tolerance.
        assert!(want.std(true).double_value(&[]) > 1e-2);
    }

    let buffer = jem_train::load_buffer(&ckpt, Device::Cpu).unwrap().unwrap();
    assert_eq!(buffer.samples().size(), [20, 1, 28, 28]);
    let sum = buffer.samples().to_kind(Kind::Double).sum(Kind::Double);
    assert!((sum.double_value(&[]) - golden["buffer_sum"].as_f64().unwrap()).abs() < 1e-9);
    let first: Vec<f32> = Vec::try_from(buffer.samples().flatten(0, -1).narrow(0, 0, 8)).unwrap();
    assert_eq!(first, floats(&golden["buffer_first"]));
    assert_eq!(buffer.age_stats().max, 0);

    let record = jem_train::import::imported_record(&ckpt).unwrap().unwrap();
    assert!(record["source"]
        .as_str()
        .unwrap()
        .ends_with("reference_wrn10_1.pt"));
    assert_eq!(record["dropped"].as_array().unwrap().len(), 11);
    let summary = common::json(&run.join("summary.json"));
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["model_checkpoint"], "last.ckpt");

    // The commands that read a run accept it.
    let cal = dir.path().join("cal");
    ok(&[
        "calibrate",
        "--checkpoint",
        &s(&run),
        "--n",
        "100",
        "--out",
        &s(&cal),
    ]);
    let report = common::json(&cal.join("calibration.json"));
    assert!(report["ece"].as_f64().unwrap().is_finite());
    let eval = dir.path().join("eval");
    ok(&[
        "eval",
        "--checkpoint",
        &s(&run),
        "--n",
        "50",
        "--ood",
        "uniform",
        "--scores",
        "px,py",
        "--out",
        &s(&eval),
    ]);
    assert!(eval.join("ood.json").is_file());
    let samples = dir.path().join("samples");
    ok(&[
        "sample",
        "--checkpoint",
        &s(&run),
        "--n",
        "4",
        "--steps",
        "1",
        "--out",
        &s(&samples),
    ]);
    assert!(std::fs::read_dir(&samples).unwrap().count() > 0);

    // A second import into the same run is refused; so is resuming it (no optimiser state).
    let again = jem(&[
        "import",
        "--from",
        &s(&reference_pt()),
        "--config",
        &s(&config),
        "--out",
        &s(&run),
    ]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already holds a checkpoint"),
        "{}",
        stderr(&again)
    );
    let resume = jem(&["train", "--resume", &s(&run), "--quiet"]);
    assert!(!resume.status.success());
    assert!(
        stderr(&resume).contains("optimiser state"),
        "{}",
        stderr(&resume)
    );
}

#[test]
fn import_errors_name_the_file_and_the_offending_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = reference_config(dir.path(), 20);
    let import = |from: &Path, set: &[&str], out: &str| {
        let mut args = vec![
            "import".to_string(),
            "--from".into(),
            s(from),
            "--config".into(),
            s(&config),
            "--out".into(),
            s(&dir.path().join(out)),
        ];
        for kv in set {
            args.push("--set".into());
            args.push(kv.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = jem(&args);
        assert!(!out.status.success(), "jem {args:?} succeeded");
        assert!(
            !dir.path().join(out_name(&args)).join("last.ckpt").exists(),
            "a failed import left a checkpoint"
        );
        stderr(&out)
    };
    fn out_name(args: &[&str]) -> String {
        let i = args.iter().position(|a| *a == "--out").unwrap();
        Path::new(args[i + 1])
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    // Mis-shaped against the configured model: every tensor named, and the file's architecture.
    let e = import(&reference_pt(), &["model.widen_factor=2"], "wide");
    assert!(e.contains("reference_wrn10_1.pt"), "{e}");
    assert!(
        e.contains("`f.layer1.0.conv1.weight` expected [32, 16, 3, 3], found [16, 16, 3, 3]"),
        "{e}"
    );
    assert!(
        e.contains("looks like depth = 10, widen_factor = 1, in_channels = 1, num_classes = 10, norm = \"batch\""),
        "{e}"
    );
    // Names the configured model does not have.
    let e = import(&reference_pt(), &["model.norm=none"], "plain");
    assert!(
        e.contains("unexpected tensors: ") && e.contains("`f.layer1.0.bn1.weight` [16]"),
        "{e}"
    );
    // Names the file lacks: uncond needs energy_output, which it has; depth 16 needs layer1.1.
    let e = import(&reference_pt(), &["model.depth=16"], "deep");
    assert!(
        e.contains("missing tensors: ") && e.contains("`f.layer1.1.conv1.weight`"),
        "{e}"
    );
    // Data whose images the buffer does not match (CIFAR-10 is 3 x 32 x 32).
    let e = import(
        &reference_pt(),
        &["data.dataset=cifar10", "model.in_channels=3"],
        "cifar",
    );
    assert!(e.contains("f.conv1.weight"), "{e}");
    // Not a torch.save file.
    let e = import(&fixtures().join("reference_wrn10_1.json"), &[], "json");
    assert!(
        e.contains("reference_wrn10_1.json") && e.contains("not a torch.save file"),
        "{e}"
    );
    let e = import(&dir.path().join("absent.pt"), &[], "absent");
    assert!(e.contains("absent.pt"), "{e}");
    // A directory with a trained run's best.ckpt (which `eval` would prefer) is refused too.
    let trained = dir.path().join("trained");
    std::fs::create_dir_all(&trained).unwrap();
    std::fs::write(trained.join("best.ckpt"), b"not touched").unwrap();
    let e = import(&reference_pt(), &[], "trained");
    assert!(
        e.contains("best.ckpt") && e.contains("already holds a checkpoint"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(trained.join("best.ckpt")).unwrap(),
        b"not touched"
    );
}

/// A Python that imports torch, and whether `safe_open` is required of it; `None` (after
/// printing why) when there is none.
///
/// Only `JEM_TORCH_PYTHON` makes torch itself required. The pinned safetensors of `cargo xtask
/// test` (`JEM_SAFETENSORS_PYTHONPATH`) makes `safe_open` required *of a Python that has
/// torch*; it must not skip the `import torch` probe, or a machine without torch's Python
/// runtime (a fresh one, where `cargo xtask bench` never ran) fails the check instead of
/// skipping it.
fn torch_python() -> Option<(Command, bool)> {
    // Straight to the process's stderr: the test harness captures println!.
    let skip = |why: String| {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the PyTorch check of jem checkpoints: {why}"
        );
        None
    };
    let explicit = std::env::var("JEM_TORCH_PYTHON")
        .ok()
        .filter(|p| !p.is_empty());
    let torch_required = explicit.is_some();
    let (python, python_path) = match explicit {
        Some(python) => (python, std::env::var("JEM_TORCH_PYTHONPATH").ok()),
        None => {
            // The install of `cargo xtask setup` and the runtime `cargo xtask bench` adds.
            let cache = match std::env::var_os("JEM_CACHE_DIR") {
                Some(dir) => PathBuf::from(dir),
                None => match std::env::var_os("HOME") {
                    Some(home) => PathBuf::from(home).join(".cache/jem"),
                    None => return skip("no HOME to find the torch install in".into()),
                },
            };
            let dirs: Vec<PathBuf> = ["libtorch-2.13.0-cpu", "torch-python-deps-2.13.0-cpu"]
                .iter()
                .map(|d| cache.join(d))
                .collect();
            let path = std::env::join_paths(&dirs).unwrap();
            (
                "python3".to_string(),
                Some(path.to_string_lossy().into_owned()),
            )
        }
    };
    // The pinned safetensors of `cargo xtask test`: with it, safe_open is required too.
    let safetensors = std::env::var("JEM_SAFETENSORS_PYTHONPATH")
        .ok()
        .filter(|p| !p.is_empty());
    let python_path = match (python_path, &safetensors) {
        (Some(torch), Some(st)) => Some(format!("{torch}:{st}")),
        (torch, st) => torch.or(st.clone()),
    };
    let safe_open_required = safetensors.is_some();
    let command = || {
        let mut cmd = Command::new(&python);
        if let Some(path) = &python_path {
            cmd.env("PYTHONPATH", path);
        }
        if let Ok(path) = std::env::var("JEM_TORCH_LD_LIBRARY_PATH") {
            cmd.env("LD_LIBRARY_PATH", path);
        }
        cmd.env("PYTHONWARNINGS", "ignore");
        cmd
    };
    if !torch_required {
        let probe = command().args(["-c", "import torch"]).output();
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let err = String::from_utf8_lossy(&out.stderr);
                let last = err.lines().last().unwrap_or("").to_string();
                return skip(format!(
                    "`import torch` fails with {python} and PYTHONPATH={} ({last}); run \
                     `cargo xtask bench` once (it installs torch's Python runtime) or set \
                     JEM_TORCH_PYTHON",
                    python_path.as_deref().unwrap_or("")
                ));
            }
            Err(e) => return skip(format!("cannot start {python}: {e}")),
        }
    }
    Some((command(), safe_open_required))
}

/// Deterministic inputs `[n, 1, 28, 28]` in [-0.9, 0.9].
fn fixed_inputs(n: i64) -> Tensor {
    let numel = n * 28 * 28;
    let values: Vec<f32> = (0..numel)
        .map(|i| (0.9 * (0.37 * i as f64 + 0.1).sin()) as f32)
        .collect();
    Tensor::from_slice(&values).view([n, 1, 28, 28])
}

fn write_expected(path: &Path, x: &Tensor, logits: &Tensor) {
    let flat = |t: &Tensor| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
    let json = serde_json::json!({
        "shape": x.size(),
        "input": flat(x),
        "logits": flat(logits),
        "tolerance": 1e-5,
    });
    std::fs::write(path, json.to_string()).unwrap();
}

/// A jem-trained checkpoint with batch norm (running statistics matter in eval mode) in `dir`,
/// the logits jem computes for fixed inputs (`expected.json`) and the same with one logit
/// off by 1e-3 (`wrong.json`), which a check must refuse.
fn checkpoint_and_logits(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let config = dir.join("tiny.toml");
    let text = tiny_config(16, 40, "", "max_iterations = 4")
        .replace("in_channels = 1", "in_channels = 1\nnorm = \"batch\"");
    std::fs::write(&config, text).unwrap();
    let run = dir.join("run");
    ok(&[
        "train",
        "--config",
        &s(&config),
        "--out",
        &s(&run),
        "--quiet",
    ]);
    let ckpt = run.join("last.ckpt");
    let (_cfg, _vs, model) = jem_train::load_model(&ckpt, Device::Cpu).unwrap();
    let x = fixed_inputs(3);
    let logits = tch::no_grad(|| model.logits(&x, false)).unwrap();
    let expected = dir.join("expected.json");
    write_expected(&expected, &x, &logits);
    let mut off: Vec<f32> = Vec::try_from(logits.flatten(0, -1)).unwrap();
    off[7] += 1e-3;
    let wrong = dir.join("wrong.json");
    write_expected(&wrong, &x, &Tensor::from_slice(&off).view([3, -1]));
    (ckpt, expected, wrong)
}

fn python_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Runs a check script and returns its stdout, asserting it passed.
fn passes(
    mut python: Command,
    script: &Path,
    ckpt: &Path,
    expected: &Path,
    extra: &[&str],
) -> String {
    let out = python
        .arg(script)
        .arg(ckpt)
        .arg(expected)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot start the Python of the check: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the Python check failed:\n{stdout}\n{}",
        stderr(&out)
    );
    assert!(stdout.contains("ok: "), "{stdout}");
    // Shown with --nocapture; the stderr line says when safe_open was skipped.
    println!("{}", stdout.trim());
    let _ = std::io::stderr().write_all(&out.stderr);
    stdout
}

/// Asserts the check refuses logits off by 1e-3.
fn refuses(mut python: Command, script: &Path, ckpt: &Path, wrong: &Path) {
    let out = python.arg(script).arg(ckpt).arg(wrong).output().unwrap();
    assert!(!out.status.success(), "tampered logits passed");
    assert!(stderr(&out).contains("logits differ"), "{}", stderr(&out));
}

#[test]
fn a_jem_checkpoint_opens_in_pytorch_with_the_reference_names() {
    let Some((python, safe_open_required)) = torch_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, expected, wrong) = checkpoint_and_logits(dir.path());
    let script = python_script("check_jem_checkpoint.py");
    let extra: &[&str] = if safe_open_required {
        &["--require-safetensors"]
    } else {
        &[]
    };
    passes(python, &script, &ckpt, &expected, extra);
    refuses(torch_python().unwrap().0, &script, &ckpt, &wrong);
}

/// A Python with `safetensors` and numpy: `JEM_SAFETENSORS_PYTHONPATH` (set by `cargo xtask
/// test`, which installs both, pinned) makes the check required; otherwise `python3` is tried
/// and the test skipped, saying why, when either import fails.
fn numpy_python() -> Option<Command> {
    let path = std::env::var("JEM_SAFETENSORS_PYTHONPATH")
        .ok()
        .filter(|p| !p.is_empty());
    let python = std::env::var("JEM_PYTHON").unwrap_or_else(|_| "python3".into());
    let command = || {
        let mut cmd = Command::new(&python);
        if let Some(path) = &path {
            cmd.env("PYTHONPATH", path);
        }
        cmd.env("PYTHONWARNINGS", "ignore");
        cmd
    };
    if path.is_none() {
        let probe = command().args(["-c", "import numpy, safetensors"]).output();
        let why = match probe {
            Ok(out) if out.status.success() => return Some(command()),
            Ok(out) => String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string(),
            Err(e) => format!("cannot start {python}: {e}"),
        };
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the safetensors/numpy check of jem checkpoints: {why}; `cargo xtask test` \
             installs both (or set JEM_SAFETENSORS_PYTHONPATH)"
        );
        return None;
    }
    Some(command())
}

#[test]
fn a_jem_checkpoint_opens_with_safetensors_and_runs_in_numpy_with_the_reference_names() {
    let Some(python) = numpy_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, expected, wrong) = checkpoint_and_logits(dir.path());
    let script = python_script("check_jem_checkpoint_numpy.py");
    let stdout = passes(python, &script, &ckpt, &expected, &[]);
    assert!(stdout.contains("the reference's names"), "{stdout}");
    refuses(numpy_python().unwrap(), &script, &ckpt, &wrong);
}
