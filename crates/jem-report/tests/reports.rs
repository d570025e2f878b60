//! Every report survives a write/read round trip, parses the JSON the `jem` command wrote before
//! this crate existed (fixtures copied from its code), and a bad file is an error naming the
//! file and the field.

use jem_report::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::path::Path;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(name: &str, report: &T) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    write_json(&path, report).unwrap();
    let back: T = read_json(&path).unwrap();
    assert_eq!(&back, report);
}

fn summary() -> TrainSummary {
    TrainSummary {
        run_dir: "runs/cpu/jem".into(),
        mode: Mode::Jem,
        iterations: 3686,
        epochs_completed: 2,
        final_valid_acc: Some(0.851),
        final_test_acc: Some(0.8512),
        best_valid_acc: Some(0.86),
        best_test_acc: None,
        best_epoch: Some(2),
        recoveries: 0,
        wall_time_s: 906.0,
        stop_reason: StopReason::TimeBudget,
        planned_iterations: 4000,
        model_checkpoint: "best.ckpt".into(),
        complete: false,
        sgld_precision: Some("bf16".into()),
        train_precision: Some("fp32".into()),
    }
}

#[test]
fn train_summary_round_trips_and_reads_the_trainers_json() {
    round_trip(files::TRAIN_SUMMARY, &summary());
    // As jem-train writes it (serde of its own TrainSummary).
    let text = r#"{
      "run_dir": "runs/cpu/seed1/baseline", "mode": "baseline", "iterations": 9000,
      "epochs_completed": 5, "final_valid_acc": 0.89, "final_test_acc": 0.8882,
      "best_valid_acc": 0.891, "best_test_acc": 0.8875, "best_epoch": 5, "recoveries": 0,
      "wall_time_s": 312.5, "stop_reason": "max_iterations"
    }"#;
    let s: TrainSummary = parse_json(text, Path::new("summary.json")).unwrap();
    assert_eq!(s.mode, Mode::Baseline);
    assert_eq!(s.stop_reason, StopReason::MaxIterations);
    assert_eq!(s.reported_test_acc(), Some(0.8875));
    assert!(s.is_finished());
    assert_eq!(s.sgld_precision, None, "summaries before the field existed");
    let stopped = TrainSummary {
        stop_reason: StopReason::Stopped,
        best_test_acc: None,
        ..s
    };
    assert!(!stopped.is_finished());
    assert_eq!(stopped.reported_test_acc(), Some(0.8882));
}

#[test]
fn ood_report_round_trips_and_finds_records() {
    let metrics = OodMetrics {
        auroc: 0.949,
        aupr: 0.93,
        fpr_at_95_tpr: 0.2,
        num_in: 100,
        num_out: 90,
    };
    let report = OodReport(vec![
        OodRecord {
            score: Score::LogPx,
            in_set: "fashion-mnist".into(),
            ood: "mnist-5k".into(),
            refine_steps: 0,
            metrics,
        },
        OodRecord {
            score: Score::GradNorm,
            in_set: "fashion-mnist".into(),
            ood: "uniform".into(),
            refine_steps: 0,
            metrics: OodMetrics {
                auroc: 0.0,
                ..metrics
            },
        },
    ]);
    round_trip(files::OOD, &report);
    assert_eq!(
        report.get(Score::LogPx, "mnist-5k").unwrap().metrics.auroc,
        0.949
    );
    assert_eq!(
        report
            .get(Score::GradNorm, "uniform")
            .unwrap()
            .metrics
            .auroc,
        0.0
    );
    assert!(report.get(Score::MaxPy, "uniform").is_none());
    // The shape `jem eval` wrote with json!: an array of records.
    let text = r#"[{"score": "py", "in": "cifar10", "ood": "svhn", "refine_steps": 0,
        "metrics": {"auroc": 0.93, "aupr": 0.9, "fpr_at_95_tpr": 0.3, "num_in": 10, "num_out": 10}}]"#;
    let r: OodReport = parse_json(text, Path::new("ood.json")).unwrap();
    assert_eq!(r.get(Score::MaxPy, "svhn").unwrap().metrics.auroc, 0.93);
}

