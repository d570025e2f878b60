//! Properties of the decision-based attacks (boundary, pointwise) on small linear classifiers,
//! where the minimal adversarial distance is known in closed form.

use jem_attack::{
    boundary_attack, pointwise_attack, AttackError, AttackTarget, BoundaryConfig, LogitsFn,
    PointwiseConfig,
};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use tch::{Kind, Tensor};

/// Elements per input: inputs are `[N, 1, 4, 4]`.
const DIMS: usize = 16;
const SHAPE: [i64; 3] = [1, 4, 4];

/// Slack for float32 round-off in distances.
const FLOAT_SLACK: f64 = 1e-4;

/// A linear classifier: logits = W · flatten(x) + b, with `weights` `[C, DIMS]` row-major.
fn linear(weights: Vec<f32>, bias: Vec<f32>) -> LogitsFn<impl Fn(&Tensor) -> Tensor> {
    let classes = bias.len() as i64;
    let w = Tensor::from_slice(&weights).reshape([classes, DIMS as i64]);
    let b = Tensor::from_slice(&bias);
    LogitsFn::new(
        move |x: &Tensor| x.flatten(1, -1).matmul(&w.tr()) + &b,
        classes,
    )
}

/// [`linear`] computed row by row (a product and a sum over each row, no matrix product), so a
/// row's logits are bit for bit the same in a batch of any size.
fn rowwise_linear(weights: Vec<f32>, bias: Vec<f32>) -> LogitsFn<impl Fn(&Tensor) -> Tensor> {
    let classes = bias.len() as i64;
    let w = Tensor::from_slice(&weights).reshape([1, classes, DIMS as i64]);
    let b = Tensor::from_slice(&bias);
    LogitsFn::new(
        move |x: &Tensor| {
            (x.flatten(1, -1).unsqueeze(1) * &w).sum_dim_intlist(2, false, Kind::Float) + &b
        },
        classes,
    )
}

/// The binary direction used throughout: all positive, unequal weights.
fn binary_direction() -> Vec<f32> {
    (0..DIMS).map(|i| 0.5 + (i % 5) as f32 * 0.25).collect()
}

/// Binary classifier: class 1 iff w · x + bias > 0.
fn binary_classifier(bias: f32) -> LogitsFn<impl Fn(&Tensor) -> Tensor> {
    let mut weights = vec![0.0; DIMS];
    weights.extend(binary_direction());
    linear(weights, vec![0.0, bias])
}

fn norm(values: &[f32]) -> f64 {
    values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

fn batch(inputs: &[Vec<f32>]) -> Tensor {
    let flat: Vec<f32> = inputs.iter().flatten().copied().collect();
    Tensor::from_slice(&flat).reshape([inputs.len() as i64, SHAPE[0], SHAPE[1], SHAPE[2]])
}

/// Uniform inputs in [-1, 1] with the labels `target` gives them (a "test set" of correctly
/// classified inputs to start the boundary attack from).
fn labelled_pool(target: &impl AttackTarget, count: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = Pcg64::seed_from_u64(seed);
    let inputs: Vec<Vec<f32>> = (0..count)
        .map(|_| (0..DIMS).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    let inputs = batch(&inputs);
    let labels = target.predict(&inputs, &mut rng).unwrap();
    (inputs, labels)
}

fn predict(target: &impl AttackTarget, x: &Tensor) -> Vec<i64> {
    let mut rng = Pcg64::seed_from_u64(0);
    let x = if x.dim() == 3 {
        x.unsqueeze(0)
    } else {
        x.shallow_clone()
    };
    Vec::<i64>::try_from(&target.predict(&x, &mut rng).unwrap()).unwrap()
}

fn values(x: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&x.flatten(0, -1).to_kind(Kind::Float)).unwrap()
}

fn l2(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).to_kind(Kind::Double).norm().double_value(&[])
}

fn in_box(x: &Tensor) -> bool {
    x.min().double_value(&[]) >= -1.0 && x.max().double_value(&[]) <= 1.0
}

