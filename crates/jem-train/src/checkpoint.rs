//! Single-file checkpoints in the [safetensors](https://huggingface.co/docs/safetensors) format,
//! with a checksum, written atomically.
//!
//! A checkpoint is an ordinary safetensors file: PyTorch users open it with
//! `safetensors.safe_open(path, "pt")` (weights under `model.`, optimiser moments under `optim.`,
//! the replay buffer under `buffer.`). Its `__metadata__` holds two strings:
//!
//! | key | value |
//! |---|---|
//! | `jem` | the caller's metadata, as JSON (the run's config, counters, RNG salts, ...) |
//! | `jem.checksum` | FNV-1a (64 bit, hex) of the `jem` string followed by every tensor's bytes in name order |
//!
//! Tensors are stored raw (f32, f64, i64, bf16), so a round trip is bit-exact. The safetensors
//! parser checks every tensor's byte range against the file before anything is copied; the
//! checksum then turns any truncation or corruption of the data into a clear error naming the
//! file instead of silently wrong weights.
//!
//! Writes go to a temporary file in the same directory, which is fsynced and then renamed over
//! the destination (and the directory fsynced): a crash at any point leaves either the old or the
//! new checkpoint, never a mix. Leftover temporary files are ignored by readers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, View};
use tch::{Device, Kind, Tensor};

use crate::error::{Result, TrainError};
use crate::fault::{self, Site};

/// `__metadata__` key of the caller's JSON metadata.
pub const META_KEY: &str = "jem";
/// `__metadata__` key of the checksum.
pub const CHECKSUM_KEY: &str = "jem.checksum";
/// Signature of the checkpoint format jem wrote before safetensors (no longer read).
const OLD_MAGIC: &[u8; 8] = b"JEMCKPT1";
/// Prefix of the temporary files written next to a checkpoint.
pub const TEMP_PREFIX: &str = ".tmp-";

/// FNV-1a, 64 bit, continued from `h`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The checksum of a checkpoint: its JSON metadata, then each tensor's bytes in name order.
fn checksum<'a>(meta: &str, tensors: impl Iterator<Item = &'a [u8]>) -> String {
    let mut h = fnv1a(FNV_OFFSET, meta.as_bytes());
    for bytes in tensors {
        h = fnv1a(h, bytes);
    }
    format!("{h:016x}")
}

fn dtype_of(kind: Kind) -> Option<(Dtype, usize)> {
    match kind {
        Kind::Float => Some((Dtype::F32, 4)),
        Kind::Double => Some((Dtype::F64, 8)),
        Kind::Int64 => Some((Dtype::I64, 8)),
        Kind::BFloat16 => Some((Dtype::BF16, 2)),
        _ => None,
    }
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    match dtype {
        Dtype::F32 => Some(Kind::Float),
        Dtype::F64 => Some(Kind::Double),
        Dtype::I64 => Some(Kind::Int64),
        Dtype::BF16 => Some(Kind::BFloat16),
        _ => None,
    }
}

/// A tensor's bytes, ready for safetensors.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Encodes metadata and tensors into a safetensors file's bytes.
pub fn encode(meta: &serde_json::Value, tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let mut raw: Vec<(String, Raw)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (dtype, width) = dtype_of(t.kind()).ok_or_else(|| {
            TrainError::DataMismatch(format!(
                "tensor `{name}` has dtype {:?}; checkpoints hold f32, f64, i64 and bf16",
                t.kind()
            ))
        })?;
        let t = t.f_to_device(Device::Cpu)?.f_contiguous()?;
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * width];
        t.f_copy_data_u8(&mut bytes, numel)?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        raw.push((
            name.clone(),
            Raw {
                dtype,
                shape,
                bytes,
            },
        ));
    }
    raw.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = raw.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(TrainError::DataMismatch(format!(
            "two checkpoint tensors are named `{}`",
            w[0].0
        )));
    }
    let meta = serde_json::to_string(meta)
        .map_err(|e| TrainError::DataMismatch(format!("cannot encode checkpoint metadata: {e}")))?;
    let sum = checksum(&meta, raw.iter().map(|(_, r)| r.bytes.as_slice()));
    let info = HashMap::from([
        (META_KEY.to_string(), meta),
        (CHECKSUM_KEY.to_string(), sum),
    ]);
    safetensors::serialize(raw.iter().map(|(n, r)| (n.as_str(), r)), &Some(info))
        .map_err(|e| TrainError::DataMismatch(format!("cannot encode checkpoint: {e}")))
}

/// A decoded checkpoint: metadata and named tensors (on the CPU).
#[derive(Debug)]
pub struct CheckpointData {
    /// The metadata given to [`write_checkpoint`].
    pub meta: serde_json::Value,
    /// The tensors, in name order.
    pub tensors: Vec<(String, Tensor)>,
}

