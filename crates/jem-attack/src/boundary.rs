//! The boundary attack (Brendel, Rauber & Bethge 2018), a decision-based L2 attack.
//!
//! The attack only queries predicted labels. It starts from an adversarial input, here (as in the
//! paper's Appendix G) a correctly classified input of the original's most likely other class,
//! pulled toward the original by a bisection along the straight line between them. It then walks
//! along the decision boundary: each iteration draws random orthogonal steps on the sphere around
//! the original, follows each with a small step toward the original, and keeps the first
//! candidate that is still adversarial and closer. Step sizes adapt to the observed success rates
//! exactly as in foolbox 2.4, which the paper used.
//!
//! Two deliberate differences from foolbox: the `candidates` directions of an iteration are
//! queried in one batch (the first successful one in draw order is kept, so the outcome matches a
//! sequential query of the same draws), and a candidate is accepted only when it strictly reduces
//! the distance (foolbox would also move to an adversarial candidate that clipping made farther).

use std::collections::VecDeque;

use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

use crate::decision::{
    check_batch, decision_outcome, l2_rows, predict_labels, to_f32_vec, to_i64_vec, CheckedBatch,
    DecisionReport,
};
use crate::error::{AttackError, Result};
use crate::norm::{BOX_MAX, BOX_MIN};
use crate::rng::{sample_rng, standard_normal};
use crate::target::AttackTarget;

/// Below this source step the walk has converged (foolbox's `source_step_convergance`).
const CONVERGED_SOURCE_STEP: f64 = 1e-7;
/// Steps between two step-size updates; on these steps the spherical candidates are queried too.
const STATS_EVERY: usize = 10;
/// Window of the spherical-candidate success statistics (foolbox: 100).
const SPHERICAL_STATS_WINDOW: usize = 100;
/// Window of the toward-source-step success statistics (foolbox: 30).
const STEP_STATS_WINDOW: usize = 30;
/// Success rate above which steps grow.
const HIGH_SUCCESS_RATE: f64 = 0.5;
/// Success rate below which steps shrink.
const LOW_SUCCESS_RATE: f64 = 0.2;
/// Starting-pool inputs classified per query while looking for a starting point.
const POOL_CHUNK: usize = 64;

/// Settings of [`boundary_attack`]. `Default` gives foolbox 2.4's defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BoundaryConfig {
    /// Iterations of the boundary walk per input (foolbox: 5000).
    pub max_iterations: usize,
    /// Initial orthogonal step, relative to the current distance (foolbox: 0.01).
    pub spherical_step: f64,
    /// Initial step toward the original, relative to the current distance (foolbox: 0.01).
    pub source_step: f64,
    /// Factor by which step sizes grow or shrink when success rates are high or low (foolbox: 1.5).
    pub step_adaptation: f64,
    /// Random directions tried per iteration (foolbox's `max_directions`: 25).
    pub candidates: usize,
    /// Bisection steps of the initial line search from the starting point toward the original.
    pub line_search_steps: usize,
    /// Keep every accepted iterate in [`BoundaryOutcome::iterates`] (memory-hungry; for tests and
    /// diagnostics).
    pub record_iterates: bool,
    /// Seed of all the attack's randomness, including the target's when it is randomised.
    pub seed: u64,
}

impl Default for BoundaryConfig {
    fn default() -> Self {
        Self {
            max_iterations: 5000,
            spherical_step: 1e-2,
            source_step: 1e-2,
            step_adaptation: 1.5,
            candidates: 25,
            line_search_steps: 25,
            record_iterates: false,
            seed: 0,
        }
    }
}

impl BoundaryConfig {
    /// Checks every setting, naming the first offending field.
    pub fn check(&self) -> Result<()> {
        let invalid = |field: &'static str, value: String, allowed: &'static str| {
            Err(AttackError::from(jem_params::InvalidParam::new(
                "BoundaryConfig",
                field,
                value,
                allowed,
            )))
        };
        if !(self.spherical_step.is_finite() && self.spherical_step > 0.0) {
            return invalid(
                "spherical_step",
                self.spherical_step.to_string(),
                "finite and > 0",
            );
        }
        if !(self.source_step.is_finite() && self.source_step > 0.0 && self.source_step < 1.0) {
            return invalid("source_step", self.source_step.to_string(), "in (0, 1)");
        }
        if !(self.step_adaptation.is_finite() && self.step_adaptation > 1.0) {
            return invalid(
                "step_adaptation",
                self.step_adaptation.to_string(),
                "finite and > 1",
            );
        }
        if self.candidates == 0 {
            return invalid("candidates", self.candidates.to_string(), ">= 1");
        }
        if self.line_search_steps == 0 {
            return invalid(
                "line_search_steps",
                self.line_search_steps.to_string(),
                ">= 1",
            );
        }
        Ok(())
    }
}

