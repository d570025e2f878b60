//! The pointwise attack (Schott et al. 2018, foolbox 2.4's `PointwiseAttack`), a decision-based
//! attack that minimises the number of changed coordinates and then their size.
//!
//! It starts from salt-and-pepper noise that is adversarial (foolbox's `SaltAndPepperNoiseAttack`:
//! noise levels rise until the label flips, repeated to find a lighter noise). Then it resets
//! coordinates to their original values, in random order, whenever the result stays adversarial,
//! until no single reset does. Finally, for each coordinate that still differs, a bisection
//! between the original and the adversarial value moves it as close to the original as the label
//! allows, again repeated until no coordinate improves.
//!
//! Two deliberate differences from foolbox, neither changing what the result satisfies:
//! the reset phase keeps going through the shuffled order after a successful reset instead of
//! reshuffling from the start (both stop only when no single reset stays adversarial, and
//! foolbox's restarts cost quadratically many queries), and resets are queried speculatively in
//! batches, the first success in order winning, so the outcome is the one a sequential query of
//! the same order gives. The refinement phase has a cap on its passes.
//!
//! Inputs are attacked in lockstep, [`PointwiseConfig::parallel_inputs`] at a time (the crate's
//! `lockstep` module): each input's attack runs foolbox's sequential algorithm on a thread of its
//! own, and every round the queries of all of them are classified together, in input order, in
//! calls of at most [`PointwiseConfig::batch_size`] candidates. The refinement phase asks one
//! candidate at a time, so one input alone would pay a whole classifier call (for JEM-k: `k` SGLD
//! steps on the EOT chains) per candidate. For a deterministic classifier every outcome is the one
//! the inputs get attacked one at a time (up to round-off); a randomised one draws from one stream
//! per group of inputs, seeded as the group's first input's.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

use crate::decision::{check_batch, decision_outcome, predict_labels, to_f32_vec, DecisionReport};
use crate::error::{AttackError, Result};
use crate::lockstep::in_lockstep;
use crate::norm::{BOX_MAX, BOX_MIN};
use crate::rng::sample_rng;
use crate::target::AttackTarget;

/// Factor by which the noise cap exceeds the last successful noise level (foolbox: 1.2; the
/// relation between level and distance is not monotonic, so the cap leaves some room).
const NOISE_CAP_SLACK: f64 = 1.2;

/// Settings of [`pointwise_attack`]. `Default` gives foolbox 2.4's defaults where foolbox has one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PointwiseConfig {
    /// Noise levels tried per salt-and-pepper repetition, evenly spaced up to the cap (foolbox:
    /// 100; never more than the number of pixels).
    pub salt_pepper_epsilons: usize,
    /// Salt-and-pepper repetitions; each looks for lighter noise below 1.2x the last success
    /// (foolbox: 10).
    pub salt_pepper_repetitions: usize,
    /// Bisection steps per coordinate in the refinement phase (foolbox: 10).
    pub bisection_steps: usize,
    /// Most passes of the refinement phase over the changed coordinates (foolbox: unbounded; a
    /// pass that improves nothing ends the phase earlier). 0 skips the refinement.
    pub max_refinement_passes: usize,
    /// Most candidates per classifier call: the speculative noise levels or resets of one input,
    /// and the calls that classify the queries of inputs attacked together.
    pub batch_size: usize,
    /// Inputs attacked together, in lockstep (see the module docs); 1 attacks them one at a
    /// time.
    #[serde(default = "default_parallel_inputs")]
    pub parallel_inputs: usize,
    /// Seed of all the attack's randomness, including the target's when it is randomised.
    pub seed: u64,
}

impl Default for PointwiseConfig {
    fn default() -> Self {
        Self {
            salt_pepper_epsilons: 100,
            salt_pepper_repetitions: 10,
            bisection_steps: 10,
            max_refinement_passes: 20,
            batch_size: 64,
            parallel_inputs: default_parallel_inputs(),
            seed: 0,
        }
    }
}

fn default_parallel_inputs() -> usize {
    32
}

impl PointwiseConfig {
    /// Checks every setting, naming the first offending field.
    pub fn check(&self) -> Result<()> {
        let at_least_one = [
            ("salt_pepper_epsilons", self.salt_pepper_epsilons),
            ("salt_pepper_repetitions", self.salt_pepper_repetitions),
            ("bisection_steps", self.bisection_steps),
            ("batch_size", self.batch_size),
            ("parallel_inputs", self.parallel_inputs),
        ];
        for (field, value) in at_least_one {
            if value == 0 {
                return Err(AttackError::from(jem_params::InvalidParam::new(
                    "PointwiseConfig",
                    field,
                    value.to_string(),
                    ">= 1",
                )));
            }
        }
        Ok(())
    }
}