/// Decodes a checkpoint's bytes; `path` only names the file in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<CheckpointData> {
    let bad = |reason: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.starts_with(OLD_MAGIC) {
        return Err(bad(
            "a checkpoint of jem's earlier JEMCKPT1 format, which this build no longer reads; \
             retrain, or load it with the jem release that wrote it"
                .into(),
        ));
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        bad(format!(
            "not a readable safetensors file ({e}; {} bytes): corrupted, truncated or not a checkpoint",
            bytes.len()
        ))
    })?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("unreadable safetensors header: {e}")))?;
    let info = header.metadata().as_ref();
    let meta_text = info.and_then(|m| m.get(META_KEY)).ok_or_else(|| {
        bad(format!(
            "not a jem checkpoint (no `{META_KEY}` entry in __metadata__)"
        ))
    })?;
    let stored = info
        .and_then(|m| m.get(CHECKSUM_KEY))
        .ok_or_else(|| bad(format!("no `{CHECKSUM_KEY}` entry in __metadata__")))?;
    let mut views = st.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    if checksum(meta_text, views.iter().map(|(_, v)| v.data())) != *stored {
        return Err(bad(
            "corrupted (checksum mismatch); restore it from a backup or resume from another checkpoint"
                .into(),
        ));
    }
    let meta: serde_json::Value = serde_json::from_str(meta_text)
        .map_err(|e| bad(format!("unreadable `{META_KEY}` metadata: {e}")))?;
    let mut tensors = Vec::with_capacity(views.len());
    for (name, v) in views {
        let kind = kind_of(v.dtype()).ok_or_else(|| {
            bad(format!(
                "tensor `{name}` has unsupported dtype {:?}",
                v.dtype()
            ))
        })?;
        let shape: Vec<i64> = v
            .shape()
            .iter()
            .map(|&d| i64::try_from(d))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| bad(format!("tensor `{name}` has a dimension beyond i64")))?;
        let t = Tensor::f_from_data_size(v.data(), &shape, kind)?;
        tensors.push((name, t));
    }
    Ok(CheckpointData { meta, tensors })
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
        // Written in two halves so that the fault tests can stop a write half-way.
        let (head, tail) = bytes.split_at(bytes.len() / 2);
        f.write_all(head).map_err(|e| TrainError::io(&tmp, e))?;
        fault::point(Site::TempHalfWritten, path).map_err(|e| TrainError::io(&tmp, e))?;
        f.write_all(tail).map_err(|e| TrainError::io(&tmp, e))?;
        f.sync_all().map_err(|e| TrainError::io(&tmp, e))?;
        drop(f);
        fault::point(Site::TempSynced, path).map_err(|e| TrainError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))?;
        fault::point(Site::Renamed, path).map_err(|e| TrainError::io(path, e))?;
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
        let mut expected = sample();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back.tensors.len(), expected.len());
        for ((n1, t1), (n2, t2)) in expected.iter().zip(&back.tensors) {
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
        let good = std::fs::read(&path).unwrap();
        // A flipped bit in the tensor data: the checksum catches it.
        let mut bytes = good.clone();
        let mid = bytes.len() - 20;
        bytes[mid] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("b.ckpt") && e.contains("checksum"), "{e}");
        // Truncated: the safetensors parser refuses byte ranges beyond the file.
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("b.ckpt") && e.contains("truncated"), "{e}");
        std::fs::write(&path, b"hello").unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("not a readable safetensors file"), "{e}");
        std::fs::write(&path, b"JEMCKPT1\0\0\0\0\0\0\0\0").unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("JEMCKPT1"), "{e}");
        // A safetensors file that jem did not write.
        let plain = Tensor::from_slice(&[1.0f32, 2.0]);
        Tensor::write_safetensors(&[("w", &plain)], &path).unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("not a jem checkpoint"), "{e}");
        let e = read_checkpoint(&dir.path().join("none.ckpt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.ckpt"), "{e}");
    }

    #[test]
    fn metadata_tampering_is_caught_by_the_checksum() {
        // Re-serialise the same tensors with edited JSON metadata but the old checksum.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        write_checkpoint(&path, &serde_json::json!({"iteration": 1}), &sample()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (n, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let text = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
        assert!(header
            .metadata()
            .as_ref()
            .unwrap()
            .contains_key(CHECKSUM_KEY));
        let forged = text.replace("{\\\"iteration\\\":1}", "{\\\"iteration\\\":2}");
        assert_ne!(forged, text, "the metadata is where the test expects it");
        let mut out = (forged.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(forged.as_bytes());
        out.extend_from_slice(&bytes[8 + n..]);
        std::fs::write(&path, &out).unwrap();
        let e = read_checkpoint(&path).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
    }

    #[test]
    fn duplicate_names_and_unsupported_dtypes_are_refused() {
        let t = Tensor::from_slice(&[1.0f32]);
        let e = encode(
            &serde_json::json!({}),
            &[("a".into(), t.shallow_clone()), ("a".into(), t)],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`a`"), "{e}");
        let e = encode(
            &serde_json::json!({}),
            &[("u".into(), Tensor::from_slice(&[1u8]))],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`u`"), "{e}");
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
