//! Fake run directories for the assembly tests: summaries and `jem` reports written by the test.

use super::models::ModelId;
use super::preset::Preset;
use super::targets::{Inputs, TargetDef};
use jem_report::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A temporary tree of fake runs and job outputs.
pub struct Fake {
    pub dir: tempfile::TempDir,
    pub preset: Preset,
    pub seeds: Vec<u64>,
    runs: BTreeMap<(ModelId, u64), PathBuf>,
    jobs: BTreeMap<String, PathBuf>,
}

pub fn summary(id: ModelId, acc: f64) -> TrainSummary {
    TrainSummary {
        run_dir: PathBuf::from(id.name()),
        mode: if id.name().starts_with("baseline") {
            Mode::Baseline
        } else {
            Mode::Jem
        },
        iterations: 100,
        epochs_completed: 1,
        final_valid_acc: Some(acc),
        final_test_acc: Some(acc),
        best_valid_acc: Some(acc),
        best_test_acc: Some(acc),
        best_epoch: Some(1),
        recoveries: 0,
        wall_time_s: 60.0,
        stop_reason: StopReason::Completed,
        planned_iterations: 100,
        model_checkpoint: "best.ckpt".into(),
        complete: true,
        sgld_precision: Some("fp32".into()),
        train_precision: Some("fp32".into()),
    }
}

impl Fake {
    pub fn new(preset: Preset, seeds: &[u64]) -> Fake {
        Fake {
            dir: tempfile::tempdir().unwrap(),
            preset,
            seeds: seeds.to_vec(),
            runs: BTreeMap::new(),
            jobs: BTreeMap::new(),
        }
    }

    /// A finished run of `id` at `seed` with test accuracy `acc`.
    pub fn run(&mut self, id: ModelId, seed: u64, acc: f64) -> &mut Self {
        let dir = self
            .dir
            .path()
            .join("runs")
            .join(id.name())
            .join(format!("seed{seed}"));
        std::fs::create_dir_all(&dir).unwrap();
        write_json(&dir.join(files::TRAIN_SUMMARY), &summary(id, acc)).unwrap();
        self.runs.insert((id, seed), dir);
        self
    }

    /// The output directory of job `key` (created).
    pub fn job_dir(&mut self, key: &str) -> PathBuf {
        let dir = self.dir.path().join("jobs").join(key.replace('/', "_"));
        std::fs::create_dir_all(&dir).unwrap();
        self.jobs.insert(key.to_string(), dir.clone());
        dir
    }

    /// Writes `report` as `file` of job `key`.
    pub fn job<T: serde::Serialize>(&mut self, key: &str, file: &str, report: &T) -> PathBuf {
        let dir = self.job_dir(key);
        write_json(&dir.join(file), report).unwrap();
        dir
    }

    /// Writes an (empty) PNG file into job `key`'s directory.
    pub fn png(&mut self, key: &str, file: &str) {
        let dir = self.job_dir(key);
        std::fs::write(dir.join(file), b"\x89PNG fake").unwrap();
    }

    pub fn inputs(&self) -> Inputs<'_> {
        Inputs::new(
            &self.preset,
            self.seeds.clone(),
            self.runs.clone(),
            self.jobs.clone(),
        )
    }

    pub fn assemble(&self, t: &TargetDef) -> super::targets::Assembled {
        (t.assemble)(&self.inputs()).unwrap()
    }
}

/// An OOD report with `auroc(score, ood)` for every score and set.
pub fn ood(sets: &[&str], auroc: impl Fn(Score, &str) -> f64) -> OodReport {
    let mut v = Vec::new();
    for score in Score::ALL {
        for o in sets {
            v.push(OodRecord {
                score,
                in_set: "fashion-mnist".into(),
                ood: (*o).to_string(),
                refine_steps: 0,
                metrics: OodMetrics {
                    auroc: auroc(score, o),
                    aupr: 0.5,
                    fpr_at_95_tpr: 0.5,
                    num_in: 10,
                    num_out: 10,
                },
            });
        }
    }
    OodReport(v)
}

/// A calibration report with one filled bin of mean confidence `conf`.
pub fn calibration(ece: f64, accuracy: f64, conf: f64) -> CalibrationReport {
    CalibrationReport {
        checkpoint: "c".into(),
        data: "fashion-mnist".into(),
        ece,
        classification: ClassificationMetrics {
            accuracy,
            nll: 0.5,
            num_samples: 100,
        },
        reliability: ReliabilityDiagram {
            num_samples: 100,
            ece,
            bins: vec![
                ReliabilityBin {
                    lo: 0.0,
                    hi: 0.5,
                    count: 0,
                    accuracy: None,
                    mean_confidence: None,
                },
                ReliabilityBin {
                    lo: 0.5,
                    hi: 1.0,
                    count: 100,
                    accuracy: Some(accuracy),
                    mean_confidence: Some(conf),
                },
            ],
        },
    }
}

/// A generative report with IS `is`, FID `fid`, from `extractor`.
pub fn generative(is: f64, fid: f64, extractor: &str) -> GenerativeReport {
    GenerativeReport {
        metrics: GenerativeMetrics {
            is_mean: Some(is),
            is_std: Some(0.1),
            is_splits: 10,
            fid,
            extractor: extractor.into(),
            n_generated: 100,
            n_reference: 1000,
            feature_dim: 64,
            num_classes: 10,
        },
        checkpoint: "c".into(),
        classifier: None,
        source: jem_report::SampleSource::Buffer,
        buffers: vec!["c".into()],
        conditional: false,
        steps: 0,
        seed: 0,
        n_sampled: 1000,
        top_percentile: Some(10.0),
        kept_indices: vec![],
        reference_data: "fashion-mnist".into(),
        reference_split: jem_report::ReferenceSplit::Train,
        samples_png: "s.png".into(),
        selected_png: None,
    }
}

/// One attacked classifier whose robust accuracy is `accs` at the budgets `eps`.
pub fn attacked(label: &str, refine_steps: usize, eps: &[f64], accs: &[f64]) -> AttackModel {
    AttackModel {
        model: label.into(),
        refine_steps,
        clean_accuracy: 0.9,
        robust_accuracy: eps
            .iter()
            .zip(accs)
            .map(|(&e, &a)| RobustPoint {
                eps_pixels: e,
                eps: e / 127.5,
                accuracy: a,
            })
            .collect(),
        distances: vec![Some(0.1)],
        curve: RobustnessCurve {
            norm: Norm::Linf,
            num_inputs: 1,
            points: vec![],
        },
        details: AttackDetails::default(),
    }
}

/// An attack report of `models`.
pub fn attack(name: &str, models: Vec<AttackModel>) -> AttackReport {
    AttackReport {
        attack: name.into(),
        norm: if name.contains("l2") || name == "boundary" || name == "pointwise" {
            Norm::L2
        } else {
            Norm::Linf
        },
        seed: 0,
        test_indices: vec![1, 2, 3],
        eot_chains: 5,
        pgd: PgdSettings {
            iterations: 10,
            restarts: 2,
            bisection_steps: 20,
            initial_eps_fraction: Some(0.3),
        },
        refinement: jem_report::RefinementSettings {
            step_size: 1.0,
            noise: 0.01,
            clamp: None,
            eot_noise: 0.03,
        },
        models,
    }
}
