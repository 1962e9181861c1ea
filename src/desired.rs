//! The desired nginx config for an inventory: sites → certificate plan → installed certificate
//! files → rendered text. Shared by the daemon and `vhostd render`, so both give the same bytes.
//!
//! Pure except for checking which certificate files exist on disk.

use std::collections::BTreeMap;
use std::path::Path;

use crate::acme::{self, CertCandidate, CertPlan};
use crate::facts::ContainerFacts;
use crate::host::HostName;
use crate::render::{self, CertFiles, RenderError, RenderSettings, Renderer};
use crate::sites::{self, NginxReach, Sites};

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
    renderer: &Renderer,
    settings: &RenderSettings,
    certs_dir: &Path,
) -> Desired {
    let sites = sites::build(containers, reach);
    let certs = acme::plan(&candidates(&sites));
    let https = installed_certs(&sites, &certs, certs_dir);
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

/// Hosts whose certificate (the planned one, else one a user put at `live/HOST/`) is on disk.
fn installed_certs(
    sites: &Sites,
    plan: &CertPlan,
    certs_dir: &Path,
) -> BTreeMap<HostName, CertFiles> {
    let mut out = BTreeMap::new();
    for host in sites.sites.keys() {
        let planned = plan
            .cert_for(host)
            .map(|k| acme::live_paths(certs_dir, k))
            .filter(|p| p.is_installed());
        let own = || Some(acme::live_paths(certs_dir, host)).filter(|p| p.is_installed());
        if let Some(p) = planned.or_else(own) {
            out.insert(
                host.clone(),
                CertFiles {
                    fullchain: p.fullchain.clone(),
                    privkey: p.privkey.clone(),
                },
            );
        }
    }
    out
}
