//! Checkpoints of the official PyTorch JEM code (wgrathwohl/JEM, `train_wrn_ebm.py`) mapped
//! onto jem's [`WideResNet`].
//!
//! The reference saves `torch.save({"model_state_dict": f.state_dict(), "replay_buffer": buf},
//! path)`. Its model is a `CCF` wrapper: the backbone `f` (a Wide-ResNet whose module names jem
//! copies: `f.conv1`, `f.layer1.0.bn1`, `f.layer1.0.shortcut.0`, `f.bn1`, ...), `energy_output`
//! and `class_output`. jem's variable names are the reference's, so the mapping is the identity
//! on every name jem has, and leaves out the tensors jem has no variable for:
//!
//! | reference tensor | jem |
//! |---|---|
//! | `f.linear.*` (built by the backbone, never used) | left out |
//! | `energy_output.*` | kept with `uncond = true`, else left out (the reference always builds it) |
//! | `*.num_batches_tracked` (batch norm's counter; momentum is fixed) | left out |
//! | everything else | same name, same shape, converted to float32 |
//!
//! Any other difference — a tensor the configured model needs and the file lacks, a name the
//! model does not know, a shape that differs — is an error listing every such name, together
//! with the architecture the file's shapes describe. A bare state dict (the file *is*
//! `model.state_dict()`) and the `module.` prefix of `nn.DataParallel` are accepted too.

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::config::WrnConfig;
use crate::error::{describe_mismatch, ModelError, Result};
use crate::torch_pickle::TorchFile;
use crate::wrn::{variable_shapes, WideResNet};

/// Top-level key of the model's state dict in a reference checkpoint.
pub const STATE_DICT_KEY: &str = "model_state_dict";
/// Top-level key of the replay buffer (`[N, C, H, W]`, model range [-1, 1]).
pub const REPLAY_BUFFER_KEY: &str = "replay_buffer";
/// The DataParallel prefix stripped from every name when all have it.
const DATA_PARALLEL_PREFIX: &str = "module.";

/// Tensors under their names, in order.
pub type NamedTensors = Vec<(String, Tensor)>;

/// A reference checkpoint in jem's terms.
#[derive(Debug)]
pub struct ReferenceCheckpoint {
    /// The model's tensors under jem's variable names, float32 on the CPU, sorted by name;
    /// exactly the variables of the configured [`WideResNet`].
    pub model: Vec<(String, Tensor)>,
    /// The replay buffer `[N, C, H, W]` (float32), when the file has one.
    pub replay_buffer: Option<Tensor>,
    /// State-dict tensors jem has no variable for, left out (see the module table).
    pub dropped: Vec<String>,
    /// Other entries of the file (neither the state dict nor the buffer), described.
    pub ignored: Vec<String>,
}

/// The state dict of a reference checkpoint: the `model_state_dict.`-prefixed tensors with the
/// prefix (and a DataParallel `module.` prefix) removed, or the whole file when it is a bare
/// state dict.
pub fn state_dict(file: &TorchFile) -> Result<Vec<(String, Tensor)>> {
    let prefix = format!("{STATE_DICT_KEY}.");
    let mut state: Vec<(String, Tensor)> = file
        .tensors
        .iter()
        .filter_map(|(n, t)| {
            n.strip_prefix(&prefix)
                .map(|s| (s.to_string(), t.shallow_clone()))
        })
        .collect();
    if state.is_empty() {
        let bare = file.tensors.iter().any(|(n, _)| {
            n.ends_with("conv1.weight") && (n.starts_with("f.") || n.starts_with("module.f."))
        });
        if !bare {
            return Err(ModelError::TorchFile {
                path: file.path.clone(),
                reason: format!(
                    "no `{STATE_DICT_KEY}` entry (top-level keys: {}); a checkpoint of the \
                     official JEM code is torch.save({{\"{STATE_DICT_KEY}\": model.state_dict(), \
                     \"{REPLAY_BUFFER_KEY}\": buffer}}, path)",
                    quoted(&file.top_level_keys())
                ),
            });
        }
        state = file
            .tensors
            .iter()
            .filter(|(n, _)| n != REPLAY_BUFFER_KEY)
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
    }
    if state
        .iter()
        .all(|(n, _)| n.starts_with(DATA_PARALLEL_PREFIX))
    {
        for (n, _) in state.iter_mut() {
            *n = n[DATA_PARALLEL_PREFIX.len()..].to_string();
        }
    }
    Ok(state)
}

