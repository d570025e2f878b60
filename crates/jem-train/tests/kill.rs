//! The kill test: a tiny JEM run killed with SIGKILL at 10 seeded points — between iterations,
//! inside checkpoint writes (the temporary file half written, synced but not renamed, renamed
//! but the directory not synced), inside a `metrics.jsonl` line, inside `best.ckpt` and
//! `summary.json` writes, right after a divergence recovery and at the first checkpoint after
//! it — and resumed each time, ends bit-identical to the run that was never interrupted.
//!
//! Each killed run is this test binary run again as a child process (the `kill_child` test,
//! which does nothing unless `JEM_KILL_TEST_DIR` is set); it kills itself with SIGKILL where
//! its kill spec says, through the observer (between iterations) or a
//! [`jem_train::fault`] hook (inside writes), so every kill lands exactly where it
//! is meant to, on every machine.

mod common;

use std::cell::Cell;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;

use common::{assert_same_run, data, kill_self, tiny_config};
use jem_train::checkpoint::TEMP_PREFIX;
use jem_train::fault::{self, Site};
use jem_train::{
    files, read_metrics, resume_with_data, train_with_data, MetricsLine, Mode, NoopObserver,
    OptimizerKind, RecoveryEvent, Remedy, RunConfig, TrainObserver,
};
use rand::{Rng, SeedableRng};
use tch::Device;

const DIR_ENV: &str = "JEM_KILL_TEST_DIR";
const SPEC_ENV: &str = "JEM_KILL_TEST_SPEC";

/// 3 epochs of 12 iterations; SGD at a learning rate far too large diverges early and recovers
/// (`lower_lr`), so the schedule holds a rollback. Frequent checkpoints, snapshots, logs and
/// kept checkpoints put many writes in the way of the kills.
fn config() -> RunConfig {
    let mut c = tiny_config(Mode::Jem);
    c.train.epochs = 3;
    c.train.optimizer = OptimizerKind::Sgd;
    c.train.momentum = 0.9;
    c.train.lr = 20.0;
    c.train.recovery.max_energy_gap = Some(50.0);
    c.train.recovery.remedies = vec![Remedy::LowerLr];
    c.train.recovery.lr_factor = 0.005;
    c.train.recovery.max_recoveries = 4;
    c.train.checkpoint_every = 4;
    c.train.keep_checkpoints = 100;
    c.train.recovery.snapshot_every = 5;
    c.train.log_every = 2;
    c
}

/// Where a child kills itself: once it has completed iteration `arm` (0: from the start), at
/// the first `when`.
#[derive(Debug, Clone, PartialEq)]
enum When {
    /// At once, between iterations.
    Now,
    /// At the first write of `file` reaching `site`.
    Write(Site, String),
    /// When the first divergence recovery is done (rolled back, event logged).
    Recovery,
}

#[derive(Debug, Clone, PartialEq)]
struct Kill {
    arm: u64,
    when: When,
}

fn site_name(site: Site) -> &'static str {
    match site {
        Site::TempHalfWritten => "half",
        Site::TempSynced => "synced",
        Site::Renamed => "renamed",
        Site::MetricsHalfLine => "line",
    }
}

impl Kill {
    fn encode(&self) -> String {
        match &self.when {
            When::Now => format!("{} now", self.arm),
            When::Recovery => format!("{} recovery", self.arm),
            When::Write(site, file) => format!("{} {} {file}", self.arm, site_name(*site)),
        }
    }

    fn decode(text: &str) -> Kill {
        let parts: Vec<&str> = text.split(' ').collect();
        let arm = parts[0].parse().unwrap();
        let when = match parts[1] {
            "now" => When::Now,
            "recovery" => When::Recovery,
            name => {
                let site = [
                    Site::TempHalfWritten,
                    Site::TempSynced,
                    Site::Renamed,
                    Site::MetricsHalfLine,
                ]
                .into_iter()
                .find(|s| site_name(*s) == name)
                .unwrap();
                When::Write(site, parts[2].to_string())
            }
        };
        Kill { arm, when }
    }
}

/// The child's observer: arms the kill once iteration `arm` is done.
struct Assassin {
    kill: Kill,
    armed: Rc<Cell<bool>>,
}

impl TrainObserver for Assassin {
    fn on_iteration(&mut self, iteration: u64) {
        if iteration >= self.kill.arm {
            self.armed.set(true);
            if self.kill.when == When::Now {
                kill_self();
            }
        }
    }

    fn on_recovery(&mut self, _event: &RecoveryEvent) {
        if self.armed.get() && self.kill.when == When::Recovery {
            kill_self();
        }
    }
}

/// A killed run: trains (or resumes, when a checkpoint is there) until its kill spec kills it.
/// Runs only as the child process of [`ten_kills_and_resumes_end_bit_identical`].
#[test]
fn kill_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    tch::set_num_threads(1);
    let kill = Kill::decode(&std::env::var(SPEC_ENV).unwrap());
    let armed = Rc::new(Cell::new(kill.arm == 0));
    if let When::Write(site, file) = kill.when.clone() {
        let armed = armed.clone();
        fault::set_hook(Some(Box::new(move |at: Site, path: &Path| {
            if armed.get() && at == site && path.file_name().is_some_and(|n| *n == *file) {
                kill_self();
            }
            Ok(())
        })));
    }
    let mut observer = Assassin { kill, armed };
    if dir.join(files::LAST).exists() {
        resume_with_data(&dir, data(), Device::Cpu, &mut observer).unwrap();
    } else {
        train_with_data(config(), data(), &dir, Device::Cpu, &mut observer).unwrap();
    }
}

