//! Tests of the gradient-based attacks: PGD, the ε search, JEM-k with EOT, transfer, distal
//! adversarials, robustness curves and the attack subset, on tiny analytic classifiers.

// The checks walk several parallel per-input vectors at once; an index reads better than zips.
#![allow(clippy::needless_range_loop)]

use approx::assert_relative_eq;
use jem_attack::{
    accuracy_at, distal_adversarials, eps_grid, minimal_eps, pgd, pgd_single_restart,
    random_subset, transfer, AttackError, AttackTarget, CurvePoint, DistalConfig, LogitsFn, Norm,
    PgdConfig, RefinedClassifier, RobustnessCurve, SearchConfig, DEFAULT_EOT_NOISE,
    FOOLBOX_BISECTION_STEPS, FOOLBOX_INITIAL_EPSILON,
};
use jem_model::JointEnergyModel;
use jem_sampler::SgldConfig;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

/// Tiny tensors gain nothing from intra-op threads, and on a busy machine the thread pool's
/// spinning makes them far slower.
fn single_thread() {
    tch::set_num_threads(1);
}

fn cpu() -> (Kind, Device) {
    (Kind::Float, Device::Cpu)
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.flatten(0, -1).to_kind(Kind::Double)).unwrap()
}

fn labels_of(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.flatten(0, -1)).unwrap()
}

/// A tensor of `shape` with entries uniform in `[lo, hi)`, from `seed`.
fn uniform(shape: &[i64], lo: f32, hi: f32, seed: u64) -> Tensor {
    let mut rng = Pcg64::seed_from_u64(seed);
    let n: i64 = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Tensor::from_slice(&v).reshape(shape)
}

/// Binary linear classifier: logits `[0, w·x + b]`, inputs `[N, 2, 2, 2]` (8 coordinates).
struct BinaryLinear {
    w: Vec<f32>,
    b: f32,
}

impl BinaryLinear {
    fn new() -> Self {
        Self {
            w: vec![0.9, -1.3, 0.5, 1.7, -0.6, 1.1, -1.9, 0.8],
            b: 0.1,
        }
    }

    fn scores(&self, x: &Tensor) -> Vec<f64> {
        values(&self.score_tensor(x))
    }

    fn score_tensor(&self, x: &Tensor) -> Tensor {
        let w = Tensor::from_slice(&self.w).to_kind(x.kind());
        x.flatten(1, -1).matmul(&w.unsqueeze(1)).squeeze_dim(1) + self.b as f64
    }

    fn target(&self) -> LogitsFn<impl Fn(&Tensor) -> Tensor + '_> {
        LogitsFn::new(
            move |x: &Tensor| {
                let s = self.score_tensor(x).unsqueeze(1);
                Tensor::cat(&[s.zeros_like(), s], 1)
            },
            2,
        )
    }

    fn dual_norm(&self, norm: Norm) -> f64 {
        match norm {
            // The L∞ ball's worst case moves every coordinate by ε: margin / ‖w‖₁.
            Norm::Linf => self.w.iter().map(|w| w.abs() as f64).sum(),
            Norm::L2 => self
                .w
                .iter()
                .map(|w| (*w as f64).powi(2))
                .sum::<f64>()
                .sqrt(),
        }
    }
}

/// A fixed 4-class nonlinear classifier over `[N, 1, 3, 3]` inputs: `W₂ tanh(W₁ x)`.
fn small_net() -> LogitsFn<impl Fn(&Tensor) -> Tensor> {
    let w1 = uniform(&[9, 12], -1.0, 1.0, 11);
    let w2 = uniform(&[12, 4], -1.5, 1.5, 12);
    LogitsFn::new(
        move |x: &Tensor| x.flatten(1, -1).matmul(&w1).tanh().matmul(&w2),
        4,
    )
}

fn predictions(target: &dyn AttackTarget, x: &Tensor) -> Vec<i64> {
    labels_of(&target.predict(x, &mut Pcg64::seed_from_u64(0)).unwrap())
}

fn search_config(norm: Norm) -> SearchConfig {
    SearchConfig {
        pgd: PgdConfig {
            norm,
            // With Madry's step (2.5·ε/40) an L2 iterate turns towards the optimal direction
            // too slowly to get within 1% from a random start in 40 steps; the larger step
            // converges (the analytic check is about the search, not PGD's step rule).
            relative_step_size: Some(0.1),
            iterations: 60,
            restarts: 1,
            seed: 3,
            ..PgdConfig::default()
        },
        initial_eps: Some(0.02),
        bisection_steps: 25,
        relative_tolerance: 1e-3,
        ..SearchConfig::default()
    }
}