/// Originals of class 0 at the given (negative) scores w · x + bias, spread over the box so the
/// closest boundary point stays inside it.
fn binary_originals(bias: f32, scores: &[f32]) -> Vec<Vec<f32>> {
    let w = binary_direction();
    let w_norm2 = norm(&w).powi(2) as f32;
    scores
        .iter()
        .enumerate()
        .map(|(k, &score)| {
            // A base point with w · base = 0, then shifted along w to the wanted score.
            let base: Vec<f32> = (0..DIMS)
                .map(|i| 0.1 * if (i + k) % 2 == 0 { 1.0 } else { -1.0 })
                .collect();
            let along = base.iter().zip(&w).map(|(a, b)| a * b).sum::<f32>();
            base.iter()
                .zip(&w)
                .map(|(&x, &wi)| x + (score - bias - along) * wi / w_norm2)
                .collect()
        })
        .collect()
}

#[test]
fn boundary_walk_never_grows_stays_adversarial_and_approaches_the_analytic_minimum() {
    let bias = 0.1;
    let target = binary_classifier(bias);
    let scores = [-0.4f32, -0.8, -1.5];
    let originals = binary_originals(bias, &scores);
    let inputs = batch(&originals);
    let labels = Tensor::from_slice(&[0i64, 0, 0]);
    assert_eq!(predict(&target, &inputs), vec![0, 0, 0]);
    let (pool, pool_labels) = labelled_pool(&target, 40, 7);

    let config = BoundaryConfig {
        max_iterations: 1000,
        candidates: 10,
        record_iterates: true,
        seed: 3,
        ..BoundaryConfig::default()
    };
    let report = boundary_attack(&target, &inputs, &labels, &pool, &pool_labels, &config).unwrap();
    let w_norm = norm(&binary_direction());

    for (k, outcome) in report.outcomes.iter().enumerate() {
        let minimum = f64::from(-scores[k]) / w_norm;
        assert!(outcome.success, "input {k}");
        assert_eq!(outcome.starting_class, Some(1));
        assert_eq!(outcome.distance_trace.len(), outcome.iterations_run + 1);
        for pair in outcome.distance_trace.windows(2) {
            assert!(pair[1] <= pair[0], "input {k}: distance grew {pair:?}");
        }
        // Every accepted iterate, and the result, is adversarial and inside the box.
        assert!(
            outcome.iterates.len() > 10,
            "input {k}: too few accepted steps"
        );
        for iterate in &outcome.iterates {
            assert_eq!(predict(&target, iterate), vec![1]);
            assert!(in_box(iterate));
        }
        assert_eq!(predict(&target, &outcome.adversarial), vec![1]);
        assert!(in_box(&outcome.adversarial));
        let original = inputs.get(k as i64);
        let distance = l2(&outcome.adversarial, &original);
        assert!((distance - outcome.l2_distance).abs() < FLOAT_SLACK);
        assert_eq!(
            outcome.distance_trace.last().copied(),
            Some(outcome.l2_distance)
        );
        // Never below the true minimum, and close to it after enough iterations.
        assert!(
            distance >= minimum - FLOAT_SLACK,
            "input {k}: {distance} below the minimum {minimum}"
        );
        assert!(
            distance <= 1.2 * minimum,
            "input {k}: {distance} not within 1.2x of the minimum {minimum}"
        );
    }
    let stacked = report.adversarials().unwrap();
    assert_eq!(stacked.size(), [3, 1, 4, 4]);
    assert_eq!(report.successes(), vec![true; 3]);
}

/// A 3-class classifier on the first two coordinates' sums, with known class ranking.
fn three_class_classifier() -> LogitsFn<impl Fn(&Tensor) -> Tensor> {
    let mut weights = vec![0.0f32; 3 * DIMS];
    for i in 0..DIMS {
        weights[i] = if i < 8 { 1.0 } else { 0.0 }; // class 0: first half
        weights[DIMS + i] = if i < 8 { 0.0 } else { 1.0 }; // class 1: second half
        weights[2 * DIMS + i] = -0.5; // class 2: dark inputs
    }
    linear(weights, vec![0.0, 0.0, 0.0])
}

