//! SGLD refinement of given inputs (the paper's JEM-k classifiers, Sec. 5.4 and Appendix G).
//!
//! JEM-k classifies `SGLD(x, k)`: the input after `k` SGLD steps on `log p(x)` seeded at `x`
//! itself. Evaluation only needs the refined inputs; a gradient-based attack on JEM-k must
//! differentiate through the refinement, which `create_graph = true` provides (the reference
//! attack likewise runs its chains without detaching).

use rand_pcg::Pcg64;
use tch::Tensor;

use crate::config::SgldConfig;
use crate::density::LogDensity;
use crate::error::Result;
use crate::sgld::{run_chain, SgldStats};

/// Runs `k` SGLD steps seeded at `x` (`cfg.steps` is ignored; every other setting applies).
///
/// * `create_graph = false`: the result is detached, as for evaluation.
/// * `create_graph = true`: the graph of every step is kept (second-order autograd through the
///   input gradients), so when `x` requires grad, `∂ refined / ∂ x` is available to the caller,
///   e.g. through `Tensor::run_backward`. If `x` does not require grad the chain starts from a
///   fresh leaf and the result is differentiable with respect to that leaf only. Backpropagating
///   the result with `backward()` also reaches the network's parameters; attackers should
///   differentiate with respect to their input only.
///
/// The noise follows `cfg` (the paper refines with its sampling settings); use `noise = 0.0` for a
/// deterministic refinement.
pub fn refine(
    density: &dyn LogDensity,
    x: &Tensor,
    k: usize,
    cfg: &SgldConfig,
    create_graph: bool,
    rng: &mut Pcg64,
) -> Result<(Tensor, SgldStats)> {
    run_chain(density, x, k, cfg, create_graph, true, rng)
}
