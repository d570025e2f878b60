//! End-to-end training tests on tiny synthetic data (WRN-10-1, 1x8x8, batch 16).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{checkpoint_tensors, data, metrics_without_timing, tiny_config};
use jem_model::JointEnergyModel;
use jem_train::{
    files, load_model, read_metrics, resume_with_data, train_with_data, Diagnostics, MetricsLine,
    Mode, NoopObserver, OptimizerKind, Remedy, StopReason, TrainError, TrainObserver,
};
use tch::{Device, Kind, Tensor};

fn train_lines(dir: &std::path::Path) -> Vec<Diagnostics> {
    read_metrics(&dir.join(files::METRICS))
        .unwrap()
        .into_iter()
        .filter_map(|l| match l {
            MetricsLine::Train(d) => Some(d),
            _ => None,
        })
        .collect()
}

#[test]
fn baseline_loss_falls_and_accuracy_rises() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(Mode::Baseline);
    cfg.train.epochs = 3;
    let s = train_with_data(cfg, data(), dir.path(), Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(s.stop_reason, StopReason::Completed);
    assert_eq!(s.iterations, 36);
    let lines = train_lines(dir.path());
    assert_eq!(lines.len(), 9);
    let (first, last) = (&lines[0], lines.last().unwrap());
    assert!(last.ce < 0.5 * first.ce, "ce {} -> {}", first.ce, last.ce);
    assert!(
        last.train_acc > first.train_acc,
        "{} -> {}",
        first.train_acc,
        last.train_acc
    );
    assert!(s.final_test_acc.unwrap() > 0.9, "{s:?}");
    assert!(s.best_valid_acc.unwrap() > 0.9, "{s:?}");
    assert!(lines
        .iter()
        .all(|d| d.logpx_sample.is_none() && d.px_term == 0.0));
    for f in [files::CONFIG, files::LAST, files::BEST, files::SUMMARY] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(files::SUMMARY)).unwrap())
            .unwrap();
    assert_eq!(summary["iterations"], 36);
}

#[test]
fn jem_learns_and_data_is_more_likely_than_noise() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(Mode::Jem);
    cfg.train.epochs = 4;
    cfg.train.sample_every = 24;
    cfg.train.sgld_precision = jem_model::Precision::Auto;
    let s = train_with_data(cfg, data(), dir.path(), Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(s.recoveries, 0);
    assert!(s.final_test_acc.unwrap() > 0.8, "{s:?}");
    // The summary says what `auto` became on this CPU, not "auto".
    let native = jem_model::ops::native_bf16(Device::Cpu);
    let expected = [jem_model::Precision::Fp32, jem_model::Precision::Bf16][native as usize];
    assert_eq!(s.sgld_precision, Some(expected));
    assert_eq!(s.train_precision, Some(jem_model::Precision::Fp32));
    let lines = train_lines(dir.path());
    let (first, last) = (&lines[0], lines.last().unwrap());
    assert!(last.ce < first.ce, "ce {} -> {}", first.ce, last.ce);
    for d in &lines {
        assert!(d.logpx_data.unwrap().is_finite() && d.energy_gap.unwrap().is_finite());
        assert!(d.sgld_grad_norm.unwrap() > 0.0);
        assert!(d.buffer_age_max.unwrap() >= 1);
    }
    assert!(last.buffer_age_mean.unwrap() > first.buffer_age_mean.unwrap());

    // The trained model gives the data a higher log p(x) than uniform noise on [-1, 1].
    let (_, _vs, model) = load_model(&dir.path().join(files::LAST), Device::Cpu).unwrap();
    let test = common::synthetic(64, 99);
    let x = test
        .images
        .f_mul_scalar(2.0)
        .unwrap()
        .f_sub_scalar(1.0)
        .unwrap();
    let noise = {
        let _torch = jem_train::rng::seed_torch_rng(5);
        Tensor::rand([64, 1, 8, 8], (Kind::Float, Device::Cpu)) * 2.0 - 1.0
    };
    let (lp_data, lp_noise) = tch::no_grad(|| {
        (
            model
                .log_px(&x, false)
                .unwrap()
                .mean(Kind::Float)
                .double_value(&[]),
            model
                .log_px(&noise, false)
                .unwrap()
                .mean(Kind::Float)
                .double_value(&[]),
        )
    });
    assert!(
        lp_data > lp_noise + 0.5,
        "log p(data) {lp_data} vs log p(noise) {lp_noise}"
    );

    let samples = dir.path().join(files::SAMPLES_DIR);
    for name in [
        "buffer_00000024.png",
        "classes_00000024.png",
        "buffer_00000048.png",
    ] {
        let img = image_dims(&samples.join(name));
        assert!(img.0 > 8 && img.1 > 8, "{name}: {img:?}");
    }
}

