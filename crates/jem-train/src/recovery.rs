//! Divergence detection and the recovery bookkeeping (the paper's Appendix H.3, automated).
//!
//! After the forward pass and sampling of an iteration, and before its parameter update, the
//! loop checks for a non-finite loss or sampler, an exploding energy gap and samples whose
//! log p(x) lies far outside the data's. On a detection it rolls back to the last good state and
//! applies the next remedy of [`RecoveryConfig::remedies`] (each also reseeds); after
//! `max_recoveries` it gives up with a [`DivergenceReport`].

use serde::{Deserialize, Serialize};

use crate::config::{RecoveryConfig, Remedy};

/// Summary of the unnormalised log p(x) of a data batch and of a sample batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EnergyStats {
    /// Mean log p(x) of the data batch.
    pub data_mean: f64,
    /// Smallest log p(x) of the data batch.
    pub data_min: f64,
    /// Largest log p(x) of the data batch.
    pub data_max: f64,
    /// Mean log p(x) of the samples.
    pub sample_mean: f64,
    /// Smallest log p(x) of the samples.
    pub sample_min: f64,
    /// Largest log p(x) of the samples.
    pub sample_max: f64,
}

impl EnergyStats {
    /// `mean log p(x_data) − mean log p(x_sample)`.
    pub fn gap(&self) -> f64 {
        self.data_mean - self.sample_mean
    }
}

/// What was detected.
#[derive(Debug, Clone, PartialEq)]
pub enum Divergence {
    /// The loss is NaN or infinite.
    NonFiniteLoss(f64),
    /// SGLD produced non-finite samples, energies or gradients.
    Sampler(String),
    /// `|gap|` exceeds the configured bound.
    EnergyGap {
        /// The gap.
        gap: f64,
        /// The bound.
        bound: f64,
    },
    /// A sample's log p(x) lies outside the widened data range.
    SampleRange {
        /// Sample log p(x) range.
        samples: (f64, f64),
        /// Allowed range.
        allowed: (f64, f64),
    },
    /// A parameter became non-finite.
    NonFiniteParameters,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Divergence::NonFiniteLoss(v) => write!(f, "non-finite loss ({v})"),
            Divergence::Sampler(m) => write!(f, "sampler failure: {m}"),
            Divergence::EnergyGap { gap, bound } => write!(
                f,
                "energy gap |mean log p(x_data) - mean log p(x_sample)| = {:.4e} exceeds {bound:e}",
                gap.abs()
            ),
            Divergence::SampleRange { samples, allowed } => write!(
                f,
                "sample log p(x) in [{:.4e}, {:.4e}], outside the allowed [{:.4e}, {:.4e}] around the data",
                samples.0, samples.1, allowed.0, allowed.1
            ),
            Divergence::NonFiniteParameters => write!(f, "non-finite model parameters"),
        }
    }
}

/// Checks the figures of one iteration against the configured bounds.
pub fn detect(
    cfg: &RecoveryConfig,
    loss: f64,
    energies: Option<&EnergyStats>,
) -> Option<Divergence> {
    if !loss.is_finite() {
        return Some(Divergence::NonFiniteLoss(loss));
    }
    let e = energies?;
    if let Some(bound) = cfg.max_energy_gap {
        let gap = e.gap();
        if !gap.is_finite() || gap.abs() > bound {
            return Some(Divergence::EnergyGap { gap, bound });
        }
    }
    if let Some(factor) = cfg.sample_range_factor {
        let width = (e.data_max - e.data_min).max(1.0);
        let allowed = (e.data_min - factor * width, e.data_max + factor * width);
        if !(e.sample_min >= allowed.0 && e.sample_max <= allowed.1) {
            return Some(Divergence::SampleRange {
                samples: (e.sample_min, e.sample_max),
                allowed,
            });
        }
    }
    None
}

