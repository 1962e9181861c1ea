//! Certificates shared by the Swarm's edge nodes (issue #10, items 2–3): the hooks the ACME
//! order calls ([`OrderHooks`]; a no-op on a single host), their Swarm implementation
//! ([`node::SwarmHooks`], following the protocol in [`crate::swarm::store`]) and the task that
//! brings every node's `live/` and webroot in line with the store ([`follow`]).
//!
//! The hooks are registered once at start-up ([`register`]); until then, and on a single host,
//! [`hooks`] answers with [`NoHooks`], so ordering behaves exactly as without Swarm.

pub mod follow;
pub mod node;

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use crate::acme::certinfo::CertInfo;
use crate::acme::plan::CertSpec;
use crate::acme::store::Store;
use crate::host::HostName;
use crate::swarm::store::LockToken;

/// A boxed hook future (the trait stays object-safe).
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What to do before ordering a certificate.
#[derive(Debug)]
pub enum Gate {
    /// Order it (holding the shared lock when there is one).
    Order(Option<LockToken>),
    /// Another node's certificate was installed instead: no order.
    Installed(CertInfo),
}

/// Where an order meets the other nodes. Every method has the single-host default.
pub trait OrderHooks: Send + Sync {
    /// Before ordering `spec`: take the shared lock, or install a fitting shared certificate
    /// (newer than `installed_serial`), or wait for the lock's holder.
    fn before_order<'a>(
        &'a self,
        _store: &'a Store,
        _spec: &'a CertSpec,
        _installed_serial: Option<&'a str>,
    ) -> HookFuture<'a, Result<Gate, String>> {
        Box::pin(async { Ok(Gate::Order(None)) })
    }

    /// After the order (`issued`: its certificate is in `live/KEY/`): share it, withdraw the
    /// order's tokens, release the lock.
    fn after_order<'a>(
        &'a self,
        _store: &'a Store,
        _key: &'a HostName,
        _lock: Option<LockToken>,
        _issued: bool,
    ) -> HookFuture<'a, ()> {
        Box::pin(async {})
    }

    /// A token file was written for `name` (order `key`): let every node answer it.
    fn publish_token<'a>(
        &'a self,
        _key: &'a HostName,
        _name: &'a HostName,
        _token: &'a str,
        _body: &'a str,
    ) -> HookFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// A single host: nothing shared.
#[derive(Debug, Default)]
pub struct NoHooks;

impl OrderHooks for NoHooks {}

static HOOKS: OnceLock<Box<dyn OrderHooks>> = OnceLock::new();

/// Installs the process's hooks (once; later calls are ignored).
pub fn register(hooks: Box<dyn OrderHooks>) {
    let _ = HOOKS.set(hooks);
}

/// The registered hooks, else [`NoHooks`].
pub fn hooks() -> &'static dyn OrderHooks {
    match HOOKS.get() {
        Some(h) => h.as_ref(),
        None => &NoHooks,
    }
}

/// What [`start`] needs from the command line.
pub struct ShareSettings {
    /// The engine (a Swarm manager for sharing to happen).
    pub docker_host: String,
    /// The mounted secret sealing private keys; sharing is off when it does not exist.
    pub secret_file: std::path::PathBuf,
    /// How long an unreleased order lock holds.
    pub lock_time: std::time::Duration,
    /// `CERTS_DIR` (for `live/`).
    pub certs_dir: std::path::PathBuf,
    /// The HTTP-01 webroot.
    pub webroot: std::path::PathBuf,
}

/// Registers the Swarm hooks and starts the follower when the store key secret exists;
/// otherwise certificates stay per node (single host). Errors name the secret file.
pub async fn start(
    s: ShareSettings,
    events: tokio::sync::mpsc::Sender<crate::acme::CertEvent>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<bool, String> {
    if !tokio::fs::try_exists(&s.secret_file).await.unwrap_or(false) {
        tracing::debug!(path = %s.secret_file.display(), action = "store_off", "no Swarm store key: certificates are this node's own");
        return Ok(false);
    }
    let seal = crate::swarm::store::seal::SealKey::from_file(&s.secret_file)
        .await
        .map_err(|e| format!("Swarm store key {}: {e}", s.secret_file.display()))?;
    let host = tokio::fs::read_to_string("/proc/sys/kernel/hostname")
        .await
        .unwrap_or_default();
    let holder = format!("{}/{}", host.trim(), std::process::id());
    let store = std::sync::Arc::new(crate::swarm::store::configs::SwarmConfigs::new(
        &s.docker_host,
        seal,
        holder.clone(),
        s.lock_time,
    ));
    let api = || crate::swarm::api::Api::new(&s.docker_host);
    register(Box::new(node::SwarmHooks {
        store: store.clone(),
        api: api(),
    }));
    let certs = Store::new(&s.certs_dir);
    tokio::spawn(follow::run(
        store,
        api(),
        certs,
        s.webroot,
        events,
        shutdown,
    ));
    tracing::info!(holder = %holder, action = "store_on", "certificates shared through the Swarm store");
    Ok(true)
}
