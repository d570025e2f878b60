#![doc = include_str!("../README.md")]

pub mod boundary;
pub mod curve;
pub mod decision;
pub mod distal;
pub mod error;
mod lockstep;
pub mod norm;
pub mod pgd;
pub mod pointwise;
pub mod refined;
pub mod rng;
pub mod search;
pub mod subset;
pub mod target;
pub mod transfer;

pub use boundary::{boundary_attack, BoundaryConfig, BoundaryOutcome, BoundaryReport};
pub use curve::{accuracy_at, eps_grid, CurvePoint, RobustnessCurve};
pub use decision::{DecisionOutcome, DecisionReport};
pub use distal::{distal_adversarials, DistalConfig, DistalOutcome};
pub use error::{AttackError, Result};
pub use jem_params::InvalidParam;
pub use norm::{clip_to_box, from_pixel_scale, to_pixel_scale, Norm, PIXEL_SCALE};
pub use pgd::{pgd, pgd_single_restart, pgd_with_eps, PgdConfig, PgdOutcome};
pub use pointwise::{pointwise_attack, PointwiseConfig, PointwiseOutcome, PointwiseReport};
pub use refined::{RefinedClassifier, DEFAULT_CHAINS, DEFAULT_EOT_NOISE};
pub use rng::restart_rng;
pub use search::{
    box_relative_eps, input_dim, minimal_eps, SearchConfig, SearchOutcome, FOOLBOX_BISECTION_STEPS,
    FOOLBOX_INITIAL_EPSILON,
};
pub use subset::random_subset;
pub use target::{check_batch, check_labels, AttackTarget, LogitsFn};
pub use transfer::{transfer, TransferOutcome};
