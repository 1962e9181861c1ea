//! Prometheus metrics (OpenMetrics text at `/metrics`): one registry, owned here, cloned handles
//! given to whoever counts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A `result` label: ok or error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok`, `unchanged`, `rejected`, `error`.
    pub result: &'static str,
}

/// A `domain` label: a certificate's key (its first name).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DomainLabel {
    /// The certificate's key.
    pub domain: String,
}

/// Every series vhostd exports.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Reconciles by outcome (`ok`, `unchanged`, `render_error`, `rejected`, `error`).
    pub reconciles: Family<ResultLabel, Counter>,
    /// nginx reloads by outcome.
    pub reloads: Family<ResultLabel, Counter>,
    /// Docker events received that changed the inventory.
    pub docker_events: Counter,
    /// Docker API requests made (list, inspect, events, version).
    pub docker_api_requests: Counter,
    /// Times the Docker connection was lost.
    pub docker_reconnects: Counter,
    /// Running containers in the inventory.
    pub containers: Gauge,
    /// Sites rendered.
    pub sites: Gauge,
    /// Containers left out for bad labels or unreachable networks.
    pub problems: Gauge,
    /// 1 while the live config is what the inventory asks for, 0 after a rejected/failed apply.
    pub config_ok: Gauge,
    /// Each certificate's notAfter (unix seconds): alert on it instead of trusting e-mails.
    pub cert_not_after: Family<DomainLabel, Gauge>,
    /// Each certificate's planned renewal (unix seconds).
    pub cert_next_renewal: Family<DomainLabel, Gauge>,
    /// Each certificate's consecutive failed orders (0 when healthy).
    pub cert_failures: Family<DomainLabel, Gauge>,
}

impl Metrics {
    /// Replaces the certificate series with `certs` (called at scrape time, so removed
    /// certificates disappear and values are never stale).
    pub fn set_certificates(&self, certs: &[crate::acme::CertStatus]) {
        self.cert_not_after.clear();
        self.cert_next_renewal.clear();
        self.cert_failures.clear();
        for c in certs {
            let l = DomainLabel {
                domain: c.key.clone(),
            };
            if let Some(t) = c.not_after {
                self.cert_not_after
                    .get_or_create(&l)
                    .set(t.unix_timestamp());
            }
            if let Some(t) = c.next_renewal {
                self.cert_next_renewal
                    .get_or_create(&l)
                    .set(t.unix_timestamp());
            }
            self.cert_failures
                .get_or_create(&l)
                .set(i64::from(c.attempts));
        }
    }

    /// Registers every series under the `vhostd` prefix.
    pub fn register(&self) -> Registry {
        let mut r = Registry::with_prefix("vhostd");
        r.register(
            "reconciles",
            "Reconciles by outcome",
            self.reconciles.clone(),
        );
        r.register(
            "nginx_reloads",
            "nginx reloads by outcome",
            self.reloads.clone(),
        );
        r.register(
            "docker_events",
            "Docker events applied",
            self.docker_events.clone(),
        );
        r.register(
            "docker_api_requests",
            "Docker API requests made",
            self.docker_api_requests.clone(),
        );
        r.register(
            "docker_reconnects",
            "Docker connection losses",
            self.docker_reconnects.clone(),
        );
        r.register(
            "containers",
            "Running containers known",
            self.containers.clone(),
        );
        r.register("sites", "Virtual hosts rendered", self.sites.clone());
        r.register(
            "container_problems",
            "Problems with containers (bad labels, unreachable)",
            self.problems.clone(),
        );
        r.register(
            "config_ok",
            "1 when the live nginx config matches the desired state",
            self.config_ok.clone(),
        );
        r.register(
            "certificate_not_after_seconds",
            "Certificate notAfter, unix seconds",
            self.cert_not_after.clone(),
        );
        r.register(
            "certificate_next_renewal_seconds",
            "Planned renewal time, unix seconds",
            self.cert_next_renewal.clone(),
        );
        r.register(
            "certificate_failures",
            "Consecutive failed orders per certificate",
            self.cert_failures.clone(),
        );
        r
    }
}
