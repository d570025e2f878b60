//! The executor against a fake `jem` (a shell script that writes what the real one would): it
//! trains, evaluates, assembles and writes the results in order, and stops on an interrupted run.

use crate::reproduce::exec;
use crate::reproduce::plan::{Layout, Plan, PlanOptions};
use crate::reproduce::{output, preset, targets};
use crate::util::workspace_root;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A fake `jem`: `train` writes summary.json (stop reason `stopped` when a file `stop` lies beside
/// the script, else `completed`) into its
/// `--out`/`--resume` directory; `eval` writes an ood.json and the histograms into its `--out`.
/// Every call is appended to `calls.txt` beside the script.
const FAKE_JEM: &str = r#"#!/bin/sh
here=$(dirname "$0")
stop=completed; [ -f "$here/stop" ] && stop=stopped
echo "$@" >> "$here/calls.txt"
sub=""; out=""; prev=""
for a in "$@"; do
  case "$prev" in --out|--resume) out="$a";; esac
  case "$a" in train|eval) [ -z "$sub" ] && sub="$a";; esac
  prev="$a"
done
mkdir -p "$out"
case "$sub" in
  train)
    mode=jem; case "$out" in *baseline*) mode=baseline;; esac
    printf '{"run_dir": "%s", "mode": "%s", "iterations": 10, "epochs_completed": 1, "final_valid_acc": 0.8, "final_test_acc": 0.8, "best_valid_acc": 0.8, "best_test_acc": 0.8, "best_epoch": 1, "recoveries": 0, "wall_time_s": 6.0, "stop_reason": "%s"}' "$out" "$mode" "$stop" > "$out/summary.json"
    touch "$out/last.ckpt";;
  eval)
    sep=""; printf '[' > "$out/ood.json"
    for s in px py pxgrad; do for o in mnist-5k uniform constant interp; do
      printf '%s{"score": "%s", "in": "fashion-mnist", "ood": "%s", "refine_steps": 0, "metrics": {"auroc": 0.75, "aupr": 0.5, "fpr_at_95_tpr": 0.5, "num_in": 1, "num_out": 1}}' "$sep" "$s" "$o" >> "$out/ood.json"; sep=","
    done; touch "$out/hist_$s.png"; done
    printf ']' >> "$out/ood.json";;
esac
"#;

/// One task at a time, libtorch's own threads: the order of the plan.
const ONE: exec::Workers = exec::Workers {
    jobs: 1,
    threads: None,
};

