//! PNG grids written during training: the replay buffer (or the last short-run samples) and one
//! row per class, as the reference's `plot_every` does.

use jem_sampler::ChainInit;
use tch::{Device, Kind, Tensor};

use jem_model::JointEnergyModel;

use super::{files, Trainer};
use crate::error::{Result, TrainError};

impl Trainer<'_> {
    pub(super) fn write_grids(&mut self) -> Result<()> {
        if !self.cfg.train.mode.samples() {
            return Ok(());
        }
        let dir = self.run_dir.join(files::SAMPLES_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        let it = self.st.iteration;
        let source = match &self.chains {
            Some(ChainInit::Persistent(b)) => b.samples().shallow_clone(),
            _ => match &self.last_samples {
                Some(s) => s.shallow_clone(),
                None => return Ok(()),
            },
        };
        let [c, h, w] = self.data.train.image_shape();
        let total = source.size()[0] as usize;
        let n = self.cfg.train.grid_samples.min(total);
        let columns = (n as f64).sqrt().ceil() as usize;
        let flat = Vec::<f32>::try_from(
            &source
                .f_narrow(0, 0, n as i64)?
                .f_to_device(Device::Cpu)?
                .f_to_kind(Kind::Float)?
                .f_flatten(0, -1)?,
        )?;
        let spec = jem_data::grid::GridSpec::new(n, c, h, w, columns.max(1));
        jem_data::grid::write_grid(&dir.join(format!("buffer_{it:08}.png")), &flat, &spec)?;

        // Class-conditional grid: one row per class.
        let classes = self.cfg.model.num_classes;
        let k = self.cfg.train.grid_per_class;
        let image_len = c * h * w;
        let mut cells = vec![0f32; classes * k * image_len];
        match &self.chains {
            Some(ChainInit::Persistent(b)) if b.is_class_conditional() => {
                for class in 0..classes {
                    let slots = b.class_slots(class as i64);
                    let take = (k as i64).min(slots.end - slots.start);
                    let rows = Vec::<f32>::try_from(
                        &b.samples()
                            .f_narrow(0, slots.start, take)?
                            .f_to_device(Device::Cpu)?
                            .f_flatten(0, -1)?,
                    )?;
                    let at = class * k * image_len;
                    cells[at..at + rows.len()].copy_from_slice(&rows);
                }
            }
            _ => {
                // Classify (up to 1000 of) the samples and keep the most confident per class.
                let m = total.min(1000) as i64;
                let xs = source.f_narrow(0, 0, m)?;
                let probs = tch::no_grad(|| -> Result<Tensor> {
                    let mut parts = Vec::new();
                    let bs = self.cfg.data.eval_batch_size as i64;
                    let mut start = 0;
                    while start < m {
                        let len = bs.min(m - start);
                        let x = xs.f_narrow(0, start, len)?;
                        parts.push(self.model.logits(&x, false)?.f_softmax(1, Kind::Float)?);
                        start += len;
                    }
                    Ok(Tensor::f_cat(&parts, 0)?.f_to_device(Device::Cpu)?)
                })?;
                let (conf, pred) = probs.f_max_dim(1, false)?;
                let conf = Vec::<f32>::try_from(&conf)?;
                let pred = Vec::<i64>::try_from(&pred)?;
                let all = Vec::<f32>::try_from(
                    &xs.f_to_device(Device::Cpu)?
                        .f_to_kind(Kind::Float)?
                        .f_flatten(0, -1)?,
                )?;
                for class in 0..classes {
                    let mut members: Vec<usize> = (0..m as usize)
                        .filter(|&i| pred[i] == class as i64)
                        .collect();
                    members.sort_by(|&a, &b| conf[b].total_cmp(&conf[a]));
                    for (j, &i) in members.iter().take(k).enumerate() {
                        let at = (class * k + j) * image_len;
                        cells[at..at + image_len]
                            .copy_from_slice(&all[i * image_len..(i + 1) * image_len]);
                    }
                }
            }
        }
        let spec = jem_data::grid::GridSpec::new(classes * k, c, h, w, k);
        jem_data::grid::write_grid(&dir.join(format!("classes_{it:08}.png")), &cells, &spec)?;
        Ok(())
    }
}