#[test]
fn minimal_eps_of_a_linear_classifier_matches_the_margin() {
    single_thread();
    let model = BinaryLinear::new();
    let x = uniform(&[5, 2, 2, 2], -0.3, 0.3, 1);
    let scores = model.scores(&x);
    // True labels: the classifier's own predictions, except input 4, which is mislabelled so it
    // counts as misclassified without attack.
    let mut labels: Vec<i64> = scores.iter().map(|&s| i64::from(s > 0.0)).collect();
    labels[4] = 1 - labels[4];
    let y = Tensor::from_slice(&labels);
    let target = model.target();
    for norm in [Norm::Linf, Norm::L2] {
        let found = minimal_eps(&target, &x, &y, &search_config(norm)).unwrap();
        for i in 0..4 {
            let expected = scores[i].abs() / model.dual_norm(norm);
            assert!(found.found[i], "{norm}: input {i} not broken");
            assert_relative_eq!(
                found.min_eps[i],
                expected,
                max_relative = 1e-2,
                epsilon = 1e-4
            );
            assert!(found.min_eps[i] <= found.radii[i] + 1e-6);
        }
        assert_eq!(found.min_eps[4], 0.0);
        assert!(found.found[4]);
        // The adversarials at the minimal ε are misclassified and at that distance.
        let d = norm.distances(&found.adversarials, &x).unwrap();
        for i in 0..5 {
            assert_relative_eq!(d[i], found.min_eps[i], epsilon = 1e-6);
        }
        let pred = predictions(&target, &found.adversarials);
        assert!(pred.iter().zip(&labels).all(|(p, l)| p != l), "{norm}");
        let pixels = found.min_eps_pixels();
        assert_relative_eq!(pixels[0], found.min_eps[0] * 127.5);
    }
}

#[test]
fn the_search_bisects_twenty_times_as_foolbox_2_4() {
    single_thread();
    assert_eq!(FOOLBOX_BISECTION_STEPS, 20);
    let defaults = SearchConfig::default();
    assert_eq!(defaults.bisection_steps, 20);
    assert_eq!(defaults.relative_tolerance, 0.0);
    let model = BinaryLinear::new();
    let x = uniform(&[1, 2, 2, 2], -0.3, 0.3, 1);
    let y = Tensor::from_slice(&[i64::from(model.scores(&x)[0] > 0.0)]);
    let target = model.target();
    for norm in [Norm::Linf, Norm::L2] {
        let cfg = SearchConfig {
            bisection_steps: defaults.bisection_steps,
            relative_tolerance: defaults.relative_tolerance,
            ..search_config(norm)
        };
        let full = minimal_eps(&target, &x, &y, &cfg).unwrap();
        let growth_only = minimal_eps(
            &target,
            &x,
            &y,
            &SearchConfig {
                bisection_steps: 0,
                ..cfg.clone()
            },
        )
        .unwrap();
        // One PGD round per bisection step on top of the growth phase, none stopped early.
        assert_eq!(full.rounds, growth_only.rounds + 20, "{norm:?}");
        // No PGD run succeeds below the margin; 20 halvings of the growth bracket (×1.5) bring
        // the radius to within PGD's own accuracy above it, well inside the growth step.
        let margin = model.scores(&x)[0].abs() / model.dual_norm(norm);
        assert!(full.radii[0] >= margin * (1.0 - 1e-5), "{norm:?}");
        assert!(
            full.radii[0] <= margin * 1.01,
            "{norm:?}: {} vs {margin}",
            full.radii[0]
        );
        assert!(growth_only.radii[0] >= full.radii[0]);
    }
}