#[test]
fn boundary_starts_from_the_top2_class_and_stays_adversarial() {
    let target = three_class_classifier();
    // Class 0 scores 2.4, class 1 scores 1.6 (runner-up), class 2 scores -2.0.
    let mut original = vec![0.3f32; 8];
    original.extend(vec![0.2f32; 8]);
    let inputs = batch(&[original]);
    let labels = Tensor::from_slice(&[0i64]);
    assert_eq!(predict(&target, &inputs), vec![0]);
    let (pool, pool_labels) = labelled_pool(&target, 60, 11);
    let pool_label_values = Vec::<i64>::try_from(&pool_labels).unwrap();
    assert!(pool_label_values.contains(&1) && pool_label_values.contains(&2));

    let config = BoundaryConfig {
        max_iterations: 300,
        candidates: 8,
        seed: 5,
        ..BoundaryConfig::default()
    };
    let report = boundary_attack(&target, &inputs, &labels, &pool, &pool_labels, &config).unwrap();
    let outcome = &report.outcomes[0];
    assert!(outcome.success);
    assert_eq!(outcome.starting_class, Some(1));
    assert_ne!(predict(&target, &outcome.adversarial), vec![0]);
    assert!(outcome.iterates.is_empty(), "iterates only when asked for");
    // Class 0 and 1 tie where the first half's sum equals the second half's: distance
    // (2.4 - 1.6) / ||e_first - e_second|| = 0.8 / 4.
    assert!(outcome.l2_distance >= 0.2 - FLOAT_SLACK);
    for pair in outcome.distance_trace.windows(2) {
        assert!(pair[1] <= pair[0]);
    }
}

#[test]
fn boundary_reports_misclassified_inputs_and_missing_starting_points() {
    let bias = 0.1;
    let target = binary_classifier(bias);
    let originals = binary_originals(bias, &[-0.5, -0.5]);
    let inputs = batch(&originals);
    // The first input is labelled 1 but classified 0: already adversarial.
    let labels = Tensor::from_slice(&[1i64, 0]);
    // A pool with no correctly classified input of another class than 0 for the second input.
    let pool = batch(&originals[..1]);
    let pool_labels = Tensor::from_slice(&[0i64]);
    let config = BoundaryConfig {
        max_iterations: 20,
        ..BoundaryConfig::default()
    };
    let report = boundary_attack(&target, &inputs, &labels, &pool, &pool_labels, &config).unwrap();
    assert!(report.outcomes[0].success);
    assert_eq!(report.outcomes[0].l2_distance, 0.0);
    assert!(!report.outcomes[1].success);
    assert!(report.outcomes[1].l2_distance.is_infinite());
    assert_eq!(report.adversarials().unwrap().size(), [2, 1, 4, 4]);
}

/// A randomised classifier: linear logits plus noise drawn from the attack's generator, as a
/// JEM-k target draws its refinement noise.
struct NoisyLinear<F> {
    inner: LogitsFn<F>,
}

impl<F: Fn(&Tensor) -> Tensor> AttackTarget for NoisyLinear<F> {
    fn num_classes(&self) -> i64 {
        self.inner.num_classes()
    }

    fn log_probs(&self, x: &Tensor, rng: &mut Pcg64) -> jem_attack::Result<Tensor> {
        let clean = self.inner.log_probs(x, rng)?;
        let noise: Vec<f32> = (0..clean.numel())
            .map(|_| rng.random_range(-0.05f32..0.05))
            .collect();
        let shape = clean.size();
        Ok(clean + Tensor::from_slice(&noise).reshape(shape))
    }
}

#[test]
fn both_attacks_are_deterministic_given_the_seed() {
    let bias = 0.1;
    let target = NoisyLinear {
        inner: binary_classifier(bias),
    };
    let inputs = batch(&binary_originals(bias, &[-0.6, -0.9]));
    let labels = Tensor::from_slice(&[0i64, 0]);
    let (pool, pool_labels) = labelled_pool(&binary_classifier(bias), 30, 2);

    let boundary = BoundaryConfig {
        max_iterations: 200,
        candidates: 6,
        seed: 42,
        ..BoundaryConfig::default()
    };
    let first = boundary_attack(&target, &inputs, &labels, &pool, &pool_labels, &boundary).unwrap();
    let second =
        boundary_attack(&target, &inputs, &labels, &pool, &pool_labels, &boundary).unwrap();
    for (a, b) in first.outcomes.iter().zip(&second.outcomes) {
        assert_eq!(values(&a.adversarial), values(&b.adversarial));
        assert_eq!(a.distance_trace, b.distance_trace);
    }
    let reseeded = BoundaryConfig {
        seed: 43,
        ..boundary.clone()
    };
    let other = boundary_attack(&target, &inputs, &labels, &pool, &pool_labels, &reseeded).unwrap();
    assert_ne!(
        first.outcomes[0].distance_trace,
        other.outcomes[0].distance_trace
    );

    let pointwise = PointwiseConfig {
        seed: 9,
        ..PointwiseConfig::default()
    };
    let first = pointwise_attack(&target, &inputs, &labels, &pointwise).unwrap();
    let second = pointwise_attack(&target, &inputs, &labels, &pointwise).unwrap();
    for (a, b) in first.outcomes.iter().zip(&second.outcomes) {
        assert_eq!(values(&a.adversarial), values(&b.adversarial));
        assert_eq!((a.l0, a.queries), (b.l0, b.queries));
    }
}