/// The pointwise attack's result for one input.
#[derive(Debug)]
pub struct PointwiseOutcome {
    /// The adversarial, `[C, H, W]` on the input's device; the original itself when it is already
    /// misclassified, and also when the attack failed (see `success`).
    pub adversarial: Tensor,
    /// Coordinates (elements) of `adversarial` that differ from the original; 0 when the attack
    /// failed.
    pub l0: usize,
    /// L2 distance to the original in input units ([-1, 1] scale); infinite when the attack
    /// failed.
    pub l2_distance: f64,
    /// Whether an adversarial was found.
    pub success: bool,
    /// Changed coordinates of the salt-and-pepper starting point (0 when there was none).
    pub start_l0: usize,
    /// L2 distance of the salt-and-pepper starting point (infinite when there was none).
    pub start_l2_distance: f64,
    /// Inputs the target classified for this attack.
    pub queries: usize,
}

/// Results of [`pointwise_attack`] for a batch, one outcome per input in batch order.
pub type PointwiseReport = DecisionReport<PointwiseOutcome>;

decision_outcome!(PointwiseOutcome);

impl DecisionReport<PointwiseOutcome> {
    /// Per-input numbers of changed coordinates.
    pub fn l0s(&self) -> Vec<usize> {
        self.outcomes.iter().map(|o| o.l0).collect()
    }
}

/// Runs the pointwise attack on every input of `inputs` (`[N, C, H, W]` in [-1, 1]) with true
/// `labels` (`[N]`). Inputs for which no salt-and-pepper noise is adversarial are reported as
/// failures, not errors.
pub fn pointwise_attack<T: AttackTarget + ?Sized>(
    target: &T,
    inputs: &Tensor,
    labels: &Tensor,
    config: &PointwiseConfig,
) -> Result<PointwiseReport> {
    config.check()?;
    let batch = check_batch(target, inputs, labels)?;
    let device = inputs.device();
    let tasks = (0..batch.labels.len())
        .map(|index| Ok((index, inputs.f_get(index as i64)?)))
        .collect::<Result<Vec<_>>>()?;
    let outcomes = in_lockstep(
        target,
        config.parallel_inputs,
        config.batch_size,
        // A randomised target's stream per group: a group of one draws what its input drew when
        // inputs were attacked one at a time.
        |first| sample_rng(config.seed, first as u64),
        tasks,
        |stand_in, (index, sample)| {
            let mut oracle = Oracle {
                target: stand_in,
                label: batch.labels[index],
                sample_shape: batch.sample_shape.clone(),
                device,
                rng: sample_rng(config.seed, index as u64),
                queries: 0,
            };
            // A separate stream for the attack's own choices, so a randomised target's draws do
            // not shift them.
            let mut rng = sample_rng(config.seed ^ 0x706f_696e_7477_6973, index as u64);
            let outcome = attack_one(&mut oracle, &sample, config, &mut rng)?;
            tracing::debug!(
                index,
                success = outcome.success,
                l0 = outcome.l0,
                l2 = outcome.l2_distance,
                queries = outcome.queries,
                "pointwise attack finished an input"
            );
            Ok(outcome)
        },
    )?;
    Ok(DecisionReport { outcomes })
}

/// Answers "is this adversarial?" for host-side candidates of one input.
struct Oracle<'a, T: ?Sized> {
    target: &'a T,
    label: i64,
    sample_shape: Vec<i64>,
    device: Device,
    /// Handed to the target with each query, as the trait asks; the lockstep stand-in ignores it
    /// (a randomised target draws from its group's stream on the classifying thread).
    rng: Pcg64,
    queries: usize,
}

impl<T: AttackTarget + ?Sized> Oracle<'_, T> {
    /// Whether each of the candidates, concatenated in `points`, is classified as anything but
    /// the true label.
    fn adversarial(&mut self, points: &[f32]) -> Result<Vec<bool>> {
        let dims: usize = self.sample_shape.iter().map(|&d| d as usize).product();
        let count = points.len() / dims.max(1);
        let mut shape = vec![count as i64];
        shape.extend_from_slice(&self.sample_shape);
        let batch = Tensor::f_from_slice(points)?
            .f_reshape(shape.as_slice())?
            .f_to_device(self.device)?;
        self.queries += count;
        let predicted = predict_labels(self.target, &batch, &mut self.rng)?;
        Ok(predicted.into_iter().map(|p| p != self.label).collect())
    }

    fn is_adversarial(&mut self, point: &[f32]) -> Result<bool> {
        Ok(self.adversarial(point)?.first().copied().unwrap_or(false))
    }
}