#[test]
fn by_default_the_search_starts_at_foolbox_epsilon_and_bisects_from_zero() {
    single_thread();
    assert_eq!(FOOLBOX_INITIAL_EPSILON, 0.3);
    let model = BinaryLinear::new();
    let x = uniform(&[3, 2, 2, 2], -0.3, 0.3, 1);
    let scores = model.scores(&x);
    let y = Tensor::from_slice(
        &scores
            .iter()
            .map(|&s| i64::from(s > 0.0))
            .collect::<Vec<_>>(),
    );
    let target = model.target();
    for norm in [Norm::Linf, Norm::L2] {
        let cfg = SearchConfig {
            initial_eps: None,
            bisection_steps: FOOLBOX_BISECTION_STEPS,
            relative_tolerance: 0.0,
            ..search_config(norm)
        };
        // foolbox 2.4's start: 0.3 of the box's side (2), under L2 per root-mean-square
        // coordinate (8 coordinates here).
        let start = match norm {
            Norm::Linf => 0.6,
            Norm::L2 => 0.6 * 8f64.sqrt(),
        };
        assert_relative_eq!(cfg.initial_eps_for(8), start, max_relative = 1e-12);
        for i in 0..3 {
            let margin = scores[i].abs() / model.dual_norm(norm);
            assert!(
                margin < start,
                "{norm}: the test needs inputs broken at the start"
            );
        }
        let found = minimal_eps(&target, &x, &y, &cfg).unwrap();
        // Every input succeeds at the start, then bisects [0, start] 20 times: 21 rounds, as
        // foolbox 2.4, and no growth phase.
        assert_eq!(found.rounds, 1 + FOOLBOX_BISECTION_STEPS, "{norm}");
        for i in 0..3 {
            let margin = scores[i].abs() / model.dual_norm(norm);
            assert!(found.radii[i] >= margin * (1.0 - 1e-5), "{norm}: input {i}");
            assert!(found.radii[i] <= margin * 1.01, "{norm}: input {i}");
            assert!(found.min_eps[i] <= found.radii[i] + 1e-6);
        }
    }
    // A cap below the start moves the start down to it.
    let capped = SearchConfig {
        initial_eps: None,
        max_eps: Some(0.1),
        ..search_config(Norm::Linf)
    };
    assert_eq!(capped.initial_eps_for(8), 0.1);
}

#[test]
fn search_reports_infinity_when_nothing_breaks_the_input() {
    single_thread();
    let model = BinaryLinear::new();
    let x = uniform(&[2, 2, 2, 2], -0.3, 0.3, 2);
    let labels: Vec<i64> = model
        .scores(&x)
        .iter()
        .map(|&s| i64::from(s > 0.0))
        .collect();
    let mut cfg = search_config(Norm::Linf);
    cfg.max_eps = Some(1e-3);
    cfg.initial_eps = Some(1e-4);
    let found = minimal_eps(&model.target(), &x, &Tensor::from_slice(&labels), &cfg).unwrap();
    assert!(found.min_eps.iter().all(|e| e.is_infinite()));
    assert!(found.found.iter().all(|f| !f));
    assert_eq!(values(&found.adversarials), values(&x));
}

#[test]
fn adversarials_respect_the_ball_and_the_box_and_fool_the_model() {
    single_thread();
    let target = small_net();
    // Inputs near the box's faces too, so clipping matters.
    let x = uniform(&[16, 1, 3, 3], -1.0, 1.0, 5).clamp(-0.95, 0.95);
    let y = Tensor::from_slice(&predictions(&target, &x));
    for (norm, eps) in [(Norm::Linf, 0.15), (Norm::L2, 0.4)] {
        let cfg = PgdConfig {
            norm,
            eps,
            iterations: 20,
            restarts: 3,
            seed: 9,
            ..PgdConfig::default()
        };
        let out = pgd(&target, &x, &y, &cfg).unwrap();
        assert!(out.success.iter().any(|&s| s), "{norm}: nothing broken");
        assert!(out.success.iter().any(|&s| !s), "{norm}: everything broken");
        let adv = values(&out.adversarials);
        assert!(adv.iter().all(|v| (-1.0..=1.0).contains(v)), "{norm}: box");
        let measured = norm.distances(&out.adversarials, &x).unwrap();
        let pred = predictions(&target, &out.adversarials);
        let truth = labels_of(&y);
        for i in 0..16 {
            assert!(
                out.distances[i] <= eps * (1.0 + 1e-5) + 1e-6,
                "{norm}: ball"
            );
            assert_relative_eq!(out.distances[i], measured[i], epsilon = 1e-9);
            assert_eq!(out.success[i], pred[i] != truth[i], "{norm}: success flag");
        }
        assert_relative_eq!(
            out.success_rate(),
            out.success.iter().filter(|&&s| s).count() as f64 / 16.0
        );
    }
}

