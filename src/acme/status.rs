//! [`CertStatus`]: one certificate as `/status` and `vhostd status` show it. Plain data, built by
//! the manager from its state; no I/O.

use serde::Serialize;
use time::OffsetDateTime;

/// One wanted certificate: what is installed, when it renews, what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// `valid`, `pending`, `ordering`, `backoff` or `self-check failed`.
    pub state: String,
}
