use jem_sampler::{BufferConfig, SamplerError, SgldConfig, SgldMode, StepDecay};

#[test]
fn defaults_are_the_papers_table_4() {
    let sgld = SgldConfig::default();
    assert_eq!(sgld.steps, 20);
    assert_eq!(sgld.step_size, 1.0);
    assert_eq!(sgld.noise, 0.01);
    assert_eq!(sgld.mode, SgldMode::Relaxed);
    assert_eq!(sgld.decay, StepDecay::Constant);
    assert_eq!((sgld.clamp, sgld.grad_clip), (None, None));
    sgld.check().unwrap();

    let buffer = BufferConfig::default();
    assert_eq!(
        (buffer.size, buffer.reinit_prob, buffer.class_conditional),
        (10_000, 0.05, false)
    );
    buffer.check().unwrap();
}

#[test]
fn check_names_the_bad_field() {
    let base = SgldConfig::default();
    let cases: Vec<(SgldConfig, &str, &str)> = vec![
        (
            SgldConfig {
                step_size: 0.0,
                ..base.clone()
            },
            "step_size",
            "0.0",
        ),
        (
            SgldConfig {
                step_size: f64::NAN,
                ..base.clone()
            },
            "step_size",
            "NaN",
        ),
        (
            SgldConfig {
                noise: -0.1,
                ..base.clone()
            },
            "noise",
            "-0.1",
        ),
        (
            SgldConfig {
                clamp: Some((1.0, -1.0)),
                ..base.clone()
            },
            "clamp",
            "(1.0, -1.0)",
        ),
        (
            SgldConfig {
                grad_clip: Some(0.0),
                ..base.clone()
            },
            "grad_clip",
            "0.0",
        ),
        (
            SgldConfig {
                decay: StepDecay::Geometric { rate: 1.5 },
                ..base.clone()
            },
            "decay.rate",
            "1.5",
        ),
        (
            SgldConfig {
                decay: StepDecay::Polynomial {
                    power: 2.0,
                    t0: 1.0,
                },
                ..base.clone()
            },
            "decay.power",
            "2.0",
        ),
        (
            SgldConfig {
                decay: StepDecay::Polynomial {
                    power: 0.55,
                    t0: -1.0,
                },
                ..base.clone()
            },
            "decay.t0",
            "-1.0",
        ),
    ];
    for (cfg, field, value) in cases {
        match cfg.check() {
            Err(err @ SamplerError::InvalidConfig(_)) => {
                let msg = err.to_string();
                assert!(
                    msg.contains(&format!("`sampler.sgld.{field}`")) && msg.contains(value),
                    "{msg}"
                );
                assert!(msg.contains(": must be"), "{msg}");
            }
            other => panic!("{field}: expected InvalidConfig, got {other:?}"),
        }
    }

    let err = BufferConfig {
        size: 0,
        ..BufferConfig::default()
    }
    .check()
    .unwrap_err();
    assert!(err.to_string().contains("`sampler.buffer.size`"), "{err}");
    let err = BufferConfig {
        reinit_prob: -0.01,
        ..BufferConfig::default()
    }
    .check()
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("`sampler.buffer.reinit_prob` = -0.01"),
        "{err}"
    );
}

#[test]
fn toml_overrides_and_round_trips() {
    let cfg: SgldConfig = toml::from_str(
        r#"
        steps = 40
        clamp = [-1.0, 1.0]
        grad_clip = 10.0
        mode = "langevin"
        decay = { kind = "polynomial", power = 0.55, t0 = 100.0 }
        "#,
    )
    .unwrap();
    assert_eq!(cfg.steps, 40);
    assert_eq!(cfg.step_size, 1.0);
    assert_eq!(cfg.clamp, Some((-1.0, 1.0)));
    assert_eq!(cfg.mode, SgldMode::Langevin);
    assert_eq!(
        cfg.decay,
        StepDecay::Polynomial {
            power: 0.55,
            t0: 100.0
        }
    );
    cfg.check().unwrap();
    let back: SgldConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);

    let empty: SgldConfig = toml::from_str("").unwrap();
    assert_eq!(empty, SgldConfig::default());

    let buffer: BufferConfig =
        toml::from_str("reinit_prob = 0.1\nclass_conditional = true").unwrap();
    assert_eq!(
        buffer,
        BufferConfig {
            reinit_prob: 0.1,
            class_conditional: true,
            ..BufferConfig::default()
        }
    );
}

#[test]
fn unknown_toml_keys_are_rejected() {
    for (text, key) in [
        ("step = 40", "step"),
        ("steps = 40\nnoise_std = 0.1", "noise_std"),
        (
            "decay = { kind = \"geometric\", rate = 0.9, t0 = 3.0 }",
            "t0",
        ),
    ] {
        let err = toml::from_str::<SgldConfig>(text).unwrap_err().to_string();
        assert!(
            err.contains("unknown field") && err.contains(key),
            "{text}: {err}"
        );
    }
    let err = toml::from_str::<SgldConfig>("mode = \"mala\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant"), "{err}");
    let err = toml::from_str::<BufferConfig>("buffer_size = 100")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown field") && err.contains("buffer_size"),
        "{err}"
    );
}
