//! How failed events are tried again: exponential backoff with jitter, up to
//! a number of attempts, then the dead-letter topic.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Retries of one topic's failed events.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; then the event is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub initial_delay: Duration,
    /// Each further delay is the previous one times this.
    pub factor: f64,
    /// No delay is longer than this.
    pub max_delay: Duration,
    /// Each delay varies by up to this fraction either way, so that many
    /// consumers failing at once do not retry in lockstep.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(200),
            factor: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// Why this policy cannot be used, if it cannot: a jitter outside 0–1
    /// (NaN included), a factor that is not a finite number, or no attempt.
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "jitter must be between 0 and 1, not {}",
                self.jitter
            ));
        }
        if !self.factor.is_finite() {
            return Err(format!(
                "factor must be a finite number, not {}",
                self.factor
            ));
        }
        if self.max_attempts == 0 {
            return Err("max_attempts counts the first attempt: at least 1".into());
        }
        Ok(())
    }

    /// The delay after failed attempt number `attempt` (1 = the first try).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let base = self.initial_delay.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        let capped = base.min(self.max_delay.as_secs_f64());
        // A fresh random value in [-1, 1) without a dependency of its own.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let unit = (random >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let jittered = capped * (1.0 + self.jitter.clamp(0.0, 1.0) * unit);
        Duration::from_secs_f64(jittered.clamp(0.0, self.max_delay.as_secs_f64()))
    }

    /// Whether attempt number `attempt` failing leaves attempts to make.
    pub fn allows_another(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_that_cannot_work_is_refused() {
        assert_eq!(RetryPolicy::default().check(), Ok(()));
        for jitter in [f64::NAN, -0.1, 1.5, f64::INFINITY] {
            let policy = RetryPolicy {
                jitter,
                ..RetryPolicy::default()
            };
            let refused = policy.check().expect_err("refused");
            assert!(refused.contains("jitter"), "{refused}");
        }
        let policy = RetryPolicy {
            factor: f64::NAN,
            ..RetryPolicy::default()
        };
        assert!(policy.check().is_err());
        let policy = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(policy.check().is_err());
    }

    #[test]
    fn delays_grow_exponentially_within_the_jitter_and_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(100),
            factor: 2.0,
            max_delay: Duration::from_secs(1),
            jitter: 0.2,
        };
        for (attempt, expected) in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8)] {
            for _ in 0..50 {
                let delay = policy.delay(attempt).as_secs_f64();
                assert!(
                    (expected * 0.8..=expected * 1.2).contains(&delay),
                    "attempt {attempt}: {delay}"
                );
            }
        }
        for _ in 0..50 {
            assert!(policy.delay(20).as_secs_f64() <= 1.0, "capped");
        }
        let delays: std::collections::HashSet<u128> =
            (0..20).map(|_| policy.delay(2).as_nanos()).collect();
        assert!(delays.len() > 1, "jitter varies the delay");
        assert!(policy.allows_another(9) && !policy.allows_another(10));
    }
}
