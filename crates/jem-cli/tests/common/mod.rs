//! Shared by the CLI tests: the tiny Fashion-MNIST run they train, and ways to run `jem`.
// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// WRN-10-1 on Fashion-MNIST with 2 clamped SGLD steps, batch `batch_size` and a replay buffer of
/// `buffer`; `data` and `train` are extra lines of those sections (seconds to train).
pub fn tiny_config(batch_size: usize, buffer: usize, data: &str, train: &str) -> String {
    format!(
        r#"
[data]
dataset = "fashion-mnist"
n_valid = 100
batch_size = {batch_size}
eval_batch_size = 500
augment = false
{data}

[model]
depth = 10
widen_factor = 1
num_classes = 10
in_channels = 1

[sampler.sgld]
steps = 2
clamp = [-1.0, 1.0]

[sampler.buffer]
size = {buffer}

[train]
mode = "jem"
epochs = 1
decay_epochs = []
{train}
"#
    )
}

/// `jem` on one thread (tiny tensors: libtorch's thread pool costs more than it saves), with
/// library logs quiet.
pub fn jem_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jem"));
    cmd.args(["--threads", "1"])
        .args(args)
        .env("JEM_LOG", "warn");
    cmd
}

/// Runs `jem` and returns its output, whatever its exit status.
pub fn jem(args: &[&str]) -> Output {
    jem_command(args).output().unwrap()
}

/// Runs `jem`, asserts it succeeded and returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = jem(args);
    assert!(
        out.status.success(),
        "jem {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Width and height of a PNG, decoded.
pub fn png_size(path: &Path) -> (u32, u32) {
    let img = jem_data::decode::decode_image(&std::fs::read(path).unwrap(), path).unwrap();
    (img.width(), img.height())
}

pub fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}
