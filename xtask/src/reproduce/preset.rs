//! The two presets: `cpu` (minutes on a laptop-class CPU) and `paper` (the paper's setting, GPU).

use super::models::{self, ModelId, ModelSpec};
use anyhow::{bail, Result};

/// Settings of the attack targets (Figs 5, 6, 14, 16, 17).
#[derive(Clone, Debug, PartialEq)]
pub struct AttackSettings {
    /// Test inputs attacked (the paper: 300).
    pub n: usize,
    /// PGD iterations per restart (the paper: 40).
    pub iterations: usize,
    /// PGD restarts (the paper: 20).
    pub restarts: usize,
    /// Bisection steps of the minimal-ε search (foolbox 2.4: 20).
    pub bisection_steps: usize,
    /// First ε of the minimal-ε search, foolbox 2.4's box-relative `epsilon` (0.3).
    pub initial_eps_fraction: f64,
    /// EOT chains (the paper: 5).
    pub eot: usize,
    /// Refinement depths k of JEM-k (the paper: 0, 1, 10).
    pub refine_steps: &'static [usize],
    /// Inputs the gradient-free attacks of Fig 14 (boundary, pointwise) run on: the first
    /// `decision_n` of the `n` PGD attacks (`jem attack`'s subsets of one seed are nested).
    pub decision_n: usize,
    /// Boundary-attack iterations.
    pub boundary_iterations: usize,
    /// Random directions per boundary-attack iteration (foolbox 2.4: 25).
    pub boundary_candidates: usize,
    /// Distal adversarials per class, and their most gradient steps.
    pub distal_per_class: usize,
    /// Most gradient steps of a distal adversarial.
    pub distal_steps: usize,
}

/// Settings of the generative targets (Tables 1, 5, the sample figures).
#[derive(Clone, Debug, PartialEq)]
pub struct GenerativeSettings {
    /// Samples scored by `jem generative` (before the top-10% selection).
    pub n: usize,
    /// Per class, for the class-conditional grids.
    pub per_class: usize,
    /// Unconditional samples for the grid and the extremes (Figs 2, 11, 12).
    pub n_grid: usize,
    /// Images per extremes grid.
    pub k_extremes: usize,
    /// The classifier whose features stand in for Inception when no Inception file is given
    /// (numbers labelled "not Inception").
    pub feature_classifier: ModelId,
}

/// A preset: data, models, and the sizes of every evaluation.
#[derive(Clone, Debug)]
pub struct Preset {
    /// `cpu` or `paper`.
    pub name: &'static str,
    /// One line about it.
    pub description: &'static str,
    /// The training data set of the main models.
    pub dataset: &'static str,
    /// OOD sets of Table 3 (the paper's columns).
    pub table3_ood: &'static [&'static str],
    /// Every OOD set evaluated (Table 7's columns; Table 3's are a subset).
    pub ood: &'static [&'static str],
    /// Baselines of Table 1 (the first is the one other figures compare with).
    pub baselines: &'static [ModelId],
    /// Fig 4's (JEM, baseline).
    pub fig4: (ModelId, ModelId),
    /// Further labelled rows of Fig 4 (calibrated, not trained for it).
    pub fig4_extra: &'static [ModelId],
    /// Fig 13 a/b (CIFAR-10 calibration), when it differs from Fig 4.
    pub fig13ab: Option<(ModelId, ModelId)>,
    /// Table 1's other data sets' accuracy (SVHN, CIFAR-100 JEMs).
    pub extra_accuracy: &'static [ModelId],
    /// Class-conditional sample grids of other data sets (Figs 7 right, 8).
    pub extra_samples: &'static [ModelId],
    /// Test images per set of `jem eval`, `jem calibrate` and `jem extremes` (`None`: all,
    /// as the paper).
    pub eval_n: Option<usize>,
    /// Attack sizes.
    pub attack: AttackSettings,
    /// Generative sizes.
    pub generative: GenerativeSettings,
    /// Whether training needs a GPU (`--device cuda`).
    pub needs_gpu: bool,
    /// A TorchScript Inception network for IS/FID (`--inception FILE`); without one the
    /// classifier's features stand in, labelled "not Inception".
    pub inception: Option<String>,
    /// Rough minutes of one `jem eval` (all OOD sets, three scores), one `jem calibrate` and
    /// one `jem generative`.
    pub est_eval: f64,
    /// See `est_eval`.
    pub est_calibrate: f64,
    /// See `est_eval`.
    pub est_generative: f64,
    /// Rough minutes of each attack per unit of work: one classifier at the preset's EOT count
    /// with k refinement steps is 1 + k units (a baseline, never refined, is 1); attacks not
    /// listed count 1 minute a unit.
    pub est_attack_unit: &'static [(&'static str, f64)],
    models: fn(ModelId) -> Option<ModelSpec>,
}

