//! `jem info --json`: the libtorch build and devices.

use serde::{Deserialize, Serialize};

/// What `jem info --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfoReport {
    /// Version of the `jem` binary.
    pub jem_version: String,
    /// Whether libtorch_cuda is loaded.
    pub libtorch_cuda_linked: bool,
    /// Whether libtorch sees a usable GPU.
    pub cuda_available: bool,
    /// GPUs libtorch sees.
    pub cuda_devices: i64,
    /// Whether cuDNN is available.
    pub cudnn_available: bool,
    /// libtorch's intra-op threads.
    pub cpu_threads: i64,
    /// The device chosen with `--device`.
    pub device: String,
}
