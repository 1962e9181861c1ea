//! Renew-now, idempotent: one decision per request, taken at once in the manager, so a burst of
//! requests places at most one order per certificate. A running order is joined; a certificate
//! vhostd issued within [`FRESH_FOR`] is kept (unless forced); a backoff is never bypassed.

use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::error::AcmeError;
use super::manager::{Entry, Job, Manager};
use super::status::fmt_time;
use crate::host::HostName;

/// A `renew_now` caller waiting for an order's outcome.
pub(super) type Waiter = oneshot::Sender<Result<RenewOutcome, AcmeError>>;

/// A certificate issued this recently is not ordered again by renew-now without `force`.
pub const FRESH_FOR: time::Duration = time::Duration::hours(1);

/// What a renew-now request got (a refusal is an [`AcmeError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewOutcome {
    /// This request started an order; a new certificate is installed.
    Issued,
    /// An order for the certificate was already running; its certificate is installed.
    Joined,
    /// The certificate was issued less than [`FRESH_FOR`] ago: nothing ordered.
    Fresh {
        /// When vhostd installed it.
        issued_at: OffsetDateTime,
    },
}

impl Entry {
    /// When the installed certificate (current CA, exactly the wanted names) was issued by
    /// vhostd, if that is less than [`FRESH_FOR`] before `now`.
    pub(super) fn fresh(&self, directory: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let names = self.spec.names.iter().map(HostName::as_str);
        self.current(directory)
            .filter(|c| c.covers_exactly(names))
            .and(self.state.issued_at)
            .filter(|at| now - *at < FRESH_FOR)
    }
}

impl Manager {
    /// An admin's renew-now (see [`CertHandle::renew_now`]): decided here, at once, so that a
    /// burst of requests places at most one order.
    pub(super) fn renew_now(&mut self, key: String, force: bool, reply: Waiter) {
        let now = self.clock.now();
        let directory = self.ctx.settings.directory.clone();
        let entry = HostName::parse(&key)
            .ok()
            .and_then(|k| self.entries.get_mut(&k))
            .filter(|e| e.wanted);
        let Some(e) = entry else {
            let _ = reply.send(Err(AcmeError::NotWanted { domain: key }));
            return;
        };
        let answer = if let Some((error, _)) = &e.unreadable {
            let _ = reply.send(Err(AcmeError::Relayed(format!(
                "{key}: its state file cannot be read ({error}); nothing ordered until it can"
            ))));
            "state_unreadable"
        } else if e.running == Some(Job::Order) || e.forced {
            e.waiters.push((reply, RenewOutcome::Joined));
            "joined"
        } else if let Some(until) = e.state.next_attempt.filter(|t| *t > now) {
            let _ = reply.send(Err(AcmeError::BackingOff {
                domain: key.clone(),
                until: fmt_time(Some(until)),
                last_error: e.state.last_error.clone().unwrap_or_else(|| "-".into()),
            }));
            "backing_off"
        } else if let Some(issued_at) = e.fresh(&directory, now).filter(|_| !force) {
            let _ = reply.send(Ok(RenewOutcome::Fresh { issued_at }));
            "fresh"
        } else {
            e.forced = true;
            e.waiters.push((reply, RenewOutcome::Issued));
            "ordering"
        };
        tracing::info!(domain = %key, container = %e.spec.container, action = "renew_requested",
            force, answer, "renew-now requested");
    }
}
