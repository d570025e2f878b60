//! Checks made before anything is trained: the paper preset's data sets, GPU and Inception
//! file, and the `jem` flags the planned commands need.

use super::plan::Plan;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The command that makes the Inception TorchScript file IS/FID need, on a machine with
/// internet access (pytorch-fid's port of the TF Inception of the official FID/IS code).
pub const INCEPTION_RECIPE: &str = r#"pip install torch torchvision pytorch-fid
python - <<'EOF'
import torch
from pytorch_fid.inception import fid_inception_v3

class FidInception(torch.nn.Module):
    """Images in [0, 1], resized to 299 by jem -> (pool3 features [N, 2048], logits [N, 1008])."""
    def __init__(self):
        super().__init__()
        self.net = fid_inception_v3().eval()  # the official FID weights (pt_inception-2015-12-05)
    def forward(self, x):
        n = self.net
        x = 2 * x - 1
        for block in [n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1,
                      n.Conv2d_3b_1x1, n.Conv2d_4a_3x3, n.maxpool2, n.Mixed_5b, n.Mixed_5c,
                      n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c, n.Mixed_6d, n.Mixed_6e,
                      n.Mixed_7a, n.Mixed_7b, n.Mixed_7c]:
            x = block(x)
        features = torch.flatten(n.avgpool(x), 1)
        return features, n.fc(features)

torch.jit.trace(FidInception().eval(), torch.rand(2, 3, 299, 299)).save("inception-fid.pt")
EOF
# then: cargo xtask reproduce table1 --preset paper --device cuda --inception inception-fid.pt"#;

/// Files a data set needs, as jem-data looks for them (`jem_data::DatasetKind::required_files`;
/// IDX files may be gzipped).
fn required_files(dataset: &str) -> Option<(&'static str, &'static [&'static str])> {
    Some(match dataset {
        "cifar10" => (
            "cifar-10-batches-bin",
            &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
                "test_batch.bin",
            ],
        ),
        "cifar100" => ("cifar-100-binary", &["train.bin", "test.bin"]),
        "svhn" => ("svhn", &["train_32x32.mat", "test_32x32.mat"]),
        "celeba" => ("celeba", &["list_eval_partition.txt", "img_align_celeba"]),
        "mnist" => ("mnist", &IDX_FILES),
        "fashion-mnist" => ("fashion-mnist", &IDX_FILES),
        "mnist-5k" => ("mnist-5k", &["mnist_5k.csv.gz"]),
        _ => return None,
    })
}

const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The roots jem-data searches (`jem_data::resolve::search_roots`).
pub fn data_roots(root: &Path, explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = explicit.map(Path::to_path_buf).into_iter().collect();
    if let Some(dir) = std::env::var_os("JEM_DATA_DIR").filter(|v| !v.is_empty()) {
        roots.push(PathBuf::from(dir));
    }
    roots.push(PathBuf::from("/usr/share/datasets"));
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(home).join(".cache/jem/data"));
    }
    roots.push(root.join("data"));
    if let Some(cache) = std::env::var_os("JEM_CACHE_DIR").filter(|v| !v.is_empty()) {
        roots.push(PathBuf::from(cache).join("data"));
    }
    roots
}

fn present(dir: &Path, file: &str) -> bool {
    dir.join(file).exists() || dir.join(format!("{file}.gz")).exists()
}

