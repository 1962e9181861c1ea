//! Pure: a job's end. A new certificate resets the state (saved before it is announced); a
//! failure moves the backoff on (saved before anyone is told, so a restart can't reset it); an
//! ARI answer is kept with a moment picked in its window.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Action, Cert};
use crate::acme::backoff;
use crate::acme::certinfo::CertInfo;
use crate::acme::schedule::{ARI_ERROR_POLL, AriWindow, next_ari_poll, pick_in_window};
use crate::acme::store::{AriState, CertState};
use crate::host::HostName;

/// How the job out for a certificate ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// An order ended with this certificate installed.
    Issued {
        /// The installed certificate.
        info: CertInfo,
        /// The ACME profile it was ordered with.
        profile: Option<String>,
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
    /// The CA answered an ARI poll for the installed certificate.
    AriWindow {
        /// The window the CA suggests.
        window: AriWindow,
        /// The CA's Retry-After for the next poll.
        wait: Duration,
        /// A uniform random number in [0, 1) to pick the moment in a new window.
        unit: f64,
    },
    /// An ARI poll failed (the lifetime rule applies until the retry).
    AriFailed,
    /// The CA has no ARI at all.
    AriUnsupported,
}

/// The job is no longer out; an unwanted certificate is dropped once it has reported.
pub(super) fn finished(mut c: Cert, outcome: Outcome, now: OffsetDateTime) -> (Cert, Vec<Action>) {
    c.running = None;
    let mut actions = match outcome {
        Outcome::Issued { info, profile } => issued(&mut c, info, profile, now),
        Outcome::Failed {
            local,
            retry_after,
            error,
        } => {
            c.forced = false;
            c.state = failed(std::mem::take(&mut c.state), local, retry_after, error, now);
            vec![Action::Save, Action::ReportFailure]
        }
        Outcome::AriWindow { window, wait, unit } => ari_window(&mut c, window, wait, unit, now),
        Outcome::AriFailed => {
            c.state.ari_retry_at = Some(now + ARI_ERROR_POLL);
            vec![Action::Save]
        }
        Outcome::AriUnsupported => vec![Action::DisableAri],
    };
    // An unreadable state file is never written over (it may hold a backoff).
    if c.unreadable.is_some() {
        actions.retain(|a| *a != Action::Save);
    }
    if !c.wanted {
        actions.push(Action::Forget);
    }
    (c, actions)
}

/// A new certificate starts a fresh state: no backoff, the CA and ARI id that issued it.
fn issued(
    c: &mut Cert,
    info: CertInfo,
    profile: Option<String>,
    now: OffsetDateTime,
) -> Vec<Action> {
    c.state = CertState {
        names: c.spec.names.iter().map(HostName::to_string).collect(),
        profile,
        issued_cert_id: info.ari_id.clone(),
        directory: Some(c.directory.clone()),
        issued_at: Some(now),
        ..CertState::default()
    };
    c.installed = Some(info);
    c.forced = false;
    vec![Action::Save, Action::AnnounceIssued]
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

/// Keeps the CA's window for the installed certificate; the picked moment stays the same while
/// the window does. Without an installed ARI id there is nothing to keep it for.
fn ari_window(
    c: &mut Cert,
    window: AriWindow,
    wait: Duration,
    unit: f64,
    now: OffsetDateTime,
) -> Vec<Action> {
    let Some(cert_id) = c.installed.as_ref().and_then(|i| i.ari_id.clone()) else {
        return Vec::new();
    };
    let st = &mut c.state;
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
    actions
}
