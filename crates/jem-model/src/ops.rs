//! ATen operators tch does not expose, through a small C++ shim (`csrc/jem_ops.cpp`, compiled
//! against the same libtorch by the build script):
//!
//! * [`leaky_relu`] with any slope as one fused kernel (tch only has slope 0.01; composing it
//!   from `ge`, `mul` and `where` cost 1.8x the native kernel per SGLD step of WRN-10-1);
//! * [`channels_last`] memory order;
//! * [`autocast`]: a bfloat16 autocast region, on the CPU too (tch's `autocast` is CUDA-only and
//!   float16). Convolutions and matrix products run in bfloat16 inside it, with float32 weights
//!   kept as the master copy and gradients flowing back to float32 inputs.

use std::ffi::{c_char, c_int, c_void, CStr};

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::error::{ModelError, Result};

extern "C" {
    fn jem_free_error(error: *mut c_char);
    fn jem_leaky_relu(x: *const c_void, slope: f64, out: *mut *mut c_void) -> *mut c_char;
    fn jem_channels_last(x: *const c_void, out: *mut *mut c_void) -> *mut c_char;
    fn jem_autocast(
        device: c_int,
        enter: c_int,
        restore: c_int,
        previous: *mut c_int,
    ) -> *mut c_char;
}

/// Turns the shim's error message (owned, NULL for success) into a result.
fn check(error: *mut c_char, op: &'static str) -> Result<()> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null error is a NUL-terminated string malloc'ed by the shim, freed once here.
    let text = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    unsafe { jem_free_error(error) };
    Err(ModelError::Op { op, message: text })
}

/// Calls a shim function producing one tensor from `x`.
fn unary(
    x: &Tensor,
    op: &'static str,
    f: impl FnOnce(*const c_void, *mut *mut c_void) -> *mut c_char,
) -> Result<Tensor> {
    let mut out: *mut c_void = std::ptr::null_mut();
    check(f(x.as_ptr() as *const c_void, &mut out), op)?;
    // SAFETY: on success the shim stored a new heap `at::Tensor*`, the handle tch owns and frees.
    Ok(unsafe { Tensor::from_ptr(out as *mut torch_sys::C_tensor) })
}

/// `max(x, 0) + slope · min(x, 0)`, ATen's fused `leaky_relu` (differentiable, twice too).
///
/// # Examples
///
/// ```
/// let x = tch::Tensor::from_slice(&[-1.0f32, 0.0, 2.0]);
/// let y = jem_model::ops::leaky_relu(&x, 0.2)?;
/// assert_eq!(Vec::<f32>::try_from(&y)?, vec![-0.2, 0.0, 2.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    // SAFETY: `x` is a live tensor handle for the duration of the call.
    unary(x, "leaky_relu", |x, out| unsafe {
        jem_leaky_relu(x, slope, out)
    })
}

/// `x` in channels-last (NHWC) memory order: same values and shape, faster oneDNN convolutions.
pub fn channels_last(x: &Tensor) -> Result<Tensor> {
    // SAFETY: `x` is a live tensor handle for the duration of the call.
    unary(x, "channels_last", |x, out| unsafe {
        jem_channels_last(x, out)
    })
}

/// Arithmetic of a group of forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// float32 throughout.
    #[default]
    Fp32,
    /// bfloat16 [`autocast`]: convolutions and matrix products in bfloat16, float32 weights,
    /// inputs and gradients.
    Bf16,
    /// [`Precision::Bf16`] where the device computes bfloat16 natively ([`native_bf16`]),
    /// [`Precision::Fp32`] elsewhere. Without native bfloat16 instructions libtorch emulates the
    /// bfloat16 convolutions, and they are slower than float32 ones, not faster (measured on an
    /// AVX2-only CPU: an SGLD step of WRN-10-1 took 9.6 times as long as in float32).
    Auto,
}

