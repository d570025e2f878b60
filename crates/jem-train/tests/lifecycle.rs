//! How a run stops, continues and starts over: a budget extended on resume, a fresh run into a
//! directory holding an earlier run's outputs, and a run without a validation split.

mod common;

use std::path::Path;

use common::{
    assert_same_run, checkpoint_tensors, data, metrics_without_timing, tiny_config,
    tiny_idx_config, write_idx,
};
use jem_model::JointEnergyModel;
use jem_train::{
    files, read_metrics, resume_with_budget, train, train_with_data, Budget, MetricsLine, Mode,
    NoopObserver, StopReason,
};
use tch::{Device, Kind};

/// A run of 36 iterations (3 epochs) stopped by a budget of 24 (`train.max_iterations`), then
/// extended to 36 with [`resume_with_budget`], is the run that went through: every tensor of
/// every checkpoint, the whole `metrics.jsonl` and `summary.json`.
#[test]
fn a_run_stopped_by_its_iteration_budget_and_extended_is_the_uninterrupted_run() {
    tch::set_num_threads(1);
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("data");
    write_idx(&idx, &data());
    let mut cfg = tiny_idx_config(Mode::Jem, &idx);
    cfg.train.max_iterations = Some(36);

    let whole = tmp.path().join("whole");
    let a = train(cfg.clone(), &whole, Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!((a.iterations, a.stop_reason), (36, StopReason::Completed));

    let extended = tmp.path().join("extended");
    cfg.train.max_iterations = Some(24);
    let b = train(cfg, &extended, Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(
        (b.iterations, b.stop_reason),
        (24, StopReason::MaxIterations)
    );
    let budget = Budget {
        max_iterations: Some(36),
        ..Budget::default()
    };
    let c = resume_with_budget(&extended, &budget, Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!((c.iterations, c.stop_reason), (36, StopReason::Completed));
    assert!(c.complete);
    assert_same_run(&whole, &extended);
}

/// The training diagnostics (`kind = "train"` lines) of a `metrics.jsonl`, timing left out.
fn train_lines(path: &Path) -> Vec<serde_json::Value> {
    metrics_without_timing(path)
        .into_iter()
        .filter(|v| v["kind"] == "train")
        .collect()
}

/// A tiny JEM of 2 epochs (24 iterations) on IDX files under `tmp`, trained through into
/// `tmp/whole`: its config, directory and summary.
fn two_epoch_jem_run(
    tmp: &Path,
) -> (
    jem_train::RunConfig,
    std::path::PathBuf,
    jem_train::TrainSummary,
) {
    let idx = tmp.join("data");
    write_idx(&idx, &data());
    let mut cfg = tiny_idx_config(Mode::Jem, &idx);
    cfg.train.epochs = 2;
    let whole = tmp.join("whole");
    let summary = train(cfg.clone(), &whole, Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(
        (summary.iterations, summary.stop_reason),
        (24, StopReason::Completed)
    );
    (cfg, whole, summary)
}

/// A run stopped by its time budget (`train.max_minutes` of 60 µs: at its first check) and
/// given `extra_minutes` on resume trains the same weights, optimiser state and replay buffer
/// as the run that went through, and logs the same training diagnostics. (The stopped run was
/// evaluated where it stopped, so its evaluations hold one more line.)
#[test]
fn a_run_stopped_by_its_time_budget_and_given_extra_minutes_trains_the_same_model() {
    tch::set_num_threads(1);
    let tmp = tempfile::tempdir().unwrap();
    let (mut cfg, whole, a) = two_epoch_jem_run(tmp.path());

    let extended = tmp.path().join("extended");
    cfg.train.max_minutes = Some(1e-6);
    let b = train(cfg, &extended, Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(b.stop_reason, StopReason::TimeBudget);
    assert!(!b.complete && b.iterations < 24, "{b:?}");
    let budget = Budget {
        extra_minutes: Some(60.0),
        ..Budget::default()
    };
    let c = resume_with_budget(&extended, &budget, Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!((c.iterations, c.stop_reason), (24, StopReason::Completed));
    assert!(c.complete);

    let (ta, tb) = (
        checkpoint_tensors(&whole.join(files::LAST)),
        checkpoint_tensors(&extended.join(files::LAST)),
    );
    assert_eq!(ta.len(), tb.len());
    for ((na, sa, da), (nb, sb, db)) in ta.iter().zip(&tb) {
        assert_eq!((na, sa), (nb, sb));
        assert!(da == db, "tensor `{na}` differs after the extension");
    }
    let (la, lb) = (
        train_lines(&whole.join(files::METRICS)),
        train_lines(&extended.join(files::METRICS)),
    );
    assert_eq!(la.len(), 6);
    assert_eq!(la, lb);
    assert_eq!(a.final_test_acc, c.final_test_acc);
}

/// A fresh run into a directory that holds an earlier run's outputs but no `last.ckpt` (a
/// copied or half-cleaned directory) removes them: no stale kept checkpoint, sample grid or
/// log line survives, and `best.ckpt` and `summary.json` are this run's.
#[test]
fn a_fresh_run_clears_an_earlier_runs_outputs() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join(files::BEST), b"an earlier run's best model").unwrap();
    std::fs::write(d.join(files::SUMMARY), r#"{"iterations": 9999}"#).unwrap();
    std::fs::write(
        d.join(files::METRICS),
        "{\"kind\":\"train\",\"iteration\":9999}\n",
    )
    .unwrap();
    for (sub, name) in [
        (files::SAMPLES_DIR, "buffer_00009999.png"),
        (files::KEPT_DIR, "ckpt_00009999.ckpt"),
    ] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
        std::fs::write(d.join(sub).join(name), b"old").unwrap();
    }

    let mut cfg = tiny_config(Mode::Baseline);
    cfg.train.epochs = 1;
    cfg.train.keep_checkpoints = 2;
    let s = train_with_data(cfg, data(), d, Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(s.iterations, 12);

    assert!(!d
        .join(files::SAMPLES_DIR)
        .join("buffer_00009999.png")
        .exists());
    let kept: Vec<String> = std::fs::read_dir(d.join(files::KEPT_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !kept.is_empty(),
        "this run keeps its checkpoint of iteration 7"
    );
    assert!(!kept.iter().any(|n| n.contains("9999")), "{kept:?}");
    let best = jem_train::checkpoint::read_checkpoint(&d.join(files::BEST)).unwrap();
    assert_eq!(best.meta["state"]["iteration"].as_u64(), Some(12));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join(files::SUMMARY)).unwrap()).unwrap();
    assert_eq!(summary["iterations"], 12);
    let lines = read_metrics(&d.join(files::METRICS)).unwrap();
    assert!(
        lines.iter().all(|l| match l {
            MetricsLine::Train(t) => t.iteration <= 12,
            _ => true,
        }),
        "an earlier run's line survived: {lines:?}"
    );
}

/// With `data.n_valid = 0` nothing chooses a best model: no `best.ckpt` is written (an earlier
/// run's is removed), the summary names `last.ckpt`, and its test accuracy is that of the
/// model in `last.ckpt`, recomputed here.
#[test]
fn without_a_validation_split_the_last_checkpoint_is_evaluated_and_named() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join(files::BEST), b"an earlier run's best model").unwrap();
    let mut cfg = tiny_config(Mode::Baseline);
    cfg.data.n_valid = 0;
    cfg.train.epochs = 2;
    let s = train_with_data(cfg, data(), d, Device::Cpu, &mut NoopObserver).unwrap();
    // 240 training images in batches of 16.
    assert_eq!(s.iterations, 30);
    assert_eq!(s.model_checkpoint, files::LAST);
    assert!(!d.join(files::BEST).exists());
    assert_eq!((s.final_valid_acc, s.best_valid_acc), (None, None));
    assert_eq!((s.best_test_acc, s.best_epoch), (None, None));
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join(files::SUMMARY)).unwrap()).unwrap();
    assert_eq!(on_disk["model_checkpoint"], files::LAST);

    let (_, _vs, model) = jem_train::load_model(&d.join(files::LAST), Device::Cpu).unwrap();
    let test = data().test;
    let x = test
        .images
        .f_mul_scalar(2.0)
        .unwrap()
        .f_sub_scalar(1.0)
        .unwrap();
    let correct = tch::no_grad(|| model.logits(&x, false).unwrap().argmax(1, false))
        .eq_tensor(&test.labels)
        .sum(Kind::Int64)
        .int64_value(&[]);
    let acc = correct as f64 / test.len() as f64;
    assert_eq!(s.final_test_acc, Some(acc));
    // Better than chance (4 classes): the number is a trained model's, not NaN logits'.
    assert!(acc > 0.5, "{acc}");
}

