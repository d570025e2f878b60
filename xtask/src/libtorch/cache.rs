//! The libtorch cache: checking an install against what pip recorded, and a lock so two
//! set-ups never provision (or delete) the same directory at once.
//!
//! pip writes a `RECORD` file into each wheel's `*.dist-info` with the size and sha256 of
//! every file it unpacked. An install is usable when every shared library listed there
//! (`torch/lib/*.so*`, `nvidia/*/lib/*.so*`) is present with that size and hash, the headers
//! tch needs exist and the links set-up made next to `libtorch_cpu.so` resolve. Hashing a
//! gigabyte of libraries takes seconds, so once a library has matched, its size and
//! modification time go into a stamp file and later checks re-hash only files whose size or
//! time changed; a truncated or rewritten library always changes one of them.

use anyhow::{Context, Result};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Marker written into a complete install.
pub const COMPLETE_MARKER: &str = ".jem-complete";
/// Sizes and times of the libraries that matched their recorded hashes.
pub const VERIFIED_STAMP: &str = ".jem-verified";
/// The lock file in the cache directory.
pub const LOCK_FILE: &str = ".jem-setup.lock";

/// Files tch needs from the torch directory.
pub const KEY_FILES: [&str; 3] = [
    "lib/libtorch_cpu.so",
    "lib/libc10.so",
    "include/torch/csrc/api/include/torch/torch.h",
];

/// What is in the cache for one install directory.
#[derive(Debug, PartialEq, Eq)]
pub enum CacheState {
    /// Complete and intact.
    Ready,
    /// Nothing there.
    Absent,
    /// There, but not usable; the reason names the file.
    Damaged(String),
}

/// Checks `install` (the `--target` directory pip installed the wheels into).
pub fn cache_state(install: &Path) -> CacheState {
    if !install.exists() {
        return CacheState::Absent;
    }
    if !install.join(COMPLETE_MARKER).is_file() {
        return CacheState::Damaged(format!("{COMPLETE_MARKER} is missing"));
    }
    match verify_install(install) {
        Ok(()) => CacheState::Ready,
        Err(reason) => CacheState::Damaged(reason),
    }
}

/// `Ok` when the headers exist, every library pip recorded matches its size and sha256 and
/// every link in `torch/lib` resolves; otherwise the first problem found.
pub fn verify_install(install: &Path) -> std::result::Result<(), String> {
    let torch = install.join("torch");
    for needed in KEY_FILES {
        if !torch.join(needed).is_file() {
            return Err(format!("torch/{needed} is missing"));
        }
    }
    let records = read_records(install)?;
    if !records.iter().any(|r| r.path.starts_with("torch/lib/")) {
        return Err("torch's RECORD lists no library in torch/lib".into());
    }
    let mut stamp = read_stamp(install);
    let mut changed = false;
    for record in &records {
        let path = install.join(&record.path);
        let meta = std::fs::metadata(&path).map_err(|_| format!("{} is missing", record.path))?;
        if meta.len() != record.size {
            return Err(format!(
                "{} is {} bytes, pip recorded {}",
                record.path,
                meta.len(),
                record.size
            ));
        }
        let seen = (meta.len(), mtime_ns(&meta));
        if stamp.get(&record.path) == Some(&seen) {
            continue;
        }
        let digest = sha256_b64(&path).map_err(|e| format!("cannot read {}: {e}", record.path))?;
        if digest != record.sha256 {
            return Err(format!(
                "{} does not match the sha256 pip recorded",
                record.path
            ));
        }
        stamp.insert(record.path.clone(), seen);
        changed = true;
    }
    let lib = torch.join("lib");
    for entry in std::fs::read_dir(&lib).map_err(|e| format!("cannot list torch/lib: {e}"))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
            && !path.exists()
        {
            return Err(format!(
                "torch/lib/{} points at a missing file",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    if changed {
        // A stamp that cannot be written only costs a re-hash next time.
        let _ = write_stamp(install, &stamp);
    }
    Ok(())
}

/// One library line of a pip `RECORD` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Path relative to the install directory.
    pub path: String,
    /// `urlsafe_b64(sha256)` without padding, as pip writes it.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

fn is_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    (path.starts_with("torch/lib/") || (path.starts_with("nvidia/") && path.contains("/lib/")))
        && (name.ends_with(".so") || name.contains(".so."))
}

/// The library lines of every `*.dist-info/RECORD` in `install`; torch's must exist.
pub fn read_records(install: &Path) -> std::result::Result<Vec<Record>, String> {
    let mut out = Vec::new();
    let mut torch_seen = false;
    let entries =
        std::fs::read_dir(install).map_err(|e| format!("cannot list the install: {e}"))?;
    let mut dist_infos: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dist-info"))
        .collect();
    dist_infos.sort();
    for dir in dist_infos {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let record = dir.join("RECORD");
        let text = match std::fs::read_to_string(&record) {
            Ok(text) => text,
            Err(_) => return Err(format!("{name}/RECORD is missing")),
        };
        torch_seen |= name.starts_with("torch-");
        for line in text.lines() {
            let mut fields = line.rsplitn(3, ',');
            let (Some(size), Some(hash), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if !is_library(path) {
                continue;
            }
            let (Some(sha256), Ok(size)) = (hash.strip_prefix("sha256="), size.parse::<u64>())
            else {
                return Err(format!("{name}/RECORD: malformed line {line:?}"));
            };
            out.push(Record {
                path: path.to_owned(),
                sha256: sha256.to_owned(),
                size,
            });
        }
    }
    if !torch_seen {
        return Err("torch's RECORD (torch-*.dist-info) is missing".into());
    }
    Ok(out)
}

/// `urlsafe_b64(sha256(file))` without padding, the form of pip's `RECORD`.
pub fn sha256_b64(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hasher.finalize()))
}

fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

type Stamp = BTreeMap<String, (u64, u128)>;

fn read_stamp(install: &Path) -> Stamp {
    let text = std::fs::read_to_string(install.join(VERIFIED_STAMP)).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let path = f.next()?.to_owned();
            let size = f.next()?.parse().ok()?;
            let time = f.next()?.parse().ok()?;
            Some((path, (size, time)))
        })
        .collect()
}