/// Attacks one input, `sample` `[C, H, W]`.
fn attack_one<T: AttackTarget + ?Sized>(
    oracle: &mut Oracle<'_, T>,
    sample: &Tensor,
    config: &PointwiseConfig,
    rng: &mut Pcg64,
) -> Result<PointwiseOutcome> {
    let original = to_f32_vec(sample)?;
    let sample_shape = sample.size();
    let as_sample = |values: &[f32]| -> Result<Tensor> {
        Ok(Tensor::f_from_slice(values)?
            .f_reshape(sample_shape.as_slice())?
            .f_to_kind(Kind::Float)?
            .f_to_device(sample.device())?)
    };
    let unperturbed = |success: bool, queries: usize| -> Result<PointwiseOutcome> {
        Ok(PointwiseOutcome {
            adversarial: as_sample(&original)?,
            l0: 0,
            l2_distance: if success { 0.0 } else { f64::INFINITY },
            success,
            start_l0: 0,
            start_l2_distance: if success { 0.0 } else { f64::INFINITY },
            queries,
        })
    };

    if oracle.is_adversarial(&original)? {
        // Already misclassified: distance 0, as foolbox reports it.
        return unperturbed(true, oracle.queries);
    }
    let Some(mut adversarial) = salt_and_pepper(oracle, &original, config, rng)? else {
        tracing::warn!(
            label = oracle.label,
            "pointwise attack: no salt-and-pepper noise is adversarial"
        );
        return unperturbed(false, oracle.queries);
    };
    let start_l0 = l0(&adversarial, &original);
    let start_l2_distance = l2(&adversarial, &original);

    reset_coordinates(oracle, &mut adversarial, &original, config.batch_size, rng)?;
    tracing::trace!(
        start_l0,
        l0 = l0(&adversarial, &original),
        "pointwise attack: resets done"
    );
    refine_coordinates(oracle, &mut adversarial, &original, config, rng)?;

    Ok(PointwiseOutcome {
        adversarial: as_sample(&adversarial)?,
        l0: l0(&adversarial, &original),
        l2_distance: l2(&adversarial, &original),
        success: true,
        start_l0,
        start_l2_distance,
        queries: oracle.queries,
    })
}

/// The lightest adversarial salt-and-pepper noise found (foolbox's `SaltAndPepperNoiseAttack`):
/// a pixel turns white (all channels 1) with probability p/2 and black (all -1) with probability
/// p/2, for rising p; each repetition caps p at 1.2x the last success and keeps only noise
/// closer than the best so far.
fn salt_and_pepper<T: AttackTarget + ?Sized>(
    oracle: &mut Oracle<'_, T>,
    original: &[f32],
    config: &PointwiseConfig,
    rng: &mut Pcg64,
) -> Result<Option<Vec<f32>>> {
    let channels = oracle.sample_shape.first().copied().unwrap_or(1).max(1) as usize;
    let pixels = original.len() / channels;
    let levels = config.salt_pepper_epsilons.min(pixels).max(1);
    let range = (BOX_MAX - BOX_MIN) as f32;

    let mut best: Option<(Vec<f32>, f64)> = None;
    let mut max_level = 1.0_f64;
    for _ in 0..config.salt_pepper_repetitions {
        let noise_levels: Vec<f64> = (1..=levels)
            .map(|k| max_level * k as f64 / levels as f64)
            .collect();
        for chunk in noise_levels.chunks(config.batch_size) {
            let best_distance = best.as_ref().map_or(f64::INFINITY, |(_, d)| *d);
            let mut tried: Vec<(f64, f64)> = Vec::new();
            let mut points: Vec<f32> = Vec::new();
            for &level in chunk {
                let draws: Vec<f64> = (0..pixels).map(|_| rng.random::<f64>()).collect();
                let mut noisy = Vec::with_capacity(original.len());
                for channel in 0..channels {
                    for (pixel, &u) in draws.iter().enumerate() {
                        let salt = if u >= 1.0 - level / 2.0 { range } else { 0.0 };
                        let pepper = if u < level / 2.0 { range } else { 0.0 };
                        let value = original[channel * pixels + pixel] + salt - pepper;
                        noisy.push(value.clamp(BOX_MIN as f32, BOX_MAX as f32));
                    }
                }
                let distance = l2(&noisy, original);
                // Noise no lighter than the best so far is not worth a query.
                if distance < best_distance {
                    tried.push((level, distance));
                    points.extend_from_slice(&noisy);
                }
            }
            if tried.is_empty() {
                continue;
            }
            let flags = oracle.adversarial(&points)?;
            if let Some(first) = flags.iter().position(|&adversarial| adversarial) {
                let (level, distance) = tried[first];
                let start = first * original.len();
                best = Some((points[start..start + original.len()].to_vec(), distance));
                max_level = level * NOISE_CAP_SLACK;
                break;
            }
        }
    }
    Ok(best.map(|(noisy, _)| noisy))
}

