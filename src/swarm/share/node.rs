//! [`OrderHooks`] on the Swarm store: one node orders each name (the shared lock), the others
//! install its certificate; tokens are published so whichever node the CA reaches answers.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::{Gate, HookFuture, OrderHooks};
use crate::acme::certinfo::CertInfo;
use crate::acme::plan::CertSpec;
use crate::acme::store::Store;
use crate::host::HostName;
use crate::swarm::api::{Api, Role};
use crate::swarm::store::configs::{SharedToken, SwarmConfigs};
use crate::swarm::store::{Bundle, CertStore, LockOutcome, LockToken, Stored};

/// How often a node that lost the race looks again for the winner's certificate or the lock.
const WAIT_POLL: Duration = Duration::from_secs(1);

/// How long a published token is given to reach every node's webroot (two follower polls).
const TOKEN_SPREAD: Duration = Duration::from_millis(2 * super::follow::POLL.as_millis() as u64);

/// The hooks of an edge node sharing the Swarm store.
pub struct SwarmHooks {
    /// The shared store.
    pub store: Arc<SwarmConfigs>,
    /// The engine, asked whether it is (still) a manager.
    pub api: Api,
}

/// True when `stored` may be served for `spec` instead of ordering: it names exactly the
/// spec's names, is valid now, and is not the certificate already installed here.
pub fn fits(
    stored: &CertInfo,
    spec: &CertSpec,
    installed_serial: Option<&str>,
    now: OffsetDateTime,
) -> bool {
    stored.covers_exactly(spec.names.iter().map(HostName::as_str))
        && stored.is_valid_at(now)
        && installed_serial != Some(stored.serial.as_str())
}

/// Installs `stored` under `live/KEY/` with the ACME side's one-unit install.
pub async fn install(store: &Store, key: &HostName, stored: &Stored) -> Result<CertInfo, String> {
    let (st, k, b) = (store.clone(), key.clone(), stored.bundle.clone());
    tokio::task::spawn_blocking(move || st.install(&k, &b.fullchain, &b.privkey))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|(path, e)| format!("installing into {}: {e}", path.display()))
}

impl SwarmHooks {
    async fn is_manager(&self) -> bool {
        matches!(self.api.role().await, Ok(Role::Manager))
    }

    /// The shared certificate for `spec`, installed, when one fits.
    async fn take_shared(
        &self,
        store: &Store,
        spec: &CertSpec,
        installed_serial: Option<&str>,
    ) -> Result<Option<CertInfo>, String> {
        let Some(stored) = self
            .store
            .load(&spec.key)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let info = CertInfo::from_pem(stored.bundle.fullchain.as_bytes())?;
        if !fits(&info, spec, installed_serial, OffsetDateTime::now_utc()) {
            return Ok(None);
        }
        let info = install(store, &spec.key, &stored).await?;
        tracing::info!(domain = %spec.key, action = "cert_from_store", serial = %info.serial,
            "installed the certificate another node ordered; no order");
        Ok(Some(info))
    }

    async fn gate(
        &self,
        store: &Store,
        spec: &CertSpec,
        installed_serial: Option<&str>,
    ) -> Result<Gate, String> {
        if !self.is_manager().await {
            return Ok(Gate::Order(None));
        }
        let mut waiting = false;
        loop {
            let lock = self
                .store
                .try_lock(&spec.key, OffsetDateTime::now_utc())
                .await;
            match lock.map_err(|e| e.to_string())? {
                LockOutcome::Acquired(token) => {
                    // The previous holder may have saved just before releasing.
                    return match self.take_shared(store, spec, installed_serial).await {
                        Ok(Some(info)) => {
                            let _ = self.store.unlock(&token).await;
                            Ok(Gate::Installed(info))
                        }
                        Ok(None) => {
                            tracing::info!(domain = %spec.key, action = "lock_taken", "this node orders the certificate");
                            Ok(Gate::Order(Some(token)))
                        }
                        Err(e) => {
                            let _ = self.store.unlock(&token).await;
                            Err(e)
                        }
                    };
                }
                LockOutcome::Held(rec) => {
                    if let Some(info) = self.take_shared(store, spec, installed_serial).await? {
                        return Ok(Gate::Installed(info));
                    }
                    if !waiting {
                        tracing::info!(domain = %spec.key, holder = %rec.holder, expires = %rec.expires,
                            action = "lock_wait", "another node orders this certificate; waiting for it");
                        waiting = true;
                    }
                    tokio::time::sleep(WAIT_POLL).await;
                }
            }
        }
    }

