//! End-to-end tests of the `jem` binary.

use std::process::Command;

fn jem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jem"))
}

#[test]
fn binary_starts_without_ld_library_path() {
    let out = jem().env_remove("LD_LIBRARY_PATH").args(["info", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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