/// Runs one child with `kill`; true when it died of SIGKILL (false: it finished).
fn run_child(dir: &Path, kill: &Kill) -> bool {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["kill_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir)
        .env(SPEC_ENV, kill.encode())
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    match status.signal() {
        Some(libc::SIGKILL) => true,
        None if status.success() => false,
        _ => panic!("the child for {kill:?} failed: {status:?}"),
    }
}

/// The 10 kills: the kinds are fixed (each fault the issue names at least once), the
/// iterations drawn from a seeded generator around the reference run's recovery at `r`.
fn plan(r: u64, total: u64) -> Vec<Kill> {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(20_261_129);
    let write = |site, file: &str| When::Write(site, file.to_string());
    let mut arm = |hi: u64| rng.random_range(2..=hi.max(2));
    // Before the recovery: each of these dies within a checkpoint interval (4) of its arm, so
    // the last checkpoint on disk is still before `r` when the recovery kill's child starts.
    let mut before: Vec<Kill> = [
        When::Now,
        write(Site::TempHalfWritten, files::LAST),
        write(Site::TempSynced, files::LAST),
        write(Site::Renamed, files::LAST),
        write(Site::MetricsHalfLine, files::METRICS),
    ]
    .into_iter()
    .map(|when| Kill {
        arm: arm(r - 5),
        when,
    })
    .collect();
    // The first evaluation (iteration 12) always writes best.ckpt, before its last.ckpt.
    let best = Kill {
        arm: arm((r - 5).min(11)),
        when: write(Site::TempHalfWritten, files::BEST),
    };
    let recovery = Kill {
        arm: 0,
        when: When::Recovery,
    };
    let mut kills = vec![Kill {
        arm: 0,
        when: write(Site::TempSynced, files::CONFIG),
    }];
    if r > 12 {
        before.push(best);
        before.sort_by_key(|k| k.arm);
        kills.extend(before);
        kills.push(recovery);
    } else {
        before.sort_by_key(|k| k.arm);
        kills.extend(before);
        kills.push(recovery);
        kills.push(best);
    }
    // The first checkpoint after the recovery, and the summary at the very end.
    kills.push(Kill {
        arm: r + 1,
        when: write(Site::TempHalfWritten, files::LAST),
    });
    kills.push(Kill {
        arm: total,
        when: write(Site::TempHalfWritten, files::SUMMARY),
    });
    kills
}

/// Checks that a kill inside a write left what such a kill leaves: the destination's partial
/// (half written) or complete (synced) temporary file, or a torn last line of `metrics.jsonl`.
fn assert_landed(dir: &Path, kill: &Kill) {
    let When::Write(site, file) = &kill.when else {
        return;
    };
    let temp = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with(&format!("{TEMP_PREFIX}{file}.")));
    match site {
        Site::TempHalfWritten | Site::TempSynced => {
            let temp = temp.unwrap_or_else(|| panic!("{kill:?} left no temporary file"));
            let bytes = std::fs::read(dir.join(&temp)).unwrap();
            if *file == files::LAST || *file == files::BEST {
                let whole = jem_train::checkpoint::read_checkpoint(&dir.join(&temp)).is_ok();
                assert_eq!(whole, *site == Site::TempSynced, "{kill:?}: {temp}");
            } else {
                assert!(!bytes.is_empty(), "{kill:?}: {temp} is empty");
            }
        }
        Site::Renamed => assert!(temp.is_none(), "{kill:?} left {temp:?}"),
        Site::MetricsHalfLine => {
            let text = std::fs::read(dir.join(files::METRICS)).unwrap();
            assert_ne!(text.last(), Some(&b'\n'), "{kill:?}: no torn line");
        }
    }
}

#[test]
fn ten_kills_and_resumes_end_bit_identical() {
    tch::set_num_threads(1);
    let whole = tempfile::tempdir().unwrap();
    let s = train_with_data(
        config(),
        data(),
        whole.path(),
        Device::Cpu,
        &mut NoopObserver,
    )
    .unwrap();
    assert_eq!(s.iterations, 36);
    let recoveries: Vec<RecoveryEvent> = read_metrics(&whole.path().join(files::METRICS))
        .unwrap()
        .into_iter()
        .filter_map(|l| match l {
            MetricsLine::Recovery(e) => Some(e),
            _ => None,
        })
        .collect();
    // A recovery with room for kills before it (at this seed: iteration 13, rolled back to 12).
    let r = recoveries
        .iter()
        .map(|e| e.iteration)
        .find(|&it| it >= 7)
        .unwrap_or_else(|| {
            panic!("the reference run must recover after iteration 7: {recoveries:?}")
        });

    let killed = tempfile::tempdir().unwrap();
    let kills = plan(r, s.iterations);
    assert_eq!(kills.len(), 10);
    for kill in &kills {
        eprintln!("kill: {}", kill.encode());
        assert!(
            run_child(killed.path(), kill),
            "the run finished before {kill:?} could kill it"
        );
        assert!(
            !killed.path().join(files::SUMMARY).exists(),
            "a killed run wrote its summary ({kill:?})"
        );
        let last = killed.path().join(files::LAST);
        if last.exists() {
            jem_train::checkpoint::read_checkpoint(&last)
                .unwrap_or_else(|e| panic!("after {kill:?}: {e}"));
        }
        assert_landed(killed.path(), kill);
    }
    resume_with_data(killed.path(), data(), Device::Cpu, &mut NoopObserver).unwrap();
    assert_same_run(whole.path(), killed.path());
}
