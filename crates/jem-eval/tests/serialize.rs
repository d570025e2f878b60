//! Result records serialise to the JSON a CLI would emit.

use jem_eval::{
    classification_metrics, inception_score, ood_metrics, reliability_diagram, BootstrapConfig,
    FeatureStats,
};
use ndarray::array;
use serde_json::{json, Value};

#[test]
fn results_serialise_with_field_names() {
    let probs = array![[0.9, 0.1], [0.2, 0.8]];
    let (probs, labels) = (probs.view(), array![0, 0]);
    let labels = labels.view();

    let m = serde_json::to_value(classification_metrics(probs, labels).unwrap()).unwrap();
    assert_eq!(m["accuracy"], json!(0.5));
    assert_eq!(m["num_samples"], json!(2));

    let d = serde_json::to_value(reliability_diagram(probs, labels, 20).unwrap()).unwrap();
    assert_eq!(d["bins"].as_array().unwrap().len(), 20);
    // Empty bins have no accuracy: JSON null rather than a made-up number.
    assert_eq!(d["bins"][0]["accuracy"], Value::Null);
    assert_eq!(d["bins"][17]["count"], json!(1));
    assert_eq!(d["bins"][17]["accuracy"], json!(1.0));

    let o = serde_json::to_value(ood_metrics(array![1.0, 2.0].view(), array![0.0].view()).unwrap())
        .unwrap();
    assert_eq!(o["auroc"], json!(1.0));
    assert_eq!(o["fpr_at_95_tpr"], json!(0.0));

    let is = serde_json::to_value(inception_score(probs, 1).unwrap()).unwrap();
    assert_eq!(is["per_split"].as_array().unwrap().len(), 1);

    let stats = FeatureStats::from_features(array![[0.0, 1.0], [2.0, 3.0]].view()).unwrap();
    let s = serde_json::to_value(&stats).unwrap();
    assert_eq!(s["mean"], json!([1.0, 2.0]));
    assert_eq!(s["dim"], json!(2));

    let config: BootstrapConfig =
        serde_json::from_str(r#"{"num_resamples": 10, "confidence_level": 0.9, "seed": 3}"#)
            .unwrap();
    assert_eq!(config.num_resamples, 10);
}