/// The boundary attack's result for one input.
#[derive(Debug)]
pub struct BoundaryOutcome {
    /// The closest adversarial found, `[C, H, W]` on the input's device; the original itself when
    /// it is already misclassified, and also when the attack failed (see `success`).
    pub adversarial: Tensor,
    /// L2 distance of `adversarial` to the original, in input units ([-1, 1] scale); infinite when
    /// the attack failed.
    pub l2_distance: f64,
    /// Whether an adversarial was found.
    pub success: bool,
    /// Label of the starting point (the original's most likely other class when the pool had a
    /// correctly classified input of it); `None` when the original was already misclassified or
    /// no starting point was found.
    pub starting_class: Option<i64>,
    /// Distance after the initial line search, then after every iteration (non-increasing).
    pub distance_trace: Vec<f64>,
    /// Every accepted iterate, `[C, H, W]`, starting with the line-search result; empty unless
    /// [`BoundaryConfig::record_iterates`].
    pub iterates: Vec<Tensor>,
    /// Iterations run (fewer than `max_iterations` when the source step converged).
    pub iterations_run: usize,
    /// Step sizes at the end, `(spherical, source)`.
    pub final_steps: (f64, f64),
}

/// Results of [`boundary_attack`] for a batch, one outcome per input in batch order.
pub type BoundaryReport = DecisionReport<BoundaryOutcome>;

decision_outcome!(BoundaryOutcome);

/// Runs the boundary attack on every input of `inputs` (`[N, C, H, W]` in [-1, 1]) with true
/// `labels` (`[N]`).
///
/// `starting_inputs` (`[M, C, H, W]`) with their true `starting_labels` (`[M]`), e.g. the test
/// set, supply starting points: for each input, the first pool entry labelled with the input's
/// most likely other class that the target also classifies as that class (Appendix G), or, when
/// there is none, the first correctly classified pool entry of any other class. Inputs for which
/// neither exists are reported as failures, not errors.
pub fn boundary_attack<T: AttackTarget + ?Sized>(
    target: &T,
    inputs: &Tensor,
    labels: &Tensor,
    starting_inputs: &Tensor,
    starting_labels: &Tensor,
    config: &BoundaryConfig,
) -> Result<BoundaryReport> {
    config.check()?;
    let batch = check_batch(target, inputs, labels)?;
    let pool_labels = check_pool(target, &batch, starting_inputs, starting_labels)?;
    let mut pool = StartingPool {
        inputs: starting_inputs,
        predictions: vec![None; pool_labels.len()],
        labels: pool_labels,
        device: inputs.device(),
        // The pool's own stream, so classifying pool entries does not shift the inputs' streams.
        rng: sample_rng(config.seed, u64::MAX),
    };
    let mut outcomes = Vec::with_capacity(batch.labels.len());
    for (index, &label) in batch.labels.iter().enumerate() {
        let original = inputs
            .f_get(index as i64)?
            .f_to_kind(Kind::Float)?
            .f_unsqueeze(0)?;
        let mut rng = sample_rng(config.seed, index as u64);
        let outcome = attack_one(target, &original, label, &mut pool, config, &mut rng)?;
        tracing::debug!(
            index,
            success = outcome.success,
            l2 = outcome.l2_distance,
            iterations = outcome.iterations_run,
            "boundary attack finished an input"
        );
        outcomes.push(outcome);
    }
    Ok(DecisionReport { outcomes })
}

