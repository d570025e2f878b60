//! Reading files written by PyTorch's `torch.save` (the zip format, torch >= 1.6), through
//! libtorch's own unpickler in jem's C++ shim (`csrc/jem_pickle.cpp`).
//!
//! The file's object is flattened: dictionaries (string or integer keys), lists and tuples are
//! descended into and their keys joined with dots, so
//! `torch.save({"model_state_dict": net.state_dict(), "replay_buffer": x}, path)` reads as the
//! tensors `model_state_dict.f.conv1.weight`, ..., `replay_buffer`. Every storage is mapped to
//! the CPU (as `torch.load(path, map_location="cpu")`), so checkpoints saved on a GPU open on any
//! machine. Leaves that are not tensors (epoch counters, strings, `None`) are listed in
//! [`TorchFile::others`] with a short description. Pickled Python objects other than
//! dictionaries, lists, tuples and tensors (an `argparse.Namespace`, a whole `nn.Module`) are
//! not supported: save their `state_dict()` or `vars(args)` instead.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::error::{ModelError, Result};

extern "C" {
    fn jem_pickle_free_error(error: *mut c_char);
    fn jem_pickle_load(path: *const c_char, entries: *mut *mut c_void) -> *mut c_char;
    fn jem_pickle_tensor_count(entries: *const c_void) -> usize;
    fn jem_pickle_tensor_name(entries: *const c_void, i: usize) -> *const c_char;
    fn jem_pickle_tensor(entries: *const c_void, i: usize) -> *mut c_void;
    fn jem_pickle_other_count(entries: *const c_void) -> usize;
    fn jem_pickle_other_name(entries: *const c_void, i: usize) -> *const c_char;
    fn jem_pickle_other_kind(entries: *const c_void, i: usize) -> *const c_char;
    fn jem_pickle_free(entries: *mut c_void);
}

/// The contents of a `torch.save` file, flattened.
#[derive(Debug)]
pub struct TorchFile {
    /// The file read.
    pub path: PathBuf,
    /// Every tensor, by dotted name, in the file's order (on the CPU).
    pub tensors: Vec<(String, Tensor)>,
    /// Every other leaf: its dotted name and a description (`int 5`, `None`, `str "..."`).
    pub others: Vec<(String, String)>,
}

impl TorchFile {
    /// The tensor named `name`, if the file has one.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The distinct first components of every name (the file's top-level keys), in order.
    pub fn top_level_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        let names = self
            .tensors
            .iter()
            .map(|(n, _)| n)
            .chain(self.others.iter().map(|(n, _)| n));
        for name in names {
            let top = name.split('.').next().unwrap_or(name).to_string();
            if !keys.contains(&top) {
                keys.push(top);
            }
        }
        keys
    }
}

/// Owns the shim's entry list for the duration of a read.
struct Entries(*mut c_void);

impl Drop for Entries {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful `jem_pickle_load` and is freed once.
        unsafe { jem_pickle_free(self.0) }
    }
}

/// A NUL-terminated string owned by the entry list, copied out.
///
/// # Safety
/// `s` must be a valid NUL-terminated string.
unsafe fn text(s: *const c_char) -> String {
    CStr::from_ptr(s).to_string_lossy().into_owned()
}

const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// Reads `path`, a file written by `torch.save` (zip format); errors name the file.
///
/// # Examples
///
/// ```no_run
/// let file = jem_model::torch_pickle::read_torch_file("last_ckpt.pt")?;
/// for (name, t) in &file.tensors {
///     println!("{name}: {:?}", t.size());
/// }
/// # Ok::<(), jem_model::ModelError>(())
/// ```
pub fn read_torch_file(path: impl AsRef<Path>) -> Result<TorchFile> {
    let path = path.as_ref();
    let bad = |reason: String| ModelError::TorchFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut head = [0u8; 4];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        let n = f
            .read(&mut head)
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        if n < 4 || &head != ZIP_MAGIC {
            return Err(bad(if n >= 2 && head[0] == 0x80 && head[1] <= 5 {
                "a file in PyTorch's legacy (pre-1.6, non-zip) serialization format, which jem does \
                 not read: re-save it with a newer torch, e.g. \
                 `torch.save(torch.load(old, map_location=\"cpu\"), new)`"
                    .to_string()
            } else {
                "not a torch.save file (no zip archive: expected the format of torch >= 1.6)"
                    .to_string()
            }));
        }
    }
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| bad("the path contains a NUL byte".into()))?;
    let mut raw: *mut c_void = std::ptr::null_mut();
    // SAFETY: `c_path` lives across the call; `raw` receives an owned list on success.
    let error = unsafe { jem_pickle_load(c_path.as_ptr(), &mut raw) };
    if !error.is_null() {
        // SAFETY: a non-null error is a NUL-terminated string malloc'ed by the shim, freed once.
        let message = unsafe { text(error) };
        unsafe { jem_pickle_free_error(error) };
        return Err(bad(format!("cannot unpickle: {}", message.trim())));
    }
    let entries = Entries(raw);
    // SAFETY: indices stay below the counts the list reports; names are copied before the list
    // is freed; each tensor handle is new and owned by the `Tensor` made from it.
    let (tensors, others) = unsafe {
        let n = jem_pickle_tensor_count(entries.0);
        let mut tensors = Vec::with_capacity(n);
        for i in 0..n {
            let name = text(jem_pickle_tensor_name(entries.0, i));
            let t = Tensor::from_ptr(jem_pickle_tensor(entries.0, i) as *mut torch_sys::C_tensor);
            tensors.push((name, t));
        }
        let m = jem_pickle_other_count(entries.0);
        let mut others = Vec::with_capacity(m);
        for i in 0..m {
            others.push((
                text(jem_pickle_other_name(entries.0, i)),
                text(jem_pickle_other_kind(entries.0, i)),
            ));
        }
        (tensors, others)
    };
    drop(entries);
    tracing::debug!(
        path = %path.display(),
        tensors = tensors.len(),
        others = others.len(),
        "read a torch.save file"
    );
    Ok(TorchFile {
        path: path.to_path_buf(),
        tensors,
        others,
    })
}