#[test]
fn pointwise_stays_adversarial_in_the_box_and_changes_few_coordinates() {
    let bias = 0.1;
    let target = binary_classifier(bias);
    let scores = [-0.3f32, -0.7, -1.2];
    let inputs = batch(&binary_originals(bias, &scores));
    let labels = Tensor::from_slice(&[0i64, 0, 0]);
    let w_norm = norm(&binary_direction());
    // foolbox's defaults find a light start; a single noise repetition starts from heavier noise,
    // which leaves the reset phase real work.
    let configs = [
        PointwiseConfig {
            seed: 1,
            ..PointwiseConfig::default()
        },
        PointwiseConfig {
            salt_pepper_repetitions: 1,
            seed: 1,
            ..PointwiseConfig::default()
        },
    ];
    let mut resets_seen = false;
    for config in &configs {
        let report = pointwise_attack(&target, &inputs, &labels, config).unwrap();
        assert_eq!(report.l0s().len(), 3);
        for (k, outcome) in report.outcomes.iter().enumerate() {
            assert!(outcome.success, "input {k}");
            assert_eq!(predict(&target, &outcome.adversarial), vec![1], "input {k}");
            assert!(in_box(&outcome.adversarial));
            assert!(
                outcome.l0 >= 1 && outcome.l0 <= outcome.start_l0,
                "input {k}"
            );
            resets_seen |= outcome.l0 < outcome.start_l0;
            assert!(outcome.l2_distance <= outcome.start_l2_distance + FLOAT_SLACK);
            let original = inputs.get(k as i64);
            let changed = values(&outcome.adversarial)
                .iter()
                .zip(values(&original))
                .filter(|(a, b)| **a != *b)
                .count();
            assert_eq!(changed, outcome.l0);
            let distance = l2(&outcome.adversarial, &original);
            assert!((distance - outcome.l2_distance).abs() < FLOAT_SLACK);
            assert!(distance >= f64::from(-scores[k]) / w_norm - FLOAT_SLACK);
            // All weights are positive, so once a single raised coordinate flips the label every
            // other change can be undone: a linear classifier with a small margin needs very
            // few.
            assert!(
                outcome.l0 <= 2,
                "input {k}: {} coordinates changed",
                outcome.l0
            );
        }
    }
    assert!(resets_seen, "no run exercised the reset phase");
}

#[test]
fn pointwise_on_three_classes_and_misclassified_inputs() {
    let target = three_class_classifier();
    // Class 0 scores 2.4, class 1 2.0. Not 0.2 for the second half: one coordinate raised to the
    // box's 1.0 would then tie the classes exactly (2.4 = 7 · 0.2 + 1), and which side of a tie
    // a sum of eight floats lands on depends on the summation order of the matrix kernel, so
    // on some CPUs the attack's batched query and a lone re-classification disagreed.
    let mut original = vec![0.3f32; 8];
    original.extend(vec![0.25f32; 8]);
    let inputs = batch(&[original.clone(), original]);
    // The second input is labelled 2 but classified 0: already adversarial.
    let labels = Tensor::from_slice(&[0i64, 2]);
    let report = pointwise_attack(&target, &inputs, &labels, &PointwiseConfig::default()).unwrap();
    let attacked = &report.outcomes[0];
    assert!(attacked.success);
    assert_ne!(predict(&target, &attacked.adversarial), vec![0]);
    assert!(attacked.l0 <= attacked.start_l0);
    assert!(in_box(&attacked.adversarial));
    let untouched = &report.outcomes[1];
    assert!(untouched.success);
    assert_eq!((untouched.l0, untouched.l2_distance), (0, 0.0));
}

