use crate::reproduce::claims::Verdict;
use crate::reproduce::preset;
use crate::reproduce::targets::attacks;
use crate::reproduce::testkit::{self, attacked, Fake};
use jem_report::{files, DistalClass, DistalModel, DistalReport};

const LINF: [f64; 3] = [4.0, 8.0, 16.0];

/// A PGD report: the baseline's and JEM-k's robust accuracies at LINF.
fn pgd(name: &str, rows: &[(&str, usize, [f64; 3])]) -> jem_report::AttackReport {
    testkit::attack(
        name,
        rows.iter()
            .map(|(label, k, accs)| attacked(label, *k, &LINF, accs))
            .collect(),
    )
}

fn fig5_fake(jem10: [f64; 3]) -> Fake {
    let mut f = Fake::new(preset::cpu(), &[1]);
    for name in ["pgd-linf", "pgd-l2"] {
        let r = pgd(
            name,
            &[
                ("baseline", 0, [0.5, 0.2, 0.0]),
                ("jem JEM-0", 0, [0.6, 0.4, 0.0]),
                ("jem JEM-1", 1, [0.6, 0.45, 0.0]),
                ("jem JEM-10", 10, jem10),
            ],
        );
        f.job(name, &files::attack(name), &r);
        f.png(name, &files::attack_png(name));
    }
    f
}

#[test]
fn fig5_tables_and_robustness_claims() {
    let a = fig5_fake([0.7, 0.5, 0.1]).assemble(&attacks::FIG5);
    assert!(
        a.body
            .contains("| jem JEM-10 | 90.0% | 70.0% | 50.0% | 10.0% | 43.3% |"),
        "{}",
        a.body
    );
    assert!(a.body.contains("ε = 8 (L∞)"), "{}", a.body);
    // Per norm: JEM-0 (33.3%) > baseline (23.3%); JEM-0 < JEM-1 < JEM-10.
    assert_eq!(a.claims.len(), 4);
    assert!(
        a.claims.iter().all(|c| c.verdict == Verdict::Supported),
        "{:?}",
        a.claims
    );
    assert!(
        a.claims[0]
            .evidence
            .contains("JEM-0 33.33% > baseline 23.33%"),
        "{}",
        a.claims[0].evidence
    );
    assert_eq!(a.images.len(), 2);
    // JEM-10 no more robust than JEM-1: the monotone claim fails.
    let a = fig5_fake([0.6, 0.45, 0.0]).assemble(&attacks::FIG5);
    assert_eq!(a.claims[1].verdict, Verdict::NotSupported);
    assert_eq!(a.claims[0].verdict, Verdict::Supported);
}

#[test]
fn a_classifier_missing_from_the_report_is_named() {
    let mut f = fig5_fake([0.7, 0.5, 0.1]);
    let r = pgd("pgd-linf", &[("baseline", 0, [0.5, 0.2, 0.0])]);
    f.job("pgd-linf", &files::attack("pgd-linf"), &r);
    let err = format!("{:#}", (attacks::FIG5.assemble)(&f.inputs()).unwrap_err());
    assert!(
        err.contains("pgd-linf.json: no classifier `jem JEM-0` (found: baseline)"),
        "{err}"
    );
}

const L2: [f64; 3] = [50.0, 100.0, 200.0];

/// A classifier of an L2 report whose per-input distances (pixel scale; `None`: never broken)
/// give its robust accuracy at L2, as `jem attack` computes it.
fn by_distances(label: &str, k: usize, pixels: &[Option<f64>]) -> jem_report::AttackModel {
    let accs: Vec<f64> = L2
        .iter()
        .map(|&e| {
            let robust = pixels.iter().filter(|d| d.is_none_or(|d| d > e)).count();
            robust as f64 / pixels.len() as f64
        })
        .collect();
    let mut m = attacked(label, k, &L2, &accs);
    m.distances = pixels.iter().map(|d| d.map(|d| d / 127.5)).collect();
    m
}

/// An L2 report on the test inputs `indices`, every classifier with the distances `pixels`.
fn l2_report(name: &str, indices: &[usize], pixels: &[Option<f64>]) -> jem_report::AttackReport {
    let mut r = testkit::attack(
        name,
        [
            ("baseline", 0),
            ("jem JEM-0", 0),
            ("jem JEM-1", 1),
            ("jem JEM-10", 10),
        ]
        .iter()
        .map(|(label, k)| by_distances(label, *k, pixels))
        .collect(),
    );
    r.test_indices = indices.to_vec();
    r
}

/// Fig 14 with PGD L2 on the inputs 1-4 and the gradient-free attacks on `decision`.
fn fig14_fake(decision: &[usize], boundary: &[Option<f64>]) -> Fake {
    let mut f = fig5_fake([0.7, 0.5, 0.1]);
    let pgd = l2_report(
        "pgd-l2",
        &[1, 2, 3, 4],
        &[None, Some(60.0), None, Some(120.0)],
    );
    f.job("pgd-l2", &files::attack("pgd-l2"), &pgd);
    for name in ["boundary", "pointwise"] {
        f.job(
            name,
            &files::attack(name),
            &l2_report(name, decision, boundary),
        );
        f.png(name, &files::attack_png(name));
    }
    f
}

