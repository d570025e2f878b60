//! Running one side of the comparison as a child process: the environment both sides share,
//! the JSON line each prints, and the child's peak resident memory.

use crate::util::describe;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};

/// glibc `M_MMAP_THRESHOLD` of both sides: `jem` sets it with `mallopt` at start
/// (crates/jem-cli/src/memory.rs), the peer gets it as a glibc tunable.
pub const MMAP_THRESHOLD: u64 = 256 << 20;
/// glibc `M_TRIM_THRESHOLD` of both sides (as [`MMAP_THRESHOLD`]).
pub const TRIM_THRESHOLD: u64 = 1 << 30;

/// The environment variables both sides start with (on top of the inherited environment):
/// the same OpenMP and MKL thread counts, and the allocator thresholds `jem` applies to itself
/// as glibc tunables, so an inherited `GLIBC_TUNABLES` cannot make the sides differ either.
pub fn shared_env(threads: usize) -> Vec<(&'static str, String)> {
    vec![
        ("OMP_NUM_THREADS", threads.to_string()),
        ("MKL_NUM_THREADS", threads.to_string()),
        (
            "GLIBC_TUNABLES",
            format!(
                "glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:glibc.malloc.trim_threshold={TRIM_THRESHOLD}"
            ),
        ),
    ]
}

/// One side's run: the JSON line it printed and what the kernel measured of it.
#[derive(Debug, Clone)]
pub struct SideRun {
    /// The last stdout line that is a JSON object.
    pub json: Value,
    /// Peak resident set size of the child (`ru_maxrss`, KiB); `None` off Linux.
    pub max_rss_kib: Option<u64>,
}

impl SideRun {
    /// Peak resident memory in MiB.
    pub fn max_rss_mib(&self) -> Option<f64> {
        self.max_rss_kib.map(|kib| kib as f64 / 1024.0)
    }
}

/// `cmd` with the shared variables it sets shown in front, as a shell would take it.
pub fn describe_with_env(cmd: &Command) -> String {
    let mut out = String::new();
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        if ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "GLIBC_TUNABLES"].contains(&key.as_ref()) {
            if let Some(value) = value {
                out.push_str(&format!("{key}={} ", value.to_string_lossy()));
            }
        }
    }
    out + &describe(cmd)
}

/// Runs `cmd` (stderr shown as it comes), waits for it with its resource usage, and parses the
/// last stdout line that is a JSON object.
pub fn run_side(cmd: &mut Command) -> Result<SideRun> {
    let shown = describe_with_env(cmd);
    eprintln!("$ {shown}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .context("the child's stdout is not piped")?
        .read_to_string(&mut stdout)
        .with_context(|| format!("reading the output of `{shown}`"))?;
    let (status, max_rss_kib) = wait_with_usage(child)?;
    if !status.success() {
        bail!("`{shown}` failed with {status}");
    }
    let json = last_json_line(&stdout).with_context(|| format!("the output of `{shown}`"))?;
    Ok(SideRun { json, max_rss_kib })
}

/// The last line of `stdout` that is a JSON object, parsed.
pub fn last_json_line(stdout: &str) -> Result<Value> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("no JSON line in:\n{stdout}"))?;
    let value: Value = serde_json::from_str(line).context("parsing the JSON line")?;
    if !value.is_object() {
        bail!("the JSON line is not an object: {line}");
    }
    Ok(value)
}

/// Waits for `child` with `wait4`, which also returns that child's own peak resident set
/// (unlike `getrusage(RUSAGE_CHILDREN)`, the maximum over every child waited for so far).
#[cfg(target_os = "linux")]
fn wait_with_usage(child: std::process::Child) -> Result<(ExitStatus, Option<u64>)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = libc::pid_t::try_from(child.id()).context("child pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own child, not yet reaped (std's Child only reaps in wait/try_wait,
        // which are never called on it); status and usage are valid for writes.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context(format!("waiting for child {pid}"));
        }
    }
    // Reaped: dropping the handle only closes its pipes.
    drop(child);
    let max_rss_kib = u64::try_from(usage.ru_maxrss).ok();
    Ok((ExitStatus::from_raw(status), max_rss_kib))
}

#[cfg(not(target_os = "linux"))]
fn wait_with_usage(mut child: std::process::Child) -> Result<(ExitStatus, Option<u64>)> {
    Ok((child.wait()?, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_env_has_the_allocator_jem_sets_and_the_threads() {
        let env = shared_env(3);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("OMP_NUM_THREADS"), Some("3"));
        assert_eq!(get("MKL_NUM_THREADS"), Some("3"));
        // The exact values of crates/jem-cli/src/memory.rs (256 MiB, 1 GiB) in glibc's syntax.
        assert_eq!(
            get("GLIBC_TUNABLES"),
            Some("glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824")
        );
    }

    #[test]
    fn jem_cli_sets_the_same_thresholds() {
        // xtask depends on no jem crate, so read jem's constants from its source: if someone
        // changes them there, the peer must change too.
        let src = std::fs::read_to_string(
            crate::util::workspace_root().join("crates/jem-cli/src/memory.rs"),
        )
        .expect("jem-cli's memory.rs");
        assert!(
            src.contains("MMAP_THRESHOLD: i32 = 256 << 20;"),
            "jem's mmap threshold changed"
        );
        assert!(
            src.contains("TRIM_THRESHOLD: i32 = 1 << 30;"),
            "jem's trim threshold changed"
        );
        assert_eq!(MMAP_THRESHOLD, 256 << 20);
        assert_eq!(TRIM_THRESHOLD, 1 << 30);
    }

    #[test]
    fn the_last_json_object_line_wins() {
        let out = "warming up\n{\"a\": 1}\nnoise {\n  {\"a\": 2}\ntrailer\n";
        assert_eq!(last_json_line(out).unwrap()["a"], 2);
        assert!(last_json_line("no json here\n").is_err());
        assert!(last_json_line("{not json\n").is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_child_reports_its_own_peak_memory() {
        // A child that fills a 64 MiB buffer must report at least that (wait4 counts the
        // child's own waited-for children too, as the peer's would be); one that does not, far less.
        let mut big = Command::new("sh");
        big.args([
            "-c",
            "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null && echo '{\"ok\": 2}'",
        ]);
        let mut small = Command::new("sh");
        small.args(["-c", "echo '{\"ok\": 1}'"]);
        let big = run_side(&mut big).unwrap();
        let small = run_side(&mut small).unwrap();
        assert_eq!(small.json["ok"], 1);
        assert_eq!(big.json["ok"], 2);
        assert!(big.max_rss_mib().unwrap() >= 64.0, "{:?}", big.max_rss_kib);
        assert!(
            small.max_rss_mib().unwrap() < 32.0,
            "{:?}",
            small.max_rss_kib
        );
    }

    #[test]
    fn a_failing_child_is_an_error() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo '{\"ok\": 1}'; exit 3"]);
        let err = run_side(&mut cmd).unwrap_err().to_string();
        assert!(err.contains("failed"), "{err}");
    }
}
