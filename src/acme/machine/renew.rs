//! Pure: an admin's renew-now, idempotent. One answer per request, decided at once, so a burst
//! of requests places at most one order per certificate: a running (or already requested) order
//! is joined; a certificate vhostd issued within [`FRESH_FOR`] is kept unless forced; a backoff
//! is never bypassed, not even when forced.

use time::OffsetDateTime;

use super::{Action, Cert, Job};

/// A certificate issued this recently is not ordered again by renew-now without `force`.
pub const FRESH_FOR: time::Duration = time::Duration::hours(1);

/// How a renew-now request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewAnswer {
    /// The certificate is not in the wanted set.
    NotWanted,
    /// Its state file cannot be read: nothing is ordered until it can.
    StateUnreadable {
        /// The read error.
        error: String,
    },
    /// An order is running or already requested: wait for its outcome.
    Join,
    /// Backing off after a failure: refused.
    BackingOff {
        /// The end of the backoff.
        until: OffsetDateTime,
        /// The failure that started it.
        last_error: Option<String>,
    },
    /// Issued less than [`FRESH_FOR`] ago and not forced: nothing ordered.
    Fresh {
        /// When vhostd installed it.
        issued_at: OffsetDateTime,
    },
    /// An order is started at the next tick: wait for its outcome.
    Order,
}

impl RenewAnswer {
    /// The `answer` field of the `renew_requested` log line (None: not logged).
    pub fn log_word(&self) -> Option<&'static str> {
        Some(match self {
            RenewAnswer::NotWanted => return None,
            RenewAnswer::StateUnreadable { .. } => "state_unreadable",
            RenewAnswer::Join => "joined",
            RenewAnswer::BackingOff { .. } => "backing_off",
            RenewAnswer::Fresh { .. } => "fresh",
            RenewAnswer::Order => "ordering",
        })
    }
}

/// Decides the answer; an accepted request marks the certificate forced (see module docs).
pub(super) fn renew_now(mut c: Cert, force: bool, now: OffsetDateTime) -> (Cert, Vec<Action>) {
    let answer = if !c.wanted {
        RenewAnswer::NotWanted
    } else if let Some(u) = &c.unreadable {
        RenewAnswer::StateUnreadable {
            error: u.error.clone(),
        }
    } else if c.running == Some(Job::Order) || c.forced {
        RenewAnswer::Join
    } else if let Some(until) = c.state.next_attempt.filter(|t| *t > now) {
        RenewAnswer::BackingOff {
            until,
            last_error: c.state.last_error.clone(),
        }
    } else if let Some(issued_at) = c.fresh(now).filter(|_| !force) {
        RenewAnswer::Fresh { issued_at }
    } else {
        c.forced = true;
        RenewAnswer::Order
    };
    (c, vec![Action::Answer { answer, force }])
}
