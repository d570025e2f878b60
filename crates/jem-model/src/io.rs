//! Saving and strictly loading model variables as safetensors.
//!
//! `VarStore::load` in tch ignores tensors of the file it has no variable for and
//! copies with broadcasting, so a checkpoint of another config could load silently.
//! [`load_safetensors`] instead compares the full name → shape maps first and
//! reports every missing, unexpected and mis-shaped tensor by name.

use std::collections::BTreeMap;
use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::error::{ModelError, Result};

/// Writes every variable of `vs` (trainable or not, e.g. batch-norm running stats)
/// to `path` in safetensors format, whatever the file extension, with the VarStore
/// names (`f.layer1.0.conv1.weight`, ...).
pub fn save_safetensors(vs: &VarStore, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let ctx = |source| ModelError::Checkpoint {
        path: path.to_path_buf(),
        source,
    };
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (name, t) in vs.variables() {
        // safetensors wants contiguous host memory.
        named.push((
            name,
            t.f_to_device(Device::Cpu)
                .map_err(ctx)?
                .f_contiguous()
                .map_err(ctx)?,
        ));
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&named, path).map_err(ctx)?;
    tracing::debug!(path = %path.display(), tensors = named.len(), "saved safetensors checkpoint");
    Ok(())
}

/// Loads `path` into the variables of `vs`.
///
/// The file must hold exactly the variables of `vs` with the same shapes; otherwise
/// nothing is modified and [`ModelError::CheckpointMismatch`] lists the offending
/// tensors. Element types are converted to the variables' dtype.
pub fn load_safetensors(vs: &VarStore, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let file: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|source| ModelError::Checkpoint {
            path: path.to_path_buf(),
            source,
        })?
        .into_iter()
        .collect();
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();

    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for (name, var) in &vars {
        match file.get(name) {
            None => missing.push((name.clone(), var.size())),
            Some(src) if src.size() != var.size() => {
                mismatched.push((name.clone(), var.size(), src.size()))
            }
            Some(_) => {}
        }
    }
    let unexpected: Vec<(String, Vec<i64>)> = file
        .iter()
        .filter(|(name, _)| !vars.contains_key(*name))
        .map(|(n, t)| (n.clone(), t.size()))
        .collect();
    if !(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty()) {
        return Err(ModelError::CheckpointMismatch {
            path: path.to_path_buf(),
            missing,
            unexpected,
            mismatched,
        });
    }

    tch::no_grad(|| -> Result<()> {
        for (name, mut var) in vars {
            var.f_copy_(&file[&name])
                .map_err(|e| ModelError::Checkpoint {
                    path: path.to_path_buf(),
                    source: e.path_context(&name),
                })?;
        }
        Ok(())
    })?;
    tracing::debug!(path = %path.display(), tensors = file.len(), "loaded safetensors checkpoint");
    Ok(())
}