/// `None` when `dataset` is found under `roots`, else what is missing and where it was looked for.
pub fn missing_dataset(dataset: &str, roots: &[PathBuf]) -> Option<String> {
    let (subdir, files) = required_files(dataset)?;
    let found = roots
        .iter()
        .flat_map(|r| [r.join(subdir), r.clone()])
        .any(|d| files.iter().all(|f| present(&d, f)));
    (!found).then(|| {
        format!(
            "data set `{dataset}`: {} not found in <root>/{subdir}/ or <root>/ for any root of {} \
             (set JEM_DATA_DIR to the directory holding {subdir}/)",
            files.join(", "),
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The data sets the plan reads: each model's `data.dataset` and the OOD sets of `jem eval`.
pub fn planned_datasets(plan: &Plan) -> BTreeSet<String> {
    let mut sets: BTreeSet<String> = BTreeSet::new();
    for run in &plan.runs {
        let doc: serde_json::Value = serde_json::from_str(&run.canonical).unwrap_or_default();
        // jem-data's default is CIFAR-10.
        let d = doc["data"]["dataset"].as_str().unwrap_or("cifar10");
        sets.insert(d.to_string());
    }
    for job in &plan.jobs {
        if job.job.subcommand != "eval" {
            continue;
        }
        let argv = &job.argv;
        if let Some(i) = argv.iter().position(|a| a == "--ood") {
            for o in argv.get(i + 1).map(String::as_str).unwrap_or("").split(',') {
                if !["uniform", "constant", "interp", ""].contains(&o) {
                    sets.insert(o.to_string());
                }
            }
        }
    }
    sets
}

/// Everything missing before the paper preset can train, as one list.
pub fn paper_missing(plan: &Plan, root: &Path, device: &str) -> Vec<String> {
    let mut missing = Vec::new();
    if plan.preset.needs_gpu && device.eq_ignore_ascii_case("cpu") {
        missing.push(
            "a GPU: the paper preset trains WRN-28-10 models (about 36 GPU hours per JEM in the \
             paper); run it with --device cuda on a machine with an NVIDIA GPU"
                .to_string(),
        );
    }
    let roots = data_roots(root, None);
    for d in planned_datasets(plan) {
        missing.extend(missing_dataset(&d, &roots));
    }
    let needs_is = plan.jobs.iter().any(|j| j.job.subcommand == "generative");
    match &plan.preset.inception {
        None if needs_is => missing.push(format!(
            "an Inception TorchScript file for IS/FID (--inception FILE). It cannot be \
             downloaded here; make it on a machine with internet access:\n\n{INCEPTION_RECIPE}\n"
        )),
        Some(path) if !Path::new(path).is_file() => missing.push(format!(
            "the Inception file {path} (--inception): not found"
        )),
        _ => {}
    }
    missing
}

/// Whether `flag` appears as an option in a `--help` text.
pub fn help_has_flag(help: &str, flag: &str) -> bool {
    help.split_whitespace()
        .map(|t| t.trim_matches(|c| c == ',' || c == '[' || c == ']'))
        .any(|t| t == flag || t.starts_with(&format!("{flag}=")))
}

/// Per target, the `jem` flags its commands need that `jem` does not have.
pub fn missing_flags(plan: &Plan, jem: &Path) -> Result<BTreeMap<&'static str, Vec<String>>> {
    let mut helps: BTreeMap<&str, String> = BTreeMap::new();
    let mut missing: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for job in &plan.jobs {
        if job.job.needs.is_empty() {
            continue;
        }
        let sub = job.job.subcommand;
        if !helps.contains_key(sub) {
            let out = Command::new(jem)
                .args([sub, "--help"])
                .output()
                .with_context(|| format!("running `{} {sub} --help`", jem.display()))?;
            helps.insert(sub, String::from_utf8_lossy(&out.stdout).into_owned());
        }
        for flag in &job.job.needs {
            if !help_has_flag(&helps[sub], flag) {
                for t in &job.targets {
                    let what = format!("`jem {sub} {flag}`");
                    let list = missing.entry(t).or_default();
                    if !list.contains(&what) {
                        list.push(what);
                    }
                }
            }
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_found_as_whole_options_only() {
        let help =
            "Options:\n      --top-percentile <P>\n      --from-noise\n  -h, --help  Print help";
        assert!(help_has_flag(help, "--top-percentile"));
        assert!(help_has_flag(help, "--from-noise"));
        assert!(!help_has_flag(help, "--from-buffer"));
        // A prefix of an existing flag is not that flag.
        assert!(!help_has_flag(help, "--top"));
    }

    #[test]
    fn a_dataset_is_missing_until_its_files_are_in_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let roots = vec![dir.path().to_path_buf()];
        let msg = missing_dataset("cifar100", &roots).unwrap();
        assert!(msg.contains("train.bin, test.bin"), "{msg}");
        assert!(msg.contains("cifar-100-binary"), "{msg}");
        let sub = dir.path().join("cifar-100-binary");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("train.bin"), b"").unwrap();
        assert!(missing_dataset("cifar100", &roots).is_some());
        std::fs::write(sub.join("test.bin"), b"").unwrap();
        assert_eq!(missing_dataset("cifar100", &roots), None);
        // IDX files may be gzipped, directly in the root.
        for f in IDX_FILES {
            std::fs::write(dir.path().join(format!("{f}.gz")), b"").unwrap();
        }
        assert_eq!(missing_dataset("fashion-mnist", &roots), None);
    }
}
