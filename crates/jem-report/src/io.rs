//! Reading and writing reports; errors name the file and the JSON path of the bad field.

use crate::error::{ReportError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

fn type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    // `jem_report::ood::OodReport` -> `OodReport`; generics keep their inner path.
    full.rsplit("::").next().unwrap_or(full)
}

/// Parses `text` as a `T`; `origin` names the file in errors.
pub fn parse_json<T: DeserializeOwned>(text: &str, origin: &Path) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        ReportError::Parse {
            path: origin.to_path_buf(),
            what: type_name::<T>(),
            field,
            message: e.into_inner().to_string(),
        }
    })?;
    de.end().map_err(|e| ReportError::Parse {
        path: origin.to_path_buf(),
        what: type_name::<T>(),
        field: ".".into(),
        message: e.to_string(),
    })?;
    Ok(value)
}

/// Reads the report `T` from `path`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_json(&text, path)
}

/// Writes `report` to `path` as pretty-printed JSON.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, report: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(|e| ReportError::Serialise {
        what: type_name::<T>(),
        message: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}
