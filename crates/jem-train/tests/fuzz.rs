//! Fuzz tests (proptest, a fixed number of cases each) for jem-train's parsers: checkpoint
//! decoding (random byte flips, truncations and extensions of a real checkpoint; header and
//! metadata edits re-sealed with a fresh checksum, so the decoder past the checksum and the
//! loaders behind it are reached), the `metrics.jsonl` reader, and `--set` overrides. Each
//! asserts that bad input is an `Err`, never a panic, and that the Rust heap in use while one
//! input is parsed stays within a small multiple of the input plus a fixed cap.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use common::{data, tiny_config};
use jem_train::checkpoint::{decode, CHECKSUM_KEY, META_KEY};
use jem_train::{
    checkpoint_config, files, load_buffer, load_model, read_metrics, train_with_data, Mode,
    NoopObserver, RunConfig,
};
use proptest::prelude::*;
use tch::Device;

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to `System`; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns how far the Rust heap in use rose above its level at the start.
fn heap_rise(f: impl FnOnce()) -> usize {
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed).saturating_sub(start)
}

/// The heap one input may take: a small multiple of its size plus a fixed cap (the other tests
/// of this binary run alongside and are counted too).
fn heap_cap(input: usize) -> usize {
    16 * input + (64 << 20)
}

/// A real checkpoint (`last.ckpt` of a one-epoch tiny run) and that run's `metrics.jsonl`.
fn real_run() -> &'static (Vec<u8>, String) {
    static RUN: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    RUN.get_or_init(|| {
        tch::set_num_threads(1);
        let dir = tempfile::tempdir().unwrap();
        let mut c = tiny_config(Mode::Jem);
        c.train.epochs = 1;
        c.train.log_every = 2;
        train_with_data(c, data(), dir.path(), Device::Cpu, &mut NoopObserver).unwrap();
        (
            std::fs::read(dir.path().join(files::LAST)).unwrap(),
            std::fs::read_to_string(dir.path().join(files::METRICS)).unwrap(),
        )
    })
}

/// FNV-1a, 64 bit: the checksum the checkpoint format documents (`jem.checksum`: the `jem`
/// metadata string, then every tensor's bytes in name order).
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A safetensors file split into its JSON header and its data.
fn split(bytes: &[u8]) -> Option<(serde_json::Map<String, serde_json::Value>, &[u8])> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let end = 8usize.checked_add(usize::try_from(n).ok()?)?;
    let header = serde_json::from_slice(bytes.get(8..end)?).ok()?;
    Some((header, &bytes[end..]))
}

