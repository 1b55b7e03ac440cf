//! Retry policies: how many attempts a step gets and how long to pause
//! between them (exponential back-off with full jitter, capped).

use std::time::Duration;

/// How a step retries. What happens after the last failed attempt is decided
/// separately by its [`crate::ErrorStrategy`].
///
/// ```
/// use std::time::Duration;
/// use osapi_orchestrator::RetryPolicy;
/// let p = RetryPolicy::exponential(3).initial(Duration::from_millis(100)).max(Duration::from_secs(1));
/// assert_eq!(p.attempts(), 4);
/// assert!(p.delay(10) <= Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    retries: u32,
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::none()
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        RetryPolicy {
            retries: 0,
            initial: Duration::ZERO,
            max: Duration::ZERO,
            multiplier: 2.0,
            jitter: false,
        }
    }

    /// `retries` extra attempts right after each failure (upstream's `Retry(n)`).
    pub fn immediate(retries: u32) -> Self {
        RetryPolicy {
            retries,
            ..Self::none()
        }
    }

    /// `retries` extra attempts with exponential back-off: 1 s, 2 s, 4 s … up
    /// to 30 s, each delay drawn uniformly between half and all of it.
    pub fn exponential(retries: u32) -> Self {
        RetryPolicy {
            retries,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: true,
        }
    }

    /// First delay.
    pub fn initial(mut self, d: Duration) -> Self {
        self.initial = d;
        self
    }

    /// Largest delay (a zero or smaller maximum is raised to the initial delay).
    pub fn max(mut self, d: Duration) -> Self {
        self.max = d;
        self
    }

    /// Growth factor between delays (at least 1).
    pub fn multiplier(mut self, m: f64) -> Self {
        self.multiplier = if m.is_finite() { m.max(1.0) } else { 2.0 };
        self
    }

    /// Exact delays, no jitter.
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// Total attempts (retries + 1).
    pub fn attempts(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// Extra attempts.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Pause after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        if self.initial.is_zero() {
            return Duration::ZERO;
        }
        let max = self.max.max(self.initial);
        let exp = attempt.saturating_sub(1).min(63) as i32;
        let raw = self.initial.as_secs_f64() * self.multiplier.powi(exp);
        let capped = raw.min(max.as_secs_f64());
        let secs = if self.jitter {
            capped * (0.5 + 0.5 * fastrand::f64())
        } else {
            capped
        };
        Duration::from_secs_f64(secs.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_and_caps() {
        let p = RetryPolicy::exponential(5)
            .initial(Duration::from_millis(100))
            .max(Duration::from_millis(300))
            .without_jitter();
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(5), Duration::from_millis(300));
        assert_eq!(p.attempts(), 6);
    }

    #[test]
    fn jitter_stays_within_half_and_full() {
        let p = RetryPolicy::exponential(3).initial(Duration::from_millis(100));
        for _ in 0..200 {
            let d = p.delay(1);
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(100),
                "{d:?}"
            );
        }
    }

    #[test]
    fn zero_max_is_sane_and_immediate_has_no_delay() {
        let p = RetryPolicy::exponential(1)
            .initial(Duration::from_millis(40))
            .max(Duration::ZERO)
            .without_jitter();
        assert_eq!(
            p.delay(3),
            Duration::from_millis(40),
            "max below initial is raised, not zero"
        );
        assert_eq!(RetryPolicy::immediate(3).delay(1), Duration::ZERO);
        assert_eq!(RetryPolicy::immediate(3).attempts(), 4);
    }
}
