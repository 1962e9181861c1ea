//! The desired nginx config for an inventory: sites → certificate plan → installed certificate
//! files → rendered text. Shared by the daemon and `vhostd render`, so both give the same bytes.
//!
//! Pure: which certificate files exist and which names they hold come in as [`CertFacts`].

use std::collections::{BTreeMap, BTreeSet};

use crate::acme::{self, CertCandidate, CertPlan};
use crate::certfacts::CertFacts;
use crate::facts::ContainerFacts;
use crate::host::HostName;
use crate::labels::HttpsMethod;
use crate::render::{self, CertFiles, RenderError, RenderSettings, Renderer};
use crate::sites::{self, NginxReach, Problem, Sites};
use crate::snippets::Snippets;

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
    installed: &CertFacts,
    snippets: &Snippets,
) -> Desired {
    let mut sites = sites::build(containers, reach, draining);
    snippets.take_out(&mut sites);
    let certs = acme::plan(&candidates(&sites));
    let https = installed_certs(&mut sites, &certs, installed);
    let ctx = render::context(&sites, &https, settings).with_snippets(|h| snippets.for_host(h));
    let text = renderer.render(&ctx);
    Desired {
        sites,
        certs,
        https,
        text,
    }
}

/// Each accepted container's certificate request: LETSENCRYPT_HOST when set, else its hosts.
/// `HTTPS_METHOD=nohttps` without LETSENCRYPT_HOST asks for none: it would never be served, and
/// every order spends the CA's rate limit.
pub fn candidates(sites: &Sites) -> Vec<CertCandidate> {
    sites
        .routes
        .iter()
        .filter(|(_, r)| r.cert_hosts.is_some() || r.https_method != HttpsMethod::NoHttps)
        // CERT_NAME: the user manages that certificate; ordering one would waste the CA's limit.
        .filter(|(_, r)| r.cert_name.is_none())
        .map(|(container, r)| CertCandidate {
            container: container.clone(),
            names: r.cert_hosts.clone().unwrap_or_else(|| r.hosts.clone()),
            email: r.email.clone(),
            profile: r.profile.clone(),
        })
        .collect()
}

