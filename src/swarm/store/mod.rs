//! The certificate store shared by every edge node of a Swarm (issue #10, item 3), behind a
//! small trait so the ACME side asks "lock, load, save" without knowing where things live.
//!
//! [`configs::SwarmConfigs`] keeps everything in the Swarm's own Raft-replicated store:
//! a lock is a config whose unique name makes its creation atomic, it names its holder and
//! expires; a certificate is a config per version (configs are immutable), its private key
//! sealed with a key read from a Swarm secret ([`seal`]). Each node still writes the local
//! `live/` layout for its nginx ([`install`]).
//!
//! The protocol the ACME side follows ([`crate::swarm::share`], hooked into the order):
//! 1. before ordering KEY: [`CertStore::try_lock`]; `Held` → [`CertStore::load`] and [`install`]
//!    a certificate that still fits, else wait until the winner saves or the lock expires;
//! 2. `Acquired` → load again (the previous holder may have just finished), else order,
//!    [`CertStore::save`], [`CertStore::unlock`];
//! 3. every node: on a new config labelled `vhostd.kind=cert` (a poll, one list call), load and
//!    install, then reload nginx (renewals reach every node the same way);
//! 4. HTTP-01 tokens: one config per pending token, written into every node's webroot (the
//!    store is polled once a second), so the node the CA reaches answers.

pub mod configs;
pub mod lock;
pub mod seal;

use std::future::Future;
use std::path::Path;

use time::OffsetDateTime;

pub use lock::LockRecord;

use crate::acme::store::{Store, live_paths};
use crate::host::HostName;

/// A certificate with its key, as shared between nodes (the key in clear only in memory).
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Leaf + intermediates (PEM).
    pub fullchain: String,
    /// The private key (PEM).
    pub privkey: String,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("fullchain", &self.fullchain.len())
            .finish_non_exhaustive()
    }
}

/// A stored certificate version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The certificate and key.
    pub bundle: Bundle,
    /// When it was saved (newer versions replace older ones on every node).
    pub saved_at: OffsetDateTime,
}

/// The answer to a lock attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// This node holds the lock: it orders, saves, then unlocks.
    Acquired(LockToken),
    /// Another node holds an unexpired lock: wait for its certificate (or for the expiry).
    Held(LockRecord),
}

/// Proof of a held lock, needed to release it (only the holder's own lock is removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockToken {
    /// The store's id of the lock.
    pub id: String,
    /// The certificate key it locks.
    pub key: HostName,
}

/// A store failure, naming the certificate and what to do.
#[derive(Debug, thiserror::Error)]
#[error("certificate store, {key}: {detail}")]
pub struct StoreError {
    /// The certificate key.
    pub key: String,
    /// What went wrong.
    pub detail: String,
}

/// Where certificates, their keys and order locks are shared between nodes.
pub trait CertStore: Send + Sync {
    /// Takes the order lock for `key` until `now` + the store's lock time, unless another
    /// holder's lock has not expired.
    fn try_lock(
        &self,
        key: &HostName,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<LockOutcome, StoreError>> + Send;
    /// Releases a lock this node took.
    fn unlock(&self, token: &LockToken) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The newest stored certificate for `key`.
    fn load(
        &self,
        key: &HostName,
    ) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send;
    /// Stores a new version for `key` (older versions are removed).
    fn save(
        &self,
        key: &HostName,
        bundle: &Bundle,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Installs `bundle` into this node's `CERTS_DIR/live/KEY/` with the ACME side's one-unit
/// install (`archive/KEY/N/`, `live/KEY` swapped by one rename). Returns whether anything
/// changed (then nginx must reload).
pub async fn install(
    certs_dir: &Path,
    key: &HostName,
    bundle: &Bundle,
) -> Result<bool, StoreError> {
    let fail = |detail: String| StoreError {
        key: key.to_string(),
        detail,
    };
    let paths = live_paths(certs_dir, key);
    let same = tokio::fs::read_to_string(&paths.fullchain)
        .await
        .ok()
        .as_deref()
        == Some(bundle.fullchain.as_str())
        && tokio::fs::read_to_string(&paths.privkey)
            .await
            .ok()
            .as_deref()
            == Some(bundle.privkey.as_str());
    if same {
        return Ok(false);
    }
    let (store, k, b) = (Store::new(certs_dir), key.clone(), bundle.clone());
    tokio::task::spawn_blocking(move || store.install(&k, &b.fullchain, &b.privkey))
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|(path, e)| fail(format!("installing into {}: {e}", path.display())))?;
    Ok(true)
}
