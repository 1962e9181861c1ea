//! Pure reload pacing: a debounce with a leading edge and an adaptive budget. The first event
//! after a quiet spell fires at once; events that follow coalesce into a trailing firing once
//! they pause for `settle` (never later than `max` after the first of them), and no firing comes
//! sooner after the previous one than twice what that one took to run, nor sooner than `settle`
//! doubled for every firing in a row without a quiet spell (capped at `max`) — so a slow reload
//! or a long burst spaces reloads out by themselves, and a trailing firing always catches the
//! last change. While starts are known to be coming (containers created and not yet started,
//! as `docker compose up` does), a burst is held up to `max` and fires as soon as the last of
//! them has started. Works on `tokio::time::Instant` so paused-time tests hold.

use std::time::Duration;

use tokio::time::Instant;

/// How many times the last firing's own duration must pass before the next one.
const BUDGET_FACTOR: u32 = 2;

/// Pacing state; the caller asks [`Debounce::deadline`] when to fire and reports each firing
/// with [`Debounce::fired`].
#[derive(Debug, Clone)]
pub struct Debounce {
    settle: Duration,
    max: Duration,
    /// The pending burst, if any.
    pending: Option<Pending>,
    /// When the last firing ended.
    last_fire: Option<Instant>,
    /// How long the last firing took (the work it paid for: render, nginx -t, reload).
    cost: Duration,
    /// Firings in a row with no quiet spell between them: the gap doubles with each, so a
    /// long burst costs a few reloads, not one per pause in it.
    streak: u32,
}

/// Events not yet fired.
#[derive(Debug, Clone, Copy)]
struct Pending {
    first: Instant,
    last: Instant,
    /// Starts were coming while it gathered: it fires once they have all come.
    held: bool,
}

impl Debounce {
    /// Pacing with the given settle time and cap.
    pub fn new(settle: Duration, max: Duration) -> Debounce {
        Debounce {
            settle,
            max,
            pending: None,
            last_fire: None,
            cost: Duration::ZERO,
            streak: 0,
        }
    }

    /// Records an event at `now`; `starts_ahead`: more starts are known to be coming.
    pub fn mark(&mut self, now: Instant, starts_ahead: bool) {
        self.pending = Some(match self.pending {
            None => Pending {
                first: now,
                last: now,
                held: starts_ahead,
            },
            Some(p) => Pending {
                last: now,
                held: p.held || starts_ahead,
                ..p
            },
        });
    }

    /// The least time between the end of one firing and the start of the next.
    fn budget(&self) -> Duration {
        let growing = self.settle.saturating_mul(1 << self.streak.min(16));
        (self.cost * BUDGET_FACTOR).max(growing).min(self.max)
    }

    /// Whether the pending burst started after a quiet spell: `settle`, or twice the last
    /// firing's cost if longer (the burst's growing gap does not count: a lone event after a
    /// burst keeps its leading edge).
    fn quiet(&self) -> bool {
        match (self.pending, self.last_fire) {
            (Some(Pending { first, .. }), Some(prev)) => {
                let spacing = (self.cost * BUDGET_FACTOR).min(self.max);
                first.saturating_duration_since(prev) >= self.settle.max(spacing)
            }
            _ => true,
        }
    }

    /// When to fire, if anything is pending; `starts_ahead`: more starts are known to be coming.
    pub fn deadline(&self, starts_ahead: bool) -> Option<Instant> {
        let Pending { first, last, held } = self.pending?;
        let Some(prev) = self.last_fire else {
            return Some(if starts_ahead {
                first + self.max
            } else {
                first
            });
        };
        let spacing = prev + (self.cost * BUDGET_FACTOR).min(self.max);
        // Starts are coming: one reload for all of them, at the latest `max` after the first.
        if starts_ahead {
            return Some((first + self.max).max(spacing));
        }
        // They have all come: no reason to wait for a pause.
        if held {
            return Some(last.max(spacing));
        }
        // Leading edge: after a quiet spell, fire at once. Events that arrive before it runs are
        // included anyway (the reconcile reads the whole state), so they don't delay it.
        if self.quiet() {
            return Some(first.max(spacing));
        }
        let earliest = prev + self.budget();
        Some((last + self.settle).min(first + self.max).max(earliest))
    }