fn write_stamp(install: &Path, stamp: &Stamp) -> std::io::Result<()> {
    let mut text = String::new();
    for (path, (size, time)) in stamp {
        text.push_str(&format!("{path}\t{size}\t{time}\n"));
    }
    let tmp = install.join(format!("{VERIFIED_STAMP}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, install.join(VERIFIED_STAMP))
}

/// An exclusive OS lock (`flock`) on the cache directory, held until dropped. The kernel
/// releases it when the process exits however it exits, so a killed set-up leaves no stale
/// lock; the lock file holds the holder's pid for the message a waiting set-up prints.
#[derive(Debug)]
pub struct CacheLock {
    // Dropping the file releases the lock.
    _file: File,
}

/// Takes the cache lock, waiting (and saying for whom) while another set-up holds it.
pub fn lock_cache(cache: &Path) -> Result<CacheLock> {
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create the cache directory {}", cache.display()))?;
    let path = cache.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the cache lock {}", path.display()))?;
    // fs4's methods are called by path: std's `File::lock` (Rust 1.89) is newer than the
    // workspace's rust-version.
    if fs4::FileExt::try_lock(&file).is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        eprintln!(
            "waiting for another set-up (pid {}) that holds {}",
            holder.trim(),
            path.display()
        );
        fs4::FileExt::lock(&file).with_context(|| format!("cannot lock {}", path.display()))?;
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(CacheLock { _file: file })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Whether some handle holds the lock right now.
    fn is_locked(cache: &Path) -> bool {
        let Ok(file) = File::open(cache.join(LOCK_FILE)) else {
            return false;
        };
        fs4::FileExt::try_lock(&file).is_err()
    }

    /// Writes a fake wheel install: the key files, a CUDA runtime library, and RECORDs that
    /// list the libraries with their true sizes and hashes.
    pub fn fake_install(dir: &Path) {
        let files: [(&str, &[u8]); 5] = [
            ("torch/lib/libtorch_cpu.so", b"torch cpu library bytes"),
            ("torch/lib/libc10.so", b"c10 library"),
            (
                "torch/include/torch/csrc/api/include/torch/torch.h",
                b"#pragma once\n",
            ),
            ("nvidia/cu13/lib/libcudart.so.13", b"cudart"),
            ("torch/lib/libshm/libshm.h", b"header, not a library"),
        ];
        let mut torch_record = String::new();
        let mut nvidia_record = String::new();
        for (rel, bytes) in files {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
            let line = format!(
                "{rel},sha256={},{}\n",
                sha256_b64(&path).unwrap(),
                bytes.len()
            );
            if rel.starts_with("nvidia") {
                nvidia_record.push_str(&line);
            } else {
                torch_record.push_str(&line);
            }
        }
        torch_record.push_str("torch-2.13.0.dist-info/RECORD,,\n");
        for (info, record) in [
            ("torch-2.13.0.dist-info", torch_record),
            ("nvidia_cuda_runtime-13.0.96.dist-info", nvidia_record),
        ] {
            std::fs::create_dir_all(dir.join(info)).unwrap();
            std::fs::write(dir.join(info).join("RECORD"), record).unwrap();
        }
        std::os::unix::fs::symlink(
            "../../nvidia/cu13/lib/libcudart.so.13",
            dir.join("torch/lib/libcudart.so.13"),
        )
        .unwrap();
    }

    fn complete(dir: &Path) {
        fake_install(dir);
        std::fs::write(dir.join(COMPLETE_MARKER), "").unwrap();
    }

    #[test]
    fn records_list_only_libraries() {
        let dir = tempfile::tempdir().unwrap();
        fake_install(dir.path());
        let records = read_records(dir.path()).unwrap();
        let paths: Vec<&str> = records.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "nvidia/cu13/lib/libcudart.so.13",
                "torch/lib/libtorch_cpu.so",
                "torch/lib/libc10.so"
            ]
        );
        assert_eq!(records[2].size, 11);
        // pip's RECORD form of sha256("c10 library").
        assert_eq!(
            records[2].sha256,
            "cfT2cou-PanMDiRnpVBrYOtxO2sq8RLo9W2seXPtHR8"
        );
    }

    #[test]
    fn intact_install_is_ready_and_stamped() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cache_state(&dir.path().join("none")), CacheState::Absent);
        fake_install(dir.path());
        assert_eq!(
            cache_state(dir.path()),
            CacheState::Damaged(".jem-complete is missing".into())
        );
        std::fs::write(dir.path().join(COMPLETE_MARKER), "").unwrap();
        assert_eq!(cache_state(dir.path()), CacheState::Ready);
        let stamp = std::fs::read_to_string(dir.path().join(VERIFIED_STAMP)).unwrap();
        assert_eq!(stamp.lines().count(), 3, "{stamp}");
        assert_eq!(cache_state(dir.path()), CacheState::Ready);
    }

    #[test]
    fn truncated_missing_rewritten_or_unlinked_libraries_are_found() {
        let damaged = |f: &dyn Fn(&Path)| -> String {
            let dir = tempfile::tempdir().unwrap();
            complete(dir.path());
            assert_eq!(cache_state(dir.path()), CacheState::Ready);
            f(dir.path());
            match cache_state(dir.path()) {
                CacheState::Damaged(reason) => reason,
                other => panic!("{other:?}"),
            }
        };
        let cpu = "torch/lib/libtorch_cpu.so";
        let reason = damaged(&|d| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(d.join(cpu))
                .unwrap();
            f.set_len(5).unwrap();
        });
        assert_eq!(
            reason,
            "torch/lib/libtorch_cpu.so is 5 bytes, pip recorded 23"
        );
        let reason = damaged(&|d| std::fs::remove_file(d.join("torch/lib/libc10.so")).unwrap());
        assert_eq!(reason, "torch/lib/libc10.so is missing");
        // Same size, other bytes (written later, so its time differs from the stamp's).
        let reason = damaged(&|d| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::write(d.join(cpu), b"TORCH CPU LIBRARY BYTES").unwrap();
        });
        assert_eq!(
            reason,
            "torch/lib/libtorch_cpu.so does not match the sha256 pip recorded"
        );
        let reason =
            damaged(&|d| std::fs::remove_file(d.join("nvidia/cu13/lib/libcudart.so.13")).unwrap());
        assert_eq!(reason, "nvidia/cu13/lib/libcudart.so.13 is missing");
        let reason =
            damaged(&|d| std::fs::remove_file(d.join("torch-2.13.0.dist-info/RECORD")).unwrap());
        assert_eq!(reason, "torch-2.13.0.dist-info/RECORD is missing");
        let reason = damaged(&|d| {
            std::fs::remove_file(d.join("torch/include/torch/csrc/api/include/torch/torch.h"))
                .unwrap()
        });
        assert_eq!(
            reason,
            "torch/include/torch/csrc/api/include/torch/torch.h is missing"
        );
        let reason = damaged(&|d| {
            std::os::unix::fs::symlink("../../nvidia/gone.so", d.join("torch/lib/libgone.so"))
                .unwrap()
        });
        assert_eq!(reason, "torch/lib/libgone.so points at a missing file");
    }

    #[test]
    fn the_lock_is_exclusive_and_released_on_drop() {
        let cache = tempfile::tempdir().unwrap();
        assert!(!is_locked(cache.path()));
        let lock = lock_cache(cache.path()).unwrap();
        assert!(is_locked(cache.path()));
        let holder = std::fs::read_to_string(cache.path().join(LOCK_FILE)).unwrap();
        assert_eq!(holder, std::process::id().to_string());
        // A second set-up waits until the first lets go.
        let path = cache.path().to_path_buf();
        let acquired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = acquired.clone();
        let waiter = std::thread::spawn(move || {
            let second = lock_cache(&path).unwrap();
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(second);
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            !acquired.load(std::sync::atomic::Ordering::SeqCst),
            "the second lock did not wait"
        );
        drop(lock);
        waiter.join().unwrap();
        assert!(acquired.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!is_locked(cache.path()));
    }
}