/// Attacks one input, `original` `[1, C, H, W]`.
fn attack_one<T: AttackTarget + ?Sized>(
    target: &T,
    original: &Tensor,
    label: i64,
    pool: &mut StartingPool<'_>,
    config: &BoundaryConfig,
    rng: &mut Pcg64,
) -> Result<BoundaryOutcome> {
    let sample_shape: Vec<i64> = original.size()[1..].to_vec();
    let original_sample = original.f_squeeze_dim(0)?;
    let unperturbed = |success: bool| BoundaryOutcome {
        adversarial: original_sample.shallow_clone(),
        l2_distance: if success { 0.0 } else { f64::INFINITY },
        success,
        starting_class: None,
        distance_trace: Vec::new(),
        iterates: Vec::new(),
        iterations_run: 0,
        final_steps: (config.spherical_step, config.source_step),
    };

    if predict_labels(target, original, rng)?[0] != label {
        // Already misclassified: distance 0, as foolbox reports it.
        let mut outcome = unperturbed(true);
        outcome.distance_trace.push(0.0);
        return Ok(outcome);
    }

    // The most likely class other than the true one: the top-2 prediction of a correctly
    // classified input. Only this choice looks at probabilities; the attack itself uses labels.
    let log_probs = tch::no_grad(|| target.log_probs(original, rng))?;
    crate::target::check_log_probs(&log_probs, 1, target.num_classes())?;
    let mut scores = to_f32_vec(&log_probs)?;
    if let Some(own) = scores.get_mut(label as usize) {
        *own = f32::NEG_INFINITY;
    }
    let wanted_class = argmax(&scores) as i64;

    let mut start_index = None;
    if wanted_class != label {
        start_index = pool.first_correct(target, |l| l == wanted_class)?;
    }
    if start_index.is_none() {
        start_index = pool.first_correct(target, |l| l != label)?;
    }
    let Some(start_index) = start_index else {
        tracing::warn!(
            label,
            wanted_class,
            "boundary attack: no correctly classified starting input of another class"
        );
        return Ok(unperturbed(false));
    };
    let starting_class = pool.labels[start_index];
    let start = pool
        .inputs
        .f_get(start_index as i64)?
        .f_to_kind(Kind::Float)?
        .f_to_device(original.device())?
        .f_unsqueeze(0)?;

    let original_flat = original.f_reshape([1, -1])?;
    let mut perturbed = line_search(
        target,
        &original_flat,
        &start.f_reshape([1, -1])?,
        &sample_shape,
        label,
        config.line_search_steps,
        rng,
    )?;
    let mut distance = l2_rows(&perturbed, &original_flat)?[0];

    let mut distance_trace = vec![distance];
    let mut iterates = Vec::new();
    let as_sample = |flat: &Tensor| flat.f_reshape(sample_shape.as_slice());
    if config.record_iterates {
        iterates.push(as_sample(&perturbed)?);
    }

    let mut steps = StepSizes {
        spherical: config.spherical_step,
        source: config.source_step,
        adaptation: config.step_adaptation,
        spherical_stats: VecDeque::with_capacity(SPHERICAL_STATS_WINDOW),
        step_stats: VecDeque::with_capacity(STEP_STATS_WINDOW),
    };
    let mut iterations_run = 0;
    for iteration in 1..=config.max_iterations {
        if steps.source < CONVERGED_SOURCE_STEP {
            tracing::debug!(iteration, distance, "boundary attack converged");
            break;
        }
        iterations_run = iteration;
        let update_stats = iteration % STATS_EVERY == 0;
        let proposal = propose(
            &original_flat,
            &perturbed,
            distance,
            steps.spherical,
            steps.source,
            config.candidates,
            rng,
        )?;

        // One query for the whole iteration; on statistics steps the spherical candidates ride
        // along so the boundary's local curvature can be measured (foolbox queries them only then).
        let queried = if update_stats {
            Tensor::f_cat(&[&proposal.spherical, &proposal.candidates], 0)?
        } else {
            proposal.candidates.shallow_clone()
        };
        let mut batch_shape = vec![queried.size()[0]];
        batch_shape.extend_from_slice(&sample_shape);
        let predictions = predict_labels(target, &queried.f_reshape(batch_shape.as_slice())?, rng)?;
        let (spherical_predictions, candidate_predictions) = if update_stats {
            predictions.split_at(config.candidates)
        } else {
            (&predictions[..0], &predictions[..])
        };
        let candidate_distances = l2_rows(&proposal.candidates, &original_flat)?;

        // Walk the draws in order, as a sequential query would, and keep the first success.
        let mut accepted = None;
        for (draw, (&prediction, &candidate_distance)) in candidate_predictions
            .iter()
            .zip(&candidate_distances)
            .enumerate()
        {
            if update_stats {
                let spherical_adversarial = spherical_predictions[draw] != label;
                steps.record_spherical(spherical_adversarial);
                if !spherical_adversarial {
                    continue;
                }
                steps.record_step(prediction != label);
            }
            if prediction != label && candidate_distance < distance {
                accepted = Some((draw, candidate_distance));
                break;
            }
        }
        if let Some((draw, candidate_distance)) = accepted {
            perturbed = proposal.candidates.f_get(draw as i64)?.f_unsqueeze(0)?;
            distance = candidate_distance;
            if config.record_iterates {
                iterates.push(as_sample(&perturbed)?);
            }
        }
        distance_trace.push(distance);
        if update_stats {
            steps.adapt();
            tracing::trace!(
                iteration,
                distance,
                spherical_step = steps.spherical,
                source_step = steps.source,
                "boundary attack step sizes"
            );
        }
    }

    Ok(BoundaryOutcome {
        adversarial: as_sample(&perturbed)?,
        l2_distance: distance,
        success: true,
        starting_class: Some(starting_class),
        distance_trace,
        iterates,
        iterations_run,
        final_steps: (steps.spherical, steps.source),
    })
}

