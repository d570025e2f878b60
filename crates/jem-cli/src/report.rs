//! The typed reports of `jem-report`, built from the library types.
//!
//! Every conversion destructures its source exhaustively (no `..`), so a field added to or
//! renamed in jem-eval, jem-attack or jem-train is a compile error here until the shared report
//! (which `cargo xtask reproduce` reads) follows.

use jem_report as r;

pub fn ood_metrics(m: &jem_eval::OodMetrics) -> r::OodMetrics {
    let jem_eval::OodMetrics {
        auroc,
        aupr,
        fpr_at_95_tpr,
        num_in,
        num_out,
    } = *m;
    r::OodMetrics {
        auroc,
        aupr,
        fpr_at_95_tpr,
        num_in,
        num_out,
    }
}

pub fn score(s: jem_eval::model_eval::OodScore) -> r::Score {
    use jem_eval::model_eval::OodScore;
    match s {
        OodScore::LogPx => r::Score::LogPx,
        OodScore::MaxPy => r::Score::MaxPy,
        OodScore::GradNorm => r::Score::GradNorm,
    }
}

pub fn classification(m: &jem_eval::ClassificationMetrics) -> r::ClassificationMetrics {
    let jem_eval::ClassificationMetrics {
        accuracy,
        nll,
        num_samples,
    } = *m;
    r::ClassificationMetrics {
        accuracy,
        nll,
        num_samples,
    }
}

pub fn reliability(d: &jem_eval::ReliabilityDiagram) -> r::ReliabilityDiagram {
    let jem_eval::ReliabilityDiagram {
        num_samples,
        ece,
        bins,
    } = d;
    r::ReliabilityDiagram {
        num_samples: *num_samples,
        ece: *ece,
        bins: bins
            .iter()
            .map(|b| {
                let jem_eval::ReliabilityBin {
                    lo,
                    hi,
                    count,
                    accuracy,
                    mean_confidence,
                } = *b;
                r::ReliabilityBin {
                    lo,
                    hi,
                    count,
                    accuracy,
                    mean_confidence,
                }
            })
            .collect(),
    }
}

pub fn generative_metrics(m: &jem_eval::features::GenerativeMetrics) -> r::GenerativeMetrics {
    let jem_eval::features::GenerativeMetrics {
        is_mean,
        is_std,
        is_splits,
        fid,
        extractor,
        n_generated,
        n_reference,
        feature_dim,
        num_classes,
    } = m;
    r::GenerativeMetrics {
        is_mean: *is_mean,
        is_std: *is_std,
        is_splits: *is_splits,
        fid: *fid,
        extractor: extractor.clone(),
        n_generated: *n_generated,
        n_reference: *n_reference,
        feature_dim: *feature_dim,
        num_classes: *num_classes,
    }
}

pub fn norm(n: jem_attack::Norm) -> r::Norm {
    match n {
        jem_attack::Norm::Linf => r::Norm::Linf,
        jem_attack::Norm::L2 => r::Norm::L2,
    }
}

pub fn curve(c: &jem_attack::RobustnessCurve) -> r::RobustnessCurve {
    let jem_attack::RobustnessCurve {
        norm: n,
        num_inputs,
        points,
    } = c;
    r::RobustnessCurve {
        norm: norm(*n),
        num_inputs: *num_inputs,
        points: points
            .iter()
            .map(|p| {
                let jem_attack::CurvePoint {
                    eps,
                    eps_pixels,
                    accuracy,
                } = *p;
                r::CurvePoint {
                    eps,
                    eps_pixels,
                    accuracy,
                }
            })
            .collect(),
    }
}

/// The trainer's summary as the shared report (the trainer writes `summary.json` itself; this
/// conversion keeps the two in step at compile time, and the test below on the wire).
pub fn train_summary(s: &jem_train::TrainSummary) -> r::TrainSummary {
    let jem_train::TrainSummary {
        run_dir,
        mode,
        iterations,
        planned_iterations,
        epochs_completed,
        final_valid_acc,
        final_test_acc,
        best_valid_acc,
        best_test_acc,
        best_epoch,
        model_checkpoint,
        recoveries,
        wall_time_s,
        stop_reason,
        complete,
        sgld_precision,
        train_precision,
    } = s;
    r::TrainSummary {
        run_dir: run_dir.clone(),
        mode: match mode {
            jem_train::Mode::Jem => r::Mode::Jem,
            jem_train::Mode::Baseline => r::Mode::Baseline,
            jem_train::Mode::Factored => r::Mode::Factored,
        },
        iterations: *iterations,
        planned_iterations: *planned_iterations,
        epochs_completed: *epochs_completed,
        final_valid_acc: *final_valid_acc,
        final_test_acc: *final_test_acc,
        best_valid_acc: *best_valid_acc,
        best_test_acc: *best_test_acc,
        best_epoch: *best_epoch,
        model_checkpoint: model_checkpoint.clone(),
        recoveries: *recoveries,
        wall_time_s: *wall_time_s,
        stop_reason: match stop_reason {
            jem_train::StopReason::Completed => r::StopReason::Completed,
            jem_train::StopReason::MaxIterations => r::StopReason::MaxIterations,
            jem_train::StopReason::TimeBudget => r::StopReason::TimeBudget,
            jem_train::StopReason::Stopped => r::StopReason::Stopped,
        },
        complete: *complete,
        sgld_precision: sgld_precision.map(|p| p.name().to_string()),
        train_precision: train_precision.map(|p| p.name().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trainers_summary_json_parses_as_the_shared_report() {
        use jem_model::Precision;
        for (mode, stop, precision) in [
            (
                jem_train::Mode::Jem,
                jem_train::StopReason::TimeBudget,
                Some(Precision::Bf16),
            ),
            (
                jem_train::Mode::Baseline,
                jem_train::StopReason::MaxIterations,
                Some(Precision::Fp32),
            ),
            (
                jem_train::Mode::Factored,
                jem_train::StopReason::Stopped,
                None,
            ),
            (
                jem_train::Mode::Jem,
                jem_train::StopReason::Completed,
                Some(Precision::Fp32),
            ),
        ] {
            let summary = jem_train::TrainSummary {
                run_dir: "runs/x".into(),
                mode,
                iterations: 12,
                planned_iterations: 20,
                epochs_completed: 1,
                final_valid_acc: Some(0.5),
                final_test_acc: Some(0.25),
                best_valid_acc: None,
                best_test_acc: Some(0.75),
                best_epoch: Some(1),
                model_checkpoint: "best.ckpt".into(),
                recoveries: 2,
                wall_time_s: 3.5,
                stop_reason: stop,
                complete: stop.is_complete(),
                sgld_precision: precision,
                train_precision: precision.map(|_| Precision::Fp32),
            };
            // What jem-train writes to summary.json, read as xtask reads it.
            let text = serde_json::to_string_pretty(&summary).unwrap();
            let parsed: r::TrainSummary =
                r::parse_json(&text, std::path::Path::new("summary.json")).unwrap();
            assert_eq!(parsed, train_summary(&summary));
        }
    }

    #[test]
    fn scores_keep_their_names() {
        for s in jem_eval::model_eval::OodScore::ALL {
            assert_eq!(score(s).name(), s.name());
        }
    }
}