#[test]
fn a_renamed_field_is_an_error_naming_file_and_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ood.json");
    // `auroc` renamed to `au_roc` in the second record.
    std::fs::write(
        &path,
        r#"[{"score": "px", "in": "a", "ood": "b", "refine_steps": 0,
             "metrics": {"auroc": 0.5, "aupr": 0.5, "fpr_at_95_tpr": 0.5, "num_in": 1, "num_out": 1}},
            {"score": "px", "in": "a", "ood": "c", "refine_steps": 0,
             "metrics": {"au_roc": 0.5, "aupr": 0.5, "fpr_at_95_tpr": 0.5, "num_in": 1, "num_out": 1}}]"#,
    )
    .unwrap();
    let err = read_json::<OodReport>(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("missing field `auroc`"), "{text}");
    assert!(text.contains("[1].metrics"), "{text}");
    match err {
        ReportError::Parse { field, what, .. } => {
            assert_eq!(field, "[1].metrics");
            assert_eq!(what, "OodReport");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    // A value of the wrong type names its field too.
    std::fs::write(
        &path,
        r#"{"checkpoint": "c", "data": "d", "ece": "high", "classification": {}, "reliability": {}}"#,
    )
    .unwrap();
    let text = read_json::<CalibrationReport>(&path)
        .unwrap_err()
        .to_string();
    assert!(text.contains("`ece`"), "{text}");
    // An unknown score name is an error, not a skipped record.
    std::fs::write(
        &path,
        r#"[{"score": "energy", "in": "a", "ood": "b", "refine_steps": 0, "metrics": {}}]"#,
    )
    .unwrap();
    let text = read_json::<OodReport>(&path).unwrap_err().to_string();
    assert!(
        text.contains("[0].score") && text.contains("energy"),
        "{text}"
    );
    // A missing file names the file.
    let missing = dir.path().join("nope.json");
    let text = read_json::<OodReport>(&missing).unwrap_err().to_string();
    assert!(text.contains("nope.json"), "{text}");
}

#[test]
fn calibration_round_trips() {
    let report = CalibrationReport {
        checkpoint: "runs/b/best.ckpt".into(),
        data: "fashion-mnist".into(),
        ece: 0.0096,
        classification: ClassificationMetrics {
            accuracy: 0.89,
            nll: 0.3,
            num_samples: 10000,
        },
        reliability: ReliabilityDiagram {
            num_samples: 10000,
            ece: 0.0096,
            bins: vec![
                ReliabilityBin {
                    lo: 0.0,
                    hi: 0.05,
                    count: 0,
                    accuracy: None,
                    mean_confidence: None,
                },
                ReliabilityBin {
                    lo: 0.95,
                    hi: 1.0,
                    count: 10000,
                    accuracy: Some(0.89),
                    mean_confidence: Some(0.9),
                },
            ],
        },
    };
    round_trip(files::CALIBRATION, &report);
}

fn generative() -> GenerativeReport {
    GenerativeReport {
        metrics: GenerativeMetrics {
            is_mean: Some(3.2),
            is_std: Some(0.1),
            is_splits: 10,
            fid: 41.5,
            extractor: "classifier-features (not Inception: numbers are not comparable)".into(),
            n_generated: 100,
            n_reference: 10000,
            feature_dim: 64,
            num_classes: 10,
        },
        checkpoint: "runs/jem/last.ckpt".into(),
        classifier: Some("runs/baseline/best.ckpt".into()),
        source: SampleSource::Ensemble,
        buffers: vec![
            "runs/jem/checkpoints/ckpt_00000100.ckpt".into(),
            "runs/jem/checkpoints/ckpt_00000200.ckpt".into(),
        ],
        conditional: false,
        steps: 0,
        seed: 0,
        n_sampled: 1000,
        top_percentile: Some(10.0),
        kept_indices: vec![3, 1, 4],
        reference_data: "fashion-mnist".into(),
        reference_split: ReferenceSplit::Train,
        samples_png: "out/unconditional.png".into(),
        selected_png: Some("out/selected.png".into()),
    }
}

#[test]
fn generative_round_trips_flat_and_knows_inception() {
    let report = generative();
    round_trip(files::GENERATIVE, &report);
    // The metrics are flattened into the top level, as `jem generative` wrote them.
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["fid"], 41.5);
    assert_eq!(value["is_mean"], 3.2);
    // Enums on the wire as xtask and people read them.
    assert_eq!(value["source"], "ensemble");
    assert_eq!(value["reference_split"], "train");
    assert_eq!(ReferenceSplit::Test.name(), "test");
    assert!(!report.metrics.is_inception());
    let inception = GenerativeMetrics {
        extractor: "torchscript:/models/inception.pt".into(),
        ..report.metrics.clone()
    };
    assert!(inception.is_inception());
}

