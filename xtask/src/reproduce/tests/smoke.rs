//! A smoke run of every target against the real `jem` on tiny models (seconds of training).
//! Ignored by default: it needs a built `jem` (`cargo build -p jem-cli`; or set JEM_BIN) and
//! about ten minutes of CPU. Run it with
//! `cargo test -p xtask smoke -- --ignored --nocapture`.

use crate::reproduce::plan::{Layout, Plan, PlanOptions};
use crate::reproduce::targets::{Inputs, TARGETS};
use crate::reproduce::{exec, output, preflight, preset};
use crate::util::workspace_root;
use std::collections::BTreeSet;
use std::path::PathBuf;

const TINY: &str = r#"
[data]
dataset = "fashion-mnist"
n_valid = 100
batch_size = 16
eval_batch_size = 500
augment = false

[model]
depth = 10
widen_factor = 1
num_classes = 10
in_channels = 1

[sampler.sgld]
steps = 2
clamp = [-1.0, 1.0]

[sampler.buffer]
size = 100

[train]
mode = "jem"
epochs = 1
lr = 1e-3
"#;

#[test]
#[ignore = "needs a built jem and minutes of CPU"]
fn every_target_runs_against_the_real_jem() {
    let jem = std::env::var_os("JEM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug/jem"));
    assert!(jem.is_file(), "build jem first: {}", jem.display());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.toml"), TINY).unwrap();
    let layout = Layout {
        root: dir.path().to_path_buf(),
        runs: dir.path().join("runs"),
        results: dir.path().join("results"),
    };
    let plan = Plan::build(
        preset::tiny(),
        &[1],
        TARGETS.iter().collect(),
        &layout,
        &PlanOptions {
            force: false,
            overrides: &[],
        },
    )
    .unwrap();
    let missing = preflight::missing_flags(&plan, &jem).unwrap();
    eprintln!("blocked by missing flags: {missing:?}");
    let runnable: BTreeSet<&str> = TARGETS
        .iter()
        .map(|t| t.name)
        .filter(|t| !missing.contains_key(t))
        .collect();
    let workers = exec::Workers::new(None, "cpu", 2).unwrap();
    exec::execute(&plan, &runnable, &jem, &layout.root, "cpu", workers).unwrap();
    for t in &TARGETS {
        if !runnable.contains(t.name) {
            output::write_not_run(
                &layout.results,
                &plan.preset,
                &plan.seeds,
                t,
                "missing flags",
            )
            .unwrap();
            continue;
        }
        let runs = plan
            .runs
            .iter()
            .map(|r| ((r.id, r.seed), r.dir.clone()))
            .collect();
        let jobs = plan
            .job_dirs
            .iter()
            .filter(|((n, _), _)| *n == t.name)
            .map(|((_, k), d)| (k.clone(), d.clone()))
            .collect();
        let inputs = Inputs::new(&plan.preset, plan.seeds.clone(), runs, jobs);
        let a = (t.assemble)(&inputs).unwrap_or_else(|e| panic!("{}: {e:#}", t.name));
        output::write_target(&layout.results, &plan.preset, &plan.seeds, t, &a).unwrap();
        let readme =
            std::fs::read_to_string(layout.results.join(t.name).join("README.md")).unwrap();
        eprintln!("==== {} ====\n{readme}", t.name);
    }
    output::write_index(&layout.results, &plan.preset).unwrap();
    let index = std::fs::read_to_string(layout.results.join("README.md")).unwrap();
    eprintln!("==== index ====\n{index}");
    if let Some(keep) = std::env::var_os("JEM_SMOKE_KEEP") {
        let keep = PathBuf::from(keep);
        let _ = std::fs::remove_dir_all(&keep);
        std::fs::rename(dir.path(), &keep).ok();
    }
}
