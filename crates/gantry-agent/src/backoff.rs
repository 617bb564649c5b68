//! Exponential backoff with full jitter, for retrying the control plane: the n-th consecutive
//! failure waits a random time in `[0, min(cap, base × 2ⁿ)]`, so that many agents that lost the
//! server together do not come back in step.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// Delays between retries: call [`next_delay`](Backoff::next_delay) after each failure and
/// [`reset`](Backoff::reset) after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    rng: StdRng,
}

impl Backoff {
    /// Starts at `base` and never waits longer than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self::with_rng(base, cap, StdRng::from_rng(&mut rand::rng()))
    }

    /// Like [`new`](Backoff::new), with a seeded generator (reproducible delays).
    pub fn seeded(base: Duration, cap: Duration, seed: u64) -> Self {
        Self::with_rng(base, cap, StdRng::seed_from_u64(seed))
    }

    fn with_rng(base: Duration, cap: Duration, rng: StdRng) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            failures: 0,
            rng,
        }
    }

    /// The longest the next delay can be: `min(cap, base × 2ⁿ)` after n failures.
    pub fn ceiling(&self) -> Duration {
        // Saturating: a huge base or a long run of failures ends at the cap.
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The pause before the next retry; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.random_range(0..=nanos))
    }

    /// After a success: the next failure waits at most `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    const BASE: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(10);

    #[test]
    fn delays_stay_within_the_doubling_ceiling_and_the_cap() {
        let mut b = Backoff::seeded(BASE, CAP, 7);
        for n in 0..40u32 {
            let ceiling = b.ceiling();
            let want = if n < 7 { BASE * 2u32.pow(n) } else { CAP };
            assert_eq!(ceiling, want, "ceiling after {n} failures");
            let d = b.next_delay();
            assert!(d <= ceiling, "delay {d:?} above {ceiling:?}");
        }
        b.reset();
        assert_eq!(b.ceiling(), BASE);
        assert!(b.next_delay() <= BASE);
    }

    #[test]
    fn the_jitter_is_full_and_reproducible() {
        let draws = |seed| {
            let mut b = Backoff::seeded(CAP, CAP, seed);
            (0..200).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        let a = draws(1);
        assert_eq!(a, draws(1), "the same seed gives the same delays");
        assert_ne!(a, draws(2));
        // Spread over the whole range [0, cap], not bunched near the ceiling.
        assert!(a.iter().any(|d| *d < CAP / 10));
        assert!(a.iter().any(|d| *d > CAP * 9 / 10));
    }

    #[test]
    fn degenerate_settings_do_not_panic() {
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(b.next_delay(), Duration::ZERO);
        // A cap below the base is raised to the base.
        let mut b = Backoff::seeded(Duration::from_secs(u64::MAX / 2), Duration::ZERO, 3);
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(u64::MAX / 2));
        }
    }
}