#[test]
fn best_of_restarts_is_never_worse_than_any_single_restart() {
    single_thread();
    let target = small_net();
    let x = uniform(&[12, 1, 3, 3], -0.9, 0.9, 6);
    let y = Tensor::from_slice(&predictions(&target, &x));
    let eps = vec![0.08; 12];
    for norm in [Norm::Linf, Norm::L2] {
        let cfg = PgdConfig {
            norm,
            eps: 0.08,
            iterations: 10,
            restarts: 4,
            stop_early: false,
            seed: 21,
            ..PgdConfig::default()
        };
        let all = pgd(&target, &x, &y, &cfg).unwrap();
        let again = pgd(&target, &x, &y, &cfg).unwrap();
        assert_eq!(values(&all.adversarials), values(&again.adversarials));
        assert_eq!(all.true_class_log_probs, again.true_class_log_probs);
        for restart in 0..cfg.restarts {
            let one = pgd_single_restart(&target, &x, &y, &eps, &cfg, restart).unwrap();
            for i in 0..12 {
                assert!(all.success[i] || !one.success[i], "{norm} r{restart} i{i}");
                if all.success[i] == one.success[i] {
                    let (best, single) = (all.losses()[i], one.losses()[i]);
                    assert!(
                        best >= single - 1e-9,
                        "{norm} r{restart} i{i}: {best} < {single}"
                    );
                }
            }
        }
    }
}