/// Hosts whose certificate (the planned one, else another of its name set's, else one a user
/// put at `live/HOST/`) is on disk, readable, and names the host. A damaged pair is left out
/// (the host stays on HTTP) and reported as a problem, because nginx would reject the whole
/// config for it and block every other change. A sound certificate that does not name the host
/// (a name just added to a container) is not used either: the host stays on HTTP until the new
/// certificate is in.
fn installed_certs(
    sites: &mut Sites,
    plan: &CertPlan,
    installed: &CertFacts,
) -> BTreeMap<HostName, CertFiles> {
    let mut out = BTreeMap::new();
    let mut damaged = Vec::new();
    for (host, site) in &sites.sites {
        if let Some((name, container)) = &site.cert_name {
            match named_cert(installed, name, host) {
                Ok(files) => {
                    out.insert(host.clone(), files);
                }
                Err(problem) => damaged.push(Problem {
                    container: container.clone(),
                    key: "CERT_NAME".into(),
                    problem: format!("{host}: {problem}; serving it over HTTP only"),
                }),
            }
            continue;
        }
        let (chosen, problem) = planned_cert(plan, installed, host);
        if let Some(files) = chosen {
            out.insert(host.clone(), files);
        } else if let Some(problem) = problem {
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
    sites.problems.extend(damaged);
    out
}

/// The planned certificate first; then those under the set's other names (the key moved when
/// the names were reordered: the old certificate serves until the new one is in); a name with
/// no plan may have one a user put at `live/HOST/`. Also the first unreadable one's problem.
fn planned_cert(
    plan: &CertPlan,
    installed: &CertFacts,
    host: &HostName,
) -> (Option<CertFiles>, Option<String>) {
    let keys = plan
        .spec_for(host)
        .map_or_else(|| vec![host], |s| s.names.iter().collect());
    let mut problem = None;
    for k in keys {
        match installed.get(k) {
            Some(Ok(f)) if names_host(&f.sans, host) => {
                let p = installed.paths(k);
                let files = CertFiles {
                    fullchain: p.fullchain,
                    privkey: p.privkey,
                };
                return (Some(files), problem);
            }
            Some(Err(e)) => {
                problem.get_or_insert_with(|| e.clone());
            }
            _ => {}
        }
    }
    (None, problem)
}

/// The user-managed certificate `live/NAME/` for `host` (CERT_NAME), or why it can't be served.
fn named_cert(installed: &CertFacts, name: &str, host: &HostName) -> Result<CertFiles, String> {
    let p = installed.named_paths(name);
    match installed.get_named(name) {
        None => Err(format!(
            "CERT_NAME={name} but {} has no fullchain.pem and privkey.pem; put the certificate there",
            p.dir.display()
        )),
        Some(Ok(f)) if names_host(&f.sans, host) => Ok(CertFiles {
            fullchain: p.fullchain,
            privkey: p.privkey,
        }),
        Some(Ok(f)) => Err(format!(
            "CERT_NAME={name}: the certificate names {} but not {host}",
            f.sans.join(", ")
        )),
        Some(Err(e)) => Err(e.clone()),
    }
}

/// True when one of `sans` is `host`, or a wildcard SAN covering it (`*.a.com` names `x.a.com`).
fn names_host(sans: &[String], host: &HostName) -> bool {
    let h = host.as_str();
    sans.iter().any(|san| {
        san == h
            || san.strip_prefix("*.").is_some_and(|parent| {
                h.split_once('.')
                    .is_some_and(|(first, rest)| first != "*" && rest == parent)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::NginxReach;

    fn facts(host: &str) -> ContainerFacts {
        ContainerFacts::labelled(
            "c1",
            "web",
            &[("VIRTUAL_HOST", host), ("VIRTUAL_PORT", "8080")],
        )
    }

    fn settings() -> RenderSettings {
        RenderSettings {
            http_port: 80,
            https_port: 443,
            webroot: "/var/www".into(),
            default_host: None,
            http2: true,
            ipv6: false,
            trust_downstream_proxy: true,
            nginx_version: None,
        }
    }

    fn desired(c: &ContainerFacts, certs_dir: &std::path::Path) -> Desired {
        compute(
            [c],
            &NginxReach::Host,
            &BTreeSet::new(),
            &Renderer::embedded(),
            &settings(),
            &CertFacts::load(certs_dir),
            &Snippets::empty(certs_dir, certs_dir),
        )
    }

    /// Writes a self-signed pair for `names` at `live/KEY/`.
    fn install(certs_dir: &std::path::Path, key: &str, names: &[&str]) {
        let live = certs_dir.join("live").join(key);
        std::fs::create_dir_all(&live).unwrap();
        let pair = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        std::fs::write(live.join("fullchain.pem"), cert.pem()).unwrap();
        std::fs::write(live.join("privkey.pem"), pair.serialize_pem()).unwrap();
    }

    fn https_hosts(d: &Desired) -> Vec<&str> {
        d.https.keys().map(HostName::as_str).collect()
    }

    #[test]
    fn a_damaged_certificate_keeps_its_host_on_http_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live/a.example.com");
        std::fs::create_dir_all(&live).unwrap();
        std::fs::write(
            live.join("fullchain.pem"),
            "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            live.join("privkey.pem"),
            "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let c = facts("a.example.com");
        let d = desired(&c, dir.path());
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
        install(dir.path(), "a.example.com", &["a.example.com"]);
        let d = desired(&c, dir.path());
        assert_eq!(https_hosts(&d), ["a.example.com"]);
        assert!(d.sites.problems.is_empty());
    }

    #[test]
    fn a_name_its_certificate_does_not_hold_stays_on_http() {
        let dir = tempfile::tempdir().unwrap();
        install(dir.path(), "a.example.com", &["a.example.com"]);
        // A name was added to the container: its certificate is still the old one.
        let c = facts("a.example.com,b.example.com");
        let d = desired(&c, dir.path());
        assert_eq!(https_hosts(&d), ["a.example.com"]);
        assert!(d.sites.problems.is_empty(), "{:?}", d.sites.problems);
        let text = d.text.unwrap();
        assert_eq!(text.matches("ssl_certificate \"").count(), 1, "{text}");
        // The new certificate arrives: both names are served over HTTPS.
        install(
            dir.path(),
            "a.example.com",
            &["a.example.com", "b.example.com"],
        );
        let d = desired(&c, dir.path());
        assert_eq!(https_hosts(&d), ["a.example.com", "b.example.com"]);
    }

    #[test]
    fn reordered_names_keep_https_with_the_old_certificate_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        install(
            dir.path(),
            "a.example.com",
            &["a.example.com", "b.example.com"],
        );
        // The key is now b (first name); live/b does not exist yet.
        let c = facts("b.example.com,a.example.com");
        let d = desired(&c, dir.path());
        assert_eq!(https_hosts(&d), ["a.example.com", "b.example.com"]);
        assert!(d.text.unwrap().contains("live/a.example.com/fullchain.pem"));
    }

    #[test]
    fn nohttps_asks_for_no_certificate_unless_letsencrypt_host_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = facts("a.example.com");
        c.labels.insert("HTTPS_METHOD".into(), "nohttps".into());
        assert!(desired(&c, dir.path()).certs.specs.is_empty());
        c.labels
            .insert("LETSENCRYPT_HOST".into(), "a.example.com".into());
        assert_eq!(desired(&c, dir.path()).certs.specs.len(), 1);
    }

    #[test]
    fn cert_name_serves_the_named_certificate_and_orders_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = facts("a.example.com,b.example.com");
        c.labels
            .insert("CERT_NAME".into(), "wild.example.com".into());
        // Missing: reported with the container and key; the hosts stay on HTTP.
        let d = desired(&c, dir.path());
        assert!(d.certs.specs.is_empty(), "nothing is ordered for CERT_NAME");
        assert!(d.https.is_empty());
        let p = &d.sites.problems[0];
        assert_eq!((p.container.as_str(), p.key.as_str()), ("web", "CERT_NAME"));
        assert!(p.problem.contains("live/wild.example.com"), "{}", p.problem);
        // A wildcard certificate the user put there is served for both names.
        install(dir.path(), "wild.example.com", &["*.example.com"]);
        let d = desired(&c, dir.path());
        assert_eq!(https_hosts(&d), ["a.example.com", "b.example.com"]);
        assert!(d.certs.specs.is_empty());
        assert!(
            d.text
                .unwrap()
                .contains("live/wild.example.com/fullchain.pem")
        );
        // One that does not name the host is not served.
        install(dir.path(), "wild.example.com", &["other.example.org"]);
        let d = desired(&c, dir.path());
        assert!(d.https.is_empty());
        assert_eq!(d.sites.problems[0].key, "CERT_NAME");
    }

    #[test]
    fn wildcard_sans_cover_one_label() {
        let sans = vec!["*.a.com".to_string()];
        let h = |s: &str| HostName::parse(s).unwrap();
        assert!(names_host(&sans, &h("x.a.com")));
        assert!(names_host(&sans, &h("*.a.com")));
        assert!(!names_host(&sans, &h("a.com")));
        assert!(!names_host(&sans, &h("y.x.a.com")));
    }
}
