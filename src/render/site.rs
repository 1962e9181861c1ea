//! Pure: one site's part of the template context (its server block and its upstreams).

use super::{CertFiles, HttpsCtx, LocationCtx, RenderSettings, SiteCtx, UpstreamCtx, location};
use crate::labels::HttpsMethod;
use crate::sites::Site;
use crate::snippets::SiteSnippets;

/// The upstream blocks of one site's locations that have servers.
pub(super) fn site_upstreams(site: &Site) -> impl Iterator<Item = UpstreamCtx> + '_ {
    site.locations
        .values()
        .filter(|l| !l.servers.is_empty())
        .map(|l| UpstreamCtx {
            name: l.upstream.clone(),
            servers: l.servers.clone(),
        })
}

/// One site's template context; `cert` is its installed certificate when it serves HTTPS.
pub(super) fn site_ctx(site: &Site, cert: Option<&CertFiles>, s: &RenderSettings) -> SiteCtx {
    let http = match (cert, site.https_method) {
        (Some(_), HttpsMethod::Redirect) => "redirect",
        (Some(_), HttpsMethod::NoHttp) => "closed",
        _ => "serve",
    };
    let hsts_applies = matches!(
        site.https_method,
        HttpsMethod::Redirect | HttpsMethod::NoHttp
    );
    let https = cert.map(|c| HttpsCtx {
        fullchain: c.fullchain.display().to_string(),
        privkey: c.privkey.display().to_string(),
        hsts: site.hsts.0.clone().filter(|_| hsts_applies),
        protocols: site.ssl_policy.protocols(),
        ciphers: site.ssl_policy.ciphers(),
        prefer_server_ciphers: site.ssl_policy.prefer_server_ciphers(),
    });
    let locations: Vec<LocationCtx> = site.locations.values().map(location).collect();
    let containers = site.containers();
    SiteCtx {
        host: site.host.clone(),
        containers,
        challenge_root: s.webroot.join(site.host.as_str()).display().to_string(),
        http,
        https,
        root_404: !locations.iter().any(|l| l.path == "/"),
        locations,
        default_server: s.default_host.as_ref() == Some(&site.host),
        snippets: SiteSnippets::default(),
    }
}