/// Bisection on the segment from `original` (not adversarial) to `start` (adversarial), both
/// `[1, D]`; returns the adversarial end of the final bracket, so the result stays adversarial.
fn line_search<T: AttackTarget + ?Sized>(
    target: &T,
    original: &Tensor,
    start: &Tensor,
    sample_shape: &[i64],
    label: i64,
    steps: usize,
    rng: &mut Pcg64,
) -> Result<Tensor> {
    let mut batch_shape = vec![1];
    batch_shape.extend_from_slice(sample_shape);
    let direction = start.f_sub(original)?;
    let blend = |t: f64| -> Result<Tensor> { Ok(original.f_add(&direction.f_mul_scalar(t)?)?) };
    let (mut not_adversarial, mut adversarial) = (0.0_f64, 1.0_f64);
    for _ in 0..steps {
        let middle = 0.5 * (not_adversarial + adversarial);
        let point = blend(middle)?;
        if predict_labels(target, &point.f_reshape(batch_shape.as_slice())?, rng)?[0] != label {
            adversarial = middle;
        } else {
            not_adversarial = middle;
        }
    }
    if adversarial == 1.0 {
        // Never moved: return the starting point itself rather than a recomputed blend.
        Ok(start.shallow_clone())
    } else {
        blend(adversarial)
    }
}

/// The candidates of one iteration, `[K, D]` each.
struct Proposal {
    /// Points on the sphere around the original through the current iterate.
    spherical: Tensor,
    /// The spherical points moved toward the original.
    candidates: Tensor,
}

/// Draws `count` candidates from the current iterate `perturbed` (`[1, D]`, at `distance` from
/// `original`), following foolbox's `generate_candidate_default`.
fn propose(
    original: &Tensor,
    perturbed: &Tensor,
    distance: f64,
    spherical_step: f64,
    source_step: f64,
    count: usize,
    rng: &mut Pcg64,
) -> Result<Proposal> {
    let dims = original.size()[1];
    let toward_source = original.f_sub(perturbed)?; // [1, D]
    let source_direction = toward_source.f_div_scalar(distance)?;

    // Random direction, made orthogonal to the source direction and scaled to
    // spherical_step * distance.
    let noise = standard_normal(&[count as i64, dims], original.device(), rng)?;
    let along = noise.f_matmul(&source_direction.f_transpose(0, 1)?)?; // [K, 1]
    let orthogonal = noise.f_sub(&along.f_mul(&source_direction)?)?;
    let orthogonal_norm = orthogonal
        .f_norm_scalaropt_dim(2, [1i64], true)?
        .f_clamp_min(f64::MIN_POSITIVE)?;
    let orthogonal = orthogonal
        .f_div(&orthogonal_norm)?
        .f_mul_scalar(spherical_step * distance)?;

    // Rotate on the sphere: original + D * (orthogonal - toward_source) has norm `distance`
    // from the original when D = 1 / sqrt(1 + spherical_step^2).
    let shrink = 1.0 / (spherical_step * spherical_step + 1.0).sqrt();
    let spherical = original
        .f_add(&orthogonal.f_sub(&toward_source)?.f_mul_scalar(shrink)?)?
        .f_clamp(BOX_MIN, BOX_MAX)?;

    // Step toward the original by source_step * distance, corrected for how far clipping moved
    // the spherical point off the sphere.
    let new_toward_source = original.f_sub(&spherical)?;
    let new_norm = new_toward_source
        .f_norm_scalaropt_dim(2, [1i64], true)?
        .f_clamp_min(f64::MIN_POSITIVE)?;
    let length = new_norm
        .f_add_scalar(source_step * distance - distance)?
        .f_clamp_min(0.0)?
        .f_div(&new_norm)?;
    let candidates = spherical
        .f_add(&new_toward_source.f_mul(&length)?)?
        .f_clamp(BOX_MIN, BOX_MAX)?;
    Ok(Proposal {
        spherical,
        candidates,
    })
}

/// Step sizes and the success statistics that steer them (foolbox's `update_step_sizes`).
struct StepSizes {
    spherical: f64,
    source: f64,
    adaptation: f64,
    /// Most recent first: whether each queried spherical candidate was adversarial.
    spherical_stats: VecDeque<bool>,
    /// Most recent first: whether each step from an adversarial spherical candidate was.
    step_stats: VecDeque<bool>,
}

