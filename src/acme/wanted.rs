//! The wanted set and what the manager reads from disk for it: the installed certificate (or one
//! adopted from `--nginx-proxy-certs`), the challenge directories, and each certificate's state
//! file (read when the machine asks: first use, and again after a read error). All of it off the
//! async threads.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::CertEvent;
use super::adopt;
use super::certinfo::CertInfo;
use super::machine::{Cert, Event};
use super::manager::{Entry, Held, Manager};
use super::plan::CertSpec;
use super::status::fmt_time;
use super::store::{CertState, Store, challenge_dir};
use crate::host::HostName;

impl Manager {
    /// Replaces the wanted set. A certificate seen for the first time gets its challenge
    /// directories and has its installed files read (or an existing pair adopted); the machine
    /// has its state file read at the next tick. The others are told they are (un)wanted.
    pub(super) async fn set_wanted(&mut self, specs: Vec<CertSpec>) {
        let keys: HashSet<HostName> = specs.iter().map(|s| s.key.clone()).collect();
        for spec in specs {
            let key = spec.key.clone();
            let now = self.clock.now();
            if self.entries.contains_key(&key) {
                self.feed(&key, Event::Wanted(spec), now, Held::default())
                    .await;
            } else {
                self.add(spec, now).await;
            }
        }
        let now = self.clock.now();
        let gone: Vec<HostName> = self
            .entries
            .keys()
            .filter(|k| !keys.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            self.feed(&key, Event::Unwanted, now, Held::default()).await;
        }
    }

    /// Starts tracking a newly wanted certificate.
    async fn add(&mut self, spec: CertSpec, now: OffsetDateTime) {
        prepare_webroot(self.ctx.settings.webroot.clone(), spec.clone()).await;
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
        let key = spec.key.clone();
        if adopted {
            let _ = self.events.send(CertEvent::Installed { key: key.clone() });
        }
        let directory = self.ctx.settings.directory.clone();
        let cert = Cert::new(spec, directory, installed, now);
        let waiters = Vec::new();
        self.entries.insert(key, Entry { cert, waiters });
    }

    /// Reads `key`'s state file, off the async threads.
    pub(super) async fn read_state(&self, key: &HostName) -> Result<CertState, String> {
        let (store, k) = (self.ctx.store.clone(), key.clone());
        tokio::task::spawn_blocking(move || store.load_state(&k))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            .map_err(|e| e.to_string())
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

/// Creates `WEBROOT/NAME/.well-known/acme-challenge/` for every name (nginx's route target),
/// off the async threads.
pub(super) async fn prepare_webroot(webroot: PathBuf, spec: CertSpec) {
    let _ = tokio::task::spawn_blocking(move || {
        for name in &spec.names {
            let dir = challenge_dir(&webroot, name);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::warn!(domain = %name, container = %spec.container, action = "webroot_failed",
                    path = %dir.display(), error = %e, "cannot create the challenge directory");
            }
        }
    })
    .await;
}
