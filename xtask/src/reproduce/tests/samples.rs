use crate::reproduce::claims::Verdict;
use crate::reproduce::models::ModelId;
use crate::reproduce::preset;
use crate::reproduce::targets::samples;
use crate::reproduce::testkit::Fake;
use jem_report::{files, ExtremeItem, ExtremeSide, ExtremesReport, SampleReport};

fn extremes(dir: &std::path::Path, labels: &[i64]) -> ExtremesReport {
    let items: Vec<ExtremeItem> = labels
        .iter()
        .enumerate()
        .map(|(i, &label)| ExtremeItem {
            index: i,
            score: -(i as f64),
            label,
        })
        .collect();
    let side = |key: &str| ExtremeSide {
        highest: items.clone(),
        lowest: items.clone(),
        highest_png: dir.join(format!("{key}_highest.png")),
        lowest_png: dir.join(format!("{key}_lowest.png")),
    };
    ExtremesReport {
        checkpoint: "c".into(),
        data: "fashion-mnist test images".into(),
        n_images: 100,
        k: labels.len(),
        logpx: side("logpx"),
        maxpy: side("maxpy"),
    }
}

fn fake(top_labels: &[i64]) -> Fake {
    let mut f = Fake::new(preset::cpu(), &[1]);
    f.run(ModelId::Jem, 1, 0.85);
    for (key, conditional) in [
        ("sample-conditional/jem", true),
        ("sample-unconditional", false),
    ] {
        let dir = f.job_dir(key);
        let stem = if conditional {
            "conditional"
        } else {
            "unconditional"
        };
        f.png(key, &format!("{stem}.png"));
        if conditional {
            f.png(key, "conditional_by_logpx.png");
        }
        let r = SampleReport {
            checkpoint: "c".into(),
            conditional,
            n_samples: 100,
            steps: 20,
            from_noise: false,
            seed: 0,
            npy: dir.join(format!("{stem}.npy")),
            png: dir.join(format!("{stem}.png")),
            by_logpx_png: conditional.then(|| dir.join("conditional_by_logpx.png")),
        };
        f.job(key, files::SAMPLE, &r);
    }
    for key in ["extremes-samples", "extremes-data"] {
        let dir = f.job_dir(key);
        let labels: Vec<i64> = if key == "extremes-data" {
            top_labels.to_vec()
        } else {
            vec![-1; 4]
        };
        f.job(key, files::EXTREMES, &extremes(&dir, &labels));
        for png in [
            "logpx_highest",
            "logpx_lowest",
            "maxpy_highest",
            "maxpy_lowest",
        ] {
            f.png(key, &format!("{png}.png"));
        }
        f.png(key, files::LOGPX_BY_CLASS_PNG);
    }
    f
}

#[test]
fn the_sample_figures_are_collected_with_their_captions() {
    let f = fake(&[1, 1, 1, 2]);
    let a = f.assemble(&samples::TARGET);
    let names: Vec<&str> = a.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conditional_jem.png",
            "conditional_by_logpx_jem.png",
            "unconditional.png",
            "samples_logpx_highest.png",
            "samples_logpx_lowest.png",
            "samples_maxpy_highest.png",
            "samples_maxpy_lowest.png",
            "logpx_by_class.png",
        ]
    );
    assert!(a.images.iter().all(|i| i.src.is_file()), "{:?}", a.images);
    // 3 of 4 top test images share class 1: 75% > 50%.
    assert_eq!(a.claims[0].verdict, Verdict::Supported);
    assert!(a.body.contains("75% share one class"), "{}", a.body);
    let a = fake(&[0, 1, 2, 3]).assemble(&samples::TARGET);
    assert_eq!(a.claims[0].verdict, Verdict::NotSupported);
}

#[test]
fn modal_share_skips_unlabelled_items() {
    assert_eq!(samples::modal_share(&[-1, -1]), None);
    assert_eq!(samples::modal_share(&[3, -1, 3, 4]), Some(2.0 / 3.0));
}
