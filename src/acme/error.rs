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
        "ACME account at {directory} for {domain}: {}; check --acme-directory, network \
         access to the CA and --acme-ca-bundle (retrying with backoff)",
        chain(source)
    )]
    Account {
        /// The certificate that needed the account.
        domain: String,
        /// The directory URL.
        directory: String,
        /// The underlying client error.
        source: Box<instant_acme::Error>,
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
    #[error(
        "ACME {step} for {domain} failed: {}; will retry with backoff",
        chain(source)
    )]
    Protocol {
        /// The certificate being ordered.
        domain: String,
        /// Which step failed (new order, finalize, ...).
        step: &'static str,
        /// The client error, including the CA's problem document.
        source: Box<instant_acme::Error>,
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
    /// `renew_now` while the certificate is backing off after failures: the backoff is never
    /// bypassed (each attempt would spend the CA's rate limit on a failure).
    #[error(
        "{domain} is backing off after a failure until {until}; nothing ordered (last error: {last_error})"
    )]
    BackingOff {
        /// The certificate asked for.
        domain: String,
        /// The earliest next attempt (RFC 3339).
        until: String,
        /// Why the last attempt failed.
        last_error: String,
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
            AcmeError::Protocol { source, .. } => {
                let instant_acme::Error::Timeout(Some(at)) = **source else {
                    return None;
                };
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
            AcmeError::Protocol { source, .. } => match &**source {
                instant_acme::Error::Api(p) => p
                    .r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":accountDoesNotExist")),
                _ => false,
            },
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
            source: Box::new(source),
        }
    }
}

/// An error with its sources: "client error (Connect): tcp connect error: Connection refused".
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let next = s.to_string();
        if !out.ends_with(&next) {
            out.push_str(": ");
            out.push_str(&next);
        }
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// A problem document as Let's Encrypt sends it with a 429 (recorded; detail trimmed).
    const RATE_LIMITED: &str = r#"{
      "type": "urn:ietf:params:acme:error:rateLimited",
      "detail": "too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2026-01-01 00:18:15 UTC: see https://letsencrypt.org/docs/rate-limits/#new-certificates-per-exact-set-of-identifiers",
      "status": 429
    }"#;

    fn problem(json: &str) -> instant_acme::Error {
        instant_acme::Error::Api(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn rate_limits_carry_their_retry_time() {
        let e = AcmeError::protocol("a.example.com", "new order", problem(RATE_LIMITED));
        assert!(matches!(e, AcmeError::RateLimited { .. }), "{e:?}");
        assert_eq!(e.retry_after(), Some(datetime!(2026-01-01 00:18:15 UTC)));
        assert!(
            e.to_string()
                .starts_with("rate limited by the CA for a.example.com")
        );
    }

    #[test]
    fn validation_and_account_problems_are_recognised() {
        let unauthorized = r#"{"type":"urn:ietf:params:acme:error:unauthorized","detail":"Invalid response from http://a.example.com/.well-known/acme-challenge/x: 404","status":403}"#;
        let e = AcmeError::protocol("a.example.com", "validation", problem(unauthorized));
        assert!(
            e.to_string()
                .contains("check that DNS for a.example.com points at this host"),
            "{e}"
        );
        let gone = r#"{"type":"urn:ietf:params:acme:error:accountDoesNotExist","detail":"unknown account","status":400}"#;
        let e = AcmeError::protocol("a.example.com", "new order", problem(gone));
        assert!(e.account_gone() && e.retry_after().is_none() && !e.is_local());
        let e = AcmeError::SelfCheck {
            domain: "a.example.com".into(),
            reason: "HTTP 404".into(),
        };
        assert!(e.is_local());
        assert!(
            e.to_string().contains(
                "make sure nginx routes http://a.example.com/.well-known/acme-challenge/"
            )
        );
    }
}
