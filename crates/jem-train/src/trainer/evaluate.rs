//! Evaluation during training: validation and test accuracy after every epoch (and at the end),
//! the test split's ECE and NLL beside them (calibration against epochs, Fig 4), and the choice
//! of `best.ckpt` by validation accuracy, as the reference does.

use jem_data::Dataset;
use jem_eval::ndarray::{Array1, Array2};
use tch::Kind;

use jem_model::JointEnergyModel;

use super::{files, Trainer};
use crate::error::Result;
use crate::metrics::{EpochMetrics, MetricsLine};
use crate::rng::{stream_rng, Stream};

impl Trainer<'_> {
    pub(super) fn accuracy(&self, ds: &Dataset, idx: &[usize], stream_counter: u64) -> Result<f64> {
        self.classify(ds, idx, stream_counter, false)
            .map(|c| c.accuracy)
    }

    /// Accuracy of `idx` in `ds` and, with `calibration`, the softmax probabilities'
    /// [`jem_eval::ece`] ([`jem_eval::PAPER_NUM_BINS`] bins) and [`jem_eval::nll`].
    fn classify(
        &self,
        ds: &Dataset,
        idx: &[usize],
        stream_counter: u64,
        calibration: bool,
    ) -> Result<Classified> {
        let mut rng = stream_rng(self.cfg.data.seed, Stream::Eval, stream_counter, 0);
        let mut correct = 0i64;
        let mut probs: Vec<f64> = Vec::new();
        let mut labels: Vec<usize> = Vec::new();
        tch::no_grad(|| -> Result<()> {
            for chunk in idx.chunks(self.cfg.data.eval_batch_size) {
                let sub = ds.subset(chunk)?;
                let x = self
                    .data
                    .eval_pre
                    .eval(&sub.images, &mut rng)?
                    .f_to_device(self.device)?;
                let logits = self.model.logits(&x, false)?;
                let y = sub.labels.f_to_device(self.device)?;
                correct += logits
                    .f_argmax(1, false)?
                    .f_eq_tensor(&y)?
                    .f_sum(Kind::Int64)?
                    .f_int64_value(&[])?;
                if calibration {
                    let p = logits
                        .f_to_kind(Kind::Double)?
                        .f_softmax(1, Kind::Double)?
                        .f_to_device(tch::Device::Cpu)?
                        .f_contiguous()?;
                    probs.extend(Vec::<f64>::try_from(p.f_flatten(0, -1)?)?);
                    let y: Vec<i64> = Vec::<i64>::try_from(y.f_to_device(tch::Device::Cpu)?)?;
                    labels.extend(y.into_iter().map(|v| v as usize));
                }
            }
            Ok(())
        })?;
        let accuracy = correct as f64 / idx.len().max(1) as f64;
        let (ece, nll) = if calibration && !labels.is_empty() {
            let classes = probs.len() / labels.len();
            let probs = Array2::from_shape_vec((labels.len(), classes), probs)
                .expect("softmax rows of equal length");
            let labels = Array1::from(labels);
            // Softmax rows in f64 sum to 1 within any tolerance; an error here means non-finite
            // logits, which leave the calibration figures unset rather than wrong.
            (
                jem_eval::ece(probs.view(), labels.view(), jem_eval::PAPER_NUM_BINS).ok(),
                jem_eval::nll(probs.view(), labels.view()).ok(),
            )
        } else {
            (None, None)
        };
        Ok(Classified { accuracy, ece, nll })
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
        let Classified {
            accuracy: test,
            ece: test_ece,
            nll: test_nll,
        } = self.classify(&self.data.test, &test_idx, 2 * it + 1, true)?;
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
            test_ece,
            test_nll,
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

/// What [`Trainer::classify`] measures.
struct Classified {
    accuracy: f64,
    ece: Option<f64>,
    nll: Option<f64>,
}
