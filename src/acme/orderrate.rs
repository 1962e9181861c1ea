//! Pure: Let's Encrypt's "new orders per account" limit kept on our side, so that a flood of new
//! hosts (or a bug) spaces orders out instead of meeting the CA's 429s. The CA allows 300 new
//! orders per account in any 3 hours, refilled at one per 36 s (letsencrypt.org/docs/rate-limits,
//! 2026); we keep the same token bucket per account, in memory.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Orders an account may place at once.
pub const BURST: u32 = 300;
/// One order's worth of refill.
pub const REFILL: Duration = Duration::from_secs(36);

/// One account's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// When the last refill was counted.
    at: Instant,
}

impl Bucket {
    /// Adds the tokens earned since `at`; a full bucket earns from `now` on.
    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs() / REFILL.as_secs();
        self.tokens = (self.tokens as u64 + earned).min(BURST as u64) as u32;
        self.at += REFILL * earned as u32;
        if self.tokens == BURST {
            self.at = now;
        }
    }
}

/// Token buckets by account (its contact email, or none).
#[derive(Debug, Default)]
pub struct OrderRate {
    buckets: HashMap<Option<String>, Bucket>,
}

impl OrderRate {
    /// Takes one order's token for `account` at `now`, or says how long to wait for one.
    pub fn take(&mut self, account: Option<&str>, now: Instant) -> Result<(), Duration> {
        let b = self
            .buckets
            .entry(account.map(str::to_owned))
            .or_insert(Bucket {
                tokens: BURST,
                at: now,
            });
        b.refill(now);
        if b.tokens == 0 {
            return Err((b.at + REFILL).saturating_duration_since(now));
        }
        b.tokens -= 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn three_hundred_at_once_then_one_per_36_s_per_account() {
        let t0 = Instant::now();
        let mut r = OrderRate::default();
        for _ in 0..BURST {
            r.take(None, t0).unwrap();
        }
        assert_eq!(r.take(None, t0), Err(REFILL));
        assert_eq!(
            r.take(None, t0 + Duration::from_secs(30)),
            Err(Duration::from_secs(6))
        );
        assert_eq!(r.take(None, t0 + REFILL), Ok(()));
        assert!(r.take(None, t0 + REFILL).is_err());
        // Another account has its own bucket.
        assert_eq!(r.take(Some("ops@example.com"), t0 + REFILL), Ok(()));
        // Three hours later the bucket is full again, and never fuller.
        let later = t0 + Duration::from_secs(4 * 3600);
        for _ in 0..BURST {
            r.take(None, later).unwrap();
        }
        assert!(r.take(None, later).is_err());
    }
}
