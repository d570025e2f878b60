//! Feature extractors, IS/FID of image sets and sample selection (feature `torch`).
//!
//! The TorchScript fixtures and their golden outputs come from
//! `tests/fixtures/torchscript/make_torchscript.py` (PyTorch); the tests only read the
//! committed files.
#![cfg(feature = "torch")]

use jem_eval::features::{
    generative_metrics, is_split_order, top_percentile_by_confidence, ClassifierFeatures,
    Extracted, FeatureExtractor, InputRange, TorchScriptInception, TorchScriptOptions,
    CLASSIFIER_FEATURES_LABEL,
};
use jem_eval::inception_score;
use jem_model::WrnConfig;
use ndarray::{Array2, ArrayView1, Axis};
use std::path::{Path, PathBuf};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torchscript")
        .join(name)
}

fn golden() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn options(range: &str, size: Option<i64>) -> TorchScriptOptions {
    TorchScriptOptions {
        input_range: range.parse().unwrap(),
        resize: size.map(|s| (s, s)),
        batch_size: 2,
        ..TorchScriptOptions::default()
    }
}

/// `got` (in row-major order) equals `want` within 1e-5.
fn assert_close(got: &Array2<f32>, want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5, "{what}[{i}]: got {g}, want {w}");
    }
}

/// Deterministic pseudo-random images in [-1, 1].
fn images(n: i64, c: i64, side: i64, seed: i64) -> Tensor {
    let len = n * c * side * side;
    let values: Vec<f32> = (0..len)
        .map(|i| (((i + 1) * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
        .map(|v| (v * 3.7 + seed as f32).sin())
        .collect();
    Tensor::from_slice(&values).reshape([n, c, side, side])
}

#[test]
fn torchscript_matches_pytorch_golden_outputs() {
    let g = golden();
    let (dim, classes) = (
        g["feature_dim"].as_u64().unwrap() as usize,
        g["num_classes"].as_u64().unwrap() as usize,
    );
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let shape: Vec<i64> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_i64().unwrap())
            .collect();
        let range = match case["range"].as_str().unwrap() {
            "zero_to_one" => "0,1",
            "minus_one_to_one" => "-1,1",
            "zero_to_255" => "0,255",
            other => panic!("unknown range {other}"),
        };
        let x = Tensor::from_slice(&floats(&case["input"])).reshape(shape.as_slice());
        let opts = options(range, case["size"].as_i64());

        let net = TorchScriptInception::load(&fixture("tiny_inception.pt"), opts.clone()).unwrap();
        assert!(net.name().contains("tiny_inception.pt"), "{}", net.name());
        let out = net.extract(&x).unwrap();
        assert_eq!(
            (out.n(), out.dim(), out.num_classes()),
            (shape[0] as usize, dim, classes)
        );
        assert_close(&out.features, &floats(&case["features"]), name);
        let probs = out.probs.as_ref().expect("the module has a class head");
        assert_close(probs, &floats(&case["probs"]), name);

        // A module returning a [N, D, 1, 1] features map only: same features, no probabilities.
        let only = TorchScriptInception::load(&fixture("tiny_features_only.pt"), opts).unwrap();
        let out = only.extract(&x).unwrap();
        assert_eq!((out.dim(), out.num_classes()), (dim, 0));
        assert_eq!(out.probs, None);
        assert_close(&out.features, &floats(&case["features"]), name);
    }
}

#[test]
fn torchscript_errors_name_the_file_and_the_problem() {
    let dir = tempfile_dir("torchscript-errors");
    let garbage = dir.join("garbage.pt");
    std::fs::write(&garbage, b"this is not a TorchScript archive").unwrap();
    let e = TorchScriptInception::load(&garbage, TorchScriptOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&garbage.display().to_string()) && msg.contains("TorchScript"),
        "{msg}"
    );

    let missing = dir.join("missing.pt");
    let msg = TorchScriptInception::load(&missing, TorchScriptOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("missing.pt") && msg.contains("no such file"),
        "{msg}"
    );

    // A module returning three tensors breaks the contract: the error says what came back.
    let bad =
        TorchScriptInception::load(&fixture("tiny_bad_output.pt"), options("0,1", None)).unwrap();
    let msg = bad.extract(&images(2, 3, 4, 1)).unwrap_err().to_string();
    assert!(
        msg.contains("tiny_bad_output.pt") && msg.contains("a tuple of 3 values"),
        "{msg}"
    );

    // Two-channel images can be neither drawn as grey nor as RGB.
    let net =
        TorchScriptInception::load(&fixture("tiny_inception.pt"), options("0,1", None)).unwrap();
    let msg = net.extract(&images(2, 2, 4, 1)).unwrap_err().to_string();
    assert!(msg.contains("2 channels"), "{msg}");
    let bad_range = "0,2".parse::<InputRange>().unwrap_err().to_string();
    assert!(bad_range.contains("0,2"), "{bad_range}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jem-eval-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn classifier_features_are_the_penultimate_layer_and_softmax() {
    tch::manual_seed(3);
    let vs = VarStore::new(Device::Cpu);
    let config = WrnConfig {
        in_channels: 1,
        num_classes: 4,
        ..WrnConfig::new(10, 2)
    };
    let model = config.init(&vs.root()).unwrap();
    let x = images(5, 1, 8, 2);
    let extractor = ClassifierFeatures::new(&model, Device::Cpu).with_batch_size(2);
    assert_eq!(extractor.name(), CLASSIFIER_FEATURES_LABEL);
    assert!(extractor.name().contains("not Inception"));
    let out = extractor.extract(&x).unwrap();
    assert_eq!((out.n(), out.dim(), out.num_classes()), (5, 64 * 2, 4));
    assert_eq!(out.features.dim(), (5, 128));
    let probs = out.probs.as_ref().unwrap();
    for (i, row) in probs.rows().into_iter().enumerate() {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "row {i} sums to {sum}");
        assert!(row.iter().all(|&p| p > 0.0 && p < 1.0), "{row:?}");
    }
    // The same numbers as one unbatched pass through the network.
    let direct = tch::no_grad(|| model.f_features(&x, false)).unwrap();
    let direct: Vec<f32> = Vec::try_from(direct.flatten(0, -1)).unwrap();
    assert_close(&out.features, &direct, "features");
    let logits = tch::no_grad(|| model.f_forward_t(&x, false)).unwrap();
    let soft: Vec<f32> = Vec::try_from(logits.softmax(1, Kind::Float).flatten(0, -1)).unwrap();
    assert_close(probs, &soft, "probabilities");
    // Inputs the classifier cannot take are reported, not panicked on.
    let msg = extractor
        .extract(&images(2, 3, 8, 2))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("classifier"), "{msg}");
}