/// Resets coordinates of `adversarial` to the original, in random order, whenever the result
/// stays adversarial, until a whole pass resets nothing (no single reset is possible).
///
/// Resets are queried speculatively in batches against the current point; the first success in
/// order is applied and the scan resumes right after it. The batch width halves after a success
/// and doubles after a batch without one, so few queries are wasted when resets mostly succeed.
fn reset_coordinates<T: AttackTarget + ?Sized>(
    oracle: &mut Oracle<'_, T>,
    adversarial: &mut [f32],
    original: &[f32],
    max_width: usize,
    rng: &mut Pcg64,
) -> Result<()> {
    let dims = original.len();
    let mut width = 1usize;
    loop {
        let mut order: Vec<usize> = (0..dims).collect();
        order.shuffle(rng);
        let mut reset_any = false;
        let mut position = 0;
        while position < dims {
            // (position in `order`, coordinate) of the next differing coordinates.
            let mut batch: Vec<(usize, usize)> = Vec::with_capacity(width);
            while position < dims && batch.len() < width {
                let coordinate = order[position];
                if adversarial[coordinate] != original[coordinate] {
                    batch.push((position, coordinate));
                }
                position += 1;
            }
            if batch.is_empty() {
                break;
            }
            let mut points = Vec::with_capacity(batch.len() * dims);
            for &(_, coordinate) in &batch {
                let start = points.len();
                points.extend_from_slice(adversarial);
                points[start + coordinate] = original[coordinate];
            }
            let flags = oracle.adversarial(&points)?;
            match flags.iter().position(|&still| still) {
                Some(first) => {
                    let (at, coordinate) = batch[first];
                    adversarial[coordinate] = original[coordinate];
                    reset_any = true;
                    position = at + 1;
                    width = (width / 2).max(1);
                }
                None => width = (width * 2).min(max_width),
            }
        }
        if !reset_any {
            return Ok(());
        }
    }
}

/// For each coordinate that still differs, bisects between its original and adversarial values
/// for the value closest to the original that stays adversarial; repeats while any improves.
fn refine_coordinates<T: AttackTarget + ?Sized>(
    oracle: &mut Oracle<'_, T>,
    adversarial: &mut [f32],
    original: &[f32],
    config: &PointwiseConfig,
    rng: &mut Pcg64,
) -> Result<()> {
    let dims = original.len();
    for pass in 0..config.max_refinement_passes {
        let mut order: Vec<usize> = (0..dims).collect();
        order.shuffle(rng);
        let mut improved = false;
        for coordinate in order {
            let old_value = adversarial[coordinate];
            let original_value = original[coordinate];
            if old_value == original_value {
                continue;
            }
            adversarial[coordinate] = original_value;
            if oracle.is_adversarial(adversarial)? {
                // Earlier changes made the full reset possible.
                improved = true;
                continue;
            }
            let (mut adversarial_value, mut benign_value) = (old_value, original_value);
            for _ in 0..config.bisection_steps {
                let middle = 0.5 * (adversarial_value + benign_value);
                if middle == adversarial_value || middle == benign_value {
                    // The bracket is down to adjacent floats.
                    break;
                }
                adversarial[coordinate] = middle;
                if oracle.is_adversarial(adversarial)? {
                    adversarial_value = middle;
                } else {
                    benign_value = middle;
                }
            }
            adversarial[coordinate] = adversarial_value;
            if adversarial_value != old_value {
                improved = true;
            }
        }
        tracing::trace!(
            pass,
            l0 = l0(adversarial, original),
            l2 = l2(adversarial, original),
            "pointwise attack: refinement pass"
        );
        if !improved {
            break;
        }
    }
    Ok(())
}

fn l0(point: &[f32], original: &[f32]) -> usize {
    point.iter().zip(original).filter(|(a, b)| a != b).count()
}

fn l2(point: &[f32], original: &[f32]) -> f64 {
    point
        .iter()
        .zip(original)
        .map(|(&a, &b)| {
            let difference = f64::from(a) - f64::from(b);
            difference * difference
        })
        .sum::<f64>()
        .sqrt()
}
