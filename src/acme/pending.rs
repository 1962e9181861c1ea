//! The order in flight for one certificate, persisted at `vhostd/certs/KEY.order.json` (0600: it
//! holds the new private key) so that a restart resumes it instead of placing a new order: its
//! URL as soon as the CA created it, the key before the order is finalized. A finalized order
//! only needs its certificate downloaded. Removed once the certificate is installed, or when the
//! order can no longer be used ([`resume`] decides, asking the CA for the order's state).

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use instant_acme::{Account, Order, OrderStatus};

use super::AcmeSettings;
use super::certinfo::CertInfo;
use super::error::AcmeError;
use super::jsonfile::{self, Loaded};
use super::order::OrderRequest;
use super::store::Store;
use crate::fsutil::write_atomic;
use crate::host::HostName;

/// One order in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOrder {
    /// The order's URL at the CA.
    pub url: String,
    /// The ACME directory it belongs to (another directory's order is never resumed).
    pub directory: String,
    /// The names ordered (a changed name set is a new order).
    pub names: Vec<String>,
    /// The certificate's private key, from just before finalize on.
    pub key_pem: Option<String>,
    /// When the order was created (log only).
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

impl PendingOrder {
    /// True when this order is for `names` at `directory`.
    pub fn matches(&self, directory: &str, names: &[HostName]) -> bool {
        self.directory == directory
            && self.names.len() == names.len()
            && self.names.iter().zip(names).all(|(a, b)| a == b.as_str())
    }
}

impl Store {
    fn pending_path(&self, key: &HostName) -> PathBuf {
        self.state_dir()
            .join("certs")
            .join(format!("{key}.order.json"))
    }

    /// The order in flight for `key`, if any (a corrupt file is moved aside and logged).
    pub fn load_pending(&self, key: &HostName) -> io::Result<Option<PendingOrder>> {
        jsonfile::load(&self.pending_path(key)).map(Loaded::found)
    }

    /// Persists the order in flight (atomic, 0600).
    pub fn save_pending(&self, key: &HostName, order: &PendingOrder) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(order).map_err(io::Error::other)?;
        self.ensure_state_dirs()?;
        write_atomic(&self.pending_path(key), &bytes, 0o600)
    }

    /// Forgets the order in flight (installed, or unusable).
    pub fn clear_pending(&self, key: &HostName) -> io::Result<()> {
        match std::fs::remove_file(self.pending_path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The order a previous run left in flight, when it is for the same names at the same CA and
/// the CA still has it usable; an unusable one is forgotten (logged) and None returned.
pub(super) async fn resume(
    settings: &AcmeSettings,
    store: &Store,
    account: &Account,
    req: &OrderRequest<'_>,
) -> Result<Option<(Order, PendingOrder)>, AcmeError> {
    let spec = req.spec;
    let (st, k) = (store.clone(), spec.key.clone());
    let loaded = blocking(move || st.load_pending(&k).map_err(|e| (PathBuf::new(), e)))
        .await
        .and_then(|r| r)
        .map_err(|(_, source)| AcmeError::Io {
            domain: spec.key.to_string(),
            path: PathBuf::from(format!("vhostd/certs/{}.order.json", spec.key)),
            source,
        })?;
    let Some(pending) = loaded else {
        return Ok(None);
    };
    if !pending.matches(&settings.directory, &spec.names) {
        forget_pending(store, &spec.key).await;
        return Ok(None);
    }
    let mut order = match nonce_retry!(account.order(pending.url.clone()).await) {
        Ok(o) => o,
        Err(e) => {
            tracing::info!(domain = %spec.key, action = "order_not_resumed", url = %pending.url, error = %e,
                "the order left in flight is gone at the CA; placing a new one");
            forget_pending(store, &spec.key).await;
            return Ok(None);
        }
    };
    let status = order.state().status;
    let usable = match status {
        OrderStatus::Pending | OrderStatus::Ready => true,
        OrderStatus::Processing => pending.key_pem.is_some(),
        OrderStatus::Valid => {
            pending.key_pem.is_some() && !already_installed(&mut order, req.installed_serial).await
        }
        _ => false,
    };
    tracing::info!(domain = %spec.key, action = if usable { "order_resumed" } else { "order_not_resumed" },
        url = %pending.url, status = ?status, "order left in flight by an earlier run");
    if !usable {
        forget_pending(store, &spec.key).await;
        return Ok(None);
    }
    Ok(Some((order, pending)))
}

/// True when a valid order's certificate is the one already installed (the crash came after
/// the install): it must not be installed again as if it were a renewal.
async fn already_installed(order: &mut Order, installed_serial: Option<&str>) -> bool {
    let Some(serial) = installed_serial else {
        return false;
    };
    match order.certificate().await {
        Ok(Some(chain)) => CertInfo::from_pem(chain.as_bytes()).is_ok_and(|c| c.serial == serial),
        _ => false,
    }
}

pub(super) async fn save_pending(
    store: &Store,
    key: &HostName,
    pending: &PendingOrder,
) -> Result<(), AcmeError> {
    let (st, k, p) = (store.clone(), key.clone(), pending.clone());
    blocking(move || st.save_pending(&k, &p).map_err(|e| (PathBuf::new(), e)))
        .await
        .and_then(|r| r)
        .map_err(|(_, source)| AcmeError::Io {
            domain: key.to_string(),
            path: PathBuf::from(format!("vhostd/certs/{key}.order.json")),
            source,
        })
}

/// Removes the pending-order file; a failure is logged (a stale file is resumed or dropped later).
pub(super) async fn forget_pending(store: &Store, key: &HostName) {
    let (st, k) = (store.clone(), key.clone());
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || st.clear_pending(&k)).await {
        tracing::warn!(domain = %key, action = "pending_order_not_removed", error = %e,
            "cannot remove the pending-order file");
    }
}

/// Runs blocking file work off the async worker threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, (PathBuf, std::io::Error)> + Send + 'static,
) -> Result<Result<T, (PathBuf, std::io::Error)>, (PathBuf, std::io::Error)> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| (PathBuf::new(), std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn pending_orders_round_trip_0600_and_match_directory_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let key = HostName::parse("a.example.com").unwrap();
        assert_eq!(store.load_pending(&key).unwrap(), None);
        let p = PendingOrder {
            url: "https://ca/order/1".into(),
            directory: "https://ca/dir".into(),
            names: vec!["a.example.com".into()],
            key_pem: Some("KEY".into()),
            created: time::macros::datetime!(2026-01-01 0:00 UTC),
        };
        store.save_pending(&key, &p).unwrap();
        assert_eq!(store.load_pending(&key).unwrap(), Some(p.clone()));
        let mode = std::fs::metadata(store.pending_path(&key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(p.matches("https://ca/dir", std::slice::from_ref(&key)));
        assert!(!p.matches("https://other/dir", std::slice::from_ref(&key)));
        let b = HostName::parse("b.example.com").unwrap();
        assert!(!p.matches("https://ca/dir", &[key.clone(), b]));
        store.clear_pending(&key).unwrap();
        store.clear_pending(&key).unwrap();
        assert_eq!(store.load_pending(&key).unwrap(), None);
    }
}