fn fake_jem(dir: &Path) -> PathBuf {
    let path = dir.join("jem");
    std::fs::write(&path, FAKE_JEM).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn plan(dir: &Path) -> (Plan, Layout) {
    let layout = Layout {
        root: workspace_root(),
        runs: dir.join("runs"),
        results: dir.join("results"),
    };
    let plan = Plan::build(
        preset::cpu(),
        &[1],
        vec![targets::by_name("table3").unwrap()],
        &layout,
        &PlanOptions {
            force: false,
            overrides: &[],
        },
    )
    .unwrap();
    (plan, layout)
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn trains_then_evaluates_then_reuses_everything() {
    let dir = tempfile::tempdir().unwrap();
    let jem = fake_jem(dir.path());
    let (p, layout) = plan(dir.path());
    let only: BTreeSet<&str> = ["table3"].into();
    let counts = exec::execute(&p, &only, &jem, &layout.root, "cpu", ONE).unwrap();
    assert_eq!((counts.trained, counts.jobs_run), (2, 2));
    let c = calls(dir.path());
    assert_eq!(c.len(), 4, "{c:?}");
    assert!(
        c[0].starts_with("--device cpu train --config configs/cpu.toml"),
        "{c:?}"
    );
    assert!(c[1].contains("train.mode=\"baseline\""), "{c:?}");
    assert!(c[2].starts_with("--device cpu eval --checkpoint"), "{c:?}");
    // The results assemble from what the commands wrote.
    let t = targets::by_name("table3").unwrap();
    let runs = p
        .runs
        .iter()
        .map(|r| ((r.id, r.seed), r.dir.clone()))
        .collect();
    let jobs = p
        .job_dirs
        .iter()
        .map(|((_, k), d)| (k.clone(), d.clone()))
        .collect();
    let inputs = targets::Inputs::new(&p.preset, p.seeds.clone(), runs, jobs);
    let a = (t.assemble)(&inputs).unwrap();
    output::write_target(&layout.results, &p.preset, &p.seeds, t, &a).unwrap();
    let readme = std::fs::read_to_string(layout.results.join("table3/README.md")).unwrap();
    assert!(
        readme.contains("| jem | log p(x) | 0.750 | 0.750 | 0.750 | 0.750 |"),
        "{readme}"
    );
    // A second run finds everything cached and calls jem no more.
    let (p2, _) = plan(dir.path());
    let counts = exec::execute(&p2, &only, &jem, &layout.root, "cpu", ONE).unwrap();
    assert_eq!((counts.reused, counts.jobs_cached), (2, 2));
    assert_eq!(calls(dir.path()).len(), 4);
}

#[test]
fn an_interrupted_training_stops_the_run_and_is_resumed_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let jem = fake_jem(dir.path());
    let (p, layout) = plan(dir.path());
    let only: BTreeSet<&str> = ["table3"].into();
    std::fs::write(dir.path().join("stop"), b"").unwrap();
    let err = exec::execute(&p, &only, &jem, &layout.root, "cpu", ONE)
        .unwrap_err()
        .to_string();
    assert!(err.contains("stopped before the end"), "{err}");
    assert_eq!(
        calls(dir.path()).len(),
        1,
        "nothing runs after the interruption"
    );
    let (p, _) = plan(dir.path());
    let jem_run = p.runs.iter().find(|r| r.id.name() == "jem").unwrap();
    assert_eq!(jem_run.status, crate::reproduce::plan::ModelStatus::Resume);
}

#[test]
fn two_at_a_time_each_command_after_its_models_with_half_the_cores() {
    let dir = tempfile::tempdir().unwrap();
    let jem = fake_jem(dir.path());
    let (p, layout) = plan(dir.path());
    let only: BTreeSet<&str> = ["table3"].into();
    let two = exec::Workers::new(None, "cpu", 2).unwrap();
    assert_eq!(
        two,
        exec::Workers {
            jobs: 2,
            threads: Some(1)
        }
    );
    let counts = exec::execute(&p, &only, &jem, &layout.root, "cpu", two).unwrap();
    assert_eq!((counts.trained, counts.jobs_run), (2, 2));
    let c = calls(dir.path());
    assert_eq!(c.len(), 4, "{c:?}");
    assert!(
        c.iter().all(|l| l.starts_with("--device cpu --threads 1 ")),
        "{c:?}"
    );
    // Each evaluation comes after the training of the model it reads.
    for r in &p.runs {
        let dir = r.dir.display().to_string();
        let trained = c
            .iter()
            .position(|l| l.contains(" train ") && l.contains(&dir))
            .unwrap_or_else(|| panic!("{} not trained: {c:?}", r.id));
        let evaluated = c
            .iter()
            .position(|l| l.contains(" eval ") && l.contains(&dir))
            .unwrap_or_else(|| panic!("{} not evaluated: {c:?}", r.id));
        assert!(trained < evaluated, "{c:?}");
    }
    // Each task's output is in a log file.
    for j in &p.jobs {
        assert!(j.dir.join("log.txt").is_file(), "{}", j.dir.display());
    }
}

#[test]
fn workers_default_to_two_on_a_multicore_cpu_and_one_elsewhere() {
    let w = |jobs, device, cores| exec::Workers::new(jobs, device, cores).unwrap();
    assert_eq!(
        w(None, "cpu", 16),
        exec::Workers {
            jobs: 2,
            threads: Some(8)
        }
    );
    assert_eq!(w(None, "cpu", 1), ONE);
    assert_eq!(w(None, "cuda", 16), ONE);
    assert_eq!(
        w(Some(4), "cpu", 2),
        exec::Workers {
            jobs: 4,
            threads: Some(1)
        }
    );
    let err = exec::Workers::new(Some(0), "cpu", 2)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--jobs must be at least 1, got 0"), "{err}");
}
