use crate::reproduce::claims::Verdict;
use crate::reproduce::models::ModelId;
use crate::reproduce::preset;
use crate::reproduce::targets::{table1, table5};
use crate::reproduce::testkit::{self, Fake};
use jem_report::files;

const CLASSIFIER: &str = "classifier-features (not Inception: numbers are not comparable)";

/// Table 1's models and the four Table 5 cells of JEM: IS by (top10, ensemble).
fn fake(extractor: &str, jem_is: f64, factored_is: f64) -> Fake {
    let p = preset::cpu();
    let mut f = Fake::new(p.clone(), &[1]);
    f.run(ModelId::Jem, 1, 0.85);
    f.run(ModelId::Baseline, 1, 0.89);
    f.run(ModelId::Factored, 1, 0.30);
    for (top10, ensemble, is) in [
        (true, false, jem_is),
        (true, true, jem_is + 0.05),
        (false, false, jem_is - 1.0),
        (false, true, jem_is - 1.02),
    ] {
        let job = table5::generative_job(&p, ModelId::Jem, 1, top10, ensemble);
        f.job(
            &job.key,
            files::GENERATIVE,
            &testkit::generative(is, 40.0, extractor),
        );
    }
    let job = table5::generative_job(&p, ModelId::Factored, 1, true, false);
    f.job(
        &job.key,
        files::GENERATIVE,
        &testkit::generative(factored_is, 60.0, extractor),
    );
    f
}

#[test]
fn table1_puts_accuracy_is_and_fid_in_their_cells() {
    let a = fake(CLASSIFIER, 3.2, 2.1).assemble(&table1::TARGET);
    assert!(
        a.body
            .contains("| JEM | 85.00% | 3.20 | 40.0 | 92.9 | 8.76 | 38.4 |"),
        "{}",
        a.body
    );
    assert!(
        a.body
            .contains("| JEM p(x\\|y) factored | 30.00% | 2.10 | 60.0 | 30.1 | 6.36 | 61.8 |"),
        "{}",
        a.body
    );
    assert!(
        a.body
            .contains("| baseline (same network, classifier) | 89.00% | - | - | 95.8 |"),
        "{}",
        a.body
    );
    // Classifier features are labelled, and the comparison with published IS is not made.
    assert!(
        a.body.contains("classifier features, not Inception"),
        "{}",
        a.body
    );
    assert!(a.notes.iter().any(|n| n.contains("not Inception")));
    let v: Vec<Verdict> = a.claims.iter().map(|c| c.verdict).collect();
    // JEM > factored accuracy; JEM < baseline; IS 3.2 > 2.1; FID 40 < 60; IGEBM: not measurable.
    assert_eq!(
        v,
        [
            Verdict::Supported,
            Verdict::Supported,
            Verdict::Supported,
            Verdict::Supported,
            Verdict::NotMeasurable
        ]
    );
    assert!(
        a.claims[2]
            .evidence
            .contains("[classifier features, not Inception]"),
        "{}",
        a.claims[2].evidence
    );
}

#[test]
fn with_inception_features_the_published_comparison_is_made() {
    let a = fake("torchscript:/m/inception.pt", 8.0, 9.0).assemble(&table1::TARGET);
    // IS 8.0 < factored 9.0: not supported; 8.0 < IGEBM's 8.3: not supported.
    assert_eq!(a.claims[2].verdict, Verdict::NotSupported);
    assert_eq!(a.claims[4].verdict, Verdict::NotSupported);
    assert!(
        a.claims[4].evidence.contains("IGEBM (paper) 8.30"),
        "{}",
        a.claims[4].evidence
    );
    assert!(a.notes.is_empty(), "{:?}", a.notes);
}

#[test]
fn table5_cells_and_claims() {
    let a = fake(CLASSIFIER, 3.2, 2.1).assemble(&table5::TARGET);
    assert!(
        a.body
            .contains("| conditional (top 10%), single | 3.20 | 40.0 | 8.76 |"),
        "{}",
        a.body
    );
    assert!(
        a.body
            .contains("| unconditional, ensemble | 2.18 | 40.0 | 7.79 |"),
        "{}",
        a.body
    );
    // Top 10% 3.2 > all 2.2; ensemble 2.18 within 5% of 2.2; IGEBM comparison not measurable.
    let v: Vec<Verdict> = a.claims.iter().map(|c| c.verdict).collect();
    assert_eq!(
        v,
        [
            Verdict::Supported,
            Verdict::Supported,
            Verdict::NotMeasurable
        ]
    );
}

#[test]
fn generative_jobs_need_the_appendix_b_flags() {
    let p = preset::cpu();
    let single = table5::generative_job(&p, ModelId::Jem, 1, true, false);
    assert_eq!(single.needs, vec!["--from-buffer"]);
    let ens = table5::generative_job(&p, ModelId::Jem, 1, false, true);
    assert_eq!(ens.needs, vec!["--from-buffer", "--ensemble"]);
    // Without an Inception file the baseline's features are asked for.
    assert!(single
        .args
        .contains(&crate::reproduce::plan::Arg::Run(ModelId::Baseline, 1)));
    let mut p = p;
    p.inception = Some("/m/inc.pt".into());
    let with = table5::generative_job(&p, ModelId::Jem, 1, true, false);
    assert!(with.args.contains(&crate::reproduce::plan::Arg::Lit(
        "inception:/m/inc.pt".into()
    )));
}
