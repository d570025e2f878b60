//! `jem train` killed with SIGKILL and resumed ends exactly where the
//! uninterrupted run ends (same seed, CPU, one thread); a second `jem train` into a run
//! directory that another one is writing is refused.

mod common;

use common::{jem_command as jem, ok, tiny_config};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// The tiny run, with a seed of its own, frequent checkpoints and a warmup so that a kill can
/// land anywhere in the schedule.
fn tiny() -> String {
    tiny_config(
        8,
        200,
        "noise_sigma = 0.03\nseed = 3",
        "seed = 7\nmax_iterations = 36\nlr = 1e-3\nwarmup_iters = 5\nlog_every = 3\ncheckpoint_every = 4",
    )
}

fn train(config: &Path, out: &Path) -> Child {
    jem(&[
        "train",
        "--quiet",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap()
}

/// The training losses of `metrics.jsonl`, by iteration (timing fields left out).
fn losses(run: &Path) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "train")
        .map(|v| {
            (
                v["iteration"].as_u64().unwrap(),
                format!("{} {} {}", v["loss"], v["ce"], v["px_term"]),
            )
        })
        .collect()
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn sigkill_then_resume_matches_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, tiny()).unwrap();

    let whole = dir.path().join("whole");
    assert!(train(&config, &whole).wait().unwrap().success());

    // Kill the second run once it has written a checkpoint and gone past it.
    let killed = dir.path().join("killed");
    let mut child = train(&config, &killed);
    let started = Instant::now();
    loop {
        let progressed = killed.join("last.ckpt").exists()
            && losses(&killed).last().is_some_and(|(it, _)| *it >= 9);
        if progressed || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let finished_early = child.try_wait().unwrap().is_some();
    child.kill().unwrap(); // SIGKILL: no clean shutdown, no final checkpoint
    child.wait().unwrap();
    assert!(
        !finished_early,
        "the run ended before it could be killed; make it longer"
    );
    assert!(
        !killed.join("summary.json").exists(),
        "a killed run must not have finished"
    );

    ok(&["train", "--quiet", "--resume", killed.to_str().unwrap()]);

    assert_eq!(
        losses(&killed),
        losses(&whole),
        "training losses differ after resume"
    );
    let (a, b) = (summary(&whole), summary(&killed));
    for key in [
        "iterations",
        "final_valid_acc",
        "final_test_acc",
        "best_valid_acc",
        "recoveries",
    ] {
        assert_eq!(a[key], b[key], "{key} differs: {} vs {}", a[key], b[key]);
    }
    assert_eq!(a["iterations"], 36);
}

#[test]
fn training_into_an_existing_run_asks_for_resume() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("last.ckpt"), b"x").unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, tiny()).unwrap();
    let out = jem(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
}

#[test]
fn bad_config_values_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, tiny()).unwrap();
    let out = jem(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--set",
        "train.lr=-1",
        "--out",
        "x",
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("train.lr") && err.contains("-1"), "{err}");
    let out = jem(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--set",
        "train.bogus=1",
        "--out",
        "x",
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

/// Two writers in one run directory: while one `jem train --out D` runs, a second one fails at
/// once with an error naming `D` and the first one's pid, and leaves the first run's files
/// alone; once the first is killed, its lock is gone with it.
#[test]
fn a_second_writer_is_refused_naming_the_directory_and_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("long.toml");
    // One epoch of Fashion-MNIST in batches of 8 (thousands of iterations) with no periodic
    // checkpoint: the first writer holds the directory for minutes and writes no last.ckpt,
    // so the second one gets as far as the lock.
    std::fs::write(
        &config,
        tiny_config(8, 200, "", "seed = 7\nlr = 1e-3\ncheckpoint_every = 0"),
    )
    .unwrap();
    let run = dir.path().join("run");
    let mut first = train(&config, &run);
    let pid = first.id().to_string();
    let started = Instant::now();
    // The lock file holds the holder's pid once it is taken; config.toml comes right after.
    while std::fs::read_to_string(run.join(".lock")).ok() != Some(pid.clone())
        || !run.join("config.toml").exists()
    {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first writer ended before it took the lock"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the first writer never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let config_before = std::fs::read(run.join("config.toml")).unwrap();

    // A short second run with a config of its own: were it let in, it would end at once
    // with exit 0 and overwrite config.toml.
    let second = jem(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--set",
        "train.max_iterations=1",
        "--out",
    ])
    .arg(&run)
    .output()
    .unwrap();
    let still_running = first.try_wait().unwrap().is_none();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(still_running, "the first writer ended during the test");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success(),
        "the second writer succeeded: {err}"
    );
    assert!(err.contains(&run.display().to_string()), "{err}");
    assert!(err.contains(&format!("process {pid}")), "{err}");
    assert_eq!(
        std::fs::read(run.join("config.toml")).unwrap(),
        config_before
    );
    assert!(!run.join("summary.json").exists());

    // A killed writer leaves no stale lock.
    jem_train::lock::RunLock::acquire(&run).unwrap();
}
