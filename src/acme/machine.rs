//! Pure: the certificate state machine. [`apply`] takes what we remember about one certificate
//! ([`CertState`], the state file's contents), one thing that happened, and the time, and returns
//! the new state and what the manager must do, in order (persist first, then tell anyone). The
//! manager only runs jobs, reads the clock and performs these actions; "what now" for a quiet
//! certificate is [`decide`](super::decide::decide).

use std::time::Duration;

use time::OffsetDateTime;

use super::backoff;
use super::schedule::{ARI_ERROR_POLL, AriWindow, next_ari_poll, pick_in_window};
use super::store::{AriState, CertState};

/// Something that happened to one certificate.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An order ended with a certificate installed.
    Issued {
        /// The names it covers.
        names: Vec<String>,
        /// The ACME profile it was ordered with.
        profile: Option<String>,
        /// Its ARI id, if the CA has ARI.
        cert_id: Option<String>,
        /// The ACME directory that issued it.
        directory: String,
    },
    /// An order failed.
    Failed {
        /// Our own self-check failed (short backoff), not the CA.
        local: bool,
        /// The CA's Retry-After, if it gave one.
        retry_after: Option<OffsetDateTime>,
        /// What went wrong, as shown in the status.
        error: String,
    },
    /// The CA answered an ARI poll.
    AriWindow {
        /// The installed certificate's ARI id.
        cert_id: String,
        /// The window the CA suggests.
        window: AriWindow,
        /// The CA's Retry-After for the next poll.
        wait: Duration,
        /// A uniform random number in [0, 1) to pick the moment in a new window.
        unit: f64,
    },
    /// An ARI poll failed (the lifetime rule applies until the retry).
    AriFailed,
}

/// What the manager does after [`apply`], in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write the state file (fsync'd) before anything else is done.
    Save,
    /// Tell `renew_now` callers and the controller that a certificate is installed.
    AnnounceIssued,
    /// Tell `renew_now` callers that the order failed.
    ReportFailure,
    /// Log the CA's new renewal window and the moment picked in it.
    LogAriWindow(OffsetDateTime),
}

/// Applies one event to a certificate's state (see module docs).
pub fn apply(state: CertState, event: Event, now: OffsetDateTime) -> (CertState, Vec<Action>) {
    match event {
        Event::Issued {
            names,
            profile,
            cert_id,
            directory,
        } => {
            let st = CertState {
                names,
                profile,
                issued_cert_id: cert_id,
                directory: Some(directory),
                issued_at: Some(now),
                ..CertState::default()
            };
            (st, vec![Action::Save, Action::AnnounceIssued])
        }
        Event::Failed {
            local,
            retry_after,
            error,
        } => (
            failed(state, local, retry_after, error, now),
            vec![Action::Save, Action::ReportFailure],
        ),
        Event::AriWindow {
            cert_id,
            window,
            wait,
            unit,
        } => ari_window(state, cert_id, window, wait, unit, now),
        Event::AriFailed => {
            let st = CertState {
                ari_retry_at: Some(now + ARI_ERROR_POLL),
                ..state
            };
            (st, vec![Action::Save])
        }
    }
}

/// A failed order moves the backoff on: short steps for our own self-check, the CA's
/// Retry-After or an exponential step for the CA.
fn failed(
    mut st: CertState,
    local: bool,
    retry_after: Option<OffsetDateTime>,
    error: String,
    now: OffsetDateTime,
) -> CertState {
    if local {
        st.self_check_failures += 1;
        st.next_attempt = Some(now + backoff::self_check_delay(st.self_check_failures));
    } else {
        st.self_check_failures = 0;
        st.failures += 1;
        st.next_attempt = Some(backoff::next_attempt(now, st.failures, retry_after));
    }
    st.last_error = Some(error);
    st
}

/// Keeps the CA's window; the picked moment stays the same while the window does.
fn ari_window(
    mut st: CertState,
    cert_id: String,
    window: AriWindow,
    wait: Duration,
    unit: f64,
    now: OffsetDateTime,
) -> (CertState, Vec<Action>) {
    let same = st
        .ari
        .as_ref()
        .filter(|a| a.cert_id == cert_id && a.window == window)
        .map(|a| a.selected);
    let selected = same.unwrap_or_else(|| pick_in_window(&window, unit));
    st.ari = Some(AriState {
        cert_id,
        window,
        selected,
        next_poll: next_ari_poll(now, wait),
    });
    st.ari_retry_at = None;
    let mut actions = vec![Action::Save];
    if same.is_none() {
        actions.insert(0, Action::LogAriWindow(selected));
    }
    (st, actions)
}

#[cfg(test)]
mod tests;
