//! The minimal ε per input, found with PGD as the oracle, as foolbox 2.4's binary search does:
//! try foolbox's ε = 0.3 (a fraction of the box's side, see [`box_relative_eps`]); while PGD
//! fails, grow ε geometrically (×1.5); then bisect 20 times between the last failure (0 when
//! the first ε succeeded) and the first success.
//!
//! Two improvements over foolbox: bisection starts from the last failed ε rather than 0 (the
//! exponential phase already showed smaller ε fail), and every input of a batch runs its own
//! search, batched into one PGD call per round over the inputs still searching.
//!
//! Why the start matters: a round at an ε that fails runs every PGD step of every restart, a round
//! that succeeds usually stops after a few (with [`PgdConfig::stop_early`]). Starting far below
//! the answer (one pixel level, the default until 2026-12-07) adds 8-14 failing rounds per input
//! before the 20 bisection steps; from foolbox's large start the first round succeeds at once.
//!
//! The reported minimal ε is the distance of the closest adversarial any PGD run found (a
//! certificate: that adversarial exists), which is at most the smallest successful PGD radius.

use crate::error::invalid;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::Result;
use crate::norm::{Norm, BOX_MAX, BOX_MIN, PIXEL_SCALE};
use crate::pgd::{pgd_with_eps, restart_rng, PgdConfig};
use crate::target::{check_batch, AttackTarget};

/// Bisection steps of foolbox 2.4's binary search on ε.
pub const FOOLBOX_BISECTION_STEPS: usize = 20;

/// foolbox 2.4's default `epsilon` of its gradient attacks, where the binary search starts: a
/// fraction of the box's side (see [`box_relative_eps`]).
pub const FOOLBOX_INITIAL_EPSILON: f64 = 0.3;

/// ε in internal units of foolbox 2.4's box-relative `epsilon` for inputs with `dim`
/// coordinates: under L∞ `fraction · side`; under L2 foolbox measures the root-mean-square
/// perturbation ("to make range of epsilons comparable to Linf"), so `fraction · side · √dim`.
///
/// # Examples
/// ```
/// use jem_attack::{box_relative_eps, Norm};
/// // The [-1, 1] box has side 2.
/// assert_eq!(box_relative_eps(Norm::Linf, 784, 0.3), 0.6);
/// assert!((box_relative_eps(Norm::L2, 784, 0.3) - 0.6 * 28.0).abs() < 1e-12);
/// ```
pub fn box_relative_eps(norm: Norm, dim: usize, fraction: f64) -> f64 {
    let side = BOX_MAX - BOX_MIN;
    match norm {
        Norm::Linf => fraction * side,
        Norm::L2 => fraction * side * (dim as f64).sqrt(),
    }
}

/// Coordinates per input of `x` (`[N, ...]`): the `dim` of [`box_relative_eps`].
pub fn input_dim(x: &Tensor) -> usize {
    x.size()[1..].iter().product::<i64>().max(0) as usize
}

/// Settings of the ε search. `Default`: the paper's PGD, start at foolbox's ε = 0.3 of the box,
/// grow ×1.5 up to the box's diameter while PGD fails, then 20 bisection steps, as foolbox 2.4
/// (the version JEM used), with no early stop on the bracket's width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// The oracle (its `eps` is ignored; its seed seeds the whole search).
    pub pgd: PgdConfig,
    /// First ε tried, internal units; `None` (the default) is foolbox 2.4's:
    /// [`box_relative_eps`] of [`FOOLBOX_INITIAL_EPSILON`], capped at the largest ε.
    pub initial_eps: Option<f64>,
    /// Factor by which ε grows while PGD fails (foolbox: 1.5).
    pub growth: f64,
    /// Largest ε tried, internal units; `None` is the diameter of the [-1, 1] box under the norm
    /// (2 for L∞, `2·sqrt(d)` for L2), beyond which no new point is reachable.
    pub max_eps: Option<f64>,
    /// Most bisection steps per input (foolbox 2.4: 20).
    pub bisection_steps: usize,
    /// Stop bisecting once `good − bad <= relative_tolerance · good` (0, the default, disables
    /// this: every input gets all `bisection_steps`).
    pub relative_tolerance: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            pgd: PgdConfig::default(),
            initial_eps: None,
            growth: 1.5,
            max_eps: None,
            bisection_steps: FOOLBOX_BISECTION_STEPS,
            relative_tolerance: 0.0,
        }
    }
}

