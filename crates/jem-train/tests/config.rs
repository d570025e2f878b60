//! Run-config parsing, overrides, validation and the shipped configs.

use std::path::PathBuf;

use jem_train::{Mode, OptimizerKind, Remedy, RunConfig, TrainError};

fn config_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name)
}

#[test]
fn shipped_configs_parse_and_pass_check() {
    let paper = RunConfig::from_file(&config_path("paper.toml"), &[] as &[&str]).unwrap();
    paper.check().unwrap();
    paper.check_data_shape([3, 32, 32], 10).unwrap();
    assert_eq!(paper.data.dataset, jem_data::DatasetKind::Cifar10);
    assert_eq!((paper.model.depth, paper.model.widen_factor), (28, 10));
    assert_eq!(paper.train.optimizer, OptimizerKind::Adam);
    assert_eq!(paper.train.lr, 1e-4);
    assert_eq!(paper.data.batch_size, 64);
    assert_eq!(paper.train.epochs, 150);
    assert_eq!(paper.train.decay_epochs, vec![50, 100]);
    assert_eq!(paper.train.decay_rate, 0.3);
    assert_eq!(paper.sampler.sgld.steps, 20);
    assert_eq!(paper.sampler.sgld.step_size, 1.0);
    assert_eq!(paper.sampler.sgld.noise, 0.01);
    assert_eq!(paper.sampler.buffer.size, 10_000);
    assert_eq!(paper.sampler.buffer.reinit_prob, 0.05);
    assert_eq!(paper.data.noise_sigma, 0.03);
    assert_eq!(paper.data.n_valid, 5000);
    assert_eq!(paper.train.warmup_iters, 1000);
    assert_eq!(paper.train.mode, Mode::Jem);

    let cpu = RunConfig::from_file(&config_path("cpu.toml"), &[] as &[&str]).unwrap();
    cpu.check().unwrap();
    cpu.check_data_shape([1, 28, 28], 10).unwrap();
    assert_eq!(cpu.data.dataset, jem_data::DatasetKind::FashionMnist);
    assert!(cpu.model.depth <= 16);
    assert!(cpu.train.max_minutes.is_some());
    assert_eq!(cpu.sampler.sgld.clamp, Some((-1.0, 1.0)));
    // The generating recipe (README, "The generative half"): class-conditional Gaussian starts,
    // one buffer slice per class, a p(x) weight of 0.1, bf16 SGLD where the CPU has native
    // bfloat16 (fp32 elsewhere), a schedule in iterations.
    assert_eq!(cpu.sampler.buffer.init, jem_sampler::InitKind::Gaussian);
    assert!(cpu.sampler.buffer.class_conditional);
    assert_eq!(cpu.train.sgld_precision, jem_model::Precision::Auto);
    assert_eq!(cpu.train.px_weight, 0.1);
    assert!(cpu.train.max_iterations.is_some());
    assert!(cpu.train.decay_epochs.is_empty());

    let uniform = RunConfig::from_file(&config_path("cpu-uniform.toml"), &[] as &[&str]).unwrap();
    uniform.check().unwrap();
    assert_eq!(uniform.sampler.buffer.init, jem_sampler::InitKind::Uniform);
    assert_eq!(uniform.train.max_iterations, cpu.train.max_iterations);
}

#[test]
fn overrides_set_nested_keys_with_toml_values_or_strings() {
    let base = "[train]\nlr = 0.001\n";
    let cfg = RunConfig::from_toml_with_overrides(
        base,
        &[
            "train.optimizer=sgd",
            "train.lr=0.1",
            "train.nesterov=true",
            "train.decay_epochs=[3, 7]",
            "train.grad_clip=5",
            "sampler.sgld.steps=40",
            "sampler.sgld.clamp=[-1.0, 1.0]",
            "train.recovery.remedies=[\"lower_lr\"]",
            "model.depth=16",
            "data.dataset=fashion-mnist",
            "train.mode = factored",
        ],
    )
    .unwrap();
    assert_eq!(cfg.train.optimizer, OptimizerKind::Sgd);
    assert_eq!(cfg.train.lr, 0.1);
    assert!(cfg.train.nesterov);
    assert_eq!(cfg.train.decay_epochs, vec![3, 7]);
    assert_eq!(cfg.train.grad_clip, Some(5.0));
    assert_eq!(cfg.sampler.sgld.steps, 40);
    assert_eq!(cfg.sampler.sgld.clamp, Some((-1.0, 1.0)));
    assert_eq!(cfg.train.recovery.remedies, vec![Remedy::LowerLr]);
    assert_eq!(cfg.model.depth, 16);
    assert_eq!(cfg.train.mode, Mode::Factored);
    cfg.check().unwrap();

    let mut c = RunConfig::default();
    c.apply_override("train.max_minutes=2.5").unwrap();
    c.apply_override("train.energy_l2=0.1").unwrap();
    assert_eq!((c.train.max_minutes, c.train.energy_l2), (Some(2.5), 0.1));
    // The TOML form round-trips.
    let text = c.to_toml_string().unwrap();
    assert_eq!(RunConfig::from_toml_str(&text).unwrap(), c);
}

