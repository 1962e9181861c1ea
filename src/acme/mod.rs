//! Certificates: ACME (HTTP-01 over nginx's webroot) issuance and renewal for the names the
//! containers ask for.
//!
//! - pure: [`eligible`] (can a name have a public cert), [`plan`] (containers → certificates),
//!   [`schedule`] (when to renew: lifetime or ARI), [`backoff`] (when to retry), [`certinfo`],
//!   `machine` (one certificate's state machine: every decision the manager acts on);
//! - I/O: [`store`] (files under `CERTS_DIR`), `selfcheck` (probe through nginx), `account`,
//!   `order` (instant-acme), `manager` (the one task that owns all certificate state: only the
//!   loop and I/O around `machine`).
//!
//! The controller calls [`plan`], then [`CertHandle::set_wanted`] once the challenge routes are
//! live, and re-renders nginx when a [`CertEvent`] arrives. Nothing here touches nginx itself.

/// How often one ACME request is re-sent when the CA rejects its nonce. instant-acme retries a
/// bad nonce only a few times itself; a busy CA (or Pebble's `PEBBLE_WFE_NONCEREJECT`) can
/// reject more, and a rejected request was never processed, so sending it again is safe.
const NONCE_RETRIES: u32 = 8;

/// Evaluates an instant-acme call again while it fails with `badNonce` (see [`NONCE_RETRIES`]).
macro_rules! nonce_retry {
    ($call:expr) => {{
        let mut tries = 0u32;
        loop {
            match $call {
                Err(e) if tries < $crate::acme::NONCE_RETRIES && $crate::acme::is_bad_nonce(&e) => {
                    tries += 1
                }
                r => break r,
            }
        }
    }};
}

/// True for the CA's `urn:ietf:params:acme:error:badNonce`.
fn is_bad_nonce(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p) if p.r#type.as_deref().is_some_and(|t| t.ends_with(":badNonce")))
}

mod account;
mod adopt;
mod authz;
pub mod backoff;
pub mod certinfo;
mod decide;
pub mod eligible;
mod error;
mod install;
mod jobs;
mod jsonfile;
mod machine;
mod manager;
mod order;
mod orderrate;
mod outcome;
mod pending;
mod perform;
pub mod plan;
mod renew;
pub mod schedule;
mod selfcheck;
mod status;
pub mod store;
mod wanted;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use eligible::SkipReason;
pub use error::AcmeError;
pub use manager::{CertHandle, spawn};
pub use order::check_profile;
pub use plan::{CertCandidate, CertPlan, CertSpec, SkipLog, Skipped, plan};
pub use renew::{FRESH_FOR, RenewOutcome};
pub(crate) use status::fmt_time;
pub use status::{CertStatus, Phase};
pub use store::{LivePaths, live_paths};

use crate::host::HostName;

/// Let's Encrypt production, the default directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Key algorithm of the certificates' private keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA P-256 (default: small, fast, universally supported).
    #[default]
    EcdsaP256,
    /// ECDSA P-384.
    EcdsaP384,
}

/// Global ACME settings (from the command line).
#[derive(Clone)]
pub struct AcmeSettings {
    /// ACME directory URL.
    pub directory: String,
    /// PEM file trusted for the directory's TLS (Pebble, step-ca); system roots otherwise.
    pub ca_bundle: Option<PathBuf>,
    /// Default account contact (a container's `LETSENCRYPT_EMAIL` wins).
    pub email: Option<String>,
    /// External account binding: (key id, base64url HMAC key).
    pub eab: Option<(String, String)>,
    /// Default ACME profile (a container's `ACME_PROFILE` wins).
    pub profile: Option<String>,
    /// Private key algorithm for new certificates.
    pub key_type: KeyType,
    /// Root of `live/` and `vhostd/`.
    pub certs_dir: PathBuf,
    /// Parent of `NAME/.well-known/acme-challenge/`.
    pub webroot: PathBuf,
    /// nginx's HTTP listener, for the self-check (e.g. 127.0.0.1:80).
    pub self_check: SocketAddr,
    /// Orders running at once (at least 1).
    pub concurrency: usize,
    /// nginx-proxy's certificate directory (`HOST.crt` + `HOST.key`), read-only: pairs there
    /// are adopted instead of ordered (see `adopt`).
    pub nginx_proxy_certs: Option<PathBuf>,
}

impl fmt::Debug for AcmeSettings {
    /// Like a derive, but the EAB HMAC key is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcmeSettings")
            .field("directory", &self.directory)
            .field("ca_bundle", &self.ca_bundle)
            .field("email", &self.email)
            .field("eab_kid", &self.eab.as_ref().map(|(kid, _)| kid))
            .field("profile", &self.profile)
            .field("key_type", &self.key_type)
            .field("certs_dir", &self.certs_dir)
            .field("webroot", &self.webroot)
            .field("self_check", &self.self_check)
            .field("concurrency", &self.concurrency)
            .field("nginx_proxy_certs", &self.nginx_proxy_certs)
            .finish()
    }
}

/// What the certificate task tells the controller. (Failures are not events: they are in the
/// status and metrics, read when asked.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertEvent {
    /// New files under `live/KEY/`: re-render (the HTTPS block may now exist) and reload nginx.
    Installed {
        /// The certificate's key.
        key: HostName,
    },
}