/// The name [`crate::AttackError::InvalidConfig`] gives this file's config.
const CONFIG: &str = "SearchConfig";

impl SearchConfig {
    /// Validates every field (the oracle's too), naming the first one out of range.
    pub fn check(&self) -> Result<()> {
        self.pgd.check()?;
        if let Some(e) = self.initial_eps {
            if !(e.is_finite() && e > 0.0) {
                return Err(invalid(CONFIG, "initial_eps", e, "finite and > 0"));
            }
        }
        if !(self.growth.is_finite() && self.growth > 1.0) {
            return Err(invalid(CONFIG, "growth", self.growth, "finite and > 1"));
        }
        if let Some(m) = self.max_eps {
            if !(m.is_finite() && m >= self.initial_eps.unwrap_or(0.0) && m > 0.0) {
                return Err(invalid(
                    CONFIG,
                    "max_eps",
                    m,
                    "finite, > 0 and >= initial_eps",
                ));
            }
        }
        if !(self.relative_tolerance.is_finite() && self.relative_tolerance >= 0.0) {
            return Err(invalid(
                CONFIG,
                "relative_tolerance",
                self.relative_tolerance,
                "finite and >= 0",
            ));
        }
        Ok(())
    }

    /// The largest ε tried for inputs with `dim` coordinates each.
    pub fn max_eps_for(&self, dim: usize) -> f64 {
        self.max_eps
            .unwrap_or_else(|| box_relative_eps(self.pgd.norm, dim, 1.0))
    }

    /// The first ε tried for inputs with `dim` coordinates each.
    pub fn initial_eps_for(&self, dim: usize) -> f64 {
        self.initial_eps.unwrap_or_else(|| {
            box_relative_eps(self.pgd.norm, dim, FOOLBOX_INITIAL_EPSILON).min(self.max_eps_for(dim))
        })
    }
}

/// The result of the ε search on N inputs.
#[derive(Debug)]
pub struct SearchOutcome {
    /// Minimal ε per input, internal units: the distance of the closest adversarial found,
    /// 0 for inputs already misclassified, `f64::INFINITY` when none was found up to the largest ε.
    pub min_eps: Vec<f64>,
    /// The smallest PGD radius that succeeded per input (`f64::INFINITY` when none did, 0 for
    /// inputs already misclassified); `min_eps <= radius`.
    pub radii: Vec<f64>,
    /// The closest adversarial per input, `[N, ...]` (the input itself when none was found).
    pub adversarials: Tensor,
    /// Whether an adversarial was found.
    pub found: Vec<bool>,
    /// PGD calls made (one per round, each over the inputs still searching).
    pub rounds: usize,
}

impl SearchOutcome {
    /// [`min_eps`](Self::min_eps) on the [0, 255] pixel scale.
    pub fn min_eps_pixels(&self) -> Vec<f64> {
        self.min_eps.iter().map(|e| e * PIXEL_SCALE).collect()
    }
}

/// Where one input's search stands.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Growing ε; `last_failure` is the largest ε that failed so far (0 before any).
    Grow {
        eps: f64,
        last_failure: f64,
    },
    /// Bisecting between a failing `bad` and a succeeding `good`.
    Bisect {
        bad: f64,
        good: f64,
        steps: usize,
    },
    Done,
}

impl Phase {
    fn eps_to_try(&self) -> Option<f64> {
        match *self {
            Phase::Grow { eps, .. } => Some(eps),
            Phase::Bisect { bad, good, .. } => Some(0.5 * (bad + good)),
            Phase::Done => None,
        }
    }
}