#[test]
fn extremes_sample_info_round_trip() {
    let item = ExtremeItem {
        index: 7,
        score: -1.5,
        label: 3,
    };
    let side = ExtremeSide {
        highest: vec![item],
        lowest: vec![ExtremeItem { index: 2, ..item }],
        highest_png: "x/logpx_highest.png".into(),
        lowest_png: "x/logpx_lowest.png".into(),
    };
    round_trip(
        files::EXTREMES,
        &ExtremesReport {
            checkpoint: "c".into(),
            data: "fashion-mnist test images".into(),
            n_images: 100,
            k: 1,
            logpx: side.clone(),
            maxpy: side,
        },
    );
    round_trip(
        files::SAMPLE,
        &SampleReport {
            checkpoint: "c".into(),
            conditional: true,
            n_samples: 80,
            steps: 20,
            from_noise: false,
            seed: 1,
            npy: "s/conditional.npy".into(),
            png: "s/conditional.png".into(),
            by_logpx_png: Some("s/conditional_by_logpx.png".into()),
        },
    );
    round_trip(
        "info.json",
        &InfoReport {
            jem_version: "0.1.0".into(),
            libtorch_cuda_linked: false,
            cuda_available: false,
            cuda_devices: 0,
            cudnn_available: false,
            cpu_threads: 2,
            device: "Cpu".into(),
        },
    );
}

fn attack_model(label: &str, acc8: f64) -> AttackModel {
    AttackModel {
        model: label.into(),
        refine_steps: 0,
        clean_accuracy: 0.9,
        robust_accuracy: vec![
            RobustPoint {
                eps_pixels: 4.0,
                eps: 4.0 / 127.5,
                accuracy: 0.7,
            },
            RobustPoint {
                eps_pixels: 8.0,
                eps: 8.0 / 127.5,
                accuracy: acc8,
            },
        ],
        distances: vec![Some(0.1), None, Some(0.0)],
        curve: RobustnessCurve {
            norm: Norm::Linf,
            num_inputs: 3,
            points: vec![CurvePoint {
                eps: 0.0,
                eps_pixels: 0.0,
                accuracy: 0.9,
            }],
        },
        details: AttackDetails::default(),
    }
}