#[test]
fn pointwise_in_lockstep_finds_what_inputs_attacked_one_at_a_time_find() {
    // A deterministic classifier answers each candidate the same whichever inputs share its
    // classifier call, so grouping inputs changes no outcome and no query count, also when the
    // grouped queries are cut into calls of 3 candidates.
    let bias = 0.1;
    let mut weights = vec![0.0; DIMS];
    weights.extend(binary_direction());
    let target = rowwise_linear(weights, vec![0.0, bias]);
    let scores = [-0.3f32, -0.7, -1.2, -0.05, -2.0];
    let mut originals = binary_originals(bias, &scores);
    originals.push(vec![0.9f32; DIMS]); // classified 1, labelled 0: already adversarial
    let inputs = batch(&originals);
    let labels = Tensor::from_slice(&[0i64, 0, 0, 0, 0, 0]);
    let run = |parallel_inputs: usize, batch_size: usize| {
        let config = PointwiseConfig {
            salt_pepper_repetitions: 2,
            parallel_inputs,
            batch_size,
            seed: 5,
            ..PointwiseConfig::default()
        };
        pointwise_attack(&target, &inputs, &labels, &config).unwrap()
    };
    for batch_size in [64, 3] {
        let alone = run(1, batch_size);
        assert!(alone.outcomes.iter().all(|o| o.success));
        assert_eq!(alone.outcomes[5].l0, 0);
        assert!(alone.outcomes[..5]
            .iter()
            .all(|o| o.l0 >= 1 && o.queries > 1));
        for parallel_inputs in [2, 6, 32] {
            let together = run(parallel_inputs, batch_size);
            for (k, (a, b)) in alone.outcomes.iter().zip(&together.outcomes).enumerate() {
                let case = format!("input {k}, {parallel_inputs} together, calls of {batch_size}");
                assert_eq!(values(&a.adversarial), values(&b.adversarial), "{case}");
                assert_eq!((a.l0, a.start_l0), (b.l0, b.start_l0), "{case}");
                assert_eq!(a.l2_distance, b.l2_distance, "{case}");
                assert_eq!(a.queries, b.queries, "{case}");
            }
        }
    }
}

/// A classifier that fails from its `fail_from`-th call on, as a model error mid-attack would.
struct FailingLinear<F> {
    inner: LogitsFn<F>,
    calls: std::cell::Cell<usize>,
    fail_from: usize,
}

impl<F: Fn(&Tensor) -> Tensor> AttackTarget for FailingLinear<F> {
    fn num_classes(&self) -> i64 {
        self.inner.num_classes()
    }

    fn log_probs(&self, x: &Tensor, rng: &mut Pcg64) -> jem_attack::Result<Tensor> {
        let call = self.calls.get() + 1;
        self.calls.set(call);
        if call >= self.fail_from {
            return Err(AttackError::InvalidArgument(format!(
                "model failed on call {call}"
            )));
        }
        self.inner.log_probs(x, rng)
    }
}

#[test]
fn a_classifier_error_mid_attack_stops_every_input_and_is_returned() {
    let bias = 0.1;
    let inputs = batch(&binary_originals(bias, &[-0.3, -0.7, -1.2]));
    let labels = Tensor::from_slice(&[0i64, 0, 0]);
    let (pool, pool_labels) = labelled_pool(&binary_classifier(bias), 30, 2);
    for fail_from in [1, 2, 5] {
        let target = FailingLinear {
            inner: binary_classifier(bias),
            calls: std::cell::Cell::new(0),
            fail_from,
        };
        let error = pointwise_attack(&target, &inputs, &labels, &PointwiseConfig::default())
            .expect_err("the model's error is the attack's");
        assert!(error.to_string().contains("model failed"), "{error}");
        target.calls.set(0);
        let config = BoundaryConfig {
            max_iterations: 50,
            ..BoundaryConfig::default()
        };
        let error = boundary_attack(&target, &inputs, &labels, &pool, &pool_labels, &config)
            .expect_err("the model's error is the attack's");
        assert!(error.to_string().contains("model failed"), "{error}");
    }
}

fn invalid_field(error: AttackError) -> String {
    match error {
        AttackError::InvalidConfig(e) => e.field,
        other => panic!("expected InvalidConfig, got {other}"),
    }
}

