//! Small helpers shared by the xtask commands.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Root of the workspace (the parent of the xtask crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Run a command, echoing it first, and fail with its exit status.
pub fn run_checked(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", describe(cmd));
    }
    Ok(())
}

/// True when `program` can be started (looked up on PATH).
pub fn has_program(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Human-readable form of a command line, quoted so it can be pasted into a shell.
pub fn describe(cmd: &Command) -> String {
    let mut out = shell_quote(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&shell_quote(&arg.to_string_lossy()));
    }
    out
}

/// `s` as one POSIX shell word: unchanged when it is safe, else in single quotes.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// True when this process runs as root (so `apt-get install` can work).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Writes `<stem>.md` and `<stem>.json` into `out`, prints the Markdown and says where it went.
pub fn write_results(
    out: &Path,
    stem: &str,
    markdown: &str,
    json: &serde_json::Value,
) -> Result<()> {
    let md_path = out.join(format!("{stem}.md"));
    let json_path = out.join(format!("{stem}.json"));
    std::fs::write(&md_path, markdown).with_context(|| format!("writing {}", md_path.display()))?;
    std::fs::write(&json_path, serde_json::to_string_pretty(json)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("{markdown}");
    eprintln!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(())
}

/// Builds the `jem` binary (release) and returns its path.
pub fn build_release_jem(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_checked(Command::new(&cargo).current_dir(root).args([
        "build",
        "--release",
        "-p",
        "jem-cli",
    ]))?;
    Ok(root.join("target").join("release").join("jem"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_keeps_words_whole() {
        assert_eq!(shell_quote("train.seed=1"), "train.seed=1");
        assert_eq!(
            shell_quote("train.mode=\"baseline\""),
            "'train.mode=\"baseline\"'"
        );
        assert_eq!(shell_quote("[5500, 8000]"), "'[5500, 8000]'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
