//! Pure debounce with a leading edge: the first event after a quiet spell fires at once; events
//! that follow within `settle` coalesce into one more firing, never later than `max` after the
//! first of them. Works on `tokio::time::Instant` so paused-time tests hold.

use std::time::Duration;

use tokio::time::Instant;

/// Debounce state; the caller asks [`Debounce::deadline`] when to fire and calls [`Debounce::fired`].
#[derive(Debug, Clone)]
pub struct Debounce {
    settle: Duration,
    max: Duration,
    /// First and latest event of the pending burst.
    pending: Option<(Instant, Instant)>,
    /// When it last fired; a burst starting later than `settle` after this fires at once.
    last_fire: Option<Instant>,
}

impl Debounce {
    /// A debounce with the given settle time and cap.
    pub fn new(settle: Duration, max: Duration) -> Debounce {
        Debounce {
            settle,
            max,
            pending: None,
            last_fire: None,
        }
    }

    /// Records an event at `now`.
    pub fn mark(&mut self, now: Instant) {
        self.pending = Some(match self.pending {
            None => (now, now),
            Some((first, _)) => (first, now),
        });
    }

    /// When to fire, if anything is pending.
    pub fn deadline(&self) -> Option<Instant> {
        let (first, last) = self.pending?;
        let quiet = self
            .last_fire
            .is_none_or(|t| first.saturating_duration_since(t) >= self.settle);
        // Leading edge: after a quiet spell, fire at once. Events that arrive before it runs are
        // included anyway (the reconcile reads the whole state), so they don't delay it.
        if quiet {
            return Some(first);
        }
        Some((last + self.settle).min(first + self.max))
    }

    /// Records that the pending work ran at `now`.
    pub fn fired(&mut self, now: Instant) {
        self.pending = None;
        self.last_fire = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn leading_edge_then_coalesce_then_cap() {
        let mut d = Debounce::new(100 * MS, 1000 * MS);
        let t0 = Instant::now();
        assert_eq!(d.deadline(), None);
        d.mark(t0);
        assert_eq!(
            d.deadline(),
            Some(t0),
            "a lone event after quiet fires at once"
        );
        d.fired(t0);
        // A burst right after: waits for the settle time after the latest event.
        d.mark(t0 + 10 * MS);
        d.mark(t0 + 50 * MS);
        assert_eq!(d.deadline(), Some(t0 + 150 * MS));
        // An endless burst is capped at max after its first event.
        for i in 1..100u32 {
            d.mark(t0 + 50 * MS * i);
        }
        assert_eq!(d.deadline(), Some(t0 + 1010 * MS));
        d.fired(t0 + 1010 * MS);
        // After a quiet spell, the leading edge again.
        d.mark(t0 + 2000 * MS);
        assert_eq!(d.deadline(), Some(t0 + 2000 * MS));
    }
}
