//! One training iteration (Algorithm 1, lines 2-12): a data batch (and a labelled batch in
//! semi-supervised runs), SGLD samples from the chains, the [objective](crate::objective) and
//! one optimiser step.
//!
//! Randomness comes from counter-based streams (see [`crate::rng`]), so the iteration is a pure
//! function of the run seed, the iteration number and the recovery salt: a resumed run replays it
//! exactly. All scalars the loop needs from the device (loss terms, energies, accuracy) are read
//! in one transfer before the backward pass, where divergence is detected.

use jem_model::energy::{log_px_from_logits, log_pxy_from_logits};
use jem_model::{JointEnergyModel, Norm};
use jem_sampler::{sample, Energy, FromLogits, Pcg64, SamplerError, Samples, SgldConfig};
use rand::seq::SliceRandom;
use tch::{Device, Kind, Tensor};

use super::Trainer;
use crate::config::{Chains, Mode};
use crate::error::Result;
use crate::objective::{jem_objective, Energies, ObjectiveWeights};
use crate::recovery::{detect, Divergence, EnergyStats};
use crate::rng::{seed_torch_rng, stream_rng, tch_seed, Stream};

/// What one iteration contributes to the diagnostics.
pub(super) struct IterStats {
    pub(super) loss: f64,
    pub(super) ce: f64,
    pub(super) px: f64,
    pub(super) reg: f64,
    pub(super) energies: Option<EnergyStats>,
    pub(super) sgld_grad: Option<f64>,
    pub(super) grad_norm: f64,
    pub(super) correct: u64,
    pub(super) seen: u64,
    pub(super) lr: f64,
}

/// How an iteration ended.
pub(super) enum Outcome {
    /// It stepped the optimiser.
    Done(Box<IterStats>),
    /// It detected a divergence and changed nothing.
    Diverged(Divergence),
}

/// Logits of the labelled batch and the energies of the generative term.
struct Forward {
    logits: Tensor,
    labels: Tensor,
    /// `(data, samples)`: log p(x) (jem) or f(x)[y] (factored), with gradients.
    energies: Option<(Tensor, Tensor)>,
}

impl Forward {
    /// The outputs in float32 (the loss is computed in float32 whatever the passes ran in).
    fn into_float(self) -> Result<Self> {
        let f = |t: Tensor| t.f_to_kind(Kind::Float);
        Ok(Self {
            logits: f(self.logits)?,
            labels: self.labels,
            energies: match self.energies {
                Some((d, q)) => Some((f(d)?, f(q)?)),
                None => None,
            },
        })
    }
}