fn tiny_net() -> TorchScriptInception {
    TorchScriptInception::load(&fixture("tiny_inception.pt"), options("-1,1", None)).unwrap()
}

#[test]
fn fid_of_a_set_with_itself_is_zero_and_is_is_bounded() {
    let net = tiny_net();
    let x = images(40, 3, 6, 5);
    let m = generative_metrics(&net, &x, &x, 4).unwrap();
    assert!(m.fid.abs() < 1e-6, "FID(x, x) = {}", m.fid);
    let (mean, std) = (m.is_mean.unwrap(), m.is_std.unwrap());
    assert!((1.0..=5.0).contains(&mean), "IS = {mean}");
    assert!(std >= 0.0);
    assert_eq!(
        (m.n_generated, m.n_reference, m.feature_dim, m.num_classes),
        (40, 40, 8, 5)
    );
    assert_eq!(m.is_splits, 4);
    assert_eq!(m.extractor, net.name());

    // The IS is the crate's inception_score of the extracted probabilities, in the fixed
    // split order.
    let Extracted { probs, .. } = net.extract(&x).unwrap();
    let shuffled = probs.unwrap().select(Axis(0), &is_split_order(40));
    let expected = inception_score(shuffled.view(), 4).unwrap();
    assert!((mean - expected.mean).abs() < 1e-12);

    // Features only: FID, no IS.
    let only = TorchScriptInception::load(&fixture("tiny_features_only.pt"), options("-1,1", None))
        .unwrap();
    let m = generative_metrics(&only, &x, &images(30, 3, 6, 9), 4).unwrap();
    assert!(m.fid > 0.0 && m.fid.is_finite());
    assert_eq!((m.is_mean, m.is_std, m.num_classes), (None, None, 0));

    // Too many splits is refused before any image is processed.
    let msg = generative_metrics(&net, &images(3, 3, 6, 1), &x, 4)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("splits"), "{msg}");
}

#[test]
fn fid_grows_as_the_generated_set_is_shifted() {
    let net = tiny_net();
    let reference = images(60, 3, 6, 11);
    let generated = images(60, 3, 6, 12);
    let fids: Vec<f64> = [0.0, 0.3, 0.6, 1.2]
        .iter()
        .map(|&shift| {
            generative_metrics(&net, &(&generated + shift), &reference, 2)
                .unwrap()
                .fid
        })
        .collect();
    assert!(fids[0] > 0.0, "{fids:?}");
    assert!(fids.windows(2).all(|w| w[0] < w[1]), "{fids:?}");
    // A large shift moves the features far more than resampling does.
    assert!(fids[3] > 10.0 * fids[0], "{fids:?}");
}

