//! Evaluation during training: validation and test accuracy after every epoch (and at the end),
//! and the choice of `best.ckpt` by validation accuracy, as the reference does.

use jem_data::Dataset;
use tch::Kind;

use jem_model::JointEnergyModel;

use super::{files, Trainer};
use crate::error::Result;
use crate::metrics::{EpochMetrics, MetricsLine};
use crate::rng::{stream_rng, Stream};

impl Trainer<'_> {
    pub(super) fn accuracy(&self, ds: &Dataset, idx: &[usize], stream_counter: u64) -> Result<f64> {
        let mut rng = stream_rng(self.cfg.data.seed, Stream::Eval, stream_counter, 0);
        let mut correct = 0i64;
        tch::no_grad(|| -> Result<()> {
            for chunk in idx.chunks(self.cfg.data.eval_batch_size) {
                let sub = ds.subset(chunk)?;
                let x = self
                    .data
                    .eval_pre
                    .eval(&sub.images, &mut rng)?
                    .f_to_device(self.device)?;
                let pred = self.model.logits(&x, false)?.f_argmax(1, false)?;
                correct += pred
                    .f_eq_tensor(&sub.labels.f_to_device(self.device)?)?
                    .f_sum(Kind::Int64)?
                    .f_int64_value(&[])?;
            }
            Ok(())
        })?;
        Ok(correct as f64 / idx.len().max(1) as f64)
    }

    pub(super) fn evaluate(&mut self) -> Result<()> {
        let it = self.st.iteration;
        let valid = if self.data.valid_idx.is_empty() {
            None
        } else {
            let idx = self.data.valid_idx.clone();
            Some(self.accuracy(&self.data.train, &idx, 2 * it)?)
        };
        let test_idx: Vec<usize> = (0..self.data.test.len()).collect();
        let test = self.accuracy(&self.data.test, &test_idx, 2 * it + 1)?;
        let is_best = match (valid, self.st.best_valid) {
            (Some(v), Some(b)) => v > b,
            (Some(_), None) => true,
            _ => false,
        };
        if is_best {
            self.st.best_valid = valid;
            self.st.best_test = Some(test);
            self.st.best_epoch = Some(self.st.epochs_completed);
        }
        self.st.last_valid = valid;
        self.st.last_test = Some(test);
        self.st.evaluated_at = Some(it);
        let m = EpochMetrics {
            epoch: self.st.epochs_completed,
            iteration: it,
            valid_acc: valid,
            test_acc: test,
            train_acc: self.st.epoch_correct as f64 / self.st.epoch_seen.max(1) as f64,
            best_valid_acc: self.st.best_valid,
            is_best,
            elapsed_s: self.elapsed(),
        };
        self.st.epoch_correct = 0;
        self.st.epoch_seen = 0;
        tracing::info!(
            epoch = m.epoch,
            iteration = it,
            valid_acc = ?valid,
            test_acc = test,
            best = is_best,
            "evaluation"
        );
        self.metrics.write(&MetricsLine::Epoch(m.clone()))?;
        if is_best {
            self.save(files::BEST)?;
        }
        self.observer.on_epoch(&m);
        Ok(())
    }
}