impl Trainer<'_> {
    /// Batch `pos` of `epoch` of the (unlabelled) training order.
    fn data_batch(&mut self, epoch: usize, pos: u64) -> Result<(Tensor, Tensor)> {
        if self.epoch_order.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let mut order = self.data.train_idx.clone();
            order.shuffle(&mut stream_rng(
                self.cfg.data.seed,
                Stream::EpochOrder,
                epoch as u64,
                0,
            ));
            self.epoch_order = Some((epoch, order));
        }
        let order = &self.epoch_order.as_ref().expect("set above").1;
        let b = self.cfg.data.batch_size;
        let start = pos as usize * b;
        let end = (start + b).min(order.len());
        let sub = self.data.train.subset(&order[start..end])?;
        Ok((sub.images, sub.labels))
    }

    /// The labelled batch of iteration `it` in semi-supervised runs.
    fn labeled_batch(&self, it: u64, labeled: &[usize]) -> Result<(Tensor, Tensor)> {
        let b = self.cfg.data.batch_size;
        let per_cycle = (labeled.len() / b).max(1) as u64;
        let (cycle, pos) = (it / per_cycle, (it % per_cycle) as usize);
        let mut order = labeled.to_vec();
        order.shuffle(&mut stream_rng(
            self.cfg.data.seed,
            Stream::LabeledOrder,
            cycle,
            0,
        ));
        let start = pos * b;
        let end = (start + b).min(order.len());
        let sub = self.data.train.subset(&order[start..end])?;
        Ok((sub.images, sub.labels))
    }

    /// Whether the chains follow a class-conditional energy `f(x)[y]`: factored runs always,
    /// JEM runs with a class-conditional buffer (Appendix A's sampling "method 1", the
    /// reference's `--class_cond_p_x_sample`).
    pub(super) fn samples_conditionally(&self) -> bool {
        self.cfg.train.mode == Mode::Factored || self.cfg.sampler.buffer.class_conditional
    }

    /// One sampling step of Algorithm 1: draws `n` chains (with `labels`, or labels drawn by the
    /// chains), runs SGLD on the chains' energy and stores them back. A non-finite chain is a
    /// divergence, not an error.
    pub(super) fn sample_chains(
        &mut self,
        n: usize,
        labels: Option<&[i64]>,
        sgld_cfg: &SgldConfig,
        rng: &mut Pcg64,
    ) -> Result<std::result::Result<Samples, Divergence>> {
        let conditional = self.samples_conditionally();
        let model = &self.model;
        let (precision, device) = (self.cfg.train.sgld_precision, self.device);
        let chains = self.chains.as_mut().expect("sampling modes have chains");
        // The network runs in the SGLD precision; the energies the chains climb are float32.
        let float =
            |t: jem_model::Result<jem_model::Result<Tensor>>| -> jem_sampler::Result<Tensor> {
                t.and_then(|r| r)
                    .and_then(|t| Ok(t.f_to_kind(Kind::Float)?))
                    .map_err(SamplerError::density)
            };
        let marginal = |x: &Tensor| float(precision.run(device, || model.log_px(x, false)));
        let per_class =
            FromLogits(|x: &Tensor| float(precision.run(device, || model.logits(x, false))));
        let energy = if conditional {
            Energy::Conditional(&per_class)
        } else {
            Energy::Marginal(&marginal)
        };
        match sample(chains, energy, n, labels, sgld_cfg, rng) {
            Ok(s) => Ok(Ok(s)),
            Err(SamplerError::NonFinite { quantity, step }) => Ok(Err(Divergence::Sampler(
                format!("non-finite {quantity} at SGLD step {step}"),
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The forward passes of the objective. Without batch norm and without a separate labelled
    /// batch, data and samples go through the network in one batch (the per-example outputs do
    /// not depend on the batch); otherwise each batch has its own pass, as the reference does.
    fn forward(
        &self,
        x_d: &Tensor,
        y_d: &Tensor,
        labeled: Option<&(Tensor, Tensor)>,
        samples: Option<&Samples>,
    ) -> Result<Forward> {
        let model = &self.model;
        let mode = self.cfg.train.mode;
        let Some(s) = samples else {
            let (x, y) = labeled.map_or((x_d, y_d), |(x, y)| (x, y));
            return Ok(Forward {
                logits: model.logits(x, true)?,
                labels: y.shallow_clone(),
                energies: None,
            });
        };
        let sample_energy = |logits_q: &Tensor, logpx_q: Tensor| -> Result<Tensor> {
            Ok(match mode {
                Mode::Factored => log_pxy_from_logits(
                    logits_q,
                    s.labels.as_ref().expect("factored samples carry labels"),
                )?,
                _ => logpx_q,
            })
        };
        let joint = labeled.is_none() && self.cfg.model.norm != Norm::Batch;
        if joint {
            let b = x_d.size()[0];
            let q = s.x.size()[0];
            let x = Tensor::f_cat(&[x_d, &s.x], 0)?;
            let (logits, logpx) = model.logits_and_log_px(&x, true)?;
            let logits_d = logits.f_narrow(0, 0, b)?;
            let data = match mode {
                Mode::Factored => log_pxy_from_logits(&logits_d, y_d)?,
                _ => logpx.f_narrow(0, 0, b)?,
            };
            let samples = sample_energy(&logits.f_narrow(0, b, q)?, logpx.f_narrow(0, b, q)?)?;
            return Ok(Forward {
                logits: logits_d,
                labels: y_d.shallow_clone(),
                energies: Some((data, samples)),
            });
        }
        let (logits, labels, data) = match labeled {
            None => {
                let (logits, logpx) = model.logits_and_log_px(x_d, true)?;
                let data = match mode {
                    Mode::Factored => log_pxy_from_logits(&logits, y_d)?,
                    _ => logpx,
                };
                (logits, y_d.shallow_clone(), data)
            }
            Some((xl, yl)) => {
                let logits = model.logits(xl, true)?;
                let data = match mode {
                    Mode::Factored => log_pxy_from_logits(&logits, yl)?,
                    _ => model.log_px(x_d, true)?,
                };
                (logits, yl.shallow_clone(), data)
            }
        };
        let logits_q = model.logits(&s.x, true)?;
        let logpx_q = log_px_from_logits(&logits_q)?;
        let samples = sample_energy(&logits_q, logpx_q)?;
        Ok(Forward {
            logits,
            labels,
            energies: Some((data, samples)),
        })
    }

    pub(super) fn iteration(&mut self, it: u64, epoch: usize) -> Result<Outcome> {
        let seed = self.cfg.train.seed;
        let salt = self.recovery.salt;
        // Dropout masks are the one draw from libtorch's global generator: seeded, and held
        // until the iteration's last draw, only where the model has dropout.
        let _torch = (self.cfg.model.dropout > 0.0)
            .then(|| seed_torch_rng(tch_seed(seed, Stream::Iteration, it, salt)));
        let mut rng = stream_rng(seed, Stream::Iteration, it, salt);
        let pos = it % self.data.iterations_per_epoch;
        let (xr, yr) = self.data_batch(epoch, pos)?;
        let x_d = self
            .data
            .train_pre
            .train(&xr, &mut rng)?
            .f_to_device(self.device)?;
        let y_d = yr.f_to_device(self.device)?;
        let labeled = match &self.data.labeled_idx {
            Some(l) => {
                let (xl, yl) = self.labeled_batch(it, l)?;
                let xl = self
                    .data
                    .train_pre
                    .train(&xl, &mut rng)?
                    .f_to_device(self.device)?;
                Some((xl, yl))
            }
            None => None,
        };
        let lr = self.cfg.train.lr_at(it, epoch) * self.recovery.lr_scale;
        let mode = self.cfg.train.mode;
        let mut sgld_cfg = self.cfg.sampler.sgld.clone();
        sgld_cfg.steps = self.recovery.sgld_steps;
        self.opt.zero_grad();

        let samples = if mode.samples() {
            // Factored runs contrast each labelled example with a chain of its class; the labels
            // are read from the host copy, never from the device.
            let host_labels = match mode {
                Mode::Factored => Some(Vec::<i64>::try_from(
                    labeled.as_ref().map_or(&yr, |(_, y)| y),
                )?),
                _ => None,
            };
            let n = host_labels
                .as_ref()
                .map_or(x_d.size()[0] as usize, Vec::len);
            match self.sample_chains(n, host_labels.as_deref(), &sgld_cfg, &mut rng)? {
                Ok(s) => Some(s),
                Err(d) => return Ok(Outcome::Diverged(d)),
            }
        } else {
            None
        };
        let labeled = match labeled {
            Some((xl, yl)) => Some((xl, yl.f_to_device(self.device)?)),
            None => None,
        };
        let fwd = self
            .cfg
            .train
            .train_precision
            .run(self.device, || {
                self.forward(&x_d, &y_d, labeled.as_ref(), samples.as_ref())
            })??
            .into_float()?;
        let weights = ObjectiveWeights::from(&self.cfg.train);
        let energies = fwd.energies.as_ref().map(|(d, q)| Energies {
            data: d,
            samples: q,
        });
        let terms = jem_objective(mode, &weights, &fwd.logits, &fwd.labels, energies)?;
        let correct = fwd
            .logits
            .detach()
            .f_argmax(1, false)?
            .f_eq_tensor(&fwd.labels)?
            .f_sum(Kind::Float)?;

        // Every scalar the loop reads, in one transfer from the device.
        let zero = || Tensor::f_zeros([], (Kind::Float, self.device));
        let mut scalars = vec![
            terms.loss.detach(),
            terms.ce.detach(),
            correct,
            terms.px.as_ref().map_or_else(zero, |t| Ok(t.detach()))?,
            terms.reg.as_ref().map_or_else(zero, |t| Ok(t.detach()))?,
        ];
        if let Some((d, q)) = &fwd.energies {
            let (d, q) = (d.detach(), q.detach());
            scalars.extend([
                d.f_mean(Kind::Float)?,
                d.f_min()?,
                d.f_max()?,
                q.f_mean(Kind::Float)?,
                q.f_min()?,
                q.f_max()?,
            ]);
        }
        let host = Vec::<f64>::try_from(
            &Tensor::f_stack(&scalars, 0)?
                .f_to_kind(Kind::Double)?
                .f_to_device(Device::Cpu)?,
        )?;
        let energies = (host.len() == 11).then(|| EnergyStats {
            data_mean: host[5],
            data_min: host[6],
            data_max: host[7],
            sample_mean: host[8],
            sample_min: host[9],
            sample_max: host[10],
        });
        let loss_v = host[0];
        if let Some(d) = detect(&self.cfg.train.recovery, loss_v, energies.as_ref()) {
            return Ok(Outcome::Diverged(d));
        }
        terms.loss.f_backward()?;
        let grad_norm = match self.cfg.train.grad_clip {
            Some(c) => self.opt.clip_grad_norm(c)?,
            None => self.opt.grad_norm()?,
        };
        if !grad_norm.is_finite() {
            return Ok(Outcome::Diverged(Divergence::NonFiniteLoss(grad_norm)));
        }
        self.opt.step(lr)?;
        if let Some(s) = &samples {
            if self.cfg.sampler.chains == Chains::ShortRun || self.cfg.train.sample_every > 0 {
                self.last_samples = Some(s.x.shallow_clone());
            }
        }
        Ok(Outcome::Done(Box::new(IterStats {
            loss: loss_v,
            ce: host[1],
            px: host[3],
            reg: host[4],
            energies,
            sgld_grad: samples.as_ref().and_then(|s| s.stats.last_grad_norm()),
            grad_norm,
            correct: host[2] as u64,
            seen: fwd.labels.size()[0] as u64,
            lr,
        })))
    }
}
