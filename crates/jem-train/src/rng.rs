//! Counter-based seeds: every random stream of a run is derived from the run seed, a stream tag,
//! a counter (iteration or epoch) and the recovery salt, so no generator state has to be carried
//! across iterations and a resumed run replays exactly.

use std::sync::{Mutex, MutexGuard};

use rand::SeedableRng;
use rand_pcg::Pcg64;

/// Independent random streams of the training loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// Model initialisation.
    Init = 1,
    /// Order of the training data within an epoch.
    EpochOrder = 2,
    /// Order of the labelled subset (semi-supervised), per cycle through it.
    LabeledOrder = 3,
    /// Per-iteration randomness: augmentation, data noise, chain draws, SGLD noise, tch.
    Iteration = 4,
    /// Replay-buffer initialisation.
    Buffer = 5,
    /// Noise added to evaluation batches.
    Eval = 6,
}

/// SplitMix64 finaliser: a bijective, well-mixing map of 64-bit words.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of `(seed, stream, counter, salt)`.
pub fn derive_seed(seed: u64, stream: Stream, counter: u64, salt: u64) -> u64 {
    let mut h = splitmix64(seed);
    for word in [stream as u64, counter, salt] {
        h = splitmix64(h ^ word);
    }
    h
}

/// A PCG generator for `(seed, stream, counter, salt)`.
pub fn stream_rng(seed: u64, stream: Stream, counter: u64, salt: u64) -> Pcg64 {
    Pcg64::seed_from_u64(derive_seed(seed, stream, counter, salt))
}

/// Seed for `tch::manual_seed` (non-negative `i64`) for the same tuple.
pub fn tch_seed(seed: u64, stream: Stream, counter: u64, salt: u64) -> i64 {
    (derive_seed(seed, stream, counter, salt) >> 1) as i64
}

/// Held while libtorch's one process-wide generator is seeded and drawn from.
static TORCH_RNG: Mutex<()> = Mutex::new(());

/// Exclusive use of libtorch's global generator, seeded with `seed`, until the guard drops.
///
/// tch exposes only that one generator, shared by every thread of the process. A seeded draw
/// (model initialisation, dropout masks) is reproducible only if no other thread reseeds it or
/// draws from it in between, so every seeded use in this crate holds this guard from the seed to
/// its last draw. Code of yours that draws from torch's generator in the same process as a
/// training run (a test suite running runs in parallel, say) should hold it too.
///
/// # Examples
/// ```
/// use tch::{Device, Kind, Tensor};
///
/// let a = {
///     let _torch = jem_train::rng::seed_torch_rng(7);
///     Tensor::randn([4], (Kind::Float, Device::Cpu))
/// };
/// let b = {
///     let _torch = jem_train::rng::seed_torch_rng(7);
///     Tensor::randn([4], (Kind::Float, Device::Cpu))
/// };
/// assert!(a.equal(&b));
/// ```
pub fn seed_torch_rng(seed: i64) -> MutexGuard<'static, ()> {
    let guard = TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    tch::manual_seed(seed);
    guard
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_and_repeat() {
        let a = derive_seed(1, Stream::Iteration, 5, 0);
        assert_eq!(a, derive_seed(1, Stream::Iteration, 5, 0));
        assert_ne!(a, derive_seed(1, Stream::Iteration, 5, 1));
        assert_ne!(a, derive_seed(1, Stream::Iteration, 6, 0));
        assert_ne!(a, derive_seed(1, Stream::EpochOrder, 5, 0));
        assert_ne!(a, derive_seed(2, Stream::Iteration, 5, 0));
        let x: u64 = stream_rng(1, Stream::Eval, 0, 0).random();
        let y: u64 = stream_rng(1, Stream::Eval, 0, 0).random();
        assert_eq!(x, y);
        assert!(tch_seed(u64::MAX, Stream::Init, u64::MAX, u64::MAX) >= 0);
    }
}