/// Asks the run to stop once `at` iterations are done, as Ctrl-C does.
struct StopAt {
    at: u64,
    done: u64,
}

impl jem_train::TrainObserver for StopAt {
    fn on_iteration(&mut self, iteration: u64) {
        self.done = iteration;
    }
    fn should_stop(&mut self) -> bool {
        self.done >= self.at
    }
}

/// A run stopped cleanly before its first iteration, after one, or after a few, then resumed,
/// ends with the same tensors (weights, optimiser, replay buffer) as the run that went through.
#[test]
fn a_run_stopped_at_any_iteration_and_resumed_is_the_uninterrupted_run() {
    tch::set_num_threads(1);
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, whole, _) = two_epoch_jem_run(tmp.path());
    let ta = checkpoint_tensors(&whole.join(files::LAST));
    for at in [0u64, 1, 3] {
        let dir = tmp.path().join(format!("stop{at}"));
        let b = train(cfg.clone(), &dir, Device::Cpu, &mut StopAt { at, done: 0 }).unwrap();
        assert_eq!((b.iterations, b.stop_reason), (at, StopReason::Stopped));
        jem_train::resume(&dir, Device::Cpu, &mut NoopObserver).unwrap();
        let tb = checkpoint_tensors(&dir.join(files::LAST));
        assert_eq!(ta.len(), tb.len());
        for ((na, _, da), (_, _, db)) in ta.iter().zip(&tb) {
            assert!(da == db, "stopped at {at}: tensor `{na}` differs");
        }
    }
}