impl StepSizes {
    fn record_spherical(&mut self, adversarial: bool) {
        push_window(
            &mut self.spherical_stats,
            adversarial,
            SPHERICAL_STATS_WINDOW,
        );
    }

    fn record_step(&mut self, adversarial: bool) {
        push_window(&mut self.step_stats, adversarial, STEP_STATS_WINDOW);
    }

    fn adapt(&mut self) {
        if self.spherical_stats.len() == SPHERICAL_STATS_WINDOW {
            // Many adversarial spherical points: the boundary looks flat here, so larger steps
            // are safe; few: it is curved, so both steps shrink.
            let rate = success_rate(&self.spherical_stats);
            if rate > HIGH_SUCCESS_RATE {
                self.spherical *= self.adaptation;
                self.source *= self.adaptation;
                self.spherical_stats.clear();
            } else if rate < LOW_SUCCESS_RATE {
                self.spherical /= self.adaptation;
                self.source /= self.adaptation;
                self.spherical_stats.clear();
            }
        }
        if self.step_stats.len() == STEP_STATS_WINDOW {
            let rate = success_rate(&self.step_stats);
            if rate > HIGH_SUCCESS_RATE {
                self.source *= self.adaptation;
                self.step_stats.clear();
            } else if rate < LOW_SUCCESS_RATE {
                self.source /= self.adaptation;
                self.step_stats.clear();
            }
        }
    }
}

fn push_window(window: &mut VecDeque<bool>, value: bool, capacity: usize) {
    window.push_front(value);
    window.truncate(capacity);
}

fn success_rate(window: &VecDeque<bool>) -> f64 {
    window.iter().filter(|&&hit| hit).count() as f64 / window.len() as f64
}

/// The caller's pool of starting inputs, classified lazily and at most once per entry.
struct StartingPool<'a> {
    inputs: &'a Tensor,
    labels: Vec<i64>,
    predictions: Vec<Option<i64>>,
    /// Where the target expects its inputs (the attacked batch's device).
    device: Device,
    rng: Pcg64,
}

impl StartingPool<'_> {
    /// Index of the first entry whose label satisfies `label_wanted` and which the target
    /// classifies correctly; entries are classified in chunks as the scan reaches them.
    fn first_correct<T: AttackTarget + ?Sized>(
        &mut self,
        target: &T,
        label_wanted: impl Fn(i64) -> bool,
    ) -> Result<Option<usize>> {
        for index in 0..self.labels.len() {
            if !label_wanted(self.labels[index]) {
                continue;
            }
            if self.predictions[index].is_none() {
                let chunk: Vec<i64> = (index..self.labels.len())
                    .filter(|&j| label_wanted(self.labels[j]) && self.predictions[j].is_none())
                    .take(POOL_CHUNK)
                    .map(|j| j as i64)
                    .collect();
                let selector = Tensor::f_from_slice(&chunk)?.f_to_device(self.inputs.device())?;
                let batch = self
                    .inputs
                    .f_index_select(0, &selector)?
                    .f_to_kind(Kind::Float)?
                    .f_to_device(self.device)?;
                let predicted = predict_labels(target, &batch, &mut self.rng)?;
                for (&j, &p) in chunk.iter().zip(&predicted) {
                    self.predictions[j as usize] = Some(p);
                }
            }
            if let Some(prediction) = self.predictions[index] {
                if prediction == self.labels[index] {
                    return Ok(Some(index));
                }
            }
        }
        Ok(None)
    }
}

/// Validates the starting pool against the batch: same per-input shape, labels `[M]` in range.
fn check_pool<T: AttackTarget + ?Sized>(
    target: &T,
    batch: &CheckedBatch,
    starting_inputs: &Tensor,
    starting_labels: &Tensor,
) -> Result<Vec<i64>> {
    let shape = starting_inputs.size();
    if shape.len() != 4 || shape[1..] != batch.sample_shape[..] {
        return Err(AttackError::InvalidArgument(format!(
            "starting inputs: expected [M, {:?}], got shape {shape:?}",
            batch.sample_shape
        )));
    }
    if !starting_inputs.f_is_floating_point()? {
        return Err(AttackError::InvalidArgument(format!(
            "starting inputs: expected a floating-point tensor, got {:?}",
            starting_inputs.f_kind()?
        )));
    }
    crate::target::check_labels(starting_labels, shape[0], target.num_classes())?;
    to_i64_vec(starting_labels)
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}