#[test]
fn top_percentile_keeps_the_most_confident_samples() {
    // Confidences (first column) of ten 2-class predictions.
    let conf = [0.5, 0.9, 0.6, 0.95, 0.7, 0.55, 0.8, 0.65, 0.99, 0.75];
    let probs = two_class(&conf);
    let probs = probs.view();
    // Unconditional: the top 20 % of all ten is two samples, 0.99 (8) and 0.95 (3).
    assert_eq!(
        top_percentile_by_confidence(probs, None, 20.0).unwrap(),
        [3, 8]
    );
    assert_eq!(
        top_percentile_by_confidence(probs, None, 10.0).unwrap(),
        [8]
    );
    // 25 % of 10 is 2.5: three are kept (0.99, 0.95, 0.9).
    assert_eq!(
        top_percentile_by_confidence(probs, None, 25.0).unwrap(),
        [1, 3, 8]
    );
    assert_eq!(
        top_percentile_by_confidence(probs, None, 100.0).unwrap(),
        (0..10).collect::<Vec<_>>()
    );
    // Conditional: the top 40 % of each class. Class 0 holds 0.5, 0.9, 0.6, 0.95, 0.7
    // (keeps 1 and 3); class 1 holds 0.55, 0.8, 0.65, 0.99, 0.75 (keeps 6 and 8).
    let groups = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
    assert_eq!(
        top_percentile_by_confidence(probs, Some(ArrayView1::from(&groups)), 40.0).unwrap(),
        [1, 3, 6, 8]
    );
    // Interleaved groups; a tiny percentile still keeps one per group.
    let groups = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0];
    assert_eq!(
        top_percentile_by_confidence(probs, Some(ArrayView1::from(&groups)), 1.0).unwrap(),
        [3, 8]
    );
    // The "max" is over classes: 0.1 in the first column means confidence 0.9.
    let p = two_class(&[0.1, 0.85, 0.6]);
    assert_eq!(
        top_percentile_by_confidence(p.view(), None, 33.0).unwrap(),
        [0]
    );
    // Ties go to the lower index.
    let p = two_class(&[0.7, 0.8, 0.8, 0.7]);
    assert_eq!(
        top_percentile_by_confidence(p.view(), None, 25.0).unwrap(),
        [1]
    );

    for bad in [0.0, -5.0, 100.5, f64::NAN] {
        let msg = top_percentile_by_confidence(probs, None, bad)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("percentile"), "{msg}");
    }
    let msg = top_percentile_by_confidence(probs, Some(ArrayView1::from(&[0, 1])), 10.0)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("groups"), "{msg}");
    // Logits instead of probabilities are refused.
    let logits = two_class(&[3.0]);
    let msg = top_percentile_by_confidence(logits.view(), None, 10.0)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("probs[0, 0]"), "{msg}");
}

/// Two-class probability rows `[c, 1 − c]`.
fn two_class(first: &[f64]) -> Array2<f64> {
    Array2::from_shape_fn((first.len(), 2), |(i, k)| {
        if k == 0 {
            first[i]
        } else {
            1.0 - first[i]
        }
    })
}

/// Confident one-hot predictions of the class `i / per_class`: samples sorted by class, as a
/// class-conditional replay buffer holds them.
struct SortedByClass {
    classes: usize,
}

impl FeatureExtractor for SortedByClass {
    fn name(&self) -> &str {
        "sorted by class"
    }

    fn extract(&self, images: &Tensor) -> jem_eval::Result<Extracted> {
        let n = images.size()[0] as usize;
        let per_class = n / self.classes;
        let probs = Array2::from_shape_fn((n, self.classes), |(i, k)| {
            if i / per_class == k {
                1.0
            } else {
                0.0
            }
        });
        let features = Array2::from_shape_fn((n, 2), |(i, d)| ((i * 7 + d * 3) % 11) as f32);
        Ok(Extracted {
            features,
            probs: Some(probs),
        })
    }
}

#[test]
fn is_splits_do_not_follow_the_sample_order() {
    // 10 classes x 100 samples sorted by class, 10 splits: in the given order each split would
    // hold one class and score 1; in a random order each holds about ten and scores near 10.
    let net = SortedByClass { classes: 10 };
    let x = images(1000, 1, 2, 3);
    let given_order = inception_score(net.extract(&x).unwrap().probs.unwrap().view(), 10).unwrap();
    assert!(
        (given_order.mean - 1.0).abs() < 1e-9,
        "{}",
        given_order.mean
    );
    let m = generative_metrics(&net, &x, &x, 10).unwrap();
    let is = m.is_mean.unwrap();
    assert!(is > 8.5 && is <= 10.0, "IS = {is}");
    // The order is a fixed permutation.
    let order = is_split_order(1000);
    assert_eq!(order, is_split_order(1000));
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    assert_ne!(order, sorted);
}