#[test]
fn attack_reports_round_trip_and_look_up() {
    let mut pointwise = attack_model("jem JEM-0", 0.5);
    pointwise.details = AttackDetails {
        l0: Some(vec![Some(3), None]),
        median_l0: Some(3),
        ..Default::default()
    };
    let report = AttackReport {
        attack: "pgd-linf".into(),
        norm: Norm::Linf,
        seed: 0,
        test_indices: vec![5, 9, 2],
        eot_chains: 5,
        pgd: PgdSettings {
            iterations: 40,
            restarts: 20,
            bisection_steps: 20,
            initial_eps_fraction: Some(0.3),
        },
        refinement: RefinementSettings {
            step_size: 1.0,
            noise: 0.01,
            clamp: None,
            eot_noise: 0.03,
        },
        models: vec![attack_model("baseline", 0.19), pointwise],
    };
    round_trip(&files::attack("pgd-linf"), &report);
    assert_eq!(
        report.model("baseline").unwrap().accuracy_at_pixels(8.0),
        Some(0.19)
    );
    assert_eq!(
        report.model("baseline").unwrap().accuracy_at_pixels(16.0),
        None
    );
    // `details` of PGD runs is `{}`, as `jem attack` wrote it.
    let value = serde_json::to_value(&report.models[0]).unwrap();
    assert_eq!(value["details"], serde_json::json!({}));
    let distal = DistalReport {
        attack: "distal".into(),
        seed: 0,
        models: vec![DistalModel {
            model: "baseline".into(),
            grid: "distal_baseline.png".into(),
            classes: vec![
                DistalClass {
                    class: 0,
                    probabilities: vec![0.95, 0.5],
                    reached: vec![true, false],
                    steps: vec![10, 1000],
                },
                DistalClass {
                    class: 1,
                    probabilities: vec![0.91, 0.92],
                    reached: vec![true, true],
                    steps: vec![3, 4],
                },
            ],
        }],
    };
    round_trip(&files::attack("distal"), &distal);
    let (reached, p) = distal.models[0].reached_and_mean_p();
    assert!((reached - 0.75).abs() < 1e-12);
    assert!((p - 0.82).abs() < 1e-12);
}

#[test]
fn trailing_garbage_is_an_error() {
    let text = r#"{"attack": "distal", "seed": 0, "models": []} extra"#;
    let err = parse_json::<DistalReport>(text, Path::new("d.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("d.json"), "{err}");
}

fn agreement(n: usize, agreement: f64) -> Agreement {
    Agreement {
        n,
        agreement,
        confidence: 0.8,
        intended_probability: 0.7,
    }
}

#[test]
fn judge_report_round_trips_and_looks_up_sets() {
    let report = JudgeReport {
        checkpoint: "runs/jem/last.ckpt".into(),
        judge: "runs/baseline/best.ckpt".into(),
        extractor: "classifier-features (not Inception)".into(),
        samples_source: "replay buffer".into(),
        conditional_source: "class slices of the replay buffer".into(),
        gaussian_source: "stored in the checkpoint (rank 5)".into(),
        steps: 0,
        seed: 3,
        n: 1000,
        per_class: 100,
        agreement: vec![AgreementRow {
            set: "real test images".into(),
            overall: agreement(20, 0.85),
            per_class: vec![agreement(10, 0.9), agreement(10, 0.8)],
        }],
        fid: vec![
            FidRow {
                set: "samples".into(),
                n: 1000,
                fid: 12.0,
            },
            FidRow {
                set: "Gaussian initialisation".into(),
                n: 1000,
                fid: 30.0,
            },
        ],
        fid_ratio_to_gaussian: 0.4,
        grids: JudgeGrids {
            samples: "j/samples.png".into(),
            per_class: "j/per_class.png".into(),
            per_class_by_logpx: "j/per_class_by_logpx.png".into(),
            gaussian: "j/gaussian.png".into(),
        },
    };
    round_trip(files::JUDGE, &report);
    assert_eq!(report.fid_of("Gaussian initialisation"), Some(30.0));
    assert_eq!(report.fid_of("uniform noise"), None);
    assert_eq!(
        report
            .agreement_of("real test images")
            .unwrap()
            .overall
            .agreement,
        0.85
    );
    assert!(report.agreement_of("samples").is_none());
}

#[test]
fn pgd_settings_of_reports_before_the_foolbox_start_read_as_unknown() {
    let old: PgdSettings =
        serde_json::from_str(r#"{"iterations": 10, "restarts": 2, "bisection_steps": 20}"#)
            .unwrap();
    assert_eq!(old.initial_eps_fraction, None);
    assert_eq!(old.bisection_steps, 20);
}
