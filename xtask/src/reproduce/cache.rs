//! Trained models are cached by a hash of their resolved config.
//!
//! The resolved config is the preset's TOML file with the model's `section.key=value`
//! overrides applied exactly as `jem train --set` applies them (the value parsed as TOML, else
//! taken as a string). Its hash is the SHA-256 of a canonical text of the resulting document:
//! keys sorted, numbers and strings printed one way, comments and layout gone. So reformatting
//! a config file keeps its models; changing any value trains new ones.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;

/// Sets `section.key=value` in `doc`, as jem-train's `apply_override` does.
pub fn apply_override(doc: &mut toml::Table, spec: &str) -> Result<()> {
    let (path, raw) = spec
        .split_once('=')
        .with_context(|| format!("override `{spec}`: expected `section.key=value`"))?;
    let keys: Vec<&str> = path.trim().split('.').map(str::trim).collect();
    if keys.len() < 2 || keys.iter().any(|k| k.is_empty()) {
        bail!("override `{spec}`: `{path}` is not a `section.key` path");
    }
    if !["data", "model", "sampler", "train"].contains(&keys[0]) {
        bail!(
            "override `{spec}`: unknown section `{}` (expected data, model, sampler or train)",
            keys[0]
        );
    }
    let raw = raw.trim();
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let mut table = doc;
    for key in &keys[..keys.len() - 1] {
        let entry = table
            .entry((*key).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            _ => bail!("override `{spec}`: `{key}` is not a table"),
        };
    }
    table.insert(keys[keys.len() - 1].to_string(), value);
    Ok(())
}

/// The preset file `text` (named `origin` in errors) with `overrides` applied.
pub fn resolve(text: &str, origin: &Path, overrides: &[String]) -> Result<toml::Table> {
    let mut doc: toml::Table =
        toml::from_str(text).with_context(|| format!("parsing {}", origin.display()))?;
    for o in overrides {
        apply_override(&mut doc, o).with_context(|| format!("resolving {}", origin.display()))?;
    }
    Ok(doc)
}

fn canonical_value(v: &toml::Value, out: &mut String) {
    match v {
        toml::Value::String(s) => {
            out.push_str(&serde_json::to_string(s).expect("a string serialises"))
        }
        toml::Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        // `{:?}` is the shortest text that reads back as the same f64: 1e-3 and 0.001 agree.
        toml::Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        toml::Value::Boolean(b) => {
            let _ = write!(out, "{b}");
        }
        toml::Value::Datetime(d) => {
            let _ = write!(out, "{d}");
        }
        toml::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_value(item, out);
            }
            out.push(']');
        }
        toml::Value::Table(t) => canonical_table(t, out),
    }
}

fn canonical_table(t: &toml::Table, out: &mut String) {
    let mut keys: Vec<&String> = t.keys().collect();
    keys.sort();
    out.push('{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).expect("a key serialises"));
        out.push(':');
        canonical_value(&t[k], out);
    }
    out.push('}');
}

/// One canonical text of a config document (sorted keys, no layout).
pub fn canonical(doc: &toml::Table) -> String {
    let mut out = String::new();
    canonical_table(doc, &mut out);
    out
}

/// SHA-256 (hex) of the canonical text of `doc`.
pub fn config_hash(doc: &toml::Table) -> String {
    hex(&Sha256::digest(canonical(doc).as_bytes()))
}

/// SHA-256 (hex) of `text`.
pub fn text_hash(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The short form used in directory names.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(text: &str, overrides: &[&str]) -> String {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        config_hash(&resolve(text, Path::new("t.toml"), &overrides).unwrap())
    }

    const A: &str = "[train]\nlr = 1e-3\nepochs = 3\nmode = \"jem\"\n[data]\nbatch_size = 32\n";

    #[test]
    fn formatting_comments_and_key_order_do_not_change_the_hash() {
        let b = "# a comment\n[data]\nbatch_size=32   # trailing\n\n[train]\nmode = 'jem'\nepochs = 3\nlr = 0.001\n";
        assert_eq!(hash(A, &[]), hash(b, &[]));
        // An inline table is the same document as a section.
        let c = "data = { batch_size = 32 }\ntrain = { lr = 0.001, epochs = 3, mode = \"jem\" }\n";
        assert_eq!(hash(A, &[]), hash(c, &[]));
    }

    #[test]
    fn any_value_change_changes_the_hash() {
        let base = hash(A, &[]);
        assert_ne!(base, hash(A, &["train.lr=2e-3"]));
        assert_ne!(base, hash(A, &["train.epochs=4"]));
        assert_ne!(base, hash(A, &["train.mode=\"baseline\""]));
        assert_ne!(base, hash(A, &["model.norm=\"batch\""]));
        // An override that sets what the file already says changes nothing.
        assert_eq!(base, hash(A, &["train.lr=0.001"]));
        // 3 (an integer) and 3.0 (a float) are different TOML values.
        assert_ne!(base, hash(A, &["train.epochs=3.0"]));
    }

    #[test]
    fn overrides_parse_as_jem_train_does() {
        let doc = resolve(
            A,
            Path::new("t.toml"),
            &[
                "train.optimizer=sgd".into(),
                "train.decay_epochs=[60, 120]".into(),
                "train.recovery.enabled=false".into(),
            ],
        )
        .unwrap();
        assert_eq!(doc["train"]["optimizer"].as_str(), Some("sgd"));
        assert_eq!(doc["train"]["decay_epochs"].as_array().unwrap().len(), 2);
        assert_eq!(doc["train"]["recovery"]["enabled"].as_bool(), Some(false));
        let err = resolve(A, Path::new("t.toml"), &["nosection.x=1".into()]).unwrap_err();
        assert!(format!("{err:#}").contains("unknown section `nosection`"));
        let err = resolve(A, Path::new("t.toml"), &["train.lr".into()]).unwrap_err();
        assert!(format!("{err:#}").contains("section.key=value"));
    }

    #[test]
    fn the_hash_is_sha256_of_the_canonical_text() {
        let doc = resolve("[train]\nlr = 0.5\n", Path::new("t.toml"), &[]).unwrap();
        assert_eq!(canonical(&doc), r#"{"train":{"lr":0.5}}"#);
        // sha256 of the empty string, a fixed point of every implementation.
        assert_eq!(
            text_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
