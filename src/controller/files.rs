//! The controller's file inputs: certificate facts, snippet and htpasswd listings, templates.
//! Each is read off the async workers and says whether a reconcile is needed.

use crate::acme;
use crate::certfacts::CertFacts;
use crate::controller::{Applier, Controller};
use crate::host::HostName;
use crate::render::Renderer;
use crate::snippets::Snippets;

impl<A: Applier> Controller<A> {
    /// A certificate event; returns whether a reconcile is needed.
    pub async fn on_cert_event(&mut self, ev: acme::CertEvent) -> bool {
        let acme::CertEvent::Installed { key } = ev;
        tracing::info!(domain = %key, action = "cert_installed", "certificate files changed; nginx will reload");
        self.refresh_certs(Some(key)).await;
        self.force_reload = true;
        true
    }

    /// Re-reads one certificate's facts (`key`), or all of them; true when they changed (then
    /// nginx is reloaded even if the rendered bytes are the same: it reads the files itself).
    pub(super) async fn refresh_certs(&mut self, key: Option<HostName>) -> bool {
        let mut facts = self.installed.clone();
        let dir = self.settings.opts.certs_dir.clone();
        let read = tokio::task::spawn_blocking(move || match key {
            Some(k) => {
                facts.refresh(&k);
                facts
            }
            None => CertFacts::load(&dir),
        });
        let Ok(facts) = read.await else {
            return false;
        };
        let changed = facts != self.installed;
        self.installed = facts;
        self.force_reload |= changed;
        changed
    }

    /// A snippet or htpasswd directory changed: lists both again and tries every host and
    /// container left out once more; returns whether a reconcile is needed (always).
    pub async fn on_snippets(&mut self) -> bool {
        self.load_snippets().await;
        tracing::info!(action = "snippets_changed", vhost_dir = %self.settings.opts.vhost_dir.display(), htpasswd_dir = %self.settings.opts.htpasswd_dir.display(), "snippet or htpasswd files changed; nginx will be checked and reloaded");
        self.quarantine.clear();
        self.force_reload = true;
        self.check_files = true;
        true
    }

    /// Lists the snippet and htpasswd directories (no host left out until nginx says so).
    pub(super) async fn load_snippets(&mut self) {
        let (v, h) = (
            self.settings.opts.vhost_dir.clone(),
            self.settings.opts.htpasswd_dir.clone(),
        );
        if let Ok(s) = tokio::task::spawn_blocking(move || Snippets::load(&v, &h)).await {
            self.snippets = s;
        }
    }

    /// The template directory changed: loads it; returns whether a reconcile is needed.
    pub async fn on_templates(&mut self) -> bool {
        let Some(dir) = self.settings.opts.template_dir.clone() else {
            return false;
        };
        let loaded = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || Renderer::from_dir(&dir).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match loaded {
            Ok(r) => {
                tracing::info!(action = "templates_loaded", dir = %dir.display(), "templates reloaded");
                self.renderer = r;
                self.template_error = None;
                self.quarantine.clear();
            }
            // Logged once per distinct failure: the same broken file seen again changes nothing.
            Err(e) if self.template_error.as_ref() == Some(&e) => return false,
            Err(e) => {
                tracing::error!(action = "templates_rejected", dir = %dir.display(), error = %e, "keeping the previous templates");
                self.template_error = Some(e);
            }
        }
        true
    }
}