/// One recovery: what was detected, where the run went back to and what was changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryEvent {
    /// Iteration (0-based) at which the divergence was detected.
    pub iteration: u64,
    /// Epoch of that iteration.
    pub epoch: usize,
    /// Description of the detection.
    pub detected: String,
    /// Iteration of the restored state.
    pub rolled_back_to: u64,
    /// 1-based count of recoveries so far.
    pub attempt: usize,
    /// The remedy applied.
    pub remedy: Remedy,
    /// Learning-rate multiplier in force afterwards.
    pub lr_scale: f64,
    /// SGLD steps in force afterwards.
    pub sgld_steps: usize,
    /// Random-stream salt in force afterwards.
    pub salt: u64,
}

/// The recovery state that survives rollbacks and is checkpointed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryState {
    /// Salt of every per-iteration random stream (changed by every recovery).
    pub salt: u64,
    /// Learning-rate multiplier (lowered by `lower_lr`).
    pub lr_scale: f64,
    /// SGLD steps per iteration (raised by `more_steps`).
    pub sgld_steps: usize,
    /// Every recovery so far.
    pub events: Vec<RecoveryEvent>,
}

impl RecoveryState {
    /// The initial state: salt 0, full learning rate, the configured SGLD steps.
    pub fn new(sgld_steps: usize) -> Self {
        Self {
            salt: 0,
            lr_scale: 1.0,
            sgld_steps,
            events: Vec::new(),
        }
    }

    /// Applies the next remedy after a divergence detected at `iteration`, rolling back to
    /// `rolled_back_to`. Returns the event, or the report when the budget is spent.
    pub fn recover(
        &mut self,
        cfg: &RecoveryConfig,
        divergence: &Divergence,
        iteration: u64,
        epoch: usize,
        rolled_back_to: u64,
    ) -> Result<RecoveryEvent, DivergenceReport> {
        if !cfg.enabled || self.events.len() >= cfg.max_recoveries {
            return Err(DivergenceReport {
                detected: divergence.to_string(),
                iteration,
                epoch,
                recovery_enabled: cfg.enabled,
                max_recoveries: cfg.max_recoveries,
                events: self.events.clone(),
            });
        }
        let attempt = self.events.len() + 1;
        let remedy = cfg.remedies[(attempt - 1) % cfg.remedies.len()];
        self.salt += 1;
        match remedy {
            Remedy::Reseed => {}
            Remedy::LowerLr => self.lr_scale *= cfg.lr_factor,
            Remedy::MoreSteps => {
                self.sgld_steps =
                    (self.sgld_steps.max(1) * cfg.steps_factor).min(cfg.max_sgld_steps)
            }
        }
        let event = RecoveryEvent {
            iteration,
            epoch,
            detected: divergence.to_string(),
            rolled_back_to,
            attempt,
            remedy,
            lr_scale: self.lr_scale,
            sgld_steps: self.sgld_steps,
            salt: self.salt,
        };
        self.events.push(event.clone());
        Ok(event)
    }
}

/// Why and where a run gave up, with every remedy tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DivergenceReport {
    /// The last detection.
    pub detected: String,
    /// Its iteration.
    pub iteration: u64,
    /// Its epoch.
    pub epoch: usize,
    /// Whether recovery was enabled.
    pub recovery_enabled: bool,
    /// The recovery budget.
    pub max_recoveries: usize,
    /// The recoveries tried before giving up.
    pub events: Vec<RecoveryEvent>,
}