/// Rewrites `header` (with a fresh checksum over its metadata and the tensors' byte ranges,
/// where they lie inside `data`) in front of `data`.
fn seal(mut header: serde_json::Map<String, serde_json::Value>, data: &[u8]) -> Vec<u8> {
    let meta = header
        .get("__metadata__")
        .and_then(|m| m.get(META_KEY))
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    let mut names: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    names.sort();
    let mut h = fnv1a(0xcbf2_9ce4_8422_2325, meta.as_bytes());
    for name in names {
        let range = header[name]
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .and_then(|o| Some((o.first()?.as_u64()?, o.get(1)?.as_u64()?)));
        if let Some((a, b)) = range {
            if a <= b && (b as usize) <= data.len() {
                h = fnv1a(h, &data[a as usize..b as usize]);
            }
        }
    }
    if let Some(m) = header
        .get_mut("__metadata__")
        .and_then(|m| m.as_object_mut())
    {
        m.insert(CHECKSUM_KEY.into(), format!("{h:016x}").into());
    }
    let text = serde_json::to_vec(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    out
}

/// Every path to a number inside `v` (object keys and array indices).
fn number_paths(v: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        serde_json::Value::Number(_) => out.push(at.clone()),
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                at.push(k.clone());
                number_paths(v, at, out);
                at.pop();
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                at.push(i.to_string());
                number_paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn set_path(v: &mut serde_json::Value, path: &[String], to: serde_json::Value) {
    let mut node = v;
    for key in path {
        node = match node {
            serde_json::Value::Object(m) => m.get_mut(key).unwrap(),
            serde_json::Value::Array(a) => &mut a[key.parse::<usize>().unwrap()],
            _ => unreachable!(),
        };
    }
    *node = to;
}

/// One edit of a checkpoint file.
#[derive(Debug, Clone)]
enum Edit {
    /// Sets the byte at `pos` (modulo the length).
    Byte { pos: usize, to: u8 },
    /// Cuts the file to `keep` thousandths of its length.
    Truncate { keep: u16 },
    /// Appends bytes.
    Extend(Vec<u8>),
    /// Sets one tensor's shape (re-sealed).
    Shape { tensor: usize, shape: Vec<u64> },
    /// Sets one tensor's dtype (re-sealed).
    Dtype { tensor: usize, dtype: &'static str },
    /// Sets one tensor's data offsets (re-sealed).
    Offsets { tensor: usize, a: u64, b: u64 },
    /// Sets one number of the `jem` metadata (its config, counters, ...) to `to` (re-sealed).
    MetaNumber { which: usize, to: i64 },
    /// Sets a byte of the `jem` metadata text (re-sealed).
    MetaByte { pos: usize, to: u8 },
    /// Sets a byte of the tensor data (re-sealed).
    DataByte { pos: usize, to: u8 },
}

fn edit() -> impl Strategy<Value = Edit> {
    let big = prop_oneof![0u64..40, Just(u64::MAX), Just(1 << 40), any::<u64>()];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(pos, to)| Edit::Byte { pos, to }),
        (0u16..1000).prop_map(|keep| Edit::Truncate { keep }),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(Edit::Extend),
        (any::<usize>(), prop::collection::vec(big.clone(), 0..5))
            .prop_map(|(tensor, shape)| Edit::Shape { tensor, shape }),
        (
            any::<usize>(),
            prop::sample::select(vec!["F32", "F64", "I64", "BF16", "F16", "U8", "BOOL", "x"])
        )
            .prop_map(|(tensor, dtype)| Edit::Dtype { tensor, dtype }),
        (any::<usize>(), big.clone(), big).prop_map(|(tensor, a, b)| Edit::Offsets {
            tensor,
            a,
            b
        }),
        (
            any::<usize>(),
            prop_oneof![-3i64..40, Just(i64::MAX), Just(1 << 33), any::<i64>()]
        )
            .prop_map(|(which, to)| Edit::MetaNumber { which, to }),
        (any::<usize>(), any::<u8>()).prop_map(|(pos, to)| Edit::MetaByte { pos, to }),
        (any::<usize>(), any::<u8>()).prop_map(|(pos, to)| Edit::DataByte { pos, to }),
    ]
}

/// Applies `edit` to a checkpoint file's bytes.
fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let tensor_key = |header: &serde_json::Map<String, serde_json::Value>, i: usize| {
        let names: Vec<String> = header
            .keys()
            .filter(|k| *k != "__metadata__")
            .cloned()
            .collect();
        (!names.is_empty()).then(|| names[i % names.len()].clone())
    };
    match edit {
        Edit::Byte { pos, to } => {
            if !bytes.is_empty() {
                let n = bytes.len();
                bytes[pos % n] = *to;
            }
        }
        Edit::Truncate { keep } => bytes.truncate(bytes.len() * usize::from(*keep) / 1000),
        Edit::Extend(tail) => bytes.extend_from_slice(tail),
        _ => {
            let Some((mut header, data)) = split(bytes) else {
                return;
            };
            let mut data = data.to_vec();
            match edit {
                Edit::Shape { tensor, shape } => {
                    if let Some(k) = tensor_key(&header, *tensor) {
                        header[&k]["shape"] = serde_json::json!(shape);
                    }
                }
                Edit::Dtype { tensor, dtype } => {
                    if let Some(k) = tensor_key(&header, *tensor) {
                        header[&k]["dtype"] = (*dtype).into();
                    }
                }
                Edit::Offsets { tensor, a, b } => {
                    if let Some(k) = tensor_key(&header, *tensor) {
                        header[&k]["data_offsets"] = serde_json::json!([a, b]);
                    }
                }
                Edit::MetaNumber { which, to } => {
                    let text = header
                        .get("__metadata__")
                        .and_then(|m| m.get(META_KEY))
                        .and_then(|m| m.as_str());
                    if let Some(mut meta) =
                        text.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                    {
                        let mut paths = Vec::new();
                        number_paths(&meta, &mut Vec::new(), &mut paths);
                        if !paths.is_empty() {
                            set_path(&mut meta, &paths[which % paths.len()], (*to).into());
                            header["__metadata__"][META_KEY] = meta.to_string().into();
                        }
                    }
                }
                Edit::MetaByte { pos, to } => {
                    let text = header
                        .get("__metadata__")
                        .and_then(|m| m.get(META_KEY))
                        .and_then(|m| m.as_str());
                    if let Some(text) = text {
                        let mut b = text.as_bytes().to_vec();
                        if !b.is_empty() {
                            let n = b.len();
                            b[pos % n] = *to;
                        }
                        header["__metadata__"][META_KEY] =
                            String::from_utf8_lossy(&b).into_owned().into();
                    }
                }
                Edit::DataByte { pos, to } => {
                    if !data.is_empty() {
                        let n = data.len();
                        data[pos % n] = *to;
                    }
                }
                _ => unreachable!(),
            }
            *bytes = seal(header, &data);
        }
    }
}

