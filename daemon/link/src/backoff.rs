//! Exponential backoff with full jitter: after the `n`th consecutive failure, wait a
//! uniformly random time in `[0, min(max, base × 2^(n-1))]`.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The ceiling after the first failure.
    pub base: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// The delays; seeded for reproducible tests, from the OS otherwise.
#[derive(Debug)]
pub struct Backoff {
    config: BackoffConfig,
    rng: StdRng,
}

impl Backoff {
    pub fn new(config: BackoffConfig, seed: Option<u64>) -> Self {
        Backoff {
            config,
            rng: match seed {
                Some(seed) => StdRng::seed_from_u64(seed),
                None => StdRng::from_os_rng(),
            },
        }
    }

    /// The largest delay after `failures` consecutive failures (0 for none).
    pub fn ceiling(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        self.config
            .base
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.config.max)
    }

    /// The delay before the next try after `failures` consecutive failures.
    pub fn delay(&mut self, failures: u32) -> Duration {
        let ceiling = self.ceiling(failures);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.rng.random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_max_and_delays_stay_under_them() {
        let config = BackoffConfig {
            base: Duration::from_millis(100),
            max: Duration::from_secs(3),
        };
        let mut backoff = Backoff::new(config, Some(7));
        let ceilings: Vec<_> = (0..8).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [0, 100, 200, 400, 800, 1600, 3000, 3000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(3));
        for n in 1..40 {
            assert!(backoff.delay(n) <= backoff.ceiling(n));
        }
        // Same seed, same delays; the jitter spreads them.
        let a: Vec<_> = {
            let mut b = Backoff::new(config, Some(1));
            (1..20).map(|_| b.delay(10)).collect()
        };
        let b: Vec<_> = {
            let mut b = Backoff::new(config, Some(1));
            (1..20).map(|_| b.delay(10)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|d| *d != a[0]));
    }
}
