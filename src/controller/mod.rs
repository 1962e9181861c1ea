//! The one task that owns all state, as a small loop over named parts: the [`Inventory`]
//! (Docker updates in, containers and draining set out), the pure [`reconcile`] (inventory +
//! templates + certificate facts → candidate), the [`Applier`] that makes a candidate live in
//! nginx, and the [`Reporter`] (status, metrics, de-duplicated logs). Triggers only mark the
//! state dirty; [`Controller::reconcile`] recomputes everything (level-triggered).

mod ahead;
pub mod apply;
pub mod dirwatch;
mod files;
pub mod inventory;
mod isolate;
pub mod reconcile;
pub mod report;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::acme::{self, CertHandle};
use crate::certfacts::CertFacts;
use crate::config::Settings;
use crate::debounce::Debounce;
use crate::desired::Desired;
use crate::docker::Update;
use crate::host::HostName;
use crate::metrics::Metrics;
use crate::nginx::{Nginx, NginxError};
use crate::quarantine::Quarantine;
use crate::render::{RenderSettings, Renderer};
use crate::sites::NginxReach;
use crate::snippets::Snippets;
use crate::status::Status;
use ahead::StartsAhead;

pub use apply::Applier;
pub use inventory::{Change, DOCKER, Inventory};
pub use report::Reporter;

/// Inputs the controller listens to.
pub struct Inputs {
    /// Docker watcher updates.
    pub docker: mpsc::Receiver<Update>,
    /// Template directory changed.
    pub templates: mpsc::Receiver<()>,
    /// `--vhost-dir` or `--htpasswd-dir` changed: nginx reads those files itself, so it is
    /// checked and reloaded even if the rendered bytes are the same.
    pub snippets: mpsc::Receiver<()>,
    /// Certificate files changed (issued or renewed): re-render and reload even if bytes match.
    pub certs: mpsc::Receiver<acme::CertEvent>,
    /// Files under `CERTS/live/` changed (also by hand): re-read the certificate facts.
    pub cert_files: mpsc::Receiver<()>,
    /// Asks the Docker watcher for a full resync.
    pub resync: Arc<Notify>,
    /// Becomes true on shutdown.
    pub shutdown: watch::Receiver<bool>,
}

/// Owner of all reconcile state (see module docs); `A` is the real [`Nginx`] outside unit tests.
pub struct Controller<A: Applier = Nginx> {
    settings: Settings,
    applier: A,
    renderer: Renderer,
    /// Why the template directory's current files were refused (the previous templates stay in
    /// use); reported with every reconcile until the files load again.
    template_error: Option<String>,
    inventory: Inventory,
    /// Installed certificates, read once and refreshed on [`acme::CertEvent::Installed`].
    installed: CertFacts,
    quarantine: Quarantine,
    /// Snippet and htpasswd files, and the hosts nginx rejects with theirs.
    snippets: Snippets,
    /// Files nginx reads itself changed: check the candidate before a forced reload.
    check_files: bool,
    /// A certificate changed on disk, or a reload failed: reload nginx even if the rendered
    /// bytes are the same.
    force_reload: bool,
    reporter: Reporter,
    certs: Option<CertHandle>,
    /// The nginx version renders are for (asked once per nginx process or container).
    nginx_version: crate::nginx_version::Probe,
}

impl<A: Applier> Controller<A> {
    /// A controller with its collaborators; nothing runs until [`Controller::run`].
    pub fn new(
        settings: Settings,
        applier: A,
        renderer: Renderer,
        certs: Option<CertHandle>,
        status: Arc<RwLock<Status>>,
        metrics: Metrics,
    ) -> Self {
        Controller {
            installed: CertFacts::empty(&settings.opts.certs_dir),
            snippets: Snippets::empty(&settings.opts.vhost_dir, &settings.opts.htpasswd_dir),
            check_files: false,
            settings,
            applier,
            renderer,
            template_error: None,
            inventory: Inventory::new(&[DOCKER]),
            quarantine: Quarantine::default(),
            // The first apply checks and reloads even a live file that already holds the
            // right bytes: readiness then means nginx really runs this config.
            force_reload: true,
            reporter: Reporter::new(status, metrics),
            certs,
            nginx_version: Default::default(),
        }
    }

