//! The one task that owns all state: the container inventory, the loaded templates, the last
//! applied config. Triggers (Docker updates, template changes, certificate events, timers) only
//! mark it dirty; [`Controller::reconcile`] recomputes everything from the inventory (level-triggered).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::acme::{self, CertHandle, SkipLog};
use crate::config::Settings;
use crate::debounce::Debounce;
use crate::desired::{self, Desired};
use crate::docker::Update;
use crate::facts::ContainerFacts;
use crate::host::HostName;
use crate::metrics::{Metrics, ResultLabel};
use crate::nginx::{Nginx, NginxError};
use crate::quarantine::Bisect;
use crate::render::{RenderSettings, Renderer};
use crate::sites::{self, NginxReach, Problem};
use crate::status::{LocationStatus, ProblemStatus, SiteStatus, Status};

/// At most this many `nginx -t` runs are spent finding the containers nginx rejects.
const MAX_ISOLATION_CHECKS: usize = 32;

/// Inputs the controller listens to.
pub struct Inputs {
    /// Docker watcher updates.
    pub docker: mpsc::Receiver<Update>,
    /// Template directory changed.
    pub templates: mpsc::Receiver<()>,
    /// Certificate files changed (issued or renewed): re-render and reload even if bytes match.
    pub certs: mpsc::Receiver<acme::CertEvent>,
    /// Asks the Docker watcher for a full resync.
    pub resync: Arc<Notify>,
    /// Becomes true on shutdown.
    pub shutdown: watch::Receiver<bool>,
}

/// Owner of all reconcile state.
pub struct Controller {
    settings: Settings,
    nginx: Nginx,
    renderer: Renderer,
    /// Running containers by id; replaced wholesale on every Docker (re)sync.
    inventory: BTreeMap<String, ContainerFacts>,
    /// Containers asked to stop (SIGTERM) that still run: no new requests while others serve
    /// the same location. Cleared when they die, restart or disappear.
    draining: BTreeSet<String>,
    /// False until Docker has been listed once: never render from an empty, unknown inventory.
    synced: bool,
    /// A certificate changed on disk: reload nginx even if the rendered bytes are the same.
    force_reload: bool,
    /// Problems already logged, so each is logged once, not on every reconcile.
    logged_problems: BTreeSet<Problem>,
    /// Why the template directory's current files were refused (the previous templates stay in
    /// use); reported with every reconcile until the files load again.
    template_error: Option<String>,
    /// Live sites and the upstream servers of each, to log one line per site that changed.
    live_sites: BTreeMap<HostName, Vec<String>>,
    /// Containers in the config nginx last accepted: the others are the suspects when nginx
    /// rejects a candidate.
    live_ids: BTreeSet<String>,
    /// Containers left out because nginx rejects the config they give, by id: the facts they
    /// had then and nginx's message. Tried again once their facts or the templates change.
    quarantine: BTreeMap<String, (ContainerFacts, String)>,
    skip_log: SkipLog,
    certs: Option<CertHandle>,
    status: Arc<RwLock<Status>>,
    metrics: Metrics,
}

impl Controller {
    /// A controller with its collaborators; nothing runs until [`Controller::run`].
    pub fn new(
        settings: Settings,
        nginx: Nginx,
        renderer: Renderer,
        certs: Option<CertHandle>,
        status: Arc<RwLock<Status>>,
        metrics: Metrics,
    ) -> Self {
        Controller {
            settings,
            nginx,
            renderer,
            certs,
            status,
            metrics,
            inventory: BTreeMap::new(),
            synced: false,
            draining: BTreeSet::new(),
            // The first apply checks and reloads even a live file that already holds the
            // right bytes: readiness then means nginx really runs this config.
            force_reload: true,
            logged_problems: BTreeSet::new(),
            live_sites: BTreeMap::new(),
            live_ids: BTreeSet::new(),
            quarantine: BTreeMap::new(),
            template_error: None,
            skip_log: SkipLog::default(),
        }
    }