fn image_dims(path: &std::path::Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[1..4], b"PNG");
    (
        u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
        u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
    )
}

/// Panics (a simulated crash) after a given number of iterations.
struct Killer(u64);

impl TrainObserver for Killer {
    fn on_iteration(&mut self, iteration: u64) {
        if iteration == self.0 {
            panic!("simulated crash at iteration {iteration}");
        }
    }
}

#[test]
fn resumed_run_is_bit_identical_to_the_uninterrupted_one() {
    let mut cfg = tiny_config(Mode::Jem);
    cfg.train.epochs = 2;
    assert_resume_is_bit_identical(cfg);
}

#[test]
fn resume_is_bit_identical_with_spectral_norm() {
    // The power-iteration vectors are state too: a checkpoint without them would resume with
    // other weights' normalisation.
    let mut cfg = tiny_config(Mode::Jem);
    cfg.train.epochs = 2;
    cfg.model.spectral_norm = true;
    assert_resume_is_bit_identical(cfg);
}

/// Trains `cfg` once whole and once crashed at iteration 17 and resumed: every tensor of the
/// last checkpoint and every metrics line must agree.
fn assert_resume_is_bit_identical(cfg: jem_train::RunConfig) {
    tch::set_num_threads(1);
    let full = tempfile::tempdir().unwrap();
    let a = train_with_data(
        cfg.clone(),
        data(),
        full.path(),
        Device::Cpu,
        &mut NoopObserver,
    )
    .unwrap();

    // Crash at iteration 17: the periodic checkpoint of iteration 14 (checkpoint_every = 7,
    // mid-epoch: 12 iterations per epoch) is the latest on disk.
    let killed = tempfile::tempdir().unwrap();
    let crash = catch_unwind(AssertUnwindSafe(|| {
        train_with_data(
            cfg.clone(),
            data(),
            killed.path(),
            Device::Cpu,
            &mut Killer(17),
        )
    }));
    assert!(crash.is_err(), "the observer panics");
    assert!(!killed.path().join(files::SUMMARY).exists());
    // A crash during a checkpoint write leaves a partial temporary file behind.
    std::fs::write(
        killed.path().join(".tmp-last.ckpt.4242"),
        b"JEMCKPT1 partial",
    )
    .unwrap();
    let resumed_from = jem_train::checkpoint::read_checkpoint(&killed.path().join(files::LAST))
        .unwrap()
        .meta["state"]["iteration"]
        .as_u64()
        .unwrap();
    assert_eq!(resumed_from, 14);

    let b = resume_with_data(killed.path(), data(), Device::Cpu, &mut NoopObserver).unwrap();
    assert!(!killed.path().join(".tmp-last.ckpt.4242").exists());
    assert_eq!(a.iterations, b.iterations);
    assert_eq!(a.final_test_acc, b.final_test_acc);
    assert_eq!(a.final_valid_acc, b.final_valid_acc);
    assert_eq!(a.best_valid_acc, b.best_valid_acc);
    let ta = checkpoint_tensors(&full.path().join(files::LAST));
    let tb = checkpoint_tensors(&killed.path().join(files::LAST));
    assert_eq!(ta.len(), tb.len());
    assert!(ta.iter().any(|(n, _, _)| n.starts_with("buffer.")));
    assert!(ta.iter().any(|(n, _, _)| n.starts_with("optim.second.")));
    for ((na, sa, da), (nb, sb, db)) in ta.iter().zip(&tb) {
        assert_eq!((na, sa), (nb, sb));
        assert!(da == db, "tensor `{na}` differs after resume");
    }
    let ma = metrics_without_timing(&full.path().join(files::METRICS));
    let mb = metrics_without_timing(&killed.path().join(files::METRICS));
    assert_eq!(ma.len(), 6 + 2, "6 diagnostics lines and 2 evaluations");
    assert_eq!(ma, mb);

    // Resuming a finished run changes nothing.
    let c = resume_with_data(killed.path(), data(), Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(c.iterations, b.iterations);
    assert_eq!(c.final_test_acc, b.final_test_acc);
    assert_eq!(
        metrics_without_timing(&killed.path().join(files::METRICS)),
        mb
    );
}

#[test]
fn corrupted_checkpoint_is_reported_with_its_path() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(Mode::Baseline);
    cfg.train.epochs = 1;
    cfg.train.max_iterations = Some(8);
    let s = train_with_data(cfg, data(), dir.path(), Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(s.stop_reason, StopReason::MaxIterations);
    let path = dir.path().join(files::LAST);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] = bytes[at].wrapping_add(1);
    std::fs::write(&path, &bytes).unwrap();
    let e = resume_with_data(dir.path(), data(), Device::Cpu, &mut NoopObserver).unwrap_err();
    assert!(matches!(e, TrainError::Checkpoint { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("checksum"),
        "{msg}"
    );

    // Starting a new run over an existing one is refused.
    let e = train_with_data(
        tiny_config(Mode::Baseline),
        data(),
        dir.path(),
        Device::Cpu,
        &mut NoopObserver,
    )
    .unwrap_err();
    assert!(e.to_string().contains("resume"), "{e}");
}

fn recovery_lines(dir: &std::path::Path) -> (Vec<jem_train::RecoveryEvent>, usize) {
    let lines = read_metrics(&dir.join(files::METRICS)).unwrap();
    let gave_up = lines
        .iter()
        .filter(|l| matches!(l, MetricsLine::GaveUp(_)))
        .count();
    let events = lines
        .into_iter()
        .filter_map(|l| match l {
            MetricsLine::Recovery(e) => Some(e),
            _ => None,
        })
        .collect();
    (events, gave_up)
}

#[test]
fn recovery_rolls_back_a_divergent_run_which_then_finishes() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(Mode::Jem);
    cfg.train.epochs = 2;
    // SGD with a learning rate far too large: energies explode within a few iterations.
    cfg.train.optimizer = OptimizerKind::Sgd;
    cfg.train.momentum = 0.9;
    cfg.train.lr = 20.0;
    cfg.train.recovery.max_energy_gap = Some(50.0);
    cfg.train.recovery.remedies = vec![Remedy::LowerLr];
    cfg.train.recovery.lr_factor = 0.005;
    cfg.train.recovery.max_recoveries = 4;
    let s = train_with_data(cfg, data(), dir.path(), Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(s.stop_reason, StopReason::Completed);
    assert_eq!(s.iterations, 24);
    assert!(s.recoveries >= 1, "{s:?}");
    let (events, gave_up) = recovery_lines(dir.path());
    assert_eq!(events.len(), s.recoveries);
    assert_eq!(gave_up, 0);
    let e = &events[0];
    assert_eq!(e.remedy, Remedy::LowerLr);
    assert!(e.rolled_back_to <= e.iteration, "{e:?}");
    // Snapshots are taken every 5 iterations, at checkpoints (7) and epoch ends (12).
    assert!(
        [5, 7, 12].iter().any(|k| e.rolled_back_to % k == 0),
        "{e:?}"
    );
    assert!(e.lr_scale <= 0.005);
    let last = train_lines(dir.path()).pop().unwrap();
    assert!(last.loss.is_finite() && last.lr < 0.1, "{last:?}");
    // Training continued after the rollback (chance level is 0.25).
    assert!(s.final_test_acc.unwrap() > 0.35, "{s:?}");
}

#[test]
fn recovery_gives_up_with_a_report_when_nothing_helps() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(Mode::Jem);
    // An impossible bound: every iteration "diverges".
    cfg.train.recovery.max_energy_gap = Some(1e-12);
    cfg.train.recovery.max_recoveries = 3;
    let e = train_with_data(cfg, data(), dir.path(), Device::Cpu, &mut NoopObserver).unwrap_err();
    let TrainError::Diverged(report) = &e else {
        panic!("expected Diverged, got {e:?}");
    };
    assert_eq!(report.events.len(), 3);
    assert_eq!(report.iteration, 0);
    let remedies: Vec<Remedy> = report.events.iter().map(|e| e.remedy).collect();
    assert_eq!(
        remedies,
        vec![Remedy::Reseed, Remedy::LowerLr, Remedy::MoreSteps]
    );
    assert_eq!(report.events[2].sgld_steps, 10);
    let msg = e.to_string();
    for needle in [
        "energy gap",
        "iteration 0",
        "reseed",
        "lower_lr",
        "more_steps",
    ] {
        assert!(msg.contains(needle), "`{needle}` missing from: {msg}");
    }
    let (events, gave_up) = recovery_lines(dir.path());
    assert_eq!((events.len(), gave_up), (3, 1));
}

#[test]
fn factored_and_semi_supervised_modes_run() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(Mode::Factored);
    cfg.train.epochs = 1;
    cfg.train.sample_every = 12;
    let s = train_with_data(cfg, data(), dir.path(), Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(s.iterations, 12);
    let resolved = std::fs::read_to_string(dir.path().join(files::CONFIG)).unwrap();
    assert!(resolved.contains("class_conditional = true"), "{resolved}");
    let lines = train_lines(dir.path());
    assert!(lines
        .iter()
        .all(|d| d.px_term.is_finite() && d.logpx_sample.is_some()));
    assert!(dir.path().join("samples/classes_00000012.png").exists());

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config(Mode::Jem);
    cfg.data.labels_per_class = Some(3);
    cfg.train.epochs = 1;
    let s = train_with_data(cfg, data(), dir.path(), Device::Cpu, &mut NoopObserver).unwrap();
    assert_eq!(s.iterations, 12);
    // Labelled batches hold the 12 labelled images only.
    let lines = train_lines(dir.path());
    assert!(lines.iter().all(|d| d.loss.is_finite()));
}

#[test]
fn observer_sees_progress_and_can_stop_the_run() {
    #[derive(Default)]
    struct Watch {
        total: u64,
        iterations: u64,
        diagnostics: usize,
        epochs: usize,
    }
    impl TrainObserver for Watch {
        fn on_start(&mut self, info: &jem_train::RunInfo) {
            self.total = info.total_iterations;
        }
        fn on_iteration(&mut self, iteration: u64) {
            self.iterations = iteration;
        }
        fn on_diagnostics(&mut self, _d: &Diagnostics) {
            self.diagnostics += 1;
        }
        fn on_epoch(&mut self, _m: &jem_train::EpochMetrics) {
            self.epochs += 1;
        }
        fn should_stop(&mut self) -> bool {
            self.iterations >= 14
        }
    }
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let mut w = Watch::default();
    let s = train_with_data(
        tiny_config(Mode::Baseline),
        data(),
        dir.path(),
        Device::Cpu,
        &mut w,
    )
    .unwrap();
    assert_eq!(s.stop_reason, StopReason::Stopped);
    assert_eq!((w.total, w.iterations, w.diagnostics), (36, 14, 3));
    assert_eq!(w.epochs, 2, "one epoch end and the final evaluation");
}