    async fn finish(&self, store: &Store, key: &HostName, lock: Option<LockToken>, issued: bool) {
        // No lock: not a manager (nothing was shared), behave as a single host.
        let Some(lock) = lock else { return };
        if let Err(e) = self.store.withdraw_tokens(key).await {
            tracing::warn!(domain = %key, action = "token_withdraw_failed", error = %e, "shared tokens stay until the next order");
        }
        if issued {
            let live = store.live(key);
            let read = async {
                let fullchain = tokio::fs::read_to_string(&live.fullchain).await?;
                let privkey = tokio::fs::read_to_string(&live.privkey).await?;
                Ok::<_, std::io::Error>(Bundle { fullchain, privkey })
            };
            let saved = match read.await {
                Ok(b) => self
                    .store
                    .save(key, &b, OffsetDateTime::now_utc())
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("reading {}: {e}", live.dir.display())),
            };
            match saved {
                Ok(()) => {
                    tracing::info!(domain = %key, action = "cert_shared", "certificate saved in the Swarm store")
                }
                Err(e) => {
                    tracing::warn!(domain = %key, action = "cert_share_failed", error = %e, "other nodes will order it themselves once the lock is gone")
                }
            }
        }
        if let Err(e) = self.store.unlock(&lock).await {
            tracing::warn!(domain = %key, action = "unlock_failed", error = %e, "the lock expires on its own");
        }
    }
}

impl OrderHooks for SwarmHooks {
    fn before_order<'a>(
        &'a self,
        store: &'a Store,
        spec: &'a CertSpec,
        installed_serial: Option<&'a str>,
    ) -> HookFuture<'a, Result<Gate, String>> {
        Box::pin(self.gate(store, spec, installed_serial))
    }

    fn after_order<'a>(
        &'a self,
        store: &'a Store,
        key: &'a HostName,
        lock: Option<LockToken>,
        issued: bool,
    ) -> HookFuture<'a, ()> {
        Box::pin(self.finish(store, key, lock, issued))
    }

    fn publish_token<'a>(
        &'a self,
        key: &'a HostName,
        name: &'a HostName,
        token: &'a str,
        body: &'a str,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if !self.is_manager().await {
                return;
            }
            let t = SharedToken {
                name: name.clone(),
                token: token.to_string(),
                body: body.to_string(),
            };
            match self.store.publish_token(&t, key).await {
                Ok(()) => {
                    tracing::info!(domain = %name, action = "token_shared", "challenge token published to every node");
                    // Every node's follower polls once per POLL: give each time to write the
                    // token before the CA is told to validate (it may reach any node).
                    tokio::time::sleep(TOKEN_SPREAD).await;
                }
                Err(e) => {
                    tracing::warn!(domain = %name, action = "token_share_failed", error = %e, "only this node answers the challenge")
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(names: &[&str]) -> CertSpec {
        CertSpec {
            key: HostName::parse(names[0]).unwrap(),
            names: names.iter().map(|n| HostName::parse(n).unwrap()).collect(),
            email: None,
            profile: None,
            container: "svc".into(),
        }
    }

    #[test]
    fn a_shared_certificate_fits_only_if_exact_valid_and_not_ours_already() {
        let ck = rcgen::generate_simple_self_signed(vec!["a.example.com".to_string()]).unwrap();
        let info = CertInfo::from_pem(ck.cert.pem().as_bytes()).unwrap();
        let now = OffsetDateTime::now_utc();
        let a = spec(&["a.example.com"]);
        assert!(fits(&info, &a, None, now));
        assert!(
            fits(&info, &a, Some("another-serial"), now),
            "a renewal by another node"
        );
        assert!(
            !fits(&info, &a, Some(info.serial.as_str()), now),
            "the one installed here: order"
        );
        assert!(
            !fits(&info, &spec(&["a.example.com", "b.example.com"]), None, now),
            "names changed"
        );
        let later = info.validity.not_after + time::Duration::seconds(1);
        assert!(!fits(&info, &a, None, later), "expired");
    }
}