/// Every loader of a checkpoint file, on `bytes`; none may panic.
fn load_all(bytes: &[u8], dir: &Path) {
    let path = dir.join(files::LAST);
    let decoded = decode(bytes, &path);
    if let Err(e) = &decoded {
        assert!(e.to_string().contains("last.ckpt"), "{e}");
    }
    drop(decoded);
    std::fs::write(&path, bytes).unwrap();
    let _ = checkpoint_config(&path);
    let _ = load_model(&path, Device::Cpu);
    let _ = load_buffer(&path, Device::Cpu);
}

#[test]
fn the_real_checkpoint_loads_and_the_resealed_copy_is_identical() {
    let (bytes, _) = real_run();
    let (header, data) = split(bytes).unwrap();
    assert!(decode(bytes, Path::new("x")).is_ok());
    // The test's sealing computes the same checksum as the writer's: a plain re-seal loads.
    let resealed = seal(header, data);
    assert!(decode(&resealed, Path::new("x")).is_ok());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(files::LAST);
    std::fs::write(&path, &resealed).unwrap();
    load_model(&path, Device::Cpu).unwrap();
    // And a data edit without re-sealing is caught by the checksum.
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 3] ^= 0x40;
    let e = decode(&bad, Path::new("x")).unwrap_err().to_string();
    assert!(e.contains("checksum"), "{e}");
}

