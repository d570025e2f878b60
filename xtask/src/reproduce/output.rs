//! `results/<preset>/<target>/`: README.md (our numbers beside the paper's, one line per claim),
//! results.json (every number) and the PNGs; `results/<preset>/README.md`: every target's
//! claims at a glance.

use super::claims::{Claim, Verdict};
use super::preset::Preset;
use super::targets::{Assembled, TargetDef, TARGETS};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `results.json` of one target.
#[derive(Debug, Serialize, Deserialize)]
pub struct TargetResults {
    /// The target.
    pub target: String,
    /// What it reproduces.
    pub title: String,
    /// The preset.
    pub preset: String,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// Why it was not run, if it was not.
    #[serde(default)]
    pub not_run: Option<String>,
    /// The claims.
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// Every number.
    #[serde(default)]
    pub numbers: serde_json::Value,
    /// The images of the folder.
    #[serde(default)]
    pub images: Vec<String>,
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn header(target: &TargetDef, preset: &Preset, seeds: &[u64]) -> String {
    format!(
        "# {}\n\nPreset `{}`: {}. Seeds: {}.\n\n",
        target.title,
        preset.name,
        preset.description,
        seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Writes `results/<preset>/<target>/` from an assembly. A PNG the assembly names but the
/// command did not write is an error naming it.
pub fn write_target(
    results: &Path,
    preset: &Preset,
    seeds: &[u64],
    target: &TargetDef,
    a: &Assembled,
) -> Result<()> {
    let dir = results.join(target.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut md = header(target, preset, seeds);
    md.push_str(a.body.trim_end());
    md.push_str("\n\n## Claims of the paper\n\n");
    if a.claims.is_empty() {
        md.push_str("(none for this target)\n");
    }
    for c in &a.claims {
        md.push_str(&c.markdown());
        md.push('\n');
    }
    if !a.notes.is_empty() {
        md.push_str("\n## Notes\n\n");
        for n in &a.notes {
            md.push_str(&format!("- {n}\n"));
        }
    }
    if !a.images.is_empty() {
        md.push_str("\n## Images\n\n");
    }
    for img in &a.images {
        if !img.src.is_file() {
            bail!(
                "{}: expected the image {} (written by the `jem` command), but it is not there",
                target.name,
                img.src.display()
            );
        }
        let dest = dir.join(&img.name);
        std::fs::copy(&img.src, &dest)
            .with_context(|| format!("copying {} to {}", img.src.display(), dest.display()))?;
        md.push_str(&format!(
            "{}\n\n![{}]({})\n\n",
            img.caption, img.caption, img.name
        ));
    }
    write(&dir.join("README.md"), &md)?;
    let json = TargetResults {
        target: target.name.into(),
        title: target.title.into(),
        preset: preset.name.into(),
        seeds: seeds.to_vec(),
        not_run: None,
        claims: a.claims.clone(),
        numbers: a.numbers.clone(),
        images: a.images.iter().map(|i| i.name.clone()).collect(),
    };
    write(
        &dir.join("results.json"),
        &serde_json::to_string_pretty(&json)?,
    )
}

/// Writes the folder of a target that could not run, saying why.
pub fn write_not_run(
    results: &Path,
    preset: &Preset,
    seeds: &[u64],
    target: &TargetDef,
    why: &str,
) -> Result<()> {
    let dir = results.join(target.name);
    let mut md = header(target, preset, seeds);
    md.push_str(&format!("**Not run:** {why}\n"));
    write(&dir.join("README.md"), &md)?;
    let json = TargetResults {
        target: target.name.into(),
        title: target.title.into(),
        preset: preset.name.into(),
        seeds: seeds.to_vec(),
        not_run: Some(why.into()),
        claims: Vec::new(),
        numbers: serde_json::Value::Null,
        images: Vec::new(),
    };
    write(
        &dir.join("results.json"),
        &serde_json::to_string_pretty(&json)?,
    )
}

/// Rewrites `results/<preset>/README.md` from every target folder there.
pub fn write_index(results: &Path, preset: &Preset) -> Result<()> {
    let mut md = format!(
        "# The paper's claims on the `{}` preset\n\n{}.\n\n\
         ✅ supported, ❌ not supported, ➖ not measurable at this scale. Each target's folder has \
         the tables (ours beside the paper's), results.json with every number, and the PNGs.\n\n",
        preset.name, preset.description
    );
    let mut counts = [0usize; 3];
    let mut any = false;
    for target in &TARGETS {
        let path = results.join(target.name).join("results.json");
        if !path.is_file() {
            continue;
        }
        any = true;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let r: TargetResults =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        md.push_str(&format!(
            "## [{}]({}/README.md) — {}\n\n",
            target.name, target.name, r.title
        ));
        if let Some(why) = &r.not_run {
            md.push_str(&format!("Not run: {why}\n\n"));
            continue;
        }
        md.push_str(&format!(
            "Seeds: {}.\n\n",
            r.seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for c in &r.claims {
            counts[match c.verdict {
                Verdict::Supported => 0,
                Verdict::NotSupported => 1,
                Verdict::NotMeasurable => 2,
            }] += 1;
            md.push_str(&c.markdown());
            md.push('\n');
        }
        md.push('\n');
    }
    if !any {
        md.push_str("(no target has been run yet)\n");
    }
    md.push_str(&format!(
        "In all: {} supported, {} not supported, {} not measurable at this scale.\n",
        counts[0], counts[1], counts[2]
    ));
    write(&results.join("README.md"), &md)
}
