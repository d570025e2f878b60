//! End-to-end tests of the `jem` binary.

use std::process::Command;

fn jem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jem"))
}

#[test]
fn binary_starts_without_ld_library_path() {
    let out = jem()
        .env_remove("LD_LIBRARY_PATH")
        .args(["info", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["device"], "Cpu");
    assert!(report["cpu_threads"].as_i64().unwrap() >= 1);
}

#[test]
fn cuda_without_gpu_is_a_clear_error() {
    let out = jem().args(["--device", "cuda", "info"]).output().unwrap();
    let gpus = tch::Cuda::device_count();
    if gpus > 0 {
        assert!(out.status.success());
        return;
    }
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no CUDA device is available"), "{stderr}");
}

#[test]
fn bad_thread_count_is_rejected() {
    let out = jem().args(["--threads", "0", "info"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads must be at least 1, got 0"));
}

mod metrics {
    use super::jem;
    use jem_data::write_npy;
    use std::path::Path;

    fn run(args: &[&str]) -> (bool, String, String) {
        let out = jem().arg("metrics").args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    #[test]
    fn auroc_on_npy_matches_hand_count() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("in.npy"), dir.path().join("out.npy"));
        // 5 wins and one tie out of 6 pairs: AUROC = 5.5 / 6.
        write_npy(&a, &[3], &[0.9f64, 0.4, 0.7]).unwrap();
        write_npy(&b, &[2], &[0.1f64, 0.4]).unwrap();
        let (ok, stdout, stderr) = run(&["auroc", "--in", s(&a), "--out", s(&b), "--json"]);
        assert!(ok, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let auroc = v["auroc"].as_f64().unwrap();
        assert!((auroc - 5.5 / 6.0).abs() < 1e-12, "{auroc}");
        assert_eq!(v["num_in"], 3);
        // Markdown by default.
        let (ok, stdout, _) = run(&["auroc", "--in", s(&a), "--out", s(&b)]);
        assert!(ok);
        assert!(stdout.contains("| AUROC | 0.916667 |"), "{stdout}");
    }

    #[test]
    fn ece_on_npy_matches_hand_count() {
        let dir = tempfile::tempdir().unwrap();
        let (p, y) = (dir.path().join("p.npy"), dir.path().join("y.npy"));
        // Confidences 0.9, 0.9, 0.6, 0.6 with the first three correct: ECE = 0.1.
        write_npy(&p, &[4, 2], &[0.9f64, 0.1, 0.1, 0.9, 0.6, 0.4, 0.4, 0.6]).unwrap();
        write_npy(&y, &[4], &[0i64, 1, 0, 0]).unwrap();
        let (ok, stdout, stderr) = run(&["ece", "--probs", s(&p), "--labels", s(&y), "--json"]);
        assert!(ok, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!((v["ece"].as_f64().unwrap() - 0.1).abs() < 1e-12, "{stdout}");
        assert!((v["classification"]["accuracy"].as_f64().unwrap() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn fid_of_a_set_with_itself_is_zero_and_is_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.npy");
        let feats: Vec<f64> = (0..60).map(|i| ((i * 37) % 11) as f64 / 7.0).collect();
        write_npy(&a, &[20, 3], &feats).unwrap();
        let (ok, stdout, stderr) = run(&["fid", "--a", s(&a), "--b", s(&a), "--json"]);
        assert!(ok, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(
            v["frechet_distance"].as_f64().unwrap().abs() < 1e-8,
            "{stdout}"
        );

        // Uniform, confident and diverse predictions over 4 classes: IS = 4.
        let p = dir.path().join("p.npy");
        let probs: Vec<f32> = (0..40)
            .map(|i| if i % 4 == (i / 4) % 4 { 1.0 } else { 0.0 })
            .collect();
        write_npy(&p, &[10, 4], &probs).unwrap();
        let (ok, stdout, stderr) = run(&["is", "--probs", s(&p), "--splits", "1", "--json"]);
        assert!(ok, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let mean = v["mean"].as_f64().unwrap();
        // 10 samples over 4 classes: class counts 3,3,2,2, so IS = exp(H(p_y)).
        let py = [0.3f64, 0.3, 0.2, 0.2];
        let expected = (-py.iter().map(|p| p * p.ln()).sum::<f64>()).exp();
        assert!((mean - expected).abs() < 1e-9, "{mean} vs {expected}");
    }

    #[test]
    fn bad_inputs_name_the_file_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.npy");
        write_npy(&good, &[2], &[0.1f32, 0.2]).unwrap();
        let nan = dir.path().join("nan.npy");
        write_npy(&nan, &[2], &[0.1f32, f32::NAN]).unwrap();
        let (ok, _, stderr) = run(&["auroc", "--in", s(&good), "--out", s(&nan)]);
        assert!(!ok);
        assert!(
            stderr.contains("nan.npy") && stderr.contains("element 1 is NaN"),
            "{stderr}"
        );

        let ints = dir.path().join("ints.npy");
        write_npy(&ints, &[2], &[1i64, 2]).unwrap();
        let (ok, _, stderr) = run(&["auroc", "--in", s(&ints), "--out", s(&good)]);
        assert!(!ok);
        assert!(
            stderr.contains("ints.npy") && stderr.contains("got int64"),
            "{stderr}"
        );

        let matrix = dir.path().join("m.npy");
        write_npy(&matrix, &[2, 2], &[0.5f64, 0.5, 0.5, 0.5]).unwrap();
        let (ok, _, stderr) = run(&["auroc", "--in", s(&matrix), "--out", s(&good)]);
        assert!(!ok);
        assert!(
            stderr.contains("shape [N] or [N, 1], got [2, 2]"),
            "{stderr}"
        );

        let float_labels = dir.path().join("fy.npy");
        write_npy(&float_labels, &[2], &[0.0f64, 1.0]).unwrap();
        let (ok, _, stderr) = run(&["ece", "--probs", s(&matrix), "--labels", s(&float_labels)]);
        assert!(!ok);
        assert!(
            stderr.contains("labels must be integers, got float64"),
            "{stderr}"
        );

        let garbage = dir.path().join("garbage.npy");
        std::fs::write(&garbage, b"not an npy file").unwrap();
        let (ok, _, stderr) = run(&["is", "--probs", s(&garbage)]);
        assert!(!ok);
        assert!(stderr.contains("garbage.npy"), "{stderr}");
    }
}
