//! The reporter: what the controller's decisions look like from outside — the status
//! snapshot, the metrics, and log lines de-duplicated (a problem or a site change is logged
//! once, not on every reconcile).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::acme::{self, SkipLog};
use crate::desired::Desired;
use crate::host::HostName;
use crate::metrics::{Metrics, ResultLabel};
use crate::nginx::NginxError;
use crate::sites::Problem;
use crate::snippets;
use crate::status::{LocationStatus, ProblemStatus, SiteStatus, Status};

/// What the live config leaves out because nginx rejects it.
#[derive(Debug, Default)]
pub struct LeftOut {
    /// Container ids.
    pub containers: Vec<String>,
    /// Hosts left out for their snippets.
    pub hosts: Vec<String>,
}

/// Status, metrics and de-duplicated logs.
pub struct Reporter {
    status: Arc<RwLock<Status>>,
    metrics: Metrics,
    /// Problems already logged, so each is logged once.
    logged_problems: BTreeSet<Problem>,
    /// Live sites and the upstream servers of each, to log one line per site that changed.
    live_sites: BTreeMap<HostName, Vec<String>>,
    skip_log: SkipLog,
}

impl Reporter {
    /// A reporter publishing into `status` and `metrics`.
    pub fn new(status: Arc<RwLock<Status>>, metrics: Metrics) -> Reporter {
        Reporter {
            status,
            metrics,
            logged_problems: BTreeSet::new(),
            live_sites: BTreeMap::new(),
            skip_log: SkipLog::default(),
        }
    }

    fn with_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// The Docker connection came up (a full list arrived) or was lost.
    pub fn docker_connected(&self, up: bool) {
        if !up {
            self.metrics.docker_reconnects.inc();
        }
        self.with_status(|st| st.docker_connected = up);
    }

    /// A Docker event arrived.
    pub fn docker_event(&self) {
        self.metrics.docker_events.inc();
    }

    /// The inventory now holds `n` running containers.
    pub fn containers(&self, n: usize) {
        self.metrics.containers.set(n as i64);
        self.with_status(|st| st.containers = n);
    }

    /// True when `host` is in the config nginx serves.
    pub fn is_live(&self, host: &HostName) -> bool {
        self.live_sites.contains_key(host)
    }

    /// Logs the problems and skipped certificate names not logged yet.
    pub fn problems(&mut self, d: &Desired) {
        let now: BTreeSet<Problem> = d.sites.problems.iter().cloned().collect();
        for p in now.difference(&self.logged_problems) {
            let action = match p.key.as_str() {
                "nginx" => "container_quarantined",
                snippets::KEY => "host_quarantined",
                _ => "container_skipped",
            };
            tracing::warn!(container = %p.container, key = %p.key, action, problem = %p.problem, "container left out or unreachable");
        }
        self.logged_problems = now;
        self.skip_log.report(&d.certs.skipped);
    }

    /// `d` was made live and nginx reloaded.
    pub fn reloaded(&mut self, d: &Desired, conf: &Path) {
        tracing::info!(action = "reload", sites = d.sites.sites.len(), conf = %conf.display(), "nginx config applied and reloaded");
        self.reload_metric("ok");
        self.log_site_changes(d);
    }

    /// `d` already was the live file (e.g. after a restart): later changes are logged against it.
    pub fn unchanged(&mut self, d: &Desired) {
        self.live_sites = live_site_map(d);
    }

    /// Making a candidate live failed; the previous config stays.
    pub fn apply_failed(&self, e: &NginxError) {
        tracing::error!(action = e.action(), error = %e, "the previous config stays live");
        self.reload_metric("error");
    }

    fn reload_metric(&self, result: &'static str) {
        self.metrics
            .reloads
            .get_or_create(&ResultLabel { result })
            .inc();
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

    /// Records a reconcile's outcome in metrics and the status snapshot; `error` is this
    /// reconcile's failure, `standing` one that holds until fixed (the templates').
    pub fn finish(
        &self,
        d: &Desired,
        result: &'static str,
        error: Option<String>,
        standing: Option<&str>,
        left_out: LeftOut,
    ) {
        let m = &self.metrics;
        m.reconciles.get_or_create(&ResultLabel { result }).inc();
        m.sites.set(d.sites.sites.len() as i64);
        m.problems.set(d.sites.problems.len() as i64);
        m.config_ok
            .set(i64::from(error.is_none() && standing.is_none()));
        self.with_status(|st| {
            // Ready only while the last apply, reload and nginx check worked.
            st.ready = error.is_none();
            if error.is_none() {
                st.last_applied = Some(time::OffsetDateTime::now_utc().unix_timestamp());
                st.sites = site_status(d);
                st.quarantined = left_out.containers;
                st.quarantined_hosts = left_out.hosts;
            }
            st.last_error = error.or_else(|| standing.map(str::to_string));
            st.problems = d.sites.problems.iter().map(problem_status).collect();
            st.skipped_certificates = d
                .certs
                .skipped
                .iter()
                .filter(|s| !matches!(s.reason, acme::SkipReason::Covered { .. }))
                .map(|s| format!("{} ({}): {}", s.name, s.container, s.reason))
                .collect();
        });
    }
}

fn problem_status(p: &Problem) -> ProblemStatus {
    ProblemStatus {
        container: p.container.clone(),
        key: p.key.clone(),
        problem: p.problem.clone(),
    }
}

/// Every site of `d` with its upstream servers (`path=addr`), as the reporter remembers them.
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
