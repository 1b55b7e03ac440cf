//! Exponential back-off with jitter: the one schedule of pauses the
//! project uses, for polling a job ([`crate::WaitPolicy`]) and for retrying
//! a step (the orchestrator's `RetryPolicy`).

use std::time::Duration;

/// Pauses that grow by `multiplier` from `initial` up to `max`. With
/// jitter (the default), each pause is drawn uniformly between half and
/// all of its scheduled length, so it never exceeds `max` and clients
/// that started together drift apart.
///
/// ```
/// use std::time::Duration;
/// use osapi_client::Backoff;
/// let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).without_jitter();
/// assert_eq!(b.delay(0), Duration::from_millis(100));
/// assert_eq!(b.delay(1), Duration::from_millis(200));
/// assert_eq!(b.delay(10), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: bool,
}

impl Backoff {
    /// Doubling pauses from `initial` to `max`, jittered.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            multiplier: 2.0,
            jitter: true,
        }
    }

    /// First pause.
    pub fn initial(mut self, d: Duration) -> Backoff {
        self.initial = d;
        self
    }

    /// Longest pause (a maximum below the first pause is raised to it).
    pub fn max(mut self, d: Duration) -> Backoff {
        self.max = d;
        self
    }

    /// Growth factor between pauses (at least 1; not a number: 2).
    pub fn multiplier(mut self, m: f64) -> Backoff {
        self.multiplier = if m.is_finite() { m.max(1.0) } else { 2.0 };
        self
    }

    /// Exact pauses, no jitter.
    pub fn without_jitter(mut self) -> Backoff {
        self.jitter = false;
        self
    }

    /// The first pause.
    pub fn first(&self) -> Duration {
        self.initial
    }

    /// Pause number `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        if self.initial.is_zero() {
            return Duration::ZERO;
        }
        let max = self.max.max(self.initial);
        let exp = n.min(63) as i32;
        let scheduled = (self.initial.as_secs_f64() * self.multiplier.powi(exp))
            .min(max.as_secs_f64())
            .max(0.0);
        let secs = if self.jitter {
            scheduled * (0.5 + 0.5 * fastrand::f64())
        } else {
            scheduled
        };
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters_within_the_cap() {
        let b = Backoff::new(Duration::from_millis(50), Duration::from_secs(1)).multiplier(1.5);
        for _ in 0..200 {
            let d0 = b.delay(0);
            assert!(
                d0 >= Duration::from_millis(25) && d0 <= Duration::from_millis(50),
                "{d0:?}"
            );
            let d20 = b.delay(20);
            assert!(
                d20 >= Duration::from_millis(500) && d20 <= Duration::from_secs(1),
                "{d20:?}"
            );
        }
        let exact = b.clone().without_jitter();
        assert_eq!(exact.delay(1), Duration::from_millis(75));
        assert_eq!(exact.delay(u32::MAX), Duration::from_secs(1));
        assert_eq!(
            Backoff::new(Duration::ZERO, Duration::from_secs(1)).delay(3),
            Duration::ZERO
        );
        // A maximum below the first pause is raised to it.
        let low = Backoff::new(Duration::from_secs(2), Duration::ZERO).without_jitter();
        assert_eq!(low.delay(5), Duration::from_secs(2));
        assert_eq!(
            b.clone().multiplier(f64::NAN).without_jitter().delay(1),
            Duration::from_millis(100)
        );
    }
}
