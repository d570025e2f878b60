use crate::reproduce::claims::Verdict;
use crate::reproduce::models::ModelId;
use crate::reproduce::preset;
use crate::reproduce::targets::{key, ood};
use crate::reproduce::testkit::{self, Fake};
use jem_report::{files, Score};

const CPU_SETS: [&str; 4] = ["mnist-5k", "uniform", "constant", "interp"];

/// JEM and baseline evaluations where JEM's log p(x) AUROC on uniform is `px_uniform`.
fn fake(seeds: &[u64], px_uniform: &[f64], jem_py: f64, base_py: f64) -> Fake {
    let mut f = Fake::new(preset::cpu(), seeds);
    for (i, &seed) in seeds.iter().enumerate() {
        f.run(ModelId::Jem, seed, 0.85 + 0.02 * i as f64);
        f.run(ModelId::Baseline, seed, 0.89 + 0.02 * i as f64);
        let u = px_uniform[i];
        f.job(
            &key("eval", ModelId::Jem, seed),
            files::OOD,
            &testkit::ood(&CPU_SETS, |s, o| match (s, o) {
                (Score::LogPx, "uniform") => u,
                (Score::LogPx, _) => 0.7,
                (Score::MaxPy, _) => jem_py,
                (Score::GradNorm, _) => 0.25,
            }),
        );
        f.job(
            &key("eval", ModelId::Baseline, seed),
            files::OOD,
            &testkit::ood(&CPU_SETS, |s, _| match s {
                Score::MaxPy => base_py,
                _ => 0.5,
            }),
        );
        for score in ["px", "py", "pxgrad"] {
            f.png(
                &key("eval", ModelId::Jem, seed),
                &files::histogram_png(score),
            );
        }
    }
    f
}

#[test]
fn table3_aggregates_seeds_into_the_right_cells() {
    let f = fake(&[1, 2], &[0.90, 1.00], 0.8, 0.6);
    let (md, json) = ood::table3_markdown(&f.inputs()).unwrap();
    // Columns: mnist-5k, uniform, constant, interp.
    assert!(
        md.contains(
            "| jem | log p(x) | 0.700 ± 0.000 | 0.950 ± 0.071 | 0.700 ± 0.000 | 0.700 ± 0.000 |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| baseline | max p(y\\|x) | 0.600 ± 0.000 |"),
        "{md}"
    );
    // Accuracies 85% and 87%: mean 86.00 ± 1.41.
    assert!(md.contains("| jem | mean | 86.00 ± 1.41% |"), "{md}");
    assert!(md.contains("over 2 seeds (1, 2)"), "{md}");
    assert_eq!(json["seeds"], serde_json::json!([1, 2]));
    let px_uniform = &json["rows"][0]["auroc"][1];
    assert!((px_uniform["mean"].as_f64().unwrap() - 0.95).abs() < 1e-12);
    assert_eq!(
        json["rows"][0]["auroc"][1]["per_seed"],
        serde_json::json!([0.9, 1.0])
    );
}

#[test]
fn single_seed_table_has_no_spread_and_keeps_the_legacy_title() {
    let f = fake(&[1], &[0.9], 0.8, 0.6);
    let (md, _) = ood::table3_markdown(&f.inputs()).unwrap();
    assert!(
        md.starts_with("# Table 3 (OOD detection, AUROC), `cpu` preset"),
        "{md}"
    );
    assert!(md.contains("| jem | log p(x) | 0.700 | 0.900 |"), "{md}");
    assert!(!md.contains("| mean |"), "{md}");
}

#[test]
fn table3_claims_follow_the_numbers() {
    // JEM's max p(y|x) 0.8 >= baseline's 0.6; approx. mass 0.25 < log p(x).
    let a = fake(&[1], &[0.9], 0.8, 0.6).assemble(&ood::TABLE3);
    assert_eq!(a.claims[0].verdict, Verdict::Supported, "{:?}", a.claims[0]);
    assert_eq!(a.claims[1].verdict, Verdict::Supported, "{:?}", a.claims[1]);
    assert!(
        a.claims[1].evidence.contains("JEM 0.800 ≥ baseline 0.600"),
        "{}",
        a.claims[1].evidence
    );
    assert_eq!(a.claims[2].verdict, Verdict::NotSupported);
    // The other way round.
    let a = fake(&[1], &[0.4], 0.6, 0.8).assemble(&ood::TABLE3);
    assert_eq!(a.claims[0].verdict, Verdict::NotSupported);
    assert!(
        a.claims[0].evidence.contains("uniform 0.400"),
        "{}",
        a.claims[0].evidence
    );
    assert_eq!(a.claims[1].verdict, Verdict::NotSupported);
}

#[test]
fn a_missing_score_is_an_error_not_a_nan() {
    let mut f = fake(&[1], &[0.9], 0.8, 0.6);
    // The baseline's evaluation has no records at all.
    f.job(
        &key("eval", ModelId::Baseline, 1),
        files::OOD,
        &jem_report::OodReport(vec![]),
    );
    let err = ood::table3_markdown(&f.inputs()).unwrap_err().to_string();
    assert!(
        err.contains("no AUROC for score px in the baseline evaluation"),
        "{err}"
    );
    // A renamed field names the file.
    let dir = f.job_dir(&key("eval", ModelId::Baseline, 1));
    std::fs::write(dir.join(files::OOD), r#"[{"score": "px"}]"#).unwrap();
    let err = format!("{:#}", ood::table3_markdown(&f.inputs()).unwrap_err());
    assert!(
        err.contains("ood.json") && err.contains("missing field"),
        "{err}"
    );
}

#[test]
fn table2_copies_jems_histograms_and_judges_each_set() {
    let f = fake(&[1], &[0.9], 0.8, 0.6);
    let a = f.assemble(&ood::TABLE2);
    assert_eq!(a.images.len(), 3);
    assert!(a.images.iter().all(|i| i.src.is_file()));
    assert_eq!(a.images[0].name, "jem_hist_px.png");
    // Per set: log p(x) above chance (0.7, 0.9 > 0.5) and approx. mass (0.25) not better.
    assert_eq!(a.claims.len(), 2 * CPU_SETS.len());
    assert!(a
        .claims
        .iter()
        .step_by(2)
        .all(|c| c.verdict == Verdict::Supported));
    assert!(a
        .claims
        .iter()
        .skip(1)
        .step_by(2)
        .all(|c| c.verdict == Verdict::NotSupported));
    assert!(a.body.contains("| uniform | 0.900 | 0.250 |"), "{}", a.body);
}

#[test]
fn table7_claims_read_uniform_and_constant() {
    let a = fake(&[1], &[0.95], 0.3, 0.6).assemble(&ood::TABLE7);
    // Uniform log p(x) 0.95 > 0.9; constant 0.7 > 0.5; JEM py 0.3 < baseline 0.6;
    // approx. mass 0.25 < log p(x) 0.7 on constant.
    let v: Vec<Verdict> = a.claims.iter().map(|c| c.verdict).collect();
    assert_eq!(
        v,
        [
            Verdict::Supported,
            Verdict::Supported,
            Verdict::Supported,
            Verdict::NotSupported
        ]
    );
    assert!(
        a.body
            .contains("| JEM | log p(x) | 0.700 | 0.950 | 0.700 | 0.700 |"),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("| JEM (paper) | px | 0.67 | 1.00 | 0.51 |"),
        "{}",
        a.body
    );
}
