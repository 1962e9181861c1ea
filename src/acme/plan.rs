//! Pure: what the containers ask for → which certificates to hold. One certificate per
//! container's name set, keyed by its first orderable name; a name is ordered at most once; names
//! that can't get a public certificate are reported, never ordered. No I/O except the once-only
//! warning in [`SkipLog`].

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::eligible::{SkipReason, ineligible};
use crate::host::HostName;

/// What one container asks for (filled from labels; `LETSENCRYPT_HOST` wins over `VIRTUAL_HOST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertCandidate {
    /// Container name, for logs and status.
    pub container: String,
    /// Names in label order (the first one becomes the certificate's key).
    pub names: Vec<HostName>,
    /// `LETSENCRYPT_EMAIL`, when set: the ACME account contact for this certificate.
    pub email: Option<String>,
    /// `ACME_PROFILE`, when set: the profile for this certificate.
    pub profile: Option<String>,
}

/// One certificate wanted: a container's name set, keyed by its first name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSpec {
    /// The first name: the directory name under `live/` and the state file name.
    pub key: HostName,
    /// Every name of the certificate (SANs), key first, in label order, no duplicates.
    pub names: Vec<HostName>,
    /// ACME account contact for this certificate (falls back to the global one).
    pub email: Option<String>,
    /// ACME profile (falls back to the global one).
    pub profile: Option<String>,
    /// The container that asked, for logs.
    pub container: String,
}

/// A name that gets no certificate, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The name.
    pub name: HostName,
    /// The container that asked for it.
    pub container: String,
    /// Why it is not ordered.
    pub reason: SkipReason,
}

/// The result of [`plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CertPlan {
    /// Certificates to hold, in container-name order.
    pub specs: Vec<CertSpec>,
    /// Names not ordered, with the reason.
    pub skipped: Vec<Skipped>,
}

impl CertPlan {
    /// The key of the certificate that covers `name` (for rendering its HTTPS server block).
    pub fn cert_for(&self, name: &HostName) -> Option<&HostName> {
        self.spec_for(name).map(|s| &s.key)
    }

    /// The certificate spec that covers `name`.
    pub fn spec_for(&self, name: &HostName) -> Option<&CertSpec> {
        self.specs.iter().find(|s| s.names.contains(name))
    }
}

/// Turns candidates into certificate specs (see module docs). Deterministic: candidates are taken
/// in container-name order whatever order they come in.
pub fn plan(candidates: &[CertCandidate]) -> CertPlan {
    let mut sorted: Vec<&CertCandidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| a.container.cmp(&b.container));
    let mut covered: BTreeMap<HostName, HostName> = BTreeMap::new();
    let mut out = CertPlan::default();
    for c in sorted {
        let mut names: Vec<HostName> = Vec::new();
        let mut seen: HashSet<&HostName> = HashSet::new();
        for name in &c.names {
            if !seen.insert(name) {
                continue;
            }
            let reason = match (ineligible(name), covered.get(name)) {
                (Some(r), _) => Some(r),
                (None, Some(key)) => Some(SkipReason::Covered { key: key.clone() }),
                (None, None) => None,
            };
            match reason {
                Some(reason) => out.skipped.push(Skipped {
                    name: name.clone(),
                    container: c.container.clone(),
                    reason,
                }),
                None => names.push(name.clone()),
            }
        }
        let Some(key) = names.first().cloned() else {
            continue;
        };
        for n in &names {
            covered.insert(n.clone(), key.clone());
        }
        out.specs.push(CertSpec {
            key,
            names,
            email: c.email.clone(),
            profile: c.profile.clone(),
            container: c.container.clone(),
        });
    }
    out
}

/// Remembers which skipped names were already reported, so each is logged once (again only
/// after it went away and came back). The controller owns one and feeds it every plan.
#[derive(Debug, Default)]
pub struct SkipLog {
    seen: HashSet<(String, HostName)>,
}

impl SkipLog {
    /// Logs the skipped names not reported yet; forgets the ones no longer skipped.
    pub fn report(&mut self, skipped: &[Skipped]) {
        let now: HashSet<(String, HostName)> = skipped
            .iter()
            .map(|s| (s.container.clone(), s.name.clone()))
            .collect();
        for s in skipped {
            if self.seen.contains(&(s.container.clone(), s.name.clone())) {
                continue;
            }
            match &s.reason {
                SkipReason::Covered { key } => tracing::info!(
                    container = %s.container, domain = %s.name, action = "cert_shared", cert = %key,
                    "name served with another container's certificate"
                ),
                reason => tracing::warn!(
                    container = %s.container, domain = %s.name, action = "cert_skipped", %reason,
                    "no certificate will be ordered; served over HTTP only"
                ),
            }
        }
        self.seen = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> HostName {
        HostName::parse(s).unwrap()
    }

    fn cand(container: &str, names: &[&str]) -> CertCandidate {
        CertCandidate {
            container: container.into(),
            names: names.iter().map(|n| h(n)).collect(),
            email: None,
            profile: None,
        }
    }

    #[test]
    fn one_spec_per_container_keyed_by_first_name() {
        let p = plan(&[
            cand("web", &["www.example.com", "example.com"]),
            cand("api", &["api.example.com"]),
        ]);
        let keys: Vec<&str> = p.specs.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            ["api.example.com", "www.example.com"],
            "container-name order"
        );
        assert_eq!(
            p.specs[1].names,
            vec![h("www.example.com"), h("example.com")],
            "label order kept"
        );
        assert!(p.skipped.is_empty());
        assert_eq!(p.cert_for(&h("example.com")), Some(&h("www.example.com")));
    }

    #[test]
    fn names_are_ordered_once_and_ineligible_ones_reported() {
        let p = plan(&[
            cand(
                "b",
                &["shop.example.com", "new.example.com", "shop.example.com"],
            ),
            cand("a", &["shop.example.com", "10.0.0.1", "web"]),
            cand("c", &["*.example.com", "localhost"]),
        ]);
        assert_eq!(p.specs.len(), 2);
        assert_eq!(
            (p.specs[0].container.as_str(), p.specs[0].names.clone()),
            ("a", vec![h("shop.example.com")])
        );
        assert_eq!(
            p.specs[1].key,
            h("new.example.com"),
            "covered first name → next name is the key"
        );
        assert_eq!(p.specs[1].names, vec![h("new.example.com")]);
        let skipped: Vec<(&str, &str)> = p
            .skipped
            .iter()
            .map(|s| (s.container.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("a", "10.0.0.1"),
                ("a", "web"),
                ("b", "shop.example.com"),
                ("c", "*.example.com"),
                ("c", "localhost")
            ]
        );
        assert_eq!(
            p.skipped[2].reason,
            SkipReason::Covered {
                key: h("shop.example.com")
            }
        );
    }

    #[test]
    fn email_and_profile_travel_with_the_spec() {
        let mut c = cand("x", &["x.example.com"]);
        c.email = Some("ops@example.com".into());
        c.profile = Some("shortlived".into());
        let p = plan(&[c]);
        let s = &p.specs;
        assert_eq!(s[0].email.as_deref(), Some("ops@example.com"));
        assert_eq!(s[0].profile.as_deref(), Some("shortlived"));
    }
}
