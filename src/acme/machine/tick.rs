//! Pure: the wake-up. For a quiet certificate: read its state file when due, else start what
//! [`decide`](crate::acme::decide::decide) says is due (an order or an ARI poll), log a changed
//! CA or a new renewal time, and say when to wake again. Everything read is on disk, so a
//! restart never changes a decision (an order in flight at a crash is simply due again, and the
//! order job resumes it).

use time::OffsetDateTime;

use super::{Action, Cert, Job};
use crate::acme::status::Phase;

/// The wake-up for one certificate (see module docs).
pub(super) fn tick(mut c: Cert, ari: bool, now: OffsetDateTime) -> (Cert, Vec<Action>) {
    let quiet = c.wanted && c.running.is_none();
    if let Some(u) = &c.unreadable {
        let actions = if u.retry_at <= now {
            vec![Action::ReadState]
        } else if quiet {
            vec![Action::WakeAt(u.retry_at)]
        } else {
            Vec::new()
        };
        return (c, actions);
    }
    if !quiet {
        return (c, Vec::new());
    }
    let d = c.decide(ari, now);
    let mut actions = Vec::new();
    if d.order_now && c.installed.is_some() && c.current().is_none() {
        actions.push(Action::LogCaChanged {
            issued_by: c.state.directory.clone(),
        });
    }
    if let Some(at) = d.next_renewal.filter(|_| d.phase == Phase::Valid)
        && c.logged_renewal != Some(at)
    {
        c.logged_renewal = Some(at);
        actions.push(Action::LogRenewalScheduled {
            at,
            not_after: c.installed.as_ref().map(|i| i.validity.not_after),
        });
    }
    if d.order_now {
        actions.push(start_order(&mut c, ari));
    } else if d.ari_now
        && let Some(start) = start_ari(&mut c)
    {
        actions.push(start);
    }
    actions.extend(d.wake.map(Action::WakeAt));
    (c, actions)
}

/// An order job: `replaces` is an ARI field, sent only for our own certificate and never to a
/// CA known to have no ARI.
fn start_order(c: &mut Cert, ari: bool) -> Action {
    c.running = Some(Job::Order);
    let replaces = c
        .current()
        .filter(|_| ari)
        .and_then(|i| i.ari_id.clone())
        .filter(|id| c.state.issued_cert_id.as_ref() == Some(id));
    Action::StartOrder {
        replaces,
        installed_serial: c.installed.as_ref().map(|i| i.serial.clone()),
    }
}

/// An ARI poll for the installed certificate's id.
fn start_ari(c: &mut Cert) -> Option<Action> {
    let cert_id = c.installed.as_ref().and_then(|i| i.ari_id.clone())?;
    c.running = Some(Job::Ari);
    Some(Action::StartAri { cert_id })
}
