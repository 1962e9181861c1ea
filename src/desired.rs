//! The desired nginx config for an inventory: sites → certificate plan → installed certificate
//! files → rendered text. Shared by the daemon and `vhostd render`, so both give the same bytes.
//!
//! Pure except for checking which certificate files exist on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::acme::{self, CertCandidate, CertPlan};
use crate::facts::ContainerFacts;
use crate::host::HostName;
use crate::render::{self, CertFiles, RenderError, RenderSettings, Renderer};
use crate::sites::{self, NginxReach, Problem, Sites};

/// Everything one reconcile decides.
pub struct Desired {
    /// Sites and problems.
    pub sites: Sites,
    /// Certificates to hold and names skipped.
    pub certs: CertPlan,
    /// Hosts served over HTTPS, with their files.
    pub https: BTreeMap<HostName, CertFiles>,
    /// The rendered config text (or why it could not be rendered).
    pub text: Result<String, RenderError>,
}

/// Computes the desired state for `containers`.
pub fn compute<'a>(
    containers: impl IntoIterator<Item = &'a ContainerFacts>,
    reach: &NginxReach,
    draining: &BTreeSet<String>,
    renderer: &Renderer,
    settings: &RenderSettings,
    certs_dir: &Path,
) -> Desired {
    let mut sites = sites::build(containers, reach, draining);
    let certs = acme::plan(&candidates(&sites));
    let https = installed_certs(&mut sites, &certs, certs_dir);
    let text = renderer.render(&render::context(&sites, &https, settings));
    Desired {
        sites,
        certs,
        https,
        text,
    }
}

/// Each accepted container's certificate request: LETSENCRYPT_HOST when set, else its hosts.
pub fn candidates(sites: &Sites) -> Vec<CertCandidate> {
    sites
        .routes
        .iter()
        .map(|(container, r)| CertCandidate {
            container: container.clone(),
            names: r.cert_hosts.clone().unwrap_or_else(|| r.hosts.clone()),
            email: r.email.clone(),
            profile: r.profile.clone(),
        })
        .collect()
}

/// Hosts whose certificate (the planned one, else one a user put at `live/HOST/`) is on disk
/// and looks like PEM. A damaged pair is left out (the host stays on HTTP) and reported as a
/// problem, because nginx would reject the whole config for it and block every other change.
fn installed_certs(
    sites: &mut Sites,
    plan: &CertPlan,
    certs_dir: &Path,
) -> BTreeMap<HostName, CertFiles> {
    let mut out = BTreeMap::new();
    let mut damaged = Vec::new();
    for (host, site) in &sites.sites {
        let planned = plan
            .cert_for(host)
            .map(|k| acme::live_paths(certs_dir, k))
            .filter(|p| p.is_installed());
        let own = || Some(acme::live_paths(certs_dir, host)).filter(|p| p.is_installed());
        let Some(p) = planned.or_else(own) else {
            continue;
        };
        match pem_problem(&p.fullchain, &p.privkey) {
            None => {
                out.insert(
                    host.clone(),
                    CertFiles {
                        fullchain: p.fullchain.clone(),
                        privkey: p.privkey.clone(),
                    },
                );
            }
            Some(problem) => {
                let container = site
                    .locations
                    .values()
                    .flat_map(|l| l.containers.first())
                    .next()
                    .cloned()
                    .unwrap_or_default();
                damaged.push(Problem {
                    container,
                    key: "certificate".into(),
                    problem: format!("{host}: {problem}; serving it over HTTP only"),
                });
            }
        }
    }
    sites.problems.extend(damaged);
    out
}

/// A cheap sanity check of a certificate pair (no parsing: this runs for every host on every
/// reconcile): both files hold the expected PEM blocks.
fn pem_problem(fullchain: &Path, privkey: &Path) -> Option<String> {
    let holds = |path: &Path, marker: &str| {
        std::fs::read(path).is_ok_and(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
    };
    if !holds(fullchain, "-----BEGIN CERTIFICATE-----") {
        return Some(format!("{} holds no PEM certificate", fullchain.display()));
    }
    if !holds(privkey, "PRIVATE KEY-----") {
        return Some(format!("{} holds no PEM private key", privkey.display()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::NginxReach;

    fn facts(host: &str) -> ContainerFacts {
        ContainerFacts {
            id: "c1".into(),
            name: "web".into(),
            running: true,
            health: None,
            labels: [
                ("VIRTUAL_HOST".to_string(), host.to_string()),
                ("VIRTUAL_PORT".to_string(), "8080".to_string()),
            ]
            .into(),
            env: Default::default(),
            exposed_ports: vec![],
            network_mode: "host".into(),
            networks: Default::default(),
        }
    }

    #[test]
    fn a_damaged_certificate_keeps_its_host_on_http_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let settings = RenderSettings {
            http_port: 80,
            https_port: 443,
            webroot: "/var/www".into(),
        };
        let live = dir.path().join("live/a.example.com");
        std::fs::create_dir_all(&live).unwrap();
        std::fs::write(live.join("fullchain.pem"), "").unwrap();
        std::fs::write(
            live.join("privkey.pem"),
            "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let c = facts("a.example.com");
        let d = compute(
            [&c],
            &NginxReach::Host,
            &BTreeSet::new(),
            &Renderer::embedded(),
            &settings,
            dir.path(),
        );
        assert!(d.https.is_empty());
        assert_eq!(d.sites.problems.len(), 1);
        assert_eq!(
            (
                d.sites.problems[0].container.as_str(),
                d.sites.problems[0].key.as_str()
            ),
            ("web", "certificate")
        );
        assert!(!d.text.unwrap().contains("ssl_certificate \""));
        // A sound pair is used.
        std::fs::write(
            live.join("fullchain.pem"),
            "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let d = compute(
            [&c],
            &NginxReach::Host,
            &BTreeSet::new(),
            &Renderer::embedded(),
            &settings,
            dir.path(),
        );
        assert!(
            d.https
                .contains_key(&HostName::parse("a.example.com").unwrap())
        );
        assert!(d.sites.problems.is_empty());
    }
}