#[test]
fn pgd_is_deterministic_given_the_seed_and_varies_with_it() {
    single_thread();
    let target = small_net();
    let x = uniform(&[6, 1, 3, 3], -0.9, 0.9, 8);
    let y = Tensor::from_slice(&predictions(&target, &x));
    let cfg = PgdConfig {
        norm: Norm::L2,
        eps: 0.05,
        iterations: 3,
        restarts: 2,
        seed: 5,
        ..PgdConfig::default()
    };
    let a = values(&pgd(&target, &x, &y, &cfg).unwrap().adversarials);
    let b = values(&pgd(&target, &x, &y, &cfg).unwrap().adversarials);
    let c = values(
        &pgd(&target, &x, &y, &PgdConfig { seed: 6, ..cfg })
            .unwrap()
            .adversarials,
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn bad_configs_and_arguments_are_named_errors() {
    single_thread();
    let target = small_net();
    let x = uniform(&[2, 1, 3, 3], -0.5, 0.5, 1);
    let y = Tensor::from_slice(&[0i64, 1]);
    let cases = [
        (
            PgdConfig {
                restarts: 0,
                ..PgdConfig::default()
            },
            "restarts",
        ),
        (
            PgdConfig {
                eps: -1.0,
                ..PgdConfig::default()
            },
            "eps",
        ),
        (
            PgdConfig {
                relative_step_size: Some(0.0),
                ..PgdConfig::default()
            },
            "relative_step_size",
        ),
    ];
    for (cfg, field) in cases {
        match pgd(&target, &x, &y, &cfg) {
            Err(e @ AttackError::InvalidConfig(_)) => {
                assert!(e.to_string().contains(field), "{e}")
            }
            other => panic!("expected InvalidConfig for {field}, got {other:?}"),
        }
    }
    let cfg = PgdConfig::default();
    let msg = |r: Result<_, AttackError>| {
        r.map(|_: jem_attack::PgdOutcome| ())
            .unwrap_err()
            .to_string()
    };
    assert!(msg(pgd(&target, &x, &Tensor::from_slice(&[0i64, 4]), &cfg)).contains("labels"));
    assert!(msg(pgd(&target, &x, &Tensor::from_slice(&[0i64]), &cfg)).contains("labels"));
    assert!(msg(pgd(&target, &(&x * 3.0), &y, &cfg)).contains("[-1, 1]"));
    assert!(msg(pgd(&target, &Tensor::zeros([2], cpu()), &y, &cfg)).contains("`x`"));
    let search = SearchConfig {
        growth: 1.0,
        ..SearchConfig::default()
    };
    let err = minimal_eps(&target, &x, &y, &search)
        .unwrap_err()
        .to_string();
    assert!(err.contains("growth"), "{err}");
}

/// A linear JEM: logits `W x + b` over `[N, 1, 2, 2]` inputs, 3 classes.
struct LinearJem {
    w: Tensor,
    b: Tensor,
}

impl LinearJem {
    fn new() -> Self {
        Self {
            w: uniform(&[3, 4], -1.5, 1.5, 31),
            b: uniform(&[3], -0.2, 0.2, 32),
        }
    }
}

impl JointEnergyModel for LinearJem {
    fn logits(&self, x: &Tensor, _train: bool) -> jem_model::Result<Tensor> {
        Ok(x.flatten(1, -1).matmul(&self.w.tr()) + &self.b)
    }
}

#[test]
fn eot_with_one_chain_and_no_refinement_is_the_plain_model() {
    single_thread();
    let model = LinearJem::new();
    let x = uniform(&[5, 1, 2, 2], -1.0, 1.0, 33);
    let plain = model.log_py_given_x(&x, false).unwrap();
    for chains in [1, 5] {
        let jem0 = RefinedClassifier::new(&model, 3, 0, chains, SgldConfig::default()).unwrap();
        let mut rng = Pcg64::seed_from_u64(0);
        let got = jem0.log_probs(&x, &mut rng).unwrap();
        assert_eq!(values(&got), values(&plain));
    }
    let jem0 = RefinedClassifier::plain(&model, 3).unwrap();
    assert_eq!(
        values(&jem0.log_probs(&x, &mut Pcg64::seed_from_u64(1)).unwrap()),
        values(&plain)
    );
}

/// The linear JEM with a flat log p(x): SGLD without noise leaves every input where it is, so any
/// difference from the plain model comes from the EOT noise alone.
struct FlatJem(LinearJem);

impl JointEnergyModel for FlatJem {
    fn logits(&self, x: &Tensor, train: bool) -> jem_model::Result<Tensor> {
        self.0.logits(x, train)
    }

    fn log_px(&self, x: &Tensor, _train: bool) -> jem_model::Result<Tensor> {
        Ok(x.flatten(1, -1)
            .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
            * 0.0)
    }
}

#[test]
fn eot_noise_is_the_only_difference_from_the_plain_model_and_is_seeded() {
    single_thread();
    let model = FlatJem(LinearJem::new());
    let x = uniform(&[6, 1, 2, 2], -0.8, 0.8, 40);
    let plain = values(&model.log_py_given_x(&x, false).unwrap());
    let still = SgldConfig {
        noise: 0.0,
        ..SgldConfig::default()
    };
    // The paper's default σ_eot.
    let noisy = RefinedClassifier::new(&model, 3, 2, 5, still.clone()).unwrap();
    assert_eq!(noisy.eot_noise(), DEFAULT_EOT_NOISE);
    assert_eq!(DEFAULT_EOT_NOISE, 0.03);
    // σ_eot = 0 with a refinement that does not move: exactly the plain model's log p(y|x)
    // (to the float rounding of averaging five equal rows).
    let quiet = RefinedClassifier::new(&model, 3, 2, 5, still)
        .unwrap()
        .with_eot_noise(0.0)
        .unwrap();
    let got = values(&quiet.log_probs(&x, &mut Pcg64::seed_from_u64(1)).unwrap());
    for (a, b) in got.iter().zip(&plain) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // With the noise, the average differs, is reproducible from the seed and varies with it.
    let lp = |seed| {
        values(
            &noisy
                .log_probs(&x, &mut Pcg64::seed_from_u64(seed))
                .unwrap(),
        )
    };
    let max_diff = lp(1)
        .iter()
        .zip(&plain)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(max_diff > 1e-4, "{max_diff}");
    assert_eq!(lp(1), lp(1));
    assert_ne!(lp(1), lp(2));
    // k = 0 adds no noise (the reference's JEM-0 is the plain model).
    let jem0 = RefinedClassifier::new(&model, 3, 0, 5, SgldConfig::default()).unwrap();
    assert_eq!(
        values(&jem0.log_probs(&x, &mut Pcg64::seed_from_u64(1)).unwrap()),
        plain
    );
}

#[test]
fn eot_starts_are_stacked_copies_plus_gaussian_noise_of_sigma_eot() {
    single_thread();
    let model = LinearJem::new();
    let x = uniform(&[50, 1, 2, 2], -0.8, 0.8, 41);
    let target = RefinedClassifier::new(&model, 3, 1, 5, SgldConfig::default())
        .unwrap()
        .with_eot_noise(0.03)
        .unwrap();
    let starts = target.eot_starts(&x, &mut Pcg64::seed_from_u64(2)).unwrap();
    assert_eq!(starts.size(), [250, 1, 2, 2]);
    let noise = &starts - x.repeat([5, 1, 1, 1]);
    let v = values(&noise);
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / n).sqrt();
    // 1000 draws: the sample sd lies within 0.03 · (1 ± 0.1) far beyond 3 standard errors.
    assert!(mean.abs() < 0.003, "{mean}");
    assert!((sd - 0.03).abs() < 0.003, "{sd}");
    // Each chain has its own noise.
    let chain = |i: i64| values(&noise.narrow(0, i * 50, 50));
    assert_ne!(chain(0), chain(1));
    // Gradients reach the input through the noisy copies.
    let leaf = x.detach().set_requires_grad(true);
    let s = target
        .eot_starts(&leaf, &mut Pcg64::seed_from_u64(2))
        .unwrap()
        .sum(Kind::Float);
    let g = values(&Tensor::run_backward(&[s], &[&leaf], false, false)[0]);
    assert!(g.iter().all(|&v| (v - 5.0).abs() < 1e-6));
    // Bad σ_eot is a named error.
    for bad in [-0.1, f64::NAN, f64::INFINITY] {
        let err = RefinedClassifier::new(&model, 3, 1, 5, SgldConfig::default())
            .unwrap()
            .with_eot_noise(bad)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("eot_noise"), "{err}");
    }
}

