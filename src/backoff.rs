//! Jittered exponential backoff for reconnects (Docker event stream, and any retry loop).

use std::time::Duration;

use rand::Rng;

/// Exponential backoff between `min` and `max`, with up to 50 % random jitter subtracted so
/// that many clients reconnecting after a dockerd restart don't arrive in lock-step.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `min` and doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            attempt: 0,
        }
    }

    /// The un-jittered delay for the current attempt (pure; for tests and logs).
    pub fn base(&self) -> Duration {
        self.min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max)
    }

    /// The next delay to wait, advancing the attempt counter.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.base();
        self.attempt = self.attempt.saturating_add(1);
        base.mul_f64(1.0 - rand::rng().random_range(0.0..0.5))
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let bases: Vec<_> = (0..6)
            .map(|_| {
                let base = b.base();
                let d = b.next_delay();
                assert!(d <= base && d >= base / 2);
                base.as_millis()
            })
            .collect();
        assert_eq!(bases, [100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.base(), Duration::from_millis(100));
    }
}
