//! [`CertStatus`]: one certificate as `/status`, `vhostd status` and `--json` show it. Plain data,
//! built from the machine's [`Cert`]; no I/O.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::machine::{Cert, Job};
use crate::host::HostName;

/// Where a certificate stands, as status and logs show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Nothing usable installed yet; an order is due.
    #[serde(rename = "pending")]
    Pending,
    /// An order is running.
    #[serde(rename = "ordering")]
    Ordering,
    /// Installed and not due; renewal scheduled.
    #[serde(rename = "valid")]
    Valid,
    /// The last order failed; waiting out the backoff.
    #[serde(rename = "backoff")]
    Backoff,
    /// The pre-order self-check failed; waiting out its (shorter) backoff.
    #[serde(rename = "self-check failed")]
    SelfCheckFailed,
    /// The state file cannot be read; retried, nothing ordered meanwhile.
    #[serde(rename = "state unreadable")]
    StateUnreadable,
}

impl Phase {
    /// The word `/status` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Ordering => "ordering",
            Phase::Valid => "valid",
            Phase::Backoff => "backoff",
            Phase::SelfCheckFailed => "self-check failed",
            Phase::StateUnreadable => "state unreadable",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Phase {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One wanted certificate: what is installed, when it renews, what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertStatus {
    /// The certificate's key (first name; `live/KEY/`).
    pub key: String,
    /// Wanted names.
    pub names: Vec<String>,
    /// Container that asked for it.
    pub container: String,
    /// Issuer CN of the installed certificate.
    pub issuer: Option<String>,
    /// Serial (hex) of the installed certificate.
    pub serial: Option<String>,
    /// Effective ACME profile.
    pub profile: Option<String>,
    /// notBefore of the installed certificate.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    /// notAfter of the installed certificate.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    /// When it will be renewed (lifetime rule or ARI pick).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_renewal: Option<OffsetDateTime>,
    /// The CA's ARI explanation, when it gave one.
    pub ari_explanation: Option<String>,
    /// Last failure (order or self-check), cleared by a success.
    pub last_error: Option<String>,
    /// Consecutive failed orders.
    pub attempts: u32,
    /// Earliest next attempt while backing off.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt: Option<OffsetDateTime>,
    /// Where it stands.
    pub state: Phase,
}

/// Builds the status of one certificate from the machine's view of it (`profile`: the global
/// default; `ari`: the CA has ARI, as far as known).
pub(crate) fn status_of(
    cert: &Cert,
    profile: Option<&str>,
    ari: bool,
    now: OffsetDateTime,
) -> CertStatus {
    let d = cert.decide(ari, now);
    let spec = &cert.spec;
    let installed = cert.installed.as_ref();
    let state = &cert.state;
    let last_error = match &cert.unreadable {
        Some(u) => Some(format!("cannot read its state file: {}; retrying", u.error)),
        None => state.last_error.clone(),
    };
    let phase = if cert.unreadable.is_some() {
        Phase::StateUnreadable
    } else if cert.running == Some(Job::Order) {
        Phase::Ordering
    } else {
        d.phase
    };
    CertStatus {
        key: spec.key.to_string(),
        names: spec.names.iter().map(HostName::to_string).collect(),
        container: spec.container.clone(),
        issuer: installed.map(|c| c.issuer.clone()),
        serial: installed.map(|c| c.serial.clone()),
        profile: spec.profile.as_deref().or(profile).map(str::to_string),
        not_before: installed.map(|c| c.validity.not_before),
        not_after: installed.map(|c| c.validity.not_after),
        next_renewal: d.next_renewal,
        ari_explanation: state
            .ari
            .as_ref()
            .and_then(|a| a.window.explanation_url.clone()),
        last_error,
        attempts: state.failures,
        next_attempt: state.next_attempt,
        state: phase,
    }
}

/// RFC 3339, or `-` for none (log fields).
pub(crate) fn fmt_time(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "-".into())
}
