//! The fixed random subset of test inputs every model is attacked on (Appendix G: "we only
//! attacked 300 randomly chosen inputs. The same randomly chosen inputs were used to attack each
//! model").
//!
//! The subset depends on the seed and the two sizes only, never on a model. The draw uses only
//! `Pcg64`'s raw 64-bit output (its stream is fixed by its algorithm) with our own unbiased
//! range reduction, so the indices do not change with `rand`'s version either.

use rand::{RngCore, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::{AttackError, Result};

/// A uniform draw from `0..bound` (`bound >= 1`) by rejection, without modulo bias.
fn below(rng: &mut Pcg64, bound: u64) -> u64 {
    // 2^64 mod bound: rejecting draws below it leaves 2^64 − (2^64 mod bound) values, a multiple
    // of `bound`, so the remainder is exactly uniform.
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let v = rng.next_u64();
        if v >= threshold {
            return v % bound;
        }
    }
}

/// `count` distinct indices out of `0..total`, uniformly at random given `seed`, sorted
/// increasingly (so loading them walks the data set in order). One seed's subsets are nested:
/// the `count` indices are among those of any larger count.
pub fn random_subset(total: usize, count: usize, seed: u64) -> Result<Vec<usize>> {
    if count > total {
        return Err(AttackError::InvalidArgument(format!(
            "`count`: cannot choose {count} distinct indices out of {total}"
        )));
    }
    let mut rng = Pcg64::seed_from_u64(seed);
    // Partial Fisher–Yates over a lazily materialised permutation: only swapped slots are stored.
    let mut swapped = std::collections::HashMap::<usize, usize>::new();
    let mut chosen = Vec::with_capacity(count);
    for i in 0..count {
        let j = i + below(&mut rng, (total - i) as u64) as usize;
        let at_j = *swapped.get(&j).unwrap_or(&j);
        let at_i = *swapped.get(&i).unwrap_or(&i);
        swapped.insert(j, at_i);
        chosen.push(at_j);
    }
    chosen.sort_unstable();
    Ok(chosen)
}