/// PGD and the boundary attack are compared on the inputs both attacked. On inputs 2 and 4
/// PGD's distances (60, 120) give 50.0% mean robust accuracy over 50/100/200, the boundary
/// attack's (90, 250) 66.7%: supported. Over all four of PGD's inputs (75%) it would not be.
#[test]
fn fig14_compares_pgd_with_the_boundary_attack_on_the_inputs_both_attacked() {
    let a = fig14_fake(&[2, 4], &[Some(90.0), Some(250.0)]).assemble(&attacks::FIG14);
    let last = a.claims.last().unwrap();
    assert_eq!(last.verdict, Verdict::Supported, "{last:?}");
    assert!(
        last.evidence.contains("on the 2 inputs both attacked")
            && last.evidence.contains("JEM-0: PGD 50.0% vs boundary 66.7%"),
        "{}",
        last.evidence
    );
    assert!(
        a.body.contains("16 of PGD's 32 inputs")
            && a.body.contains("200 iterations of 10 directions"),
        "{}",
        a.body
    );
    // The boundary attack finds closer adversarials (40, 90 → 16.7%): not supported.
    let a = fig14_fake(&[2, 4], &[Some(40.0), Some(90.0)]).assemble(&attacks::FIG14);
    let last = a.claims.last().unwrap();
    assert_eq!(last.verdict, Verdict::NotSupported, "{last:?}");
    // No input in common: nothing to compare.
    let a = fig14_fake(&[7, 9], &[Some(90.0), Some(250.0)]).assemble(&attacks::FIG14);
    let last = a.claims.last().unwrap();
    assert_eq!(last.verdict, Verdict::NotMeasurable, "{last:?}");
    assert!(
        last.evidence.contains("share no attacked input"),
        "{}",
        last.evidence
    );
}

#[test]
fn fig16_calls_a_small_difference_negligible() {
    for (ten, verdict) in [(0.42, Verdict::Supported), (0.2, Verdict::NotSupported)] {
        let mut f = Fake::new(preset::cpu(), &[1]);
        // The 5-chain job is Fig 5's: JEM-1 beside the baseline and the other JEM-k.
        let five = pgd(
            "pgd-linf",
            &[
                ("baseline", 0, [0.1; 3]),
                ("jem JEM-0", 0, [0.9; 3]),
                ("jem JEM-1", 1, [0.4; 3]),
                ("jem JEM-10", 10, [0.9; 3]),
            ],
        );
        let ten = pgd("pgd-linf", &[("jem JEM-1", 1, [ten; 3])]);
        for (key, r) in [("eot5", &five), ("eot10", &ten)] {
            f.job(key, &files::attack("pgd-linf"), r);
            f.png(key, &files::attack_png("pgd-linf"));
        }
        let a = f.assemble(&attacks::FIG16);
        assert_eq!(a.claims[0].verdict, verdict, "{:?}", a.claims[0]);
        assert!(
            a.claims[0].evidence.starts_with("5 chains 40.0%"),
            "{:?}",
            a.claims[0]
        );
        // Only JEM-1 is part of this figure.
        assert!(
            !a.body.contains("baseline") && !a.body.contains("JEM-10"),
            "{}",
            a.body
        );
        assert_eq!(a.body.matches("| jem JEM-1 |").count(), 2, "{}", a.body);
    }
}

#[test]
fn fig17_transfer_claims_per_refinement_depth() {
    let mut f = Fake::new(preset::cpu(), &[1]);
    let r = pgd(
        "transfer",
        &[
            ("jem JEM-0", 0, [0.0, 0.0, 0.0]),
            ("jem JEM-1", 1, [0.5, 0.4, 0.3]),
            ("jem JEM-10", 10, [0.0, 0.0, 0.0]),
        ],
    );
    f.job("transfer", &files::attack("transfer"), &r);
    f.png("transfer", &files::attack_png("transfer"));
    let a = f.assemble(&attacks::FIG17);
    assert_eq!(a.claims.len(), 2);
    assert_eq!(a.claims[0].verdict, Verdict::Supported);
    assert_eq!(a.claims[1].verdict, Verdict::NotSupported);
}

#[test]
fn fig6_compares_how_often_noise_is_classified_confidently() {
    let mut f = Fake::new(preset::cpu(), &[1]);
    let model = |label: &str, reached: [bool; 2]| DistalModel {
        model: label.into(),
        grid: format!("distal_{}.png", label.replace(' ', "-")),
        classes: vec![DistalClass {
            class: 0,
            probabilities: vec![0.95, 0.5],
            reached: reached.to_vec(),
            steps: vec![10, 300],
        }],
    };
    let r = DistalReport {
        attack: "distal".into(),
        seed: 0,
        models: vec![
            model("baseline", [true, true]),
            model("jem JEM-0", [true, false]),
        ],
    };
    f.job("distal", &files::attack("distal"), &r);
    f.png("distal", "distal_baseline.png");
    f.png("distal", "distal_jem-JEM-0.png");
    let a = f.assemble(&attacks::FIG6);
    assert_eq!(a.claims[0].verdict, Verdict::Supported, "{:?}", a.claims[0]);
    assert!(a.body.contains("| baseline | 100.0% |"), "{}", a.body);
    assert!(a.body.contains("| jem JEM-0 | 50.0% |"), "{}", a.body);
    assert_eq!(a.claims[1].verdict, Verdict::NotMeasurable);
}

#[test]
fn budgets_that_break_every_input_cannot_decide_a_robustness_claim() {
    let mut f = Fake::new(preset::cpu(), &[1]);
    for name in ["pgd-linf", "pgd-l2"] {
        let zero = [0.0; 3];
        let r = pgd(
            name,
            &[
                ("baseline", 0, zero),
                ("jem JEM-0", 0, zero),
                ("jem JEM-1", 1, zero),
                ("jem JEM-10", 10, zero),
            ],
        );
        f.job(name, &files::attack(name), &r);
        f.png(name, &files::attack_png(name));
    }
    let a = f.assemble(&attacks::FIG5);
    assert!(
        a.claims.iter().all(|c| c.verdict == Verdict::NotMeasurable),
        "{:?}",
        a.claims
    );
    assert!(
        a.claims[0].evidence.contains("no input survives"),
        "{}",
        a.claims[0].evidence
    );
}