#[test]
fn eot_gradients_flow_through_the_refinement() {
    single_thread();
    let model = LinearJem::new();
    let x = uniform(&[4, 1, 2, 2], -0.8, 0.8, 34);
    let y = Tensor::from_slice(&[0i64, 1, 2, 0]);

    // Noisy refinement: finite, nonzero gradients, and deterministic given the generator.
    let noisy = SgldConfig {
        step_size: 0.3,
        noise: 0.01,
        ..SgldConfig::default()
    };
    let jem2 = RefinedClassifier::new(&model, 3, 2, 3, noisy).unwrap();
    let grad_of = |target: &RefinedClassifier, seed: u64| {
        let leaf = x.detach().set_requires_grad(true);
        let lp = target
            .log_probs(&leaf, &mut Pcg64::seed_from_u64(seed))
            .unwrap();
        let picked = lp.gather(1, &y.unsqueeze(1), false).sum(Kind::Float);
        values(&Tensor::run_backward(&[picked], &[&leaf], false, false)[0])
    };
    let g = grad_of(&jem2, 4);
    assert!(g.iter().all(|v| v.is_finite()));
    assert!(g.iter().any(|v| v.abs() > 1e-6));
    assert_eq!(g, grad_of(&jem2, 4));
    let lp = |seed| values(&jem2.log_probs(&x, &mut Pcg64::seed_from_u64(seed)).unwrap());
    assert_eq!(lp(1), lp(1));
    assert_ne!(lp(1), lp(2));

    // Noise-free refinement is a deterministic function of x: the autograd directional
    // derivative must match central differences, which it would not if the refinement were
    // treated as a constant shift.
    let exact = SgldConfig {
        step_size: 0.5,
        noise: 0.0,
        ..SgldConfig::default()
    };
    let jem3 = RefinedClassifier::new(&model, 3, 3, 1, exact)
        .unwrap()
        .with_eot_noise(0.0)
        .unwrap();
    let direction = uniform(&[4, 1, 2, 2], -1.0, 1.0, 35);
    let f = |x: &Tensor| {
        let lp = jem3.log_probs(x, &mut Pcg64::seed_from_u64(0)).unwrap();
        values(&lp.gather(1, &y.unsqueeze(1), false).sum(Kind::Double))[0]
    };
    let g = Tensor::from_slice(&grad_of(&jem3, 0)).reshape([4, 1, 2, 2]);
    let analytic = values(&(&g * &direction).sum(Kind::Double))[0];
    // Three steps of size 0.5 make f strongly curved: a small h keeps the O(h²) error down,
    // a not too small one keeps f32 round-off down.
    let h = 3e-3;
    let numeric = (f(&(&x + &direction * h)) - f(&(&x - &direction * h))) / (2.0 * h);
    assert_relative_eq!(analytic, numeric, max_relative = 2e-2, epsilon = 1e-3);
    // And the refinement changes the gradient compared with the plain model.
    let plain = RefinedClassifier::plain(&model, 3).unwrap();
    let g0 = grad_of(&plain, 0);
    let g3 = grad_of(&jem3, 0);
    assert!(g0.iter().zip(&g3).any(|(a, b)| (a - b).abs() > 1e-4));
}

