//! `<attack>.json` of `jem attack` (the paper's Figs 5, 6, 14-17).

use serde::{Deserialize, Serialize};

/// The norm a perturbation is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// L∞.
    Linf,
    /// L2.
    L2,
}

/// One point of a robustness curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Budget, internal units (inputs in [-1, 1]).
    pub eps: f64,
    /// The same budget on the [0, 255] pixel scale (the paper's axes).
    pub eps_pixels: f64,
    /// Fraction of inputs still classified correctly.
    pub accuracy: f64,
}

/// Accuracy against the budget for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustnessCurve {
    /// The norm.
    pub norm: Norm,
    /// Inputs the curve is computed over.
    pub num_inputs: usize,
    /// Points in increasing budget.
    pub points: Vec<CurvePoint>,
}

/// Robust accuracy at one of the reported budgets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RobustPoint {
    /// Budget on the [0, 255] pixel scale.
    pub eps_pixels: f64,
    /// Budget, internal units.
    pub eps: f64,
    /// Accuracy at that budget.
    pub accuracy: f64,
}

/// PGD settings of the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PgdSettings {
    /// Iterations per restart.
    pub iterations: usize,
    /// Random restarts.
    pub restarts: usize,
    /// Bisection steps of the minimal-ε search (foolbox 2.4: 20).
    pub bisection_steps: usize,
    /// Where the minimal-ε search starts, as foolbox 2.4's box-relative `epsilon` (foolbox:
    /// 0.3); `None` in reports written before 2026-12-07, whose search started at one pixel level.
    #[serde(default)]
    pub initial_eps_fraction: Option<f64>,
}

/// The SGLD refinement of the JEM-k classifiers (the attack's own settings, never the
/// checkpoint's training sampler).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RefinementSettings {
    /// Step size α (the paper: 1).
    pub step_size: f64,
    /// Noise σ of each step (the paper: 0.01).
    pub noise: f64,
    /// Clamp of every step, `None` for none (the paper: none).
    pub clamp: Option<(f64, f64)>,
    /// Standard deviation of the Gaussian noise added to each EOT chain before refinement (the
    /// reference: 0.03).
    pub eot_noise: f64,
}

/// Attack-specific details of one model's result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AttackDetails {
    /// Transfer: the source classifier of the adversarials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Transfer: adversarials that still fool this classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub still_fooled: Option<usize>,
    /// Pointwise: changed pixels per input (`None` where the attack failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l0: Option<Vec<Option<usize>>>,
    /// Pointwise: median changed pixels of the broken inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_l0: Option<usize>,
}

/// One attacked classifier (a model at one refinement depth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackModel {
    /// Its label: the baseline's name, or `NAME JEM-k`.
    pub model: String,
    /// SGLD refinement steps k.
    pub refine_steps: usize,
    /// Accuracy on the clean inputs.
    pub clean_accuracy: f64,
    /// Robust accuracy at the reported budgets.
    pub robust_accuracy: Vec<RobustPoint>,
    /// Minimal ε / adversarial distance per input, internal units (`None`: not broken).
    pub distances: Vec<Option<f64>>,
    /// The whole curve.
    pub curve: RobustnessCurve,
    /// Attack-specific details.
    pub details: AttackDetails,
}

impl AttackModel {
    /// Robust accuracy at `eps_pixels` if it is one of the reported budgets.
    pub fn accuracy_at_pixels(&self, eps_pixels: f64) -> Option<f64> {
        self.robust_accuracy
            .iter()
            .find(|p| (p.eps_pixels - eps_pixels).abs() < 1e-9)
            .map(|p| p.accuracy)
    }
}

/// `<attack>.json` of every attack but `distal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackReport {
    /// `pgd-linf`, `pgd-l2`, `boundary`, `pointwise` or `transfer`.
    pub attack: String,
    /// The norm of the distances.
    pub norm: Norm,
    /// Seed of the subset and the attacks.
    pub seed: u64,
    /// The test inputs attacked.
    pub test_indices: Vec<usize>,
    /// EOT refinement chains.
    pub eot_chains: usize,
    /// PGD settings.
    pub pgd: PgdSettings,
    /// Refinement settings of the JEM-k classifiers.
    pub refinement: RefinementSettings,
    /// One entry per classifier attacked.
    pub models: Vec<AttackModel>,
}

impl AttackReport {
    /// The classifier labelled `label`.
    pub fn model(&self, label: &str) -> Option<&AttackModel> {
        self.models.iter().find(|m| m.model == label)
    }
}

/// One class of the distal adversarials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistalClass {
    /// The target class.
    pub class: i64,
    /// Final p(y = class | x) of each adversarial.
    pub probabilities: Vec<f64>,
    /// Whether each reached p > 0.9.
    pub reached: Vec<bool>,
    /// Gradient steps each took.
    pub steps: Vec<usize>,
}

/// One model's distal adversarials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistalModel {
    /// The model's label.
    pub model: String,
    /// The grid file (in the report's directory), one row per class.
    pub grid: String,
    /// Per class.
    pub classes: Vec<DistalClass>,
}

impl DistalModel {
    /// Fraction of the adversarials that reached p > 0.9, and their mean final probability.
    pub fn reached_and_mean_p(&self) -> (f64, f64) {
        let n: usize = self.classes.iter().map(|c| c.reached.len()).sum();
        if n == 0 {
            return (0.0, 0.0);
        }
        let reached = self
            .classes
            .iter()
            .flat_map(|c| &c.reached)
            .filter(|&&r| r)
            .count();
        let p: f64 = self.classes.iter().flat_map(|c| &c.probabilities).sum();
        (reached as f64 / n as f64, p / n as f64)
    }
}

/// `distal.json` of `jem attack --attack distal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistalReport {
    /// Always `distal`.
    pub attack: String,
    /// Seed.
    pub seed: u64,
    /// One entry per model.
    pub models: Vec<DistalModel>,
}