    /// Runs until shutdown.
    pub async fn run(mut self, mut inputs: Inputs) {
        let o = &self.settings.opts;
        let mut debounce = Debounce::new(o.debounce, o.debounce_max);
        let mut resync_tick =
            tokio::time::interval_at(Instant::now() + o.resync_interval, o.resync_interval);
        loop {
            let deadline = debounce.deadline();
            tokio::select! {
                Some(u) = inputs.docker.recv() => {
                    if self.apply_update(u) {
                        debounce.mark(Instant::now());
                    }
                }
                Some(()) = inputs.templates.recv() => {
                    self.reload_templates();
                    debounce.mark(Instant::now());
                }
                Some(ev) = inputs.certs.recv() => {
                    if let acme::CertEvent::Installed { key } = ev {
                        tracing::info!(domain = %key, action = "cert_installed", "certificate files changed; nginx will reload");
                        self.force_reload = true;
                        debounce.mark(Instant::now());
                    }
                }
                _ = resync_tick.tick() => inputs.resync.notify_one(),
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    let start = Instant::now();
                    self.reconcile().await;
                    debounce.fired(start, Instant::now());
                }
                _ = inputs.shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    /// Applies one Docker update to the inventory; returns whether a reconcile is needed.
    fn apply_update(&mut self, u: Update) -> bool {
        let mut status = self.status.write().unwrap_or_else(|e| e.into_inner());
        match u {
            Update::Connected(docker) => {
                self.nginx.set_docker(docker);
                return false;
            }
            Update::Synced(all) => {
                self.inventory = all
                    .into_iter()
                    .filter(|c| c.running)
                    .map(|c| (c.id.clone(), c))
                    .collect();
                self.synced = true;
                self.draining.retain(|id| self.inventory.contains_key(id));
                status.docker_connected = true;
            }
            Update::Started(c) => {
                self.metrics.docker_events.inc();
                self.draining.remove(&c.id);
                tracing::debug!(container = %c.name, running = c.running, action = "inspect", "container started");
                // Already stopped again by the time of the inspect: trust the inspect.
                if c.running {
                    self.inventory.insert(c.id.clone(), c);
                } else if self.inventory.remove(&c.id).is_none() {
                    return false;
                }
            }
            Update::Draining(id) => {
                self.metrics.docker_events.inc();
                let Some(c) = self.inventory.get(&id) else {
                    return false;
                };
                if !self.draining.insert(id) {
                    return false;
                }
                tracing::info!(container = %c.name, action = "drain", "container is stopping: no new requests while others serve its hosts");
            }
            Update::Upsert(c) => {
                self.metrics.docker_events.inc();
                if !c.running {
                    self.draining.remove(&c.id);
                }
                tracing::debug!(container = %c.name, running = c.running, action = "inspect", "container changed");
                if c.running {
                    self.inventory.insert(c.id.clone(), c);
                } else if self.inventory.remove(&c.id).is_none() {
                    return false;
                }
            }
            Update::Remove(id) => {
                self.metrics.docker_events.inc();
                self.draining.remove(&id);
                if self.inventory.remove(&id).is_none() {
                    return false;
                }
            }
            Update::Lost(_) => {
                self.metrics.docker_reconnects.inc();
                status.docker_connected = false;
                return false;
            }
        }
        status.containers = self.inventory.len();
        self.metrics.containers.set(self.inventory.len() as i64);
        true
    }

    fn reload_templates(&mut self) {
        let Some(dir) = &self.settings.opts.template_dir else {
            return;
        };
        match Renderer::from_dir(dir) {
            Ok(r) => {
                tracing::info!(action = "templates_loaded", dir = %dir.display(), "templates reloaded");
                self.renderer = r;
                self.template_error = None;
                self.quarantine.clear();
            }
            Err(e) => {
                tracing::error!(action = "templates_rejected", dir = %dir.display(), error = %e, "keeping the previous templates");
                self.template_error = Some(e.to_string());
            }
        }
    }

    /// Where nginx runs decides which container addresses it can reach; in container mode this
    /// also (re)locates the nginx container.
    fn reach(&mut self) -> NginxReach {
        if !self.nginx.is_container() {
            return NginxReach::Host;
        }
        let found = sites::find_nginx(
            self.inventory.values(),
            self.settings.opts.nginx_container.as_deref(),
        );
        self.nginx.set_container(found.map(|c| c.id.clone()));
        sites::reach_of(found)
    }

    /// Recomputes the desired config and makes it live if it changed.
    pub async fn reconcile(&mut self) {
        if !self.synced {
            return;
        }
        let reach = self.reach();
        let inventory = &self.inventory;
        self.quarantine
            .retain(|id, (facts, _)| inventory.get(id) == Some(&*facts));
        let mut d = self.desired(&reach, &BTreeSet::new());
        let force = std::mem::take(&mut self.force_reload);
        let conf = self.settings.opts.conf_file.clone();
        let mut result = match &d.text {
            Ok(text) => self.nginx.apply(&conf, text, force).await,
            Err(_) => Ok(false),
        };
        if let Err(NginxError::Rejected { output }) = &result
            && self.isolate(&reach, output).await
        {
            d = self.desired(&reach, &BTreeSet::new());
            if let Ok(text) = &d.text {
                result = self.nginx.apply(&conf, text, force).await;
            }
        }
        self.log_problems(&d);
        self.skip_log.report(&d.certs.skipped);
        if let Err(e) = &d.text {
            tracing::error!(action = "render_failed", error = %e, "render failed; the live config is unchanged");
            self.force_reload |= force;
            self.finish(&d, "render_error", Some(e.to_string()));
            self.set_wanted(&d, |h| self.live_sites.contains_key(h));
            return;
        }
        match result {
            Ok(true) => {
                tracing::info!(action = "reload", sites = d.sites.sites.len(), conf = %conf.display(), "nginx config applied and reloaded");
                self.metrics
                    .reloads
                    .get_or_create(&ResultLabel { result: "ok" })
                    .inc();
                self.log_site_changes(&d);
                self.live_ids = self.included_ids();
                self.finish(&d, "ok", None);
            }
            Ok(false) => {
                // The live file already is this config (e.g. after a restart): it is what
                // nginx serves, so later changes are logged against it.
                self.live_sites = live_site_map(&d);
                self.live_ids = self.included_ids();
                self.finish(&d, "unchanged", None)
            }
            Err(e) => {
                tracing::error!(action = e.action(), error = %e, "the previous config stays live");
                self.metrics
                    .reloads
                    .get_or_create(&ResultLabel { result: "error" })
                    .inc();
                // A rejected candidate was put back, so the next reconcile retries it anyway;
                // any other failure (the reload itself) may have left the new bytes in place,
                // where "unchanged" would otherwise hide that nginx never loaded them.
                self.force_reload |= force || !matches!(e, NginxError::Rejected { .. });
                self.finish(&d, "rejected", Some(e.to_string()));
                // Certificates whose names are all live keep renewing: one bad candidate must
                // not stop every renewal. New names wait until their challenge route is live.
                self.set_wanted(&d, |h| self.live_sites.contains_key(h));
                return;
            }
        }
        self.set_wanted(&d, |_| true);
    }

    /// The desired state from every container but the quarantined ones and `leave_out`; the
    /// quarantined ones are reported among the problems.
    fn desired(&self, reach: &NginxReach, leave_out: &BTreeSet<String>) -> Desired {
        let included = self
            .inventory
            .values()
            .filter(|c| !self.quarantine.contains_key(&c.id) && !leave_out.contains(&c.id));
        let mut d = desired::compute(
            included,
            reach,
            &self.draining,
            &self.renderer,
            &self.render_settings(),
            &self.settings.opts.certs_dir,
        );
        d.sites
            .problems
            .extend(self.quarantine.values().map(|(c, message)| Problem {
                container: c.name.clone(),
                key: "nginx".into(),
                problem: format!(
                    "nginx rejects the config this container gives, so it is left out until its labels change: {message}"
                ),
            }));
        d.sites.problems.sort();
        d
    }

    /// Ids of the containers the desired state is built from.
    fn included_ids(&self) -> BTreeSet<String> {
        self.inventory
            .keys()
            .filter(|id| !self.quarantine.contains_key(*id))
            .cloned()
            .collect()
    }

    /// nginx rejected a candidate with `message`: finds the containers new since the last
    /// accepted config that cause it (a few `nginx -t` runs, nothing reloaded) and quarantines
    /// them. False when containers are not the cause (a template, a file) or it can't tell.
    async fn isolate(&mut self, reach: &NginxReach, message: &str) -> bool {
        let suspects: Vec<String> = self
            .inventory
            .values()
            .filter(|c| {
                !self.live_ids.contains(&c.id)
                    && !self.quarantine.contains_key(&c.id)
                    && c.setting("VIRTUAL_HOST").is_some()
            })
            .map(|c| c.id.clone())
            .collect();
        let mut search = Bisect::new(suspects.iter().cloned(), message, MAX_ISOLATION_CHECKS);
        let conf = self.settings.opts.conf_file.clone();
        while let Some(trial) = search.next_trial() {
            let leave_out: BTreeSet<String> = suspects
                .iter()
                .filter(|id| !trial.contains(*id))
                .cloned()
                .collect();
            let Ok(text) = self.desired(reach, &leave_out).text else {
                return false;
            };
            let verdict = match self.nginx.check(&conf, &text).await {
                Ok(()) => Ok(()),
                Err(NginxError::Rejected { output }) => Err(output),
                Err(e) => {
                    tracing::warn!(action = "isolate_failed", error = %e, "cannot tell which container nginx rejects");
                    return false;
                }
            };
            search.record(verdict);
        }
        let Some(culprits) = search.finish() else {
            return false;
        };
        for (id, message) in &culprits {
            // Logged with the other problems (action container_quarantined).
            if let Some(c) = self.inventory.get(id) {
                self.quarantine
                    .insert(id.clone(), (c.clone(), message.clone()));
            }
        }
        !culprits.is_empty()
    }

    /// Hands the certificate task the planned certificates whose every name passes `live`.
    fn set_wanted(&self, d: &Desired, live: impl Fn(&HostName) -> bool) {
        if let Some(certs) = &self.certs {
            let specs = d.certs.specs.iter().filter(|s| s.names.iter().all(&live));
            certs.set_wanted(specs.cloned().collect());
        }
    }

    fn render_settings(&self) -> RenderSettings {
        let o = &self.settings.opts;
        RenderSettings {
            http_port: o.http_port,
            https_port: o.https_port,
            webroot: o.webroot.clone(),
        }
    }

    fn log_problems(&mut self, d: &Desired) {
        let now: BTreeSet<Problem> = d.sites.problems.iter().cloned().collect();
        for p in now.difference(&self.logged_problems) {
            let action = if p.key == "nginx" {
                "container_quarantined"
            } else {
                "container_skipped"
            };
            tracing::warn!(container = %p.container, key = %p.key, action, problem = %p.problem, "container left out or unreachable");
        }
        self.logged_problems = now;
    }

    /// One line per site that appeared, went away or changed upstreams in the config just made live.
    fn log_site_changes(&mut self, d: &Desired) {
        let now = live_site_map(d);
        for (host, servers) in &now {
            let containers: BTreeSet<&str> = d.sites.sites[host]
                .locations
                .values()
                .flat_map(|l| l.containers.iter().map(String::as_str))
                .collect();
            let container = containers.into_iter().collect::<Vec<_>>().join(",");
            match self.live_sites.get(host) {
                None => {
                    tracing::info!(host = %host, container = %container, upstreams = %servers.join(" "), action = "site_added", "site added")
                }
                Some(old) if old != servers => {
                    tracing::info!(host = %host, container = %container, upstreams = %servers.join(" "), action = "site_updated", "site upstreams changed")
                }
                Some(_) => {}
            }
        }
        for host in self.live_sites.keys().filter(|h| !now.contains_key(*h)) {
            tracing::info!(host = %host, action = "site_removed", "site removed");
        }
        self.live_sites = now;
    }

    /// Records the outcome in metrics and the status snapshot.
    fn finish(&self, d: &Desired, result: &'static str, error: Option<String>) {
        self.metrics
            .reconciles
            .get_or_create(&ResultLabel { result })
            .inc();
        self.metrics.sites.set(d.sites.sites.len() as i64);
        self.metrics.problems.set(d.sites.problems.len() as i64);
        self.metrics
            .config_ok
            .set(i64::from(error.is_none() && self.template_error.is_none()));
        let mut st = self.status.write().unwrap_or_else(|e| e.into_inner());
        // Ready only while the last apply, reload and nginx check worked.
        st.ready = error.is_none();
        if error.is_none() {
            st.last_applied = Some(time::OffsetDateTime::now_utc().unix_timestamp());
            st.sites = site_status(d);
        }
        st.last_error = error.or_else(|| self.template_error.clone());
        st.problems = d
            .sites
            .problems
            .iter()
            .map(|p| ProblemStatus {
                container: p.container.clone(),
                key: p.key.clone(),
                problem: p.problem.clone(),
            })
            .collect();
        st.skipped_certificates = d
            .certs
            .skipped
            .iter()
            .filter(|s| !matches!(s.reason, acme::SkipReason::Covered { .. }))
            .map(|s| format!("{} ({}): {}", s.name, s.container, s.reason))
            .collect();
    }
}

/// Every site of `d` with its upstream servers (`path=addr`), as the controller remembers them.
fn live_site_map(d: &Desired) -> BTreeMap<HostName, Vec<String>> {
    d.sites
        .sites
        .values()
        .map(|s| {
            (
                s.host.clone(),
                s.locations
                    .values()
                    .flat_map(|l| l.servers.iter().map(|srv| format!("{}={srv}", l.path)))
                    .collect(),
            )
        })
        .collect()
}

fn site_status(d: &Desired) -> Vec<SiteStatus> {
    d.sites
        .sites
        .values()
        .map(|s| SiteStatus {
            host: s.host.to_string(),
            https: d.https.contains_key(&s.host),
            locations: s
                .locations
                .values()
                .map(|l| LocationStatus {
                    path: l.path.to_string(),
                    servers: l.servers.clone(),
                    containers: l.containers.clone(),
                })
                .collect(),
        })
        .collect()
}
