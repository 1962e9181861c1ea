//! Every edge node, every second: one list call on the Swarm store; pending tokens are written
//! into this node's webroot (and removed once withdrawn), and a certificate newer than the one
//! in `live/KEY/` is installed and announced (`CertEvent::Installed`: re-render, reload).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::acme::CertEvent;
use crate::acme::store::{Store, write_challenge};
use crate::host::HostName;
use crate::swarm::api::{Api, Role};
use crate::swarm::store::CertStore;
use crate::swarm::store::configs::{SharedToken, SwarmConfigs};

/// Period of the store poll (configs have events, but a poll also heals missed ones).
pub const POLL: Duration = Duration::from_secs(1);

/// What the follower has applied so far.
#[derive(Default)]
struct Applied {
    tokens: BTreeMap<SharedToken, PathBuf>,
    certs: BTreeMap<HostName, String>,
}

/// Runs until `shutdown`.
pub async fn run(
    store: Arc<SwarmConfigs>,
    api: Api,
    certs: Store,
    webroot: PathBuf,
    events: mpsc::Sender<CertEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut applied = Applied::default();
    loop {
        if matches!(api.role().await, Ok(Role::Manager)) {
            match store.snapshot().await {
                Ok(snap) => {
                    sync_tokens(&webroot, &mut applied, snap.tokens).await;
                    for (key, name) in snap.certs {
                        if applied.certs.get(&key) != Some(&name)
                            && sync_cert(&store, &certs, &key, &events).await
                        {
                            applied.certs.insert(key, name);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(action = "store_poll_failed", error = %e, "reading the Swarm store failed; trying again")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Writes new tokens, removes withdrawn ones.
async fn sync_tokens(webroot: &Path, applied: &mut Applied, tokens: Vec<SharedToken>) {
    let now: BTreeSet<SharedToken> = tokens.into_iter().collect();
    let gone: Vec<SharedToken> = applied
        .tokens
        .keys()
        .filter(|t| !now.contains(*t))
        .cloned()
        .collect();
    for t in gone {
        if let Some(path) = applied.tokens.remove(&t) {
            let _ = tokio::fs::remove_file(&path).await;
        }
    }
    for t in now {
        if applied.tokens.contains_key(&t) {
            continue;
        }
        let (w, tt) = (webroot.to_path_buf(), t.clone());
        let written =
            tokio::task::spawn_blocking(move || write_challenge(&w, &tt.name, &tt.token, &tt.body))
                .await;
        match written {
            Ok(Ok(path)) => {
                tracing::info!(domain = %t.name, action = "token_from_store", "answering a challenge token from the Swarm store");
                applied.tokens.insert(t, path);
            }
            Ok(Err(e)) => {
                tracing::warn!(domain = %t.name, action = "token_write_failed", error = %e, "cannot write the shared token")
            }
            Err(e) => {
                tracing::warn!(domain = %t.name, action = "token_write_failed", error = %e, "cannot write the shared token")
            }
        }
    }
}

/// Installs the stored certificate of `key` when it differs from `live/KEY/`; true once
/// this node is in line with the store.
async fn sync_cert(
    store: &SwarmConfigs,
    certs: &Store,
    key: &HostName,
    events: &mpsc::Sender<CertEvent>,
) -> bool {
    let stored = match store.load(key).await {
        Ok(Some(s)) => s,
        Ok(None) => return true,
        Err(e) => {
            tracing::warn!(domain = %key, action = "store_load_failed", error = %e, "cannot read the shared certificate");
            return false;
        }
    };
    let live = certs.live(key);
    if tokio::fs::read_to_string(&live.fullchain)
        .await
        .ok()
        .as_deref()
        == Some(stored.bundle.fullchain.as_str())
    {
        return true;
    }
    match super::node::install(certs, key, &stored).await {
        Ok(info) => {
            tracing::info!(domain = %key, action = "cert_from_store", serial = %info.serial, "installed a certificate from the Swarm store");
            let _ = events.send(CertEvent::Installed { key: key.clone() }).await;
            true
        }
        Err(e) => {
            tracing::warn!(domain = %key, action = "cert_install_failed", error = %e, "cannot install the shared certificate");
            false
        }
    }
}