    /// Runs until shutdown.
    pub async fn run(mut self, mut inputs: Inputs) {
        // What is on disk at start is what the live config was made with: nothing to force.
        self.refresh_certs(None).await;
        self.load_snippets().await;
        self.force_reload = false;
        let o = &self.settings.opts;
        let mut debounce = Debounce::new(o.debounce, o.debounce_max);
        let mut ahead = StartsAhead::default();
        let mut resync_tick =
            tokio::time::interval_at(Instant::now() + o.resync_interval, o.resync_interval);
        loop {
            let deadline = debounce.deadline(ahead.any(Instant::now()));
            // Whether starts were announced before this update: the last of them is then part of
            // a held burst (fired at once), not the first event of a new one.
            let mut announced = false;
            let dirty = tokio::select! {
                Some(u) = inputs.docker.recv() => {
                    let now = Instant::now();
                    announced = ahead.any(now);
                    ahead.note(&u, now);
                    self.on_docker(u)
                }
                Some(()) = inputs.templates.recv() => self.on_templates().await,
                Some(()) = inputs.snippets.recv() => self.on_snippets().await,
                Some(ev) = inputs.certs.recv() => self.on_cert_event(ev).await,
                Some(()) = inputs.cert_files.recv() => self.refresh_certs(None).await,
                _ = resync_tick.tick() => {
                    inputs.resync.notify_one();
                    self.refresh_certs(None).await
                }
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    let start = Instant::now();
                    self.reconcile().await;
                    debounce.fired(start, Instant::now());
                    false
                }
                _ = inputs.shutdown.wait_for(|s| *s) => return,
            };
            if dirty {
                let now = Instant::now();
                debounce.mark(now, announced || ahead.any(now));
            }
        }
    }

    /// Applies one Docker update; returns whether a reconcile is needed.
    pub fn on_docker(&mut self, u: Update) -> bool {
        let change = match u {
            Update::Connected(docker) => {
                self.applier.set_docker(docker);
                return false;
            }
            Update::Lost(_) => {
                self.reporter.docker_connected(false);
                return false;
            }
            // Nothing to render until it starts; the pacing takes note (see `ahead`).
            Update::Created(_) => return false,
            Update::Synced(all) => {
                self.reporter.docker_connected(true);
                Change::Synced(all)
            }
            Update::Started(c) => Change::Started(c),
            Update::Upsert(c) => Change::Upsert(c),
            Update::Draining(id) => Change::Draining(id),
            Update::Remove(id) => Change::Remove(id),
        };
        if !matches!(change, Change::Synced(_)) {
            self.reporter.docker_event();
        }
        let dirty = self.inventory.apply(DOCKER, change);
        if dirty {
            self.reporter.containers(self.inventory.len());
        }
        dirty
    }

    /// Recomputes the desired config and makes it live if it changed.
    pub async fn reconcile(&mut self) {
        if !self.inventory.is_synced() {
            return;
        }
        let o = &self.settings.opts;
        let (reach, nginx_id) = reconcile::reach(
            &self.inventory,
            self.applier.in_container(),
            o.nginx_container.as_deref(),
        );
        self.applier.set_container(nginx_id);
        self.applier.probe_version(&mut self.nginx_version).await;
        let inventory = &self.inventory;
        self.quarantine.prune(|id| inventory.get(id));
        let force = std::mem::take(&mut self.force_reload);
        let check = std::mem::take(&mut self.check_files);
        let (d, result) = self.attempt(&reach, force, check).await;
        self.reporter.problems(&d);
        self.check_files |= check && result.is_err();
        self.settle(&d, result, force);
    }

    /// Makes the candidate live (checked first when `check`: files nginx reads changed);
    /// when nginx rejects it, leaves out the containers and hosts it rejects and tries again.
    async fn attempt(
        &mut self,
        reach: &NginxReach,
        force: bool,
        check: bool,
    ) -> (Desired, Result<bool, NginxError>) {
        let conf = self.settings.opts.conf_file.clone();
        let d = self.candidate(reach, &BTreeSet::new());
        let Ok(text) = &d.text else {
            return (d, Ok(false));
        };
        let result = match check {
            true => match self.applier.check(&conf, text).await {
                Ok(()) => self.applier.apply(&conf, text, force).await,
                Err(e) => Err(e),
            },
            false => self.applier.apply(&conf, text, force).await,
        };
        let Err(NginxError::Rejected { output }) = &result else {
            return (d, result);
        };
        let hosts: Vec<HostName> = d.sites.sites.keys().cloned().collect();
        if !self.isolate(reach, &output.clone(), &hosts).await {
            return (d, result);
        }
        let d = self.candidate(reach, &BTreeSet::new());
        let result = match &d.text {
            Ok(text) => self.applier.apply(&conf, text, force).await,
            Err(_) => result,
        };
        (d, result)
    }

    /// Records the outcome of an attempt and decides what the next reconcile must redo.
    fn settle(&mut self, d: &Desired, result: Result<bool, NginxError>, force: bool) {
        if let Err(e) = &d.text {
            tracing::error!(action = "render_failed", error = %e, "render failed; the live config is unchanged");
            self.force_reload |= force;
            self.finish(d, "render_error", Some(e.to_string()));
            self.set_wanted(d, true);
            return;
        }
        match result {
            Ok(reloaded) => {
                if reloaded {
                    self.reporter.reloaded(d, &self.settings.opts.conf_file);
                } else {
                    // The live file already is this config (e.g. after a restart): it is
                    // what nginx serves, so later changes are logged against it.
                    self.reporter.unchanged(d);
                }
                let live = reconcile::included_ids(&self.inventory, &self.quarantine);
                self.quarantine.set_live(live);
                self.finish(d, if reloaded { "ok" } else { "unchanged" }, None);
                self.set_wanted(d, false);
            }
            Err(e) => {
                self.reporter.apply_failed(&e);
                // A rejected candidate was put back, so the next reconcile retries it anyway;
                // any other failure (the reload itself) may have left the new bytes in place,
                // where "unchanged" would otherwise hide that nginx never loaded them.
                self.force_reload |= force || !matches!(e, NginxError::Rejected { .. });
                self.finish(d, "rejected", Some(e.to_string()));
                // Certificates whose names are all live keep renewing: one bad candidate must
                // not stop every renewal. New names wait until their challenge route is live.
                self.set_wanted(d, true);
            }
        }
    }

    /// Hands the certificate task the planned certificates; `only_live`: only those whose
    /// every name nginx serves now (their challenge route is live).
    fn set_wanted(&self, d: &Desired, only_live: bool) {
        if let Some(certs) = &self.certs {
            let live = |h: &HostName| {
                !self.snippets.is_rejected(h) && (!only_live || self.reporter.is_live(h))
            };
            let specs = d.certs.specs.iter().filter(|s| s.names.iter().all(live));
            certs.set_wanted(specs.cloned().collect());
        }
    }

    fn finish(&self, d: &Desired, result: &'static str, error: Option<String>) {
        let left_out = report::LeftOut {
            containers: self.quarantine.ids().cloned().collect(),
            hosts: self.snippets.rejected().map(ToString::to_string).collect(),
        };
        self.reporter
            .finish(d, result, error, self.template_error.as_deref(), left_out);
    }

    fn render_settings(&self) -> RenderSettings {
        RenderSettings::new(&self.settings, self.nginx_version.get())
    }
}
