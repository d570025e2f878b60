//! Single-file checkpoints with a checksum, written atomically.
//!
//! Layout (little endian):
//!
//! ```text
//! "JEMCKPT1" | u64 header length | header (JSON) | tensor bytes | u64 FNV-1a of everything before
//! ```
//!
//! The JSON header holds the caller's metadata (any JSON value) and a directory of the tensors
//! (name, dtype, shape, byte offset, byte length). Tensors are stored raw (f32, f64 or i64), so a
//! round trip is bit-exact. The trailing checksum turns any truncation or corruption into a clear
//! error naming the file instead of silently wrong weights.
//!
//! Writes go to a temporary file in the same directory, which is fsynced and then renamed over
//! the destination (and the directory fsynced): a crash at any point leaves either the old or the
//! new checkpoint, never a mix. Leftover temporary files are ignored by readers.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{Result, TrainError};

const MAGIC: &[u8; 8] = b"JEMCKPT1";
/// Prefix of the temporary files written next to a checkpoint.
pub const TEMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    name: String,
    dtype: String,
    shape: Vec<i64>,
    offset: usize,
    len: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    meta: serde_json::Value,
    tensors: Vec<Entry>,
}

/// FNV-1a, 64 bit.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn dtype_name(kind: Kind) -> Option<(&'static str, usize)> {
    match kind {
        Kind::Float => Some(("f32", 4)),
        Kind::Double => Some(("f64", 8)),
        Kind::Int64 => Some(("i64", 8)),
        _ => None,
    }
}

fn dtype_kind(name: &str) -> Option<(Kind, usize)> {
    match name {
        "f32" => Some((Kind::Float, 4)),
        "f64" => Some((Kind::Double, 8)),
        "i64" => Some((Kind::Int64, 8)),
        _ => None,
    }
}

/// Encodes metadata and tensors into the checkpoint byte format.
pub fn encode(meta: &serde_json::Value, tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let mut entries = Vec::with_capacity(tensors.len());
    let mut data: Vec<u8> = Vec::new();
    for (name, t) in tensors {
        let (dtype, width) = dtype_name(t.kind()).ok_or_else(|| {
            TrainError::DataMismatch(format!(
                "tensor `{name}` has dtype {:?}; checkpoints hold f32, f64 and i64",
                t.kind()
            ))
        })?;
        let t = t.f_to_device(Device::Cpu)?.f_contiguous()?;
        let numel = t.numel();
        let len = numel * width;
        let offset = data.len();
        data.resize(offset + len, 0);
        t.f_copy_data_u8(&mut data[offset..], numel)?;
        entries.push(Entry {
            name: name.clone(),
            dtype: dtype.to_string(),
            shape: t.size(),
            offset,
            len,
        });
    }
    let header = serde_json::to_vec(&Header {
        meta: meta.clone(),
        tensors: entries,
    })
    .map_err(|e| TrainError::DataMismatch(format!("cannot encode checkpoint header: {e}")))?;
    let mut out = Vec::with_capacity(8 + 8 + header.len() + data.len() + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&data);
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// A decoded checkpoint: metadata and named tensors (on the CPU).
#[derive(Debug)]
pub struct CheckpointData {
    /// The metadata given to [`write_checkpoint`].
    pub meta: serde_json::Value,
    /// The tensors, in file order.
    pub tensors: Vec<(String, Tensor)>,
}

/// Decodes the checkpoint byte format; `path` only names the file in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<CheckpointData> {
    let bad = |reason: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < 24 || &bytes[..8] != MAGIC {
        return Err(bad(format!(
            "not a jem checkpoint (missing the JEMCKPT1 signature; {} bytes)",
            bytes.len()
        )));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 8);
    let stored = u64::from_le_bytes(tail.try_into().expect("8-byte tail"));
    if fnv1a(body) != stored {
        return Err(bad(
            "corrupted or truncated (checksum mismatch); restore it from a backup or resume from another checkpoint"
                .into(),
        ));
    }
    let header_len = u64::from_le_bytes(body[8..16].try_into().expect("8-byte length")) as usize;
    let header_end = 16usize
        .checked_add(header_len)
        .filter(|&e| e <= body.len())
        .ok_or_else(|| bad(format!("header length {header_len} exceeds the file")))?;
    let header: Header = serde_json::from_slice(&body[16..header_end])
        .map_err(|e| bad(format!("unreadable header: {e}")))?;
    let data = &body[header_end..];
    let mut tensors = Vec::with_capacity(header.tensors.len());
    for e in header.tensors {
        let (kind, width) = dtype_kind(&e.dtype)
            .ok_or_else(|| bad(format!("tensor `{}` has unknown dtype {}", e.name, e.dtype)))?;
        let numel: i64 = e.shape.iter().product();
        let end = e.offset.checked_add(e.len).filter(|&end| end <= data.len());
        if end.is_none() || numel < 0 || numel as usize * width != e.len {
            return Err(bad(format!(
                "tensor `{}` does not fit the file (shape {:?}, {} bytes at {})",
                e.name, e.shape, e.len, e.offset
            )));
        }
        let t = Tensor::f_from_data_size(&data[e.offset..e.offset + e.len], &e.shape, kind)?;
        tensors.push((e.name, t));
    }
    Ok(CheckpointData {
        meta: header.meta,
        tensors,
    })
}