/// A forged config in a re-sealed checkpoint (a network far larger than the file, or sizes
/// that overflow) is refused before any model is built, naming the field.
#[test]
fn a_resealed_config_larger_than_the_file_is_refused_before_building() {
    let (real, _) = real_run();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(files::LAST);
    for (field, value) in [
        ("in_channels", 1i64 << 40),
        ("num_classes", 1 << 40),
        ("in_channels", 3),
        ("widen_factor", 64),
        ("depth", 994),
    ] {
        let (mut header, data) = split(real).unwrap();
        let text = header["__metadata__"][META_KEY]
            .as_str()
            .unwrap()
            .to_string();
        let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
        meta["config"]["model"][field] = value.into();
        header["__metadata__"][META_KEY] = meta.to_string().into();
        std::fs::write(&path, seal(header, data)).unwrap();
        let mut result = None;
        let rise = heap_rise(|| result = Some(load_model(&path, Device::Cpu)));
        let Some(Err(e)) = result else {
            panic!("the forged {field} = {value} loaded");
        };
        let e = e.to_string();
        assert!(
            e.contains("last.ckpt") && e.contains(field),
            "{field} = {value}: {e}"
        );
        assert!(
            rise <= heap_cap(real.len()),
            "{field}: {rise} bytes of heap"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mutated_checkpoints_are_errors_not_panics(edits in prop::collection::vec(edit(), 1..4)) {
        tch::set_num_threads(1);
        let (real, _) = real_run();
        let mut bytes = real.clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        let dir = tempfile::tempdir().unwrap();
        let rise = heap_rise(|| load_all(&bytes, dir.path()));
        prop_assert!(rise <= heap_cap(bytes.len()), "{rise} bytes of heap for {} input bytes", bytes.len());
    }

    #[test]
    fn mutated_metrics_logs_are_errors_not_panics(
        picks in prop::collection::vec((any::<usize>(), any::<usize>(), any::<u8>(), 0u8..4), 1..6),
        junk in prop::collection::vec(".{0,40}", 0..3),
    ) {
        let (_, log) = real_run();
        let lines: Vec<&str> = log.lines().collect();
        let mut out: Vec<Vec<u8>> = Vec::new();
        for (line, pos, to, how) in &picks {
            let mut l = lines[line % lines.len()].as_bytes().to_vec();
            let n = l.len();
            match how {
                0 => l[pos % n] = *to,
                1 => l.truncate(pos % n),
                2 => l.insert(pos % n, *to),
                _ => {}
            }
            out.push(l);
        }
        out.extend(junk.iter().map(|j| j.as_bytes().to_vec()));
        let text = out.join(&b'\n');
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(files::METRICS);
        std::fs::write(&path, &text).unwrap();
        let mut result = None;
        let rise = heap_rise(|| result = Some(read_metrics(&path)));
        prop_assert!(rise <= heap_cap(text.len()), "{rise} bytes of heap");
        if let Some(Err(e)) = result {
            let e = e.to_string();
            prop_assert!(e.contains("metrics.jsonl"), "{}", e);
        }
    }

    #[test]
    fn random_overrides_are_errors_not_panics(
        key in prop_oneof![
            prop::sample::select(override_keys()),
            "[a-z_.]{0,24}",
            ".{0,24}",
        ],
        value in prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| v.to_string()),
            Just("nan".to_string()),
            Just("-inf".to_string()),
            Just("[1, 2, [3]]".to_string()),
            Just("{ a = 1 }".to_string()),
            "[a-z]{0,8}",
            ".{0,32}",
        ],
    ) {
        let base = RunConfig::default().to_toml_string().unwrap();
        let spec = format!("{key}={value}");
        let mut result = None;
        let rise = heap_rise(|| {
            let r = RunConfig::from_toml_with_overrides(&base, &[&spec]);
            if let Ok(c) = &r {
                let _ = c.check();
                let _ = c.clone().resolved().to_toml_string();
                let mut c = c.clone();
                let _ = c.apply_override(&spec);
            }
            result = Some(r);
        });
        prop_assert!(rise <= heap_cap(base.len() + spec.len()), "{rise} bytes of heap");
        let _ = result;
    }
}

/// Every `section.key` of the default config (nested tables included).
fn override_keys() -> Vec<String> {
    fn walk(v: &toml::Value, at: &str, out: &mut Vec<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                walk(v, &path, out);
            }
        } else {
            out.push(at.to_string());
        }
    }
    let text = RunConfig::default().to_toml_string().unwrap();
    let mut out = Vec::new();
    walk(&toml::from_str(&text).unwrap(), "", &mut out);
    out
}