#[test]
fn invalid_configs_name_the_field() {
    let base = BoundaryConfig::default();
    assert!(base.check().is_ok());
    let cases = [
        (
            BoundaryConfig {
                spherical_step: 0.0,
                ..base.clone()
            },
            "spherical_step",
        ),
        (
            BoundaryConfig {
                spherical_step: f64::NAN,
                ..base.clone()
            },
            "spherical_step",
        ),
        (
            BoundaryConfig {
                source_step: 1.0,
                ..base.clone()
            },
            "source_step",
        ),
        (
            BoundaryConfig {
                step_adaptation: 1.0,
                ..base.clone()
            },
            "step_adaptation",
        ),
        (
            BoundaryConfig {
                candidates: 0,
                ..base.clone()
            },
            "candidates",
        ),
        (
            BoundaryConfig {
                line_search_steps: 0,
                ..base.clone()
            },
            "line_search_steps",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(invalid_field(config.check().unwrap_err()), field);
    }

    let base = PointwiseConfig::default();
    assert!(base.check().is_ok());
    let cases = [
        (
            PointwiseConfig {
                salt_pepper_epsilons: 0,
                ..base.clone()
            },
            "salt_pepper_epsilons",
        ),
        (
            PointwiseConfig {
                salt_pepper_repetitions: 0,
                ..base.clone()
            },
            "salt_pepper_repetitions",
        ),
        (
            PointwiseConfig {
                parallel_inputs: 0,
                ..base.clone()
            },
            "parallel_inputs",
        ),
        (
            PointwiseConfig {
                bisection_steps: 0,
                ..base.clone()
            },
            "bisection_steps",
        ),
        (
            PointwiseConfig {
                batch_size: 0,
                ..base.clone()
            },
            "batch_size",
        ),
    ];
    for (config, field) in cases {
        assert_eq!(invalid_field(config.check().unwrap_err()), field);
    }

    // The attacks check their config before touching the inputs.
    let target = binary_classifier(0.1);
    let inputs = batch(&binary_originals(0.1, &[-0.5]));
    let labels = Tensor::from_slice(&[0i64]);
    let bad = PointwiseConfig {
        batch_size: 0,
        ..PointwiseConfig::default()
    };
    let error = pointwise_attack(&target, &inputs, &labels, &bad).unwrap_err();
    assert_eq!(invalid_field(error), "batch_size");
    let bad = BoundaryConfig {
        candidates: 0,
        ..BoundaryConfig::default()
    };
    let error = boundary_attack(&target, &inputs, &labels, &inputs, &labels, &bad).unwrap_err();
    assert_eq!(invalid_field(error), "candidates");
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let target = binary_classifier(0.1);
    let inputs = batch(&binary_originals(0.1, &[-0.5, -0.5]));
    let labels = Tensor::from_slice(&[0i64, 0]);
    let boundary = BoundaryConfig::default();
    let pointwise = PointwiseConfig::default();
    let is_invalid_argument = |error: AttackError| matches!(error, AttackError::InvalidArgument(_));

    // Label count does not match the batch.
    let short = Tensor::from_slice(&[0i64]);
    assert!(is_invalid_argument(
        pointwise_attack(&target, &inputs, &short, &pointwise).unwrap_err()
    ));
    // Label out of range.
    let out_of_range = Tensor::from_slice(&[0i64, 5]);
    assert!(is_invalid_argument(
        boundary_attack(&target, &inputs, &out_of_range, &inputs, &labels, &boundary).unwrap_err()
    ));
    // Flat inputs instead of [N, C, H, W].
    let flat = inputs.reshape([2, 16]);
    assert!(is_invalid_argument(
        pointwise_attack(&target, &flat, &labels, &pointwise).unwrap_err()
    ));
    // A starting pool of another shape.
    let wrong_pool = Tensor::zeros([3, 1, 2, 8], (Kind::Float, tch::Device::Cpu));
    let pool_labels = Tensor::from_slice(&[0i64, 1, 1]);
    assert!(is_invalid_argument(
        boundary_attack(
            &target,
            &inputs,
            &labels,
            &wrong_pool,
            &pool_labels,
            &boundary
        )
        .unwrap_err()
    ));
}