impl Precision {
    /// The precision `self` means on `device`: [`Precision::Auto`] becomes bf16 or fp32, the
    /// others are themselves.
    ///
    /// # Examples
    ///
    /// ```
    /// use jem_model::{ops::native_bf16, Precision};
    /// use tch::Device;
    /// let on_cpu = Precision::Auto.resolve(Device::Cpu);
    /// assert_eq!(on_cpu == Precision::Bf16, native_bf16(Device::Cpu));
    /// assert_eq!(Precision::Fp32.resolve(Device::Cpu), Precision::Fp32);
    /// ```
    pub fn resolve(self, device: Device) -> Precision {
        match self {
            Precision::Auto if native_bf16(device) => Precision::Bf16,
            Precision::Auto => Precision::Fp32,
            p => p,
        }
    }

    /// Runs `f` in this precision on `device`.
    pub fn run<T>(self, device: Device, f: impl FnOnce() -> T) -> Result<T> {
        autocast(device, self.resolve(device) == Precision::Bf16, f)
    }

    /// The name the configuration files use: `fp32`, `bf16` or `auto`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Auto => "auto",
        }
    }
}

/// Whether `device` computes bfloat16 natively: a CUDA device (bfloat16 tensor cores since
/// Ampere; autocast runs on older GPUs too), or a CPU with AVX-512 BF16 (x86-64: Cooper Lake,
/// Sapphire Rapids and later, Zen 4 and later) or the Arm BF16 extension. Where it does not,
/// [`Precision::Auto`] runs float32.
pub fn native_bf16(device: Device) -> bool {
    match device {
        Device::Cpu => cpu_has_bf16(),
        _ => true,
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_bf16() -> bool {
    std::arch::is_x86_feature_detected!("avx512bf16")
}

#[cfg(target_arch = "aarch64")]
fn cpu_has_bf16() -> bool {
    std::arch::is_aarch64_feature_detected!("bf16")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn cpu_has_bf16() -> bool {
    false
}

fn device_code(device: Device) -> c_int {
    match device {
        Device::Cpu => 0,
        _ => 1,
    }
}

/// Runs `f` inside a bfloat16 autocast region for `device` when `enabled` (otherwise just runs
/// it). Regions nest; the casted-weight cache is cleared when the outermost one ends. The state
/// is the calling thread's.
///
/// # Examples
///
/// ```
/// use tch::{Device, Kind, Tensor};
/// let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
/// let p = jem_model::ops::autocast(Device::Cpu, true, || a.matmul(&a))?;
/// assert_eq!(p.kind(), Kind::BFloat16);
/// let q = jem_model::ops::autocast(Device::Cpu, false, || a.matmul(&a))?;
/// assert_eq!(q.kind(), Kind::Float);
/// # Ok::<(), jem_model::ModelError>(())
/// ```
pub fn autocast<T>(device: Device, enabled: bool, f: impl FnOnce() -> T) -> Result<T> {
    if !enabled {
        return Ok(f());
    }
    let d = device_code(device);
    let mut previous: c_int = 0;
    // SAFETY: plain C call; `previous` outlives it.
    check(unsafe { jem_autocast(d, 1, 0, &mut previous) }, "autocast")?;
    let result = f();
    let mut ignored: c_int = 0;
    // SAFETY: as above; restores the state seen on entry.
    check(
        unsafe { jem_autocast(d, 0, previous, &mut ignored) },
        "autocast",
    )?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn leaky_relu_matches_its_definition_and_differentiates() {
        let x = Tensor::from_slice(&[-3.0f64, -0.5, 0.0, 0.25, 4.0]).set_requires_grad(true);
        let y = leaky_relu(&x, 0.2).unwrap();
        assert_eq!(
            Vec::<f64>::try_from(&y).unwrap(),
            vec![-0.6000000000000001, -0.1, 0.0, 0.25, 4.0]
        );
        let g = Tensor::run_backward(&[y.sum(Kind::Double)], &[&x], true, true)
            .pop()
            .unwrap();
        assert_eq!(
            Vec::<f64>::try_from(&g).unwrap(),
            vec![0.2, 0.2, 0.2, 1.0, 1.0]
        );
        // Twice differentiable (attacks differentiate through SGLD refinement).
        let h = (&g * &x).sum(Kind::Double);
        let gg = Tensor::run_backward(&[h], &[&x], false, false)
            .pop()
            .unwrap();
        assert_eq!(
            Vec::<f64>::try_from(&gg).unwrap(),
            vec![0.2, 0.2, 0.2, 1.0, 1.0]
        );
    }

    #[test]
    fn shim_errors_become_model_errors() {
        let ints = Tensor::from_slice(&[1i64, -2]);
        let err = leaky_relu(&ints, 0.2).unwrap_err().to_string();
        assert!(err.contains("leaky_relu"), "{err}");
    }

    #[test]
    fn channels_last_keeps_values() {
        let x = Tensor::arange(2 * 3 * 4 * 5, (Kind::Float, Device::Cpu)).view([2, 3, 4, 5]);
        let y = channels_last(&x).unwrap();
        assert!(y.equal(&x));
        assert_eq!(y.stride(), vec![60, 1, 15, 3]);
    }

    #[test]
    fn auto_precision_resolves_to_a_concrete_one_by_the_device() {
        for device in [Device::Cpu, Device::Cuda(0)] {
            let resolved = Precision::Auto.resolve(device);
            assert_ne!(resolved, Precision::Auto);
            assert_eq!(resolved == Precision::Bf16, native_bf16(device));
            assert_eq!(resolved.resolve(device), resolved, "idempotent");
            for p in [Precision::Fp32, Precision::Bf16] {
                assert_eq!(p.resolve(device), p);
            }
        }
        assert!(native_bf16(Device::Cuda(0)));
        // What the CPU reports, checked independently of std's detection where Linux says it.
        if let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") {
            if cfg!(target_arch = "x86_64") {
                let flag = cpuinfo
                    .lines()
                    .find(|l| l.starts_with("flags"))
                    .is_some_and(|l| l.split_whitespace().any(|f| f == "avx512_bf16"));
                assert_eq!(native_bf16(Device::Cpu), flag);
            }
        }
        // Auto runs a matrix product in the precision it resolves to.
        let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu));
        let p = Precision::Auto.run(Device::Cpu, || a.matmul(&a)).unwrap();
        let expected = match Precision::Auto.resolve(Device::Cpu) {
            Precision::Bf16 => Kind::BFloat16,
            _ => Kind::Float,
        };
        assert_eq!(p.kind(), expected);
        for (p, name) in [
            (Precision::Fp32, "fp32"),
            (Precision::Bf16, "bf16"),
            (Precision::Auto, "auto"),
        ] {
            assert_eq!(p.name(), name);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{name}\""));
        }
    }

    #[test]
    fn autocast_nests_and_restores() {
        let a = Tensor::ones([2, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let (inner, outer_after) = autocast(Device::Cpu, true, || {
            let inner = autocast(Device::Cpu, true, || a.matmul(&a)).unwrap();
            (inner, a.matmul(&a))
        })
        .unwrap();
        assert_eq!(inner.kind(), Kind::BFloat16);
        assert_eq!(
            outer_after.kind(),
            Kind::BFloat16,
            "still inside the outer region"
        );
        assert_eq!(a.matmul(&a).kind(), Kind::Float, "autocast is off again");
        // Gradients reach the float32 input through the casts.
        let g = Tensor::run_backward(
            &[inner.to_kind(Kind::Float).sum(Kind::Float)],
            &[&a],
            false,
            false,
        )
        .pop()
        .unwrap();
        assert_eq!(g.kind(), Kind::Float);
        // d/da of sum(a·a) for a 2x2 of ones: row sums plus column sums, 2 + 2.
        assert_eq!(
            Vec::<f32>::try_from(g.flatten(0, -1)).unwrap(),
            vec![4.0; 4]
        );
    }
}
