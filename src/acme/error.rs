//! [`AcmeError`]: everything that can stop a certificate from being issued, each variant naming
//! the domain (or file) and saying what to do. No I/O here.

use std::path::PathBuf;

use time::OffsetDateTime;

use super::backoff;

/// Why a certificate could not be obtained or stored.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The probe file written under the webroot was not served back through nginx.
    #[error(
        "self-check for {domain} failed: {reason}; make sure nginx routes \
         http://{domain}/.well-known/acme-challenge/ to the webroot (no order is placed until it does)"
    )]
    SelfCheck {
        /// The name whose challenge route is broken.
        domain: String,
        /// What the probe saw (status, body mismatch, connection error).
        reason: String,
    },
    /// The ACME account could not be created or restored (CA unreachable, TLS trust, EAB).
    #[error(
        "ACME account at {directory} for {domain}: {source}; check --acme-directory, network \
         access to the CA and --acme-ca-bundle (retrying with backoff)"
    )]
    Account {
        /// The certificate that needed the account.
        domain: String,
        /// The directory URL.
        directory: String,
        /// The underlying client error.
        source: instant_acme::Error,
    },
    /// The EAB HMAC key is not base64url.
    #[error(
        "the EAB HMAC key is not valid base64url; copy it exactly as the CA shows it (--acme-eab-hmac-key)"
    )]
    EabKey,
    /// The wanted ACME profile is not offered by the CA.
    #[error(
        "ACME profile {profile:?} for {domain} is not offered by the CA (it offers: {available}); \
         fix ACME_PROFILE or --acme-profile"
    )]
    UnknownProfile {
        /// The certificate asking for it.
        domain: String,
        /// The profile asked for.
        profile: String,
        /// The CA's profiles, comma-separated.
        available: String,
    },
    /// The CA refused or failed an ACME request (order, finalize, download).
    #[error("ACME {step} for {domain} failed: {source}; will retry with backoff")]
    Protocol {
        /// The certificate being ordered.
        domain: String,
        /// Which step failed (new order, finalize, ...).
        step: &'static str,
        /// The client error, including the CA's problem document.
        source: instant_acme::Error,
    },
    /// The CA could not validate a challenge.
    #[error(
        "the CA could not validate {domain}: {detail}; check that DNS for {domain} points at this \
         host and that port 80 reaches nginx"
    )]
    Validation {
        /// The name (or certificate) whose validation failed.
        domain: String,
        /// The CA's explanation.
        detail: String,
    },
    /// The CA said to slow down (rate limit); the detail carries the retry time.
    #[error("rate limited by the CA for {domain}: {detail}; waiting as the CA asks")]
    RateLimited {
        /// The certificate being ordered.
        domain: String,
        /// The CA's problem detail.
        detail: String,
    },
    /// A local file could not be read or written.
    #[error("{domain}: cannot write {path}: {source}; check permissions and free space")]
    Io {
        /// The certificate concerned.
        domain: String,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key or CSR could not be generated, or the issued certificate is unreadable.
    #[error("{domain}: {detail}")]
    Crypto {
        /// The certificate concerned.
        domain: String,
        /// What went wrong.
        detail: String,
    },
    /// One order took too long as a whole (a hung connection, a CA that never finishes).
    #[error(
        "the ACME order for {domain} took longer than {minutes} minutes; will retry with backoff"
    )]
    Timeout {
        /// The certificate being ordered.
        domain: String,
        /// The limit.
        minutes: u64,
    },
    /// The same failure again, relayed to a second `renew_now` caller.
    #[error("{0}")]
    Relayed(String),
    /// `renew_now` for a key that is not in the wanted set.
    #[error(
        "no certificate for {domain} is wanted; is a container with VIRTUAL_HOST/LETSENCRYPT_HOST {domain} running?"
    )]
    NotWanted {
        /// The key asked for.
        domain: String,
    },
    /// The certificate task is gone (shutdown).
    #[error("the certificate task has stopped; restart vhostd")]
    Stopped,
}

impl AcmeError {
    /// The moment the CA asked us to wait for, when it said so (rate limits, slow orders).
    pub fn retry_after(&self) -> Option<OffsetDateTime> {
        match self {
            AcmeError::RateLimited { detail, .. } => backoff::parse_retry_after(detail),
            AcmeError::Protocol {
                source: instant_acme::Error::Timeout(Some(at)),
                ..
            } => {
                let wait = at.saturating_duration_since(std::time::Instant::now());
                Some(OffsetDateTime::now_utc() + wait)
            }
            _ => None,
        }
    }

    /// True when the failure happened before any request to the CA (no rate limit was spent).
    pub fn is_local(&self) -> bool {
        matches!(self, AcmeError::SelfCheck { .. })
    }

    /// True when the CA no longer knows our account (a reset test CA): register again.
    pub fn account_gone(&self) -> bool {
        match self {
            AcmeError::Protocol {
                source: instant_acme::Error::Api(p),
                ..
            } => p
                .r#type
                .as_deref()
                .is_some_and(|t| t.ends_with(":accountDoesNotExist")),
            _ => false,
        }
    }

    /// Classifies a client error from `step` of the order for `domain`.
    pub(crate) fn protocol(domain: &str, step: &'static str, source: instant_acme::Error) -> Self {
        let domain = domain.to_string();
        if let instant_acme::Error::Api(p) = &source {
            let kind = p.r#type.as_deref().unwrap_or("");
            let detail = p.to_string();
            if kind.ends_with(":rateLimited") {
                return AcmeError::RateLimited { domain, detail };
            }
            if kind.ends_with(":unauthorized")
                || kind.ends_with(":connection")
                || kind.ends_with(":dns")
            {
                return AcmeError::Validation { domain, detail };
            }
        }
        AcmeError::Protocol {
            domain,
            step,
            source,
        }
    }
}
