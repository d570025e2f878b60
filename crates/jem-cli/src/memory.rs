//! glibc malloc tuning.
//!
//! libtorch frees and re-allocates the same large activation buffers every SGLD
//! step. With glibc's default (dynamic) mmap threshold and a 128 KiB trim
//! threshold those buffers are returned to the kernel and page-faulted back in
//! each step: measured here at about 0.5M page faults per 20 SGLD steps and up
//! to ~19% of step time on small Wide-ResNets. Raising both thresholds keeps the
//! memory in the process.

/// Allocations at least this large still get their own mapping.
pub(crate) const MMAP_THRESHOLD: i32 = 256 << 20;
/// Free memory at the top of the heap kept before trimming.
pub(crate) const TRIM_THRESHOLD: i32 = 1 << 30;

pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