impl Preset {
    /// [`Preset::est_attack_unit`] of `attack`.
    pub fn est_attack_minutes_per_unit(&self, attack: &str) -> f64 {
        let default = if self.name == "paper" { 30.0 } else { 1.0 };
        self.est_attack_unit
            .iter()
            .find(|(a, _)| *a == attack)
            .map_or(default, |&(_, m)| m)
    }

    /// How `id` is trained on this preset, with `extra` overrides (from `--set MODEL:...`).
    pub fn model(&self, id: ModelId, extra: &[(ModelId, String)]) -> Result<ModelSpec> {
        let Some(mut spec) = (self.models)(id) else {
            bail!("model `{id}` is not part of the `{}` preset", self.name);
        };
        spec.overrides.extend(
            extra
                .iter()
                .filter(|(m, _)| *m == id)
                .map(|(_, o)| o.clone()),
        );
        Ok(spec)
    }

    /// The baseline other figures compare with.
    pub fn baseline(&self) -> ModelId {
        self.baselines[0]
    }
}

/// The `cpu` preset: Fashion-MNIST, WRN-10-1, minutes per model on 2 cores.
pub fn cpu() -> Preset {
    Preset {
        name: "cpu",
        description: "Fashion-MNIST, WRN-10-1 without normalisation (configs/cpu.toml); \
                      OOD: MNIST (5k), Uniform, Constant, Fashion-MNIST Interp",
        dataset: "fashion-mnist",
        table3_ood: &["mnist-5k", "uniform", "constant", "interp"],
        ood: &["mnist-5k", "uniform", "constant", "interp"],
        baselines: &[ModelId::Baseline],
        fig4: (ModelId::Jem, ModelId::BaselineConverged),
        fig4_extra: &[ModelId::Baseline],
        fig13ab: None,
        extra_accuracy: &[],
        extra_samples: &[],
        eval_n: None,
        attack: AttackSettings {
            n: 32,
            iterations: 10,
            restarts: 2,
            bisection_steps: 20,       // foolbox 2.4, the version JEM used
            initial_eps_fraction: 0.3, // foolbox 2.4's epsilon, where its search starts
            eot: 5,
            refine_steps: &[0, 1, 10],
            // Measured (N = 2, 100 iterations, 25 directions): one boundary iteration of
            // baseline + JEM-0/1/10 costs about 0.8 s per input here, so foolbox's 5000 x 25 on
            // 32 inputs would take days; 16 inputs x 200 iterations x 10 directions took 18
            // minutes. The curve is then an upper bound of what the full attack would find.
            decision_n: 16,
            boundary_iterations: 200,
            boundary_candidates: 10,
            distal_per_class: 4,
            distal_steps: 300,
        },
        generative: GenerativeSettings {
            n: 2000,
            per_class: 10,
            n_grid: 100,
            k_extremes: 16,
            feature_classifier: ModelId::Baseline,
        },
        needs_gpu: false,
        inception: None,
        // `jem eval`: 0.8 min each for the JEM and the baseline (2026-12-07, table3).
        est_eval: 1.0,
        est_calibrate: 0.5,
        // `jem generative` from the buffer: 0.6 min (2026-12-07, table1).
        est_generative: 0.7,
        // Measured on the 2-core machine (2026-12-01; N = 32, 15 units per job of baseline
        // and JEM-0/1/10): pgd-linf 20 min, pgd-l2 31 min, distal ~5, transfer ~3 (14 units),
        // with the ε search then starting at one pixel level. From foolbox's ε = 0.3 (2026-12-07,
        // side by side, 8 inputs of baseline + JEM-0/1, two rounds ABAB): L∞ 54 / 58 s against
        // 31 / 33 s (0.57x), L2 65 / 74 s against 33 / 33 s (0.48x), the same curves; whole
        // jobs of Fig 5 then took 12.5 (L∞) and 12.8 min (L2), Fig 16's 10 chains 3.3, the
        // transfer and the distal attacks 0.1 min each.
        est_attack_unit: &[
            ("pgd-linf", 0.83),
            ("pgd-l2", 0.85),
            ("distal", 0.01),
            ("transfer", 0.01),
            // Measured by fig14 (N = 16, 15 units): boundary 18.3 min and pointwise 34 min on
            // 2026-12-01 (its refinement then queried one input at a time); 15.1 and 32.9 min on
            // 2026-12-07 with the inputs in lockstep, which was 0.58x the time side by side on
            // 8 inputs of JEM-1 at one thread but hardly shows on the whole 2-thread job: the
            // attack barely uses a second thread (27.1 min at one thread beside another task in
            // the whole `reproduce all` of 2026-12-07 evening).
            ("boundary", 1.01),
            ("pointwise", 2.19),
        ],
        models: models::cpu,
    }
}