fn quoted(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a reference tensor with no jem variable is one the reference keeps but jem does not
/// need (and may be left out).
fn droppable(name: &str, config: &WrnConfig, expected: &BTreeMap<String, Vec<i64>>) -> bool {
    if name.starts_with("f.linear.") {
        return true;
    }
    if name.starts_with("energy_output.") {
        return !config.uncond;
    }
    if let Some(layer) = name.strip_suffix(".num_batches_tracked") {
        return expected.contains_key(&format!("{layer}.running_mean"));
    }
    false
}

/// The architecture a reference state dict's shapes describe, as `[model]` settings
/// (`depth = 28, widen_factor = 10, in_channels = 3, num_classes = 10, norm = "none"`); `None`
/// when the names are not the reference's.
pub fn apparent_config(state: &[(String, Tensor)]) -> Option<String> {
    let shape = |name: &str| state.iter().find(|(n, _)| n == name).map(|(_, t)| t.size());
    let conv1 = shape("f.conv1.weight")?;
    let first = shape("f.layer1.0.conv1.weight")?;
    let head = shape("class_output.weight")?;
    let blocks = state
        .iter()
        .filter_map(|(n, _)| {
            n.strip_prefix("f.layer1.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()?
        + 1;
    let has = |name: &str| state.iter().any(|(n, _)| n == name);
    let norm = if has("f.bn1.running_mean") {
        "\"batch\""
    } else if has("f.bn1.weight") {
        "\"instance\" or \"layer\""
    } else {
        "\"none\""
    };
    Some(format!(
        "depth = {}, widen_factor = {}, in_channels = {}, num_classes = {}, norm = {norm}",
        6 * blocks + 4,
        first.first()? / 16,
        conv1.get(1)?,
        head.first()?,
    ))
}

/// Maps a reference state dict (names as [`state_dict`] returns them) onto the variables of a
/// [`WideResNet`] built from `config`; `file` only names the checkpoint in errors.
///
/// Returns the tensors under jem's names (float32, sorted) and the names left out.
pub fn map_state_dict(
    state: &[(String, Tensor)],
    config: &WrnConfig,
    file: &std::path::Path,
) -> Result<(NamedTensors, Vec<String>)> {
    config.check()?;
    let vs = VarStore::new(Device::Cpu);
    let _model = tch::no_grad(|| WideResNet::new(&vs.root(), config))?;
    let expected: BTreeMap<String, Vec<i64>> = variable_shapes(&vs).into_iter().collect();

    let mut found: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut dropped = Vec::new();
    let mut unexpected = Vec::new();
    let mut mismatched = Vec::new();
    let mut bad_dtype = Vec::new();
    let mut duplicated = Vec::new();
    for (name, t) in state {
        match expected.get(name) {
            Some(want) => {
                if found.contains_key(name) {
                    duplicated.push(name.clone());
                } else if t.size() != *want {
                    mismatched.push((name.clone(), want.clone(), t.size()));
                } else if !t.is_floating_point() {
                    bad_dtype.push(format!("`{name}` ({:?})", t.kind()));
                } else {
                    found.insert(name.clone(), t.shallow_clone());
                }
            }
            None if droppable(name, config, &expected) => dropped.push(name.clone()),
            None => unexpected.push((name.clone(), t.size())),
        }
    }
    let missing: Vec<(String, Vec<i64>)> = expected
        .iter()
        .filter(|(n, _)| !found.contains_key(*n) && !mismatched.iter().any(|(m, _, _)| m == *n))
        .filter(|(n, _)| !bad_dtype.iter().any(|b| b.starts_with(&format!("`{n}`"))))
        .map(|(n, s)| (n.clone(), s.clone()))
        .collect();
    let mut problems = Vec::new();
    if !(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty()) {
        problems.push(describe_mismatch(&missing, &unexpected, &mismatched));
    }
    if !bad_dtype.is_empty() {
        problems.push(format!(
            "not floating-point tensors: {}",
            bad_dtype.join(", ")
        ));
    }
    if !duplicated.is_empty() {
        problems.push(format!("names given twice: {}", quoted(&duplicated)));
    }
    if !problems.is_empty() {
        let mut reason = format!(
            "the state dict does not match the configured model (depth = {}, widen_factor = {}, \
             in_channels = {}, num_classes = {}, norm = {:?}, uncond = {}): {}",
            config.depth,
            config.widen_factor,
            config.in_channels,
            config.num_classes,
            config.norm,
            config.uncond,
            problems.join("; ")
        );
        if let Some(arch) = apparent_config(state) {
            reason.push_str(&format!(
                "; the file's network looks like {arch} (set these in [model] or with --set model.KEY=VALUE)"
            ));
        }
        return Err(ModelError::TorchFile {
            path: file.to_path_buf(),
            reason,
        });
    }
    let mut model = Vec::with_capacity(found.len());
    for (name, t) in found {
        let t = t.f_to_kind(Kind::Float)?.f_contiguous()?.f_detach()?;
        model.push((name, t));
    }
    Ok((model, dropped))
}

/// Reads a reference checkpoint out of `file` for a model built from `config`: its weights
/// under jem's names, its replay buffer, and what was left out. Errors name the file and the
/// offending keys.
pub fn from_torch_file(file: &TorchFile, config: &WrnConfig) -> Result<ReferenceCheckpoint> {
    let state = state_dict(file)?;
    let (model, dropped) = map_state_dict(&state, config, &file.path)?;
    let bad = |reason: String| ModelError::TorchFile {
        path: file.path.clone(),
        reason,
    };
    let replay_buffer = match file.tensor(REPLAY_BUFFER_KEY) {
        None => None,
        Some(t) => {
            let size = t.size();
            if size.len() != 4 || size[0] < 1 || size[1] != config.in_channels as i64 {
                return Err(bad(format!(
                    "`{REPLAY_BUFFER_KEY}` has shape {size:?}; expected [N, {}, H, W] with N >= 1 \
                     (model.in_channels = {})",
                    config.in_channels, config.in_channels
                )));
            }
            if !t.is_floating_point() {
                return Err(bad(format!(
                    "`{REPLAY_BUFFER_KEY}` has dtype {:?}; expected floating point",
                    t.kind()
                )));
            }
            Some(t.f_to_kind(Kind::Float)?.f_contiguous()?.f_detach()?)
        }
    };
    let prefix = format!("{STATE_DICT_KEY}.");
    let bare = !file.tensors.iter().any(|(n, _)| n.starts_with(&prefix));
    let mut ignored: Vec<String> = file
        .tensors
        .iter()
        .filter(|(n, _)| n != REPLAY_BUFFER_KEY && !bare && !n.starts_with(&prefix))
        .map(|(n, t)| format!("`{n}` (tensor {:?})", t.size()))
        .collect();
    ignored.extend(file.others.iter().map(|(n, k)| format!("`{n}` ({k})")));
    Ok(ReferenceCheckpoint {
        model,
        replay_buffer,
        dropped,
        ignored,
    })
}