#[test]
fn unknown_keys_and_sections_are_rejected_by_name() {
    let e = RunConfig::from_toml_str("[train]\nlrr = 0.1\n").unwrap_err();
    assert!(e.to_string().contains("lrr"), "{e}");
    let e = RunConfig::from_toml_str("[optim]\nlr = 0.1\n").unwrap_err();
    assert!(e.to_string().contains("optim"), "{e}");
    let e = RunConfig::from_toml_str("[sampler.sgld]\nstep = 3\n").unwrap_err();
    assert!(e.to_string().contains("step"), "{e}");

    let mut c = RunConfig::default();
    let e = c.apply_override("train.lrr=0.1").unwrap_err();
    assert!(matches!(e, TrainError::Override { .. }), "{e:?}");
    assert!(e.to_string().contains("lrr"), "{e}");
    let e = c.apply_override("optim.lr=0.1").unwrap_err();
    assert!(e.to_string().contains("unknown section `optim`"), "{e}");
    let e = c.apply_override("train.lr").unwrap_err();
    assert!(e.to_string().contains("section.key=value"), "{e}");
    let e = c.apply_override("train.lr.x=1").unwrap_err();
    assert!(e.to_string().contains("`train.lr` is not a table"), "{e}");
    let e = c.apply_override("train.optimizer=rmsprop").unwrap_err();
    assert!(e.to_string().contains("rmsprop"), "{e}");
    let e = RunConfig::from_toml_with_overrides("", &["model.widht=2"]).unwrap_err();
    assert!(e.to_string().contains("widht"), "{e}");
    assert_eq!(
        c,
        RunConfig::default(),
        "failed overrides leave the config unchanged"
    );
}

#[test]
fn out_of_range_values_name_key_value_and_range() {
    let cases: &[(&str, &[&str])] = &[
        ("train.lr=0", &["train.lr", "0", "(0, 100]"]),
        ("train.lr=-1e-3", &["train.lr", "-0.001"]),
        ("train.beta2=1.0", &["train.beta2", "1", "[0, 1)"]),
        (
            "train.decay_rate=1.5",
            &["train.decay_rate", "1.5", "(0, 1]"],
        ),
        (
            "train.decay_epochs=[100, 50]",
            &["train.decay_epochs", "[100, 50]", "increasing"],
        ),
        (
            "train.decay_iterations=[0, 5]",
            &["train.decay_iterations", "[0, 5]", "increasing"],
        ),
        ("train.epochs=0", &["train.epochs", "0", "1..="]),
        ("train.grad_clip=0", &["train.grad_clip", "0", "> 0"]),
        ("train.max_minutes=-2", &["train.max_minutes", "-2"]),
        (
            "train.recovery.lr_factor=2",
            &["train.recovery.lr_factor", "2", "(0, 1)"],
        ),
        (
            "train.recovery.max_sgld_steps=10",
            &["max_sgld_steps", "10", ">= sampler.sgld.steps = 20"],
        ),
        ("data.batch_size=0", &["data", "batch_size", "0", "1..="]),
        ("model.depth=11", &["model", "depth", "11", "6n + 4"]),
        (
            "sampler.sgld.step_size=-1",
            &["sampler.sgld", "step_size", "-1", "> 0"],
        ),
        (
            "sampler.buffer.reinit_prob=1.5",
            &["sampler.buffer", "reinit_prob", "1.5", "[0, 1]"],
        ),
        (
            "sampler.buffer.size=10001",
            &["sampler.buffer.size", "10001", "multiple"],
        ),
    ];
    for (spec, needles) in cases {
        let mut c = RunConfig::default();
        if spec.starts_with("sampler.buffer.size") {
            c.train.mode = Mode::Factored;
        }
        c.apply_override(spec).unwrap();
        let msg = c.check().unwrap_err().to_string();
        for n in *needles {
            assert!(msg.contains(n), "{spec}: `{n}` missing from: {msg}");
        }
    }
    let mut c = RunConfig::default();
    c.model.in_channels = 1;
    let msg = c.check_data_shape([3, 32, 32], 10).unwrap_err().to_string();
    assert!(
        msg.contains("model.in_channels") && msg.contains("= 1"),
        "{msg}"
    );
}

#[test]
fn lr_schedule_is_warmup_times_staircase() {
    let mut c = RunConfig::default().train;
    c.lr = 1.0;
    c.warmup_iters = 4;
    c.decay_epochs = vec![2, 5];
    c.decay_rate = 0.5;
    assert_eq!(c.lr_at(0, 0), 0.25);
    assert_eq!(c.lr_at(3, 0), 1.0);
    assert_eq!(c.lr_at(10, 1), 1.0);
    assert_eq!(c.lr_at(10, 2), 0.5);
    assert_eq!(c.lr_at(1, 6), 0.125);
    // Iteration milestones stack on the epoch ones.
    c.decay_iterations = vec![20, 30];
    assert_eq!(c.lr_at(19, 1), 1.0);
    assert_eq!(c.lr_at(20, 1), 0.5);
    assert_eq!(c.lr_at(30, 2), 0.125);
}

#[test]
fn a_decay_beyond_the_epochs_is_rejected_with_the_epochs_that_reach_it() {
    // The cpu preset's 3 epochs of 1718 iterations with a 7600-iteration schedule: the run
    // would stop at 5154 and never decay at 7060.
    let mut c = RunConfig::default().train;
    c.epochs = 3;
    c.max_iterations = Some(7600);
    c.decay_epochs = vec![];
    c.decay_iterations = vec![7060];
    c.check().unwrap();
    let msg = match c.check_schedule(1718) {
        Err(TrainError::InvalidConfig(e)) => e.to_string(),
        other => panic!("expected a config error, got {other:?}"),
    };
    for part in [
        "train.decay_iterations",
        "[7060]",
        "5154",
        "train.epochs = 5",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    c.epochs = 5;
    c.check_schedule(1718).unwrap();
    // Without max_iterations the epochs alone bound the run.
    c.max_iterations = None;
    c.decay_iterations = vec![8590];
    assert!(c.check_schedule(1718).is_err());
    c.decay_iterations = vec![8589];
    c.check_schedule(1718).unwrap();
}
