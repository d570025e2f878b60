//! The replay buffers scored as they stand (Appendix B): the last checkpoint's, or the newest
//! kept checkpoints' lumped together.

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The checkpoint whose buffer is the one training left: a run directory's `last.ckpt`, or the
/// checkpoint file given.
pub(crate) fn last_checkpoint(run: &Path) -> Result<PathBuf> {
    if run.is_file() {
        return Ok(run.to_path_buf());
    }
    let last = run.join(jem_train::files::LAST);
    ensure!(
        last.is_file(),
        "{}: no {} (expected a checkpoint file, or a run directory with {})",
        run.display(),
        jem_train::files::LAST,
        jem_train::files::LAST
    );
    Ok(last)
}

/// The newest `k` kept checkpoints of the run directory `run` (`checkpoints/ckpt_<it>.ckpt`),
/// oldest first.
pub(crate) fn kept_checkpoints(run: &Path, k: usize) -> Result<Vec<PathBuf>> {
    ensure!(k >= 1, "--ensemble must be at least 1");
    ensure!(
        run.is_dir(),
        "--ensemble needs a run directory (its {}/ holds the kept checkpoints), got {}",
        jem_train::files::KEPT_DIR,
        run.display()
    );
    let dir = run.join(jem_train::files::KEPT_DIR);
    let advice = format!(
        "train with train.keep_checkpoints >= {k} and train.checkpoint_every > 0 so that \
         {} keeps them",
        dir.display()
    );
    if !dir.is_dir() {
        bail!(
            "{} does not exist: --ensemble {k} needs {k} kept checkpoints (ckpt_*.ckpt) there; \
             {advice}",
            dir.display()
        );
    }
    let mut kept = jem_train::files::kept_checkpoints(&dir)
        .with_context(|| format!("reading {}", dir.display()))?;
    if kept.len() < k {
        bail!(
            "{} holds {} kept checkpoints (ckpt_*.ckpt) but --ensemble {k} needs {k}; {advice}",
            dir.display(),
            kept.len()
        );
    }
    Ok(kept.split_off(kept.len() - k))
}

/// One checkpoint's replay buffer on the CPU: its samples `[N, C, H, W]` (float, model range)
/// and, for a class-conditional buffer, the class of every slot.
pub(crate) struct Buffer {
    pub samples: Tensor,
    pub classes: Option<Vec<usize>>,
    /// The class-conditional Gaussians the run's chains start from, when it has them.
    pub gaussians: Option<jem_sampler::ClassGaussians>,
}

/// The replay buffer stored in `checkpoint`; an error naming the file when it has none.
pub(crate) fn read_buffer(checkpoint: &Path) -> Result<Buffer> {
    match read_buffer_if_any(checkpoint)? {
        Some(buffer) => Ok(buffer),
        None => bail!(
            "{} holds no replay buffer (a baseline run, or short-run chains): nothing to score \
             with --from-buffer",
            checkpoint.display()
        ),
    }
}

/// The replay buffer stored in `checkpoint`, if it has one; an error naming the file when a
/// sample is not finite.
pub(crate) fn read_buffer_if_any(checkpoint: &Path) -> Result<Option<Buffer>> {
    let buffer = jem_train::load_buffer(checkpoint, Device::Cpu)
        .with_context(|| format!("reading the replay buffer of {}", checkpoint.display()))?;
    let Some(buffer) = buffer else {
        return Ok(None);
    };
    let samples = buffer.samples().to_kind(Kind::Float);
    let finite = samples.isfinite().all().int64_value(&[]) != 0;
    ensure!(
        finite,
        "{}: the replay buffer holds values that are not finite (a diverged chain)",
        checkpoint.display()
    );
    let classes = match (buffer.is_class_conditional(), buffer.n_classes()) {
        (true, Some(c)) => {
            let mut classes = vec![0usize; buffer.len()];
            for y in 0..c {
                for slot in buffer.class_slots(y) {
                    classes[slot as usize] = y as usize;
                }
            }
            Some(classes)
        }
        _ => None,
    };
    Ok(Some(Buffer {
        samples,
        classes,
        gaussians: buffer.start().gaussians().map(|g| g.shallow_clone()),
    }))
}