#[test]
fn pgd_attacks_a_refined_classifier() {
    single_thread();
    let model = LinearJem::new();
    let x = uniform(&[4, 1, 2, 2], -0.5, 0.5, 36);
    let jem1 = RefinedClassifier::new(
        &model,
        3,
        1,
        2,
        SgldConfig {
            step_size: 0.1,
            ..SgldConfig::default()
        },
    )
    .unwrap();
    let y = Tensor::from_slice(&predictions(&jem1, &x));
    let cfg = PgdConfig {
        norm: Norm::Linf,
        eps: 0.5,
        iterations: 5,
        restarts: 1,
        seed: 1,
        ..PgdConfig::default()
    };
    let a = pgd(&jem1, &x, &y, &cfg).unwrap();
    let b = pgd(&jem1, &x, &y, &cfg).unwrap();
    assert_eq!(values(&a.adversarials), values(&b.adversarials));
    assert!(a.success.iter().any(|&s| s));
    assert!(a.distances.iter().all(|&d| d <= 0.5 + 1e-6));
}

#[test]
fn transfer_sets_corrected_adversarials_to_infinity() {
    single_thread();
    // "Other" target: class 1 iff the first coordinate is positive.
    let other = LogitsFn::new(
        |x: &Tensor| {
            let s = x.flatten(1, -1).narrow(1, 0, 1);
            Tensor::cat(&[s.zeros_like(), s], 1)
        },
        2,
    );
    let adv = Tensor::from_slice(&[0.5f32, 0.0, -0.5, 0.0, 0.5, 0.0, 0.5, 0.0]).reshape([4, 1, 2]);
    // Predictions are 1, 0, 1, 1: inputs 0 and 2 still fool, input 1 is corrected, and input 3
    // was never an adversarial of the source.
    let y = Tensor::from_slice(&[0i64, 0, 0, 0]);
    let source = [0.1, 0.2, 0.3, f64::INFINITY];
    let out = transfer(&other, &adv, &y, &source, &mut Pcg64::seed_from_u64(0)).unwrap();
    assert_eq!(out.fooled, vec![true, false, true, false]);
    assert_eq!(out.distances, vec![0.1, f64::INFINITY, 0.3, f64::INFINITY]);
    assert!(transfer(&other, &adv, &y, &source[..2], &mut Pcg64::seed_from_u64(0)).is_err());
}

#[test]
fn distal_adversarials_reach_the_threshold_on_a_linear_model() {
    single_thread();
    let model = LinearJem::new();
    let target = RefinedClassifier::plain(&model, 3).unwrap();
    let cfg = DistalConfig {
        class: 2,
        step_size: 0.02,
        max_steps: 300,
        seed: 4,
        ..DistalConfig::default()
    };
    let out = distal_adversarials(&target, 6, &[1, 2, 2], Device::Cpu, &cfg).unwrap();
    assert_eq!(out.images.size(), vec![6, 1, 2, 2]);
    assert!(out.reached.iter().all(|&r| r), "{:?}", out.probabilities);
    assert!(out.probabilities.iter().all(|&p| p > 0.9));
    assert!(values(&out.images).iter().all(|v| (-1.0..=1.0).contains(v)));
    let p = values(
        &target
            .log_probs(&out.images, &mut Pcg64::seed_from_u64(0))
            .unwrap()
            .exp()
            .select(1, 2),
    );
    for (a, b) in p.iter().zip(&out.probabilities) {
        assert_relative_eq!(a, b, max_relative = 1e-5);
    }

    // A classifier that can never be that confident stops at the step cap.
    let timid = LogitsFn::new(|x: &Tensor| x.flatten(1, -1).narrow(1, 0, 2) * 0.1, 2);
    let cfg = DistalConfig {
        class: 1,
        max_steps: 7,
        ..DistalConfig::default()
    };
    let out = distal_adversarials(&timid, 2, &[1, 2, 2], Device::Cpu, &cfg).unwrap();
    assert!(out.reached.iter().all(|&r| !r));
    assert_eq!(out.steps, vec![7, 7]);
    assert!(distal_adversarials(
        &timid,
        1,
        &[4],
        Device::Cpu,
        &DistalConfig { class: 2, ..cfg }
    )
    .is_err());
}