/// Reads and decodes a checkpoint file; every error names the file.
pub fn read_checkpoint(path: &Path) -> Result<CheckpointData> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    decode(&bytes, path)
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, fsync, rename,
/// directory fsync.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| TrainError::io(path, std::io::Error::other("no file name")))?
        .to_string_lossy()
        .into_owned();
    let tmp: PathBuf = dir.join(format!("{TEMP_PREFIX}{file_name}.{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| TrainError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| TrainError::io(&tmp, e))?;
        f.sync_all().map_err(|e| TrainError::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))?;
        // Persist the rename itself; not every platform lets a directory be opened.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Encodes and atomically writes a checkpoint.
pub fn write_checkpoint(
    path: &Path,
    meta: &serde_json::Value,
    tensors: &[(String, Tensor)],
) -> Result<()> {
    let bytes = encode(meta, tensors)?;
    write_atomic(path, &bytes)?;
    tracing::debug!(path = %path.display(), bytes = bytes.len(), "wrote checkpoint");
    Ok(())
}

/// Removes temporary files left in `dir` by interrupted writes (returns how many).
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            tracing::info!(path = %entry.path().display(), "removed a partial checkpoint write");
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(String, Tensor)> {
        vec![
            (
                "w".to_string(),
                Tensor::from_slice(&[1.5f32, -0.0, f32::MIN_POSITIVE, 3.25e-7]).view([2, 2]),
            ),
            ("ages".to_string(), Tensor::from_slice(&[0i64, 7, i64::MAX])),
            ("p".to_string(), Tensor::from_slice(&[0.05f64])),
        ]
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ckpt");
        let meta = serde_json::json!({"iteration": 12, "x": [1.0, 0.1]});
        write_checkpoint(&path, &meta, &sample()).unwrap();
        let back = read_checkpoint(&path).unwrap();
        assert_eq!(back.meta, meta);
        for ((n1, t1), (n2, t2)) in sample().iter().zip(&back.tensors) {
            assert_eq!(n1, n2);
            assert_eq!(t1.kind(), t2.kind());
            assert_eq!(t1.size(), t2.size());
            assert!(t1.equal(t2), "{n1}");
        }
        let listing: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(listing.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn corruption_truncation_and_foreign_files_are_reported_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.ckpt");
        write_checkpoint(&path, &serde_json::json!({}), &sample()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() - 20;
        bytes[mid] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("b.ckpt") && e.contains("checksum"), "{e}");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("b.ckpt") && e.contains("checksum"), "{e}");
        std::fs::write(&path, b"hello").unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("not a jem checkpoint"), "{e}");
        let e = read_checkpoint(&dir.path().join("none.ckpt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.ckpt"), "{e}");
    }

    #[test]
    fn a_partial_temp_file_does_not_affect_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.ckpt");
        let meta = serde_json::json!({"v": 1});
        write_checkpoint(&path, &meta, &sample()).unwrap();
        // A crash mid-write leaves a truncated temporary file next to the checkpoint.
        let full = encode(&serde_json::json!({"v": 2}), &sample()).unwrap();
        let tmp = dir.path().join(format!("{TEMP_PREFIX}last.ckpt.999"));
        std::fs::write(&tmp, &full[..full.len() / 3]).unwrap();
        assert_eq!(read_checkpoint(&path).unwrap().meta, meta);
        assert_eq!(remove_stale_temps(dir.path()), 1);
        assert!(!tmp.exists());
        // A later successful write replaces the checkpoint.
        write_checkpoint(&path, &serde_json::json!({"v": 3}), &sample()).unwrap();
        assert_eq!(read_checkpoint(&path).unwrap().meta["v"], 3);
    }
}
