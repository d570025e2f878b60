//! Fault injection for the fault tests: named points inside
//! [`write_atomic`](crate::checkpoint::write_atomic) and
//! [`MetricsLog::write`](crate::metrics::MetricsLog::write) where a test-installed hook can fail
//! the write (as a full disk would) or kill the process (as a power cut would).
//!
//! Public only with the `fault-injection` feature, which only jem-train's own tests enable (a
//! dev-dependency of the crate on itself); without it this module is private and every point is
//! an empty inline function. A hook is installed per thread, so tests running side by side do
//! not see each other's faults, and nothing outside a test ever installs one.

use std::path::Path;

/// Where a write can be interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Without the feature, `MetricsLog::write` writes its line at once and names no site.
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
pub enum Site {
    /// [`write_atomic`](crate::checkpoint::write_atomic): the temporary file holds the first
    /// half of the bytes, not yet synced.
    TempHalfWritten,
    /// The temporary file is complete and synced, not yet renamed over the destination.
    TempSynced,
    /// Renamed over the destination; the directory not yet synced.
    Renamed,
    /// [`MetricsLog::write`](crate::metrics::MetricsLog::write): half of a line written.
    MetricsHalfLine,
}

/// A hook: called at every point with the site and the destination file; an error fails the
/// write there (the caller reports it as the operating system's error).
#[cfg(feature = "fault-injection")]
pub type Hook = Box<dyn FnMut(Site, &Path) -> std::io::Result<()>>;

#[cfg(feature = "fault-injection")]
thread_local! {
    static HOOK: std::cell::RefCell<Option<Hook>> = const { std::cell::RefCell::new(None) };
}

/// Installs (or with `None` removes) this thread's hook.
#[cfg(feature = "fault-injection")]
pub fn set_hook(hook: Option<Hook>) {
    HOOK.with(|h| *h.borrow_mut() = hook);
}

/// Calls this thread's hook, if any. Never panics: a point reached while the thread is being
/// torn down, or from inside the hook itself, does nothing.
#[cfg(feature = "fault-injection")]
pub(crate) fn point(site: Site, path: &Path) -> std::io::Result<()> {
    HOOK.try_with(|h| match h.try_borrow_mut() {
        Ok(mut hook) => hook.as_mut().map_or(Ok(()), |hook| hook(site, path)),
        Err(_) => Ok(()),
    })
    .unwrap_or(Ok(()))
}

/// Without the `fault-injection` feature: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn point(_site: Site, _path: &Path) -> std::io::Result<()> {
    Ok(())
}