/// Finds the minimal ε per input of `x` (`[N, ...]` in [-1, 1], true classes `labels` `[N]`).
///
/// Each round runs PGD once over the inputs still searching, each at its own ε, seeded from
/// `cfg.pgd.seed` and the round number, so the search is deterministic given the seed. Memory
/// and time scale with N: callers split large sets into batches.
pub fn minimal_eps(
    target: &dyn AttackTarget,
    x: &Tensor,
    labels: &Tensor,
    cfg: &SearchConfig,
) -> Result<SearchOutcome> {
    cfg.check()?;
    let n = check_batch(x, labels, target.num_classes())? as usize;
    let x = x.detach();
    let labels = labels.f_to_kind(Kind::Int64)?.f_to_device(x.device())?;
    let dim = input_dim(&x);
    let initial_eps = cfg.initial_eps_for(dim);
    let max_eps = cfg.max_eps_for(dim).max(initial_eps);

    let mut min_eps = vec![f64::INFINITY; n];
    let mut radii = vec![f64::INFINITY; n];
    let mut adversarials = x.copy();
    let mut phases = vec![
        Phase::Grow {
            eps: initial_eps,
            last_failure: 0.0,
        };
        n
    ];
    if n == 0 {
        return Ok(SearchOutcome {
            min_eps,
            radii,
            adversarials,
            found: Vec::new(),
            rounds: 0,
        });
    }

    // Inputs the target already gets wrong are at distance 0.
    let mut clean_rng = restart_rng(cfg.pgd.seed, u64::MAX - 1);
    let predicted = target
        .predict(&x, &mut clean_rng)?
        .f_to_device(Device::Cpu)?;
    let truth = labels.f_to_device(Device::Cpu)?;
    let wrong = Vec::<bool>::try_from(&predicted.f_ne_tensor(&truth)?)?;
    for (i, &w) in wrong.iter().enumerate() {
        if w {
            min_eps[i] = 0.0;
            radii[i] = 0.0;
            phases[i] = Phase::Done;
        }
    }

    let mut rounds = 0usize;
    loop {
        let rows: Vec<i64> = (0..n as i64)
            .filter(|&i| !matches!(phases[i as usize], Phase::Done))
            .collect();
        if rows.is_empty() {
            break;
        }
        let eps: Vec<f64> = rows
            .iter()
            .map(|&i| phases[i as usize].eps_to_try().unwrap_or(0.0))
            .collect();
        let idx = Tensor::f_from_slice(&rows)?.f_to_device(x.device())?;
        let mut oracle = cfg.pgd.clone();
        oracle.seed = restart_rng(cfg.pgd.seed, rounds as u64 + (1 << 32)).next_u64();
        let outcome = pgd_with_eps(
            target,
            &x.f_index_select(0, &idx)?,
            &labels.f_index_select(0, &idx)?,
            &eps,
            &oracle,
        )?;
        rounds += 1;

        let mut improved_local = Vec::new();
        let mut improved_rows = Vec::new();
        for (j, &row) in rows.iter().enumerate() {
            let i = row as usize;
            let tried = eps[j];
            let success = outcome.success[j];
            if success {
                radii[i] = radii[i].min(tried);
                if outcome.distances[j] < min_eps[i] {
                    min_eps[i] = outcome.distances[j];
                    improved_local.push(j as i64);
                    improved_rows.push(row);
                }
            }
            phases[i] = next_phase(phases[i], tried, success, max_eps, cfg);
        }
        if !improved_local.is_empty() {
            let local = Tensor::f_from_slice(&improved_local)?.f_to_device(x.device())?;
            let global = Tensor::f_from_slice(&improved_rows)?.f_to_device(x.device())?;
            adversarials = adversarials.f_index_copy(
                0,
                &global,
                &outcome.adversarials.f_index_select(0, &local)?,
            )?;
        }
        tracing::debug!(
            round = rounds,
            searching = rows.len(),
            found = min_eps.iter().filter(|e| e.is_finite()).count(),
            "eps search round"
        );
    }

    let found = min_eps.iter().map(|e| e.is_finite()).collect();
    Ok(SearchOutcome {
        min_eps,
        radii,
        adversarials,
        found,
        rounds,
    })
}

/// One step of an input's search after PGD at `tried` did (`success`) or did not succeed.
fn next_phase(phase: Phase, tried: f64, success: bool, max_eps: f64, cfg: &SearchConfig) -> Phase {
    let bisect = |bad: f64, good: f64, steps: usize| {
        if steps >= cfg.bisection_steps || good - bad <= cfg.relative_tolerance * good {
            Phase::Done
        } else {
            Phase::Bisect { bad, good, steps }
        }
    };
    match phase {
        Phase::Grow { last_failure, .. } => {
            if success {
                bisect(last_failure, tried, 0)
            } else if tried >= max_eps {
                Phase::Done
            } else {
                Phase::Grow {
                    eps: (tried * cfg.growth).min(max_eps),
                    last_failure: tried,
                }
            }
        }
        Phase::Bisect { bad, good, steps } => {
            if success {
                bisect(bad, tried, steps + 1)
            } else {
                bisect(tried, good, steps + 1)
            }
        }
        Phase::Done => Phase::Done,
    }
}