/// The `paper` preset: CIFAR-10 WRN-28-10 (Table 4), N = 300 for the attacks; a GPU job.
pub fn paper() -> Preset {
    Preset {
        name: "paper",
        description: "CIFAR-10, WRN-28-10 (configs/paper.toml, Table 4); CIFAR-100 for Fig 4, \
                      SVHN and CIFAR-100 for Table 1's accuracy row; OOD: SVHN, Uniform, \
                      Constant, CIFAR-10 Interp, CIFAR-100, CelebA",
        dataset: "cifar10",
        table3_ood: &["svhn", "interp", "cifar100", "celeba"],
        ood: &[
            "svhn", "uniform", "constant", "interp", "cifar100", "celeba",
        ],
        baselines: &[ModelId::Baseline, ModelId::BaselineNoNorm],
        fig4: (ModelId::JemCifar100, ModelId::BaselineCifar100),
        fig4_extra: &[],
        fig13ab: Some((ModelId::Jem, ModelId::BaselineNoNorm)),
        extra_accuracy: &[ModelId::JemSvhn, ModelId::JemCifar100],
        extra_samples: &[ModelId::JemSvhn, ModelId::JemCifar100],
        eval_n: None,
        attack: AttackSettings {
            n: 300,
            iterations: 40,
            restarts: 20,
            bisection_steps: 20,
            initial_eps_fraction: 0.3,
            eot: 5,
            refine_steps: &[0, 1, 10],
            decision_n: 300,
            boundary_iterations: 5000,
            boundary_candidates: 25,
            distal_per_class: 8,
            distal_steps: 1000,
        },
        generative: GenerativeSettings {
            n: 10000,
            per_class: 10,
            n_grid: 400,
            k_extremes: 64,
            feature_classifier: ModelId::Baseline,
        },
        needs_gpu: true,
        inception: None,
        est_eval: 30.0,
        est_calibrate: 2.0,
        est_generative: 20.0,
        est_attack_unit: &[],
        models: models::paper,
    }
}

impl Preset {
    /// `--n N` when the preset limits the test images, else nothing.
    pub fn n_args(&self) -> Vec<super::plan::Arg> {
        match self.eval_n {
            Some(n) => super::plan::lits(&["--n", &n.to_string()]),
            None => Vec::new(),
        }
    }
}

/// The preset named `name`.
pub fn by_name(name: &str) -> Result<Preset> {
    match name {
        "cpu" => Ok(cpu()),
        "paper" => Ok(paper()),
        other => bail!("unknown preset `{other}`: expected `cpu` or `paper`"),
    }
}

/// Tests only: the cpu preset shrunk to seconds (tiny models, a few attacked inputs, no MNIST).
#[cfg(test)]
pub fn tiny() -> Preset {
    let mut p = cpu();
    p.name = "tiny";
    p.table3_ood = &["uniform", "constant", "interp"];
    p.ood = &["uniform", "constant", "interp"];
    p.eval_n = Some(200);
    p.attack = AttackSettings {
        n: 4,
        iterations: 2,
        restarts: 1,
        bisection_steps: 2,
        initial_eps_fraction: 0.3,
        eot: 2,
        refine_steps: &[0, 1, 2],
        decision_n: 2,
        boundary_iterations: 10,
        boundary_candidates: 3,
        distal_per_class: 1,
        distal_steps: 5,
    };
    p.generative.n = 100;
    p.generative.n_grid = 16;
    p.generative.k_extremes = 4;
    p.models = models::tiny;
    p
}