#[test]
fn robustness_curve_math_on_hand_made_distances() {
    single_thread();
    let min_eps = [0.0, 0.1, 0.2, 0.2, f64::INFINITY];
    assert_relative_eq!(accuracy_at(&min_eps, 0.0).unwrap(), 0.8);
    // Strictly greater: an input whose minimal ε equals the budget is broken at it.
    assert_relative_eq!(accuracy_at(&min_eps, 0.1).unwrap(), 0.6);
    assert_relative_eq!(accuracy_at(&min_eps, 0.15).unwrap(), 0.6);
    assert_relative_eq!(accuracy_at(&min_eps, 0.2).unwrap(), 0.2);
    assert_relative_eq!(accuracy_at(&min_eps, 1e9).unwrap(), 0.2);

    let exact = RobustnessCurve::exact(Norm::Linf, &min_eps).unwrap();
    let eps: Vec<f64> = exact.points.iter().map(|p| p.eps).collect();
    let acc: Vec<f64> = exact.points.iter().map(|p| p.accuracy).collect();
    assert_eq!(eps, vec![0.0, 0.1, 0.2]);
    assert_eq!(acc, vec![0.8, 0.6, 0.2]);
    assert_eq!(exact.num_inputs, 5);
    assert_relative_eq!(exact.points[1].eps_pixels, 12.75);
    assert_eq!(exact.accuracy_at(0.15), Some(0.6));
    assert_eq!(exact.accuracy_at(-1.0), None);

    let grid = eps_grid(0.4, 5).unwrap();
    assert_eq!(grid.len(), 5);
    assert_relative_eq!(grid[2], 0.2);
    let curve = RobustnessCurve::on_grid(Norm::L2, &min_eps, &grid).unwrap();
    let json = serde_json::to_string(&curve).unwrap();
    assert!(
        json.contains("\"l2\"") && json.contains("eps_pixels"),
        "{json}"
    );
    let back: RobustnessCurve = serde_json::from_str(&json).unwrap();
    assert_eq!(back, curve);
    assert_eq!(
        curve.points[4],
        CurvePoint {
            eps: 0.4,
            eps_pixels: 0.4 * 127.5,
            accuracy: 0.2
        }
    );

    assert!(accuracy_at(&[0.1, f64::NAN], 0.0).is_err());
    assert!(accuracy_at(&[], 0.0).is_err());
    assert!(RobustnessCurve::on_grid(Norm::Linf, &min_eps, &[f64::INFINITY]).is_err());
    assert_relative_eq!(jem_attack::to_pixel_scale(2.0), 255.0);
    assert_relative_eq!(jem_attack::from_pixel_scale(8.0), 8.0 / 127.5);
}

#[test]
fn subset_depends_on_the_seed_only() {
    single_thread();
    let a = random_subset(10_000, 300, 42).unwrap();
    assert_eq!(a, random_subset(10_000, 300, 42).unwrap());
    assert_eq!(a.len(), 300);
    assert!(a.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
    assert!(a.iter().all(|&i| i < 10_000));
    assert_ne!(a, random_subset(10_000, 300, 43).unwrap());
    assert_eq!(random_subset(5, 5, 1).unwrap(), vec![0, 1, 2, 3, 4]);
    assert!(random_subset(5, 6, 1).is_err());
    assert!(random_subset(0, 0, 1).unwrap().is_empty());
    // One seed's subsets are nested: fewer inputs are some of the same inputs, so attacks run
    // on different counts (the reproduce presets' PGD and gradient-free attacks) share inputs.
    for (small, large) in [(16, 32), (1, 300), (299, 300)] {
        let big = random_subset(10_000, large, 42).unwrap();
        let sub = random_subset(10_000, small, 42).unwrap();
        assert!(sub.iter().all(|i| big.contains(i)), "{small} in {large}");
    }
}

#[test]
fn norm_projection_and_random_starts_stay_in_the_ball() {
    single_thread();
    let delta = uniform(&[6, 2, 3, 3], -2.0, 2.0, 50);
    let eps = [0.1, 0.5, 1.0, 0.0, 3.0, 0.25];
    for norm in [Norm::Linf, Norm::L2] {
        let projected = norm.project(&delta, &eps).unwrap();
        let zero = projected.zeros_like();
        let d = norm.distances(&projected, &zero).unwrap();
        let start = norm
            .random_in_ball(&delta, &eps, &mut Pcg64::seed_from_u64(1))
            .unwrap();
        let ds = norm.distances(&start, &zero).unwrap();
        for i in 0..6 {
            assert!(
                d[i] <= eps[i] * (1.0 + 1e-6) + 1e-7,
                "{norm}: {} > {}",
                d[i],
                eps[i]
            );
            assert!(ds[i] <= eps[i] * (1.0 + 1e-6) + 1e-7, "{norm}: start");
        }
        // A perturbation already inside its ball is left alone.
        let small = &delta * 1e-3;
        assert_eq!(
            values(&norm.project(&small, &[1.0; 6]).unwrap()),
            values(&small)
        );
        assert!(norm.project(&delta, &eps[..2]).is_err());
    }
}
