//! The wanted set and what the manager reads from disk for it: the installed certificate (or one
//! adopted from `--nginx-proxy-certs`), the challenge directories, and each certificate's state
//! file (read when first wanted and again after a read error). All of it off the async threads.

use std::path::Path;

use time::OffsetDateTime;

use super::CertEvent;
use super::adopt;
use super::certinfo::CertInfo;
use super::manager::{Entry, Manager};
use super::plan::CertSpec;
use super::status::fmt_time;
use super::store::{CertState, Store, challenge_dir};
use crate::host::HostName;

impl Manager {
    /// Replaces the wanted set; a certificate seen for the first time has its installed files
    /// read (or an existing pair adopted) off the async threads. Its state file is read by
    /// [`Manager::load_due`].
    pub(super) async fn set_wanted(&mut self, specs: Vec<CertSpec>) {
        for e in self.entries.values_mut() {
            e.wanted = false;
        }
        for spec in specs {
            let key = spec.key.clone();
            if self
                .entries
                .get(&key)
                .is_none_or(|e| e.spec.names != spec.names)
            {
                let (webroot, s) = (self.ctx.settings.webroot.clone(), spec.clone());
                let _ = tokio::task::spawn_blocking(move || prepare_webroot(&webroot, &s)).await;
            }
            let now = self.clock.now();
            if !self.entries.contains_key(&key) {
                let (store, dir, s) = (
                    self.ctx.store.clone(),
                    self.ctx.settings.nginx_proxy_certs.clone(),
                    spec.clone(),
                );
                let (installed, adopted) = tokio::task::spawn_blocking(move || {
                    installed_or_adopted(&store, dir.as_deref(), &s, now)
                })
                .await
                .unwrap_or((None, false));
                if adopted {
                    let _ = self.events.send(CertEvent::Installed { key: key.clone() });
                }
                self.entries.insert(
                    key.clone(),
                    Entry {
                        state: CertState::default(),
                        unreadable: Some((String::new(), now)),
                        installed,
                        spec: spec.clone(),
                        wanted: true,
                        running: None,
                        forced: false,
                        waiters: Vec::new(),
                        logged_renewal: None,
                    },
                );
            }
            if let Some(e) = self.entries.get_mut(&key) {
                e.spec = spec;
                e.wanted = true;
            }
        }
        self.entries.retain(|key, e| {
            if !e.wanted && e.running.is_none() {
                tracing::info!(domain = %key, container = %e.spec.container, action = "cert_unwanted",
                    "no longer wanted: renewal stops, files kept");
            }
            e.wanted || e.running.is_some()
        });
    }

    /// Reads the state files that are due (first use, or a retry after a read error).
    pub(super) async fn load_due(&mut self, now: OffsetDateTime) {
        let due: Vec<HostName> = self
            .entries
            .iter()
            .filter(|(_, e)| e.unreadable.as_ref().is_some_and(|(_, at)| *at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let (store, k) = (self.ctx.store.clone(), key.clone());
            let read = tokio::task::spawn_blocking(move || store.load_state(&k))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            if let Some(e) = self.entries.get_mut(&key) {
                apply_load(&key, e, read, now);
            }
        }
    }
}

/// The certificate installed under `live/KEY/`; failing that, a usable pair from
/// `--nginx-proxy-certs`, installed there as is (announced like an issued certificate).
fn installed_or_adopted(
    store: &Store,
    dir: Option<&Path>,
    spec: &CertSpec,
    now: OffsetDateTime,
) -> (Option<CertInfo>, bool) {
    let installed = store.installed(&spec.key);
    let (None, Some(dir)) = (&installed, dir) else {
        return (installed, false);
    };
    let found = match adopt::find(dir, spec, now) {
        Ok(Some(found)) => found,
        Ok(None) => return (None, false),
        Err(reason) => {
            tracing::warn!(domain = %spec.key, container = %spec.container, action = "cert_not_adopted",
                %reason, "existing certificate not usable; ordering a new one");
            return (None, false);
        }
    };
    match store.install(&spec.key, &found.fullchain, &found.key_pem) {
        Ok(info) => {
            tracing::info!(domain = %spec.key, container = %spec.container, action = "cert_adopted",
                path = %found.crt.display(), serial = %info.serial, not_after = %fmt_time(Some(info.validity.not_after)),
                "existing certificate installed as is; renewed at its own renewal time");
            (Some(info), true)
        }
        Err((path, e)) => {
            tracing::error!(domain = %spec.key, action = "cert_not_adopted", path = %path.display(), error = %e,
                "cannot install the existing certificate");
            (None, false)
        }
    }
}

/// Creates `WEBROOT/NAME/.well-known/acme-challenge/` for every name (nginx's route target).
fn prepare_webroot(webroot: &Path, spec: &CertSpec) {
    for name in &spec.names {
        let dir = challenge_dir(webroot, name);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(domain = %name, container = %spec.container, action = "webroot_failed",
                path = %dir.display(), error = %e, "cannot create the challenge directory");
        }
    }
}

/// How long an unreadable state file waits before it is read again.
const UNREADABLE_RETRY: time::Duration = time::Duration::seconds(30);

/// Applies one read of `e`'s state file: a read error is logged and retried later, never taken
/// as a fresh start (that would reset the backoff).
fn apply_load(
    key: &HostName,
    e: &mut Entry,
    read: std::io::Result<CertState>,
    now: OffsetDateTime,
) {
    match read {
        Ok(state) => {
            e.state = state;
            e.unreadable = None;
        }
        Err(err) => {
            tracing::error!(domain = %key, container = %e.spec.container, action = "state_unreadable",
                error = %err, "cannot read the certificate's state file; nothing is ordered until it reads (retrying)");
            e.unreadable = Some((err.to_string(), now + UNREADABLE_RETRY));
        }
    }
}
