//! Renew-now, the manager's side: the request is fed to the machine at once (its answer:
//! [`RenewAnswer`], see [`machine::renew`](super::machine)), so a burst of requests places at
//! most one order per certificate; here the answer is sent or the caller is kept waiting.

use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::error::AcmeError;
use super::machine::{Event, RenewAnswer};
use super::manager::{Held, Manager};
use super::status::fmt_time;
use crate::host::HostName;

pub use super::machine::FRESH_FOR;

/// A `renew_now` caller waiting for an order's outcome.
pub(super) type Waiter = oneshot::Sender<Result<RenewOutcome, AcmeError>>;

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

impl Manager {
    /// An admin's renew-now (see [`CertHandle::renew_now`](super::CertHandle::renew_now)),
    /// answered (or joined to an order) at once.
    pub(super) async fn renew_now(&mut self, key: String, force: bool, reply: Waiter) {
        let known = HostName::parse(&key)
            .ok()
            .filter(|k| self.entries.contains_key(k));
        let Some(k) = known else {
            let _ = reply.send(Err(AcmeError::NotWanted { domain: key }));
            return;
        };
        let now = self.clock.now();
        let held = Held {
            reply: Some((reply, key)),
            ..Held::default()
        };
        self.feed(&k, Event::RenewNow { force }, now, held).await;
    }

    /// Sends the machine's answer to the caller (who asked for `asked`), or keeps it waiting for
    /// the order's outcome.
    pub(super) fn answer(
        &mut self,
        key: &HostName,
        answer: RenewAnswer,
        force: bool,
        reply: Option<(Waiter, String)>,
    ) {
        let (Some((reply, asked)), Some(e)) = (reply, self.entries.get_mut(key)) else {
            return;
        };
        let logged = answer.log_word();
        match reply_for(answer, &asked) {
            Reply::Now(r) => {
                let _ = reply.send(r);
            }
            Reply::Wait(outcome) => e.waiters.push((reply, outcome)),
        }
        if let Some(answer) = logged {
            tracing::info!(domain = %asked, container = %e.cert.spec.container, action = "renew_requested",
                force, answer, "renew-now requested");
        }
    }
}

/// What a renew-now caller gets: an answer now, or (once the order ends) this outcome.
enum Reply {
    Now(Result<RenewOutcome, AcmeError>),
    Wait(RenewOutcome),
}

/// The caller's reply for the machine's answer; refusals name the key as it was asked for.
fn reply_for(answer: RenewAnswer, asked: &str) -> Reply {
    let refusal = match answer {
        RenewAnswer::Join => return Reply::Wait(RenewOutcome::Joined),
        RenewAnswer::Order => return Reply::Wait(RenewOutcome::Issued),
        RenewAnswer::Fresh { issued_at } => {
            return Reply::Now(Ok(RenewOutcome::Fresh { issued_at }));
        }
        RenewAnswer::NotWanted => AcmeError::NotWanted {
            domain: asked.to_string(),
        },
        RenewAnswer::StateUnreadable { error } => AcmeError::Relayed(format!(
            "{asked}: its state file cannot be read ({error}); nothing ordered until it can"
        )),
        RenewAnswer::BackingOff { until, last_error } => AcmeError::BackingOff {
            domain: asked.to_string(),
            until: fmt_time(Some(until)),
            last_error: last_error.unwrap_or_else(|| "-".into()),
        },
    };
    Reply::Now(Err(refusal))
}