    /// Records that the pending work ran from `start` to `end`.
    pub fn fired(&mut self, start: Instant, end: Instant) {
        self.streak = if self.quiet() { 0 } else { self.streak + 1 };
        self.pending = None;
        self.last_fire = Some(end);
        self.cost = end.saturating_duration_since(start);
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
        assert_eq!(d.deadline(false), None);
        d.mark(t0, false);
        assert_eq!(
            d.deadline(false),
            Some(t0),
            "a lone event after quiet fires at once"
        );
        d.fired(t0, t0);
        // A burst right after: waits for the settle time after the latest event.
        d.mark(t0 + 10 * MS, false);
        d.mark(t0 + 50 * MS, false);
        assert_eq!(d.deadline(false), Some(t0 + 150 * MS));
        // An endless burst is capped at max after its first event.
        for i in 1..100u32 {
            d.mark(t0 + 50 * MS * i, false);
        }
        assert_eq!(d.deadline(false), Some(t0 + 1010 * MS));
        d.fired(t0 + 1010 * MS, t0 + 1010 * MS);
        // After a quiet spell, the leading edge again.
        d.mark(t0 + 2000 * MS, false);
        assert_eq!(d.deadline(false), Some(t0 + 2000 * MS));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_firing_spaces_the_next_one_out() {
        let mut d = Debounce::new(100 * MS, 1000 * MS);
        let t0 = Instant::now();
        d.mark(t0, false);
        // The reload took 150 ms: the next firing waits 300 ms after it ended.
        d.fired(t0, t0 + 150 * MS);
        d.mark(t0 + 160 * MS, false);
        assert_eq!(d.deadline(false), Some(t0 + 450 * MS));
        // Still the same burst: the gap doubles (200 ms), and the last change is still caught.
        d.fired(t0 + 450 * MS, t0 + 460 * MS);
        d.mark(t0 + 470 * MS, false);
        assert_eq!(d.deadline(false), Some(t0 + 660 * MS));
        d.fired(t0 + 660 * MS, t0 + 670 * MS);
        d.mark(t0 + 700 * MS, false);
        assert_eq!(d.deadline(false), Some(t0 + 1070 * MS), "then 400 ms");
        // A quiet spell (settle, here): at once, and the gap starts over.
        d.fired(t0 + 1070 * MS, t0 + 1080 * MS);
        d.mark(t0 + 1200 * MS, false);
        assert_eq!(d.deadline(false), Some(t0 + 1200 * MS));
        d.fired(t0 + 1200 * MS, t0 + 1210 * MS);
        d.mark(t0 + 2000 * MS, false);
        assert_eq!(d.deadline(false), Some(t0 + 2000 * MS));
        d.fired(t0 + 2000 * MS, t0 + 2010 * MS);
        d.mark(t0 + 2020 * MS, false);
        assert_eq!(d.deadline(false), Some(t0 + 2120 * MS));
    }

    #[tokio::test(start_paused = true)]
    async fn starts_announced_ahead_are_one_reload_fired_when_the_last_arrives() {
        let mut d = Debounce::new(100 * MS, 1000 * MS);
        let t0 = Instant::now();
        d.mark(t0, false);
        d.fired(t0, t0 + 10 * MS);
        // `docker compose up` created 5 containers a second ago; the first starts after a
        // quiet spell: no leading edge, the burst is held (at most `max`).
        let t = t0 + 2000 * MS;
        d.mark(t, true);
        assert_eq!(d.deadline(true), Some(t + 1000 * MS));
        // Pauses longer than `settle` don't end it while starts are still coming.
        d.mark(t + 400 * MS, true);
        assert_eq!(d.deadline(true), Some(t + 1000 * MS));
        // The last one has started: fire now, not `settle` later.
        d.mark(t + 600 * MS, false);
        assert_eq!(d.deadline(false), Some(t + 600 * MS));
        d.fired(t + 600 * MS, t + 620 * MS);
        // Held past `max`: the cap fires, and the rest are held again from the next event.
        let t = t0 + 5000 * MS;
        d.mark(t, true);
        d.mark(t + 900 * MS, true);
        assert_eq!(d.deadline(true), Some(t + 1000 * MS));
        d.fired(t + 1000 * MS, t + 1010 * MS);
        d.mark(t + 1100 * MS, true);
        assert_eq!(d.deadline(true), Some(t + 2100 * MS));
        // Announced starts that never came (expired by the caller): back to a trailing firing
        // at once, since the burst was held.
        assert_eq!(d.deadline(false), Some(t + 1100 * MS));
    }
}
