//! Retry policies: how many attempts a step gets and how long to pause
//! between them (the client's exponential back-off with jitter, capped).

use std::time::Duration;

use osapi_client::Backoff;

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
    backoff: Backoff,
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
            backoff: Backoff::new(Duration::ZERO, Duration::ZERO).without_jitter(),
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
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
        }
    }

    /// First delay.
    pub fn initial(mut self, d: Duration) -> Self {
        self.backoff = self.backoff.initial(d);
        self
    }

    /// Largest delay (a zero or smaller maximum is raised to the initial delay).
    pub fn max(mut self, d: Duration) -> Self {
        self.backoff = self.backoff.max(d);
        self
    }

    /// Growth factor between delays (at least 1).
    pub fn multiplier(mut self, m: f64) -> Self {
        self.backoff = self.backoff.multiplier(m);
        self
    }

    /// Exact delays, no jitter.
    pub fn without_jitter(mut self) -> Self {
        self.backoff = self.backoff.without_jitter();
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

    /// The schedule of pauses.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// Pause after failed attempt `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.backoff.delay(attempt.saturating_sub(1))
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