impl std::fmt::Display for DivergenceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at iteration {} (epoch {})",
            self.detected, self.iteration, self.epoch
        )?;
        if !self.recovery_enabled {
            return write!(f, "; recovery is disabled (train.recovery.enabled = false)");
        }
        write!(
            f,
            "; {} recoveries tried (train.recovery.max_recoveries = {})",
            self.events.len(),
            self.max_recoveries
        )?;
        for e in &self.events {
            write!(
                f,
                "; #{} at iteration {} [{}]: rolled back to {}, {} (lr x{}, {} SGLD steps)",
                e.attempt,
                e.iteration,
                e.detected,
                e.rolled_back_to,
                e.remedy,
                e.lr_scale,
                e.sgld_steps
            )?;
        }
        write!(
            f,
            ". Try a lower train.lr, more sampler.sgld.steps, train.energy_l2 > 0, \
             sampler.sgld.clamp = [-1, 1] or train.grad_clip"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(data: (f64, f64, f64), samples: (f64, f64, f64)) -> EnergyStats {
        EnergyStats {
            data_mean: data.0,
            data_min: data.1,
            data_max: data.2,
            sample_mean: samples.0,
            sample_min: samples.1,
            sample_max: samples.2,
        }
    }

    #[test]
    fn detection_rules() {
        let cfg = RecoveryConfig {
            max_energy_gap: Some(10.0),
            sample_range_factor: Some(5.0),
            ..RecoveryConfig::default()
        };
        let ok = stats((1.0, 0.0, 2.0), (3.0, -1.0, 8.0));
        assert_eq!(detect(&cfg, 1.0, Some(&ok)), None);
        assert!(matches!(
            detect(&cfg, f64::NAN, Some(&ok)),
            Some(Divergence::NonFiniteLoss(_))
        ));
        let gap = stats((1.0, 0.0, 2.0), (12.0, 11.0, 11.5));
        assert!(matches!(
            detect(&cfg, 1.0, Some(&gap)),
            Some(Divergence::EnergyGap { .. })
        ));
        // Width max(2, 1) = 2, allowed [0 - 10, 2 + 10] = [-10, 12].
        let far = stats((1.0, 0.0, 2.0), (1.0, -10.5, 3.0));
        let d = detect(&cfg, 1.0, Some(&far)).unwrap();
        assert!(matches!(d, Divergence::SampleRange { .. }), "{d}");
        assert_eq!(detect(&cfg, 1.0, None), None);
        let off = RecoveryConfig {
            max_energy_gap: None,
            sample_range_factor: None,
            ..cfg
        };
        assert_eq!(detect(&off, 1.0, Some(&far)), None);
    }

    #[test]
    fn remedies_cycle_and_the_budget_ends_in_a_report() {
        let cfg = RecoveryConfig {
            max_recoveries: 4,
            max_sgld_steps: 30,
            ..RecoveryConfig::default()
        };
        let mut st = RecoveryState::new(20);
        let d = Divergence::NonFiniteLoss(f64::NAN);
        let e1 = st.recover(&cfg, &d, 10, 0, 5).unwrap();
        assert_eq!(
            (e1.remedy, e1.salt, e1.lr_scale, e1.sgld_steps),
            (Remedy::Reseed, 1, 1.0, 20)
        );
        let e2 = st.recover(&cfg, &d, 11, 0, 5).unwrap();
        assert_eq!((e2.remedy, e2.lr_scale), (Remedy::LowerLr, 0.5));
        let e3 = st.recover(&cfg, &d, 12, 0, 5).unwrap();
        assert_eq!((e3.remedy, e3.sgld_steps), (Remedy::MoreSteps, 30));
        let e4 = st.recover(&cfg, &d, 13, 0, 5).unwrap();
        assert_eq!((e4.remedy, e4.salt), (Remedy::Reseed, 4));
        let report = st.recover(&cfg, &d, 14, 1, 5).unwrap_err();
        assert_eq!(report.events.len(), 4);
        let text = report.to_string();
        assert!(
            text.contains("non-finite loss") && text.contains("iteration 14"),
            "{text}"
        );
        assert!(
            text.contains("lower_lr") && text.contains("more_steps"),
            "{text}"
        );
        let disabled = RecoveryConfig {
            enabled: false,
            ..RecoveryConfig::default()
        };
        let r = RecoveryState::new(20)
            .recover(&disabled, &d, 3, 0, 0)
            .unwrap_err();
        assert!(r.to_string().contains("disabled"));
    }
}
