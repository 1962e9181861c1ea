//! Sites + installed certificates → nginx config text, through Tera templates.
//!
//! [`context`] is pure and decides everything (which server blocks, redirects, HSTS); the
//! templates only lay text out. Templates are embedded; `--template-dir` files override them by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::host::HostName;
use crate::labels::{HttpsMethod, NetworkAccess, Proto};
use crate::nginx_version::NginxVersion;
use crate::sites::{Location, Sites};
use crate::snippets::SiteSnippets;

/// The main template's name.
pub const MAIN: &str = "nginx.conf.tera";
const EMBEDDED: [(&str, &str); 4] = [
    (MAIN, include_str!("../templates/nginx.conf.tera")),
    ("location.tera", include_str!("../templates/location.tera")),
    (
        "server_snippets.tera",
        include_str!("../templates/server_snippets.tera"),
    ),
    (
        "location_snippets.tera",
        include_str!("../templates/location_snippets.tera"),
    ),
];

/// A template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template file could not be read.
    #[error("cannot read template {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Tera rejected a template or failed to render it (its message shows the line).
    #[error("template error: {0}; the last good config stays live, fix the template")]
    Tera(String),
}

/// Files of an installed certificate, as nginx should read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertFiles {
    /// `fullchain.pem` path.
    pub fullchain: PathBuf,
    /// `privkey.pem` path.
    pub privkey: PathBuf,
}

/// Global values the templates need.
#[derive(Debug, Clone)]
pub struct RenderSettings {
    /// HTTP listen port.
    pub http_port: u16,
    /// HTTPS listen port.
    pub https_port: u16,
    /// Parent of the per-host challenge roots.
    pub webroot: PathBuf,
    /// `--default-host`: unknown hosts over HTTP are answered by this host's server.
    pub default_host: Option<HostName>,
    /// `--http2`: HTTPS servers speak HTTP/2.
    pub http2: bool,
    /// `--ipv6`: `[::]` listeners beside the IPv4 ones.
    pub ipv6: bool,
    /// `--trust-downstream-proxy`: pass on `X-Forwarded-*` from a proxy in front.
    pub trust_downstream_proxy: bool,
    /// The nginx the config is for; unknown → the syntax every version accepts.
    pub nginx_version: Option<NginxVersion>,
}

impl RenderSettings {
    /// Settings for `nginx_version` from the validated command line.
    pub fn new(s: &crate::config::Settings, nginx_version: Option<NginxVersion>) -> RenderSettings {
        let o = &s.opts;
        RenderSettings {
            http_port: o.http_port,
            https_port: o.https_port,
            webroot: o.webroot.clone(),
            default_host: s.default_host.clone(),
            http2: o.http2,
            ipv6: o.ipv6,
            trust_downstream_proxy: o.trust_downstream_proxy,
            nginx_version,
        }
    }
}

/// A loaded set of templates, or the reason they could not be loaded (then every render fails
/// with that reason, so the live config is kept until the templates are fixed).
pub struct Renderer {
    tera: Result<tera::Tera, String>,
}

impl Renderer {
    /// The embedded templates.
    pub fn embedded() -> Renderer {
        Self::load(&[]).expect("embedded templates are valid (checked by tests)")
    }

    /// The embedded templates, overridden by every `*.tera` file in `dir`.
    pub fn from_dir(dir: &Path) -> Result<Renderer, RenderError> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| RenderError::Read { path, source })
        };
        let mut files = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|source| RenderError::Read {
            path: dir.into(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tera") {
                files.push((name, read(entry.path())?));
            }
        }
        Self::load(&files)
    }

    fn load(overrides: &[(String, String)]) -> Result<Renderer, RenderError> {
        let mut tera = tera::Tera::new();
        tera.autoescape_on(Vec::<&str>::new());
        let mut all: BTreeMap<&str, &str> = EMBEDDED.into_iter().collect();
        all.extend(overrides.iter().map(|(n, c)| (n.as_str(), c.as_str())));
        tera.add_raw_templates(all)
            .map_err(|e| RenderError::Tera(error_chain(&e)))?;
        Ok(Renderer { tera: Ok(tera) })
    }

    /// A renderer that cannot render, for templates that failed to load at startup.
    pub fn failed(e: &RenderError) -> Renderer {
        Renderer {
            tera: Err(e.to_string()),
        }
    }

    /// Renders the main template.
    pub fn render(&self, ctx: &Context) -> Result<String, RenderError> {
        let tera = self
            .tera
            .as_ref()
            .map_err(|e| RenderError::Tera(e.clone()))?;
        let tctx =
            tera::Context::from_serialize(ctx).map_err(|e| RenderError::Tera(error_chain(&e)))?;
        tera.render(MAIN, &tctx)
            .map_err(|e| RenderError::Tera(error_chain(&e)))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Everything the templates see.
#[derive(Debug, Serialize)]
pub struct Context {
    http_port: u16,
    https_port: u16,
    /// `listen` addresses for HTTP (`80`, `[::]:80`) and HTTPS.
    http_listens: Vec<String>,
    https_listens: Vec<String>,
    /// ` http2` after `ssl` on HTTPS listens (nginx before 1.25.1 or unknown).
    listen_http2: bool,
    /// `http2 on;` in HTTPS servers (nginx 1.25.1 and later).
    http2_directive: bool,
    /// The fallback server is HTTP's default (no `--default-host` site takes that role).
    fallback_default: bool,
    /// Pass on `X-Forwarded-*` from a proxy in front (else overwrite them).
    trust_downstream: bool,
    /// `ssl_protocols` of the HTTPS port's default server: nginx negotiates the protocol
    /// version there, before SNI picks a site, so it is the union of every site's policy.
    default_ssl_protocols: String,
    /// `""` or `:PORT` in redirects when HTTPS is not on 443.
    redirect_port: String,
    upstreams: Vec<UpstreamCtx>,
    sites: Vec<SiteCtx>,
    /// `server_names_hash_bucket_size` when the longest name does not fit nginx's default (64).
    names_bucket_size: Option<usize>,
}

#[derive(Debug, Serialize)]
struct UpstreamCtx {
    name: String,
    servers: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SiteCtx {
    host: HostName,
    containers: Vec<String>,
    challenge_root: String,
    /// `serve`, `redirect` or `closed` (nohttp).
    http: &'static str,
    https: Option<HttpsCtx>,
    locations: Vec<LocationCtx>,
    root_404: bool,
    /// This is `--default-host`: its HTTP server answers unknown hosts.
    default_server: bool,
    /// Files from `--vhost-dir` / `--htpasswd-dir` (see [`Context::with_snippets`]).
    snippets: SiteSnippets,
}

impl Context {
    /// Adds each site's snippet and htpasswd files (none by default).
    pub fn with_snippets(mut self, of: impl Fn(&HostName) -> SiteSnippets) -> Context {
        for site in &mut self.sites {
            site.snippets = of(&site.host);
        }
        self
    }
}

#[derive(Debug, Serialize)]
struct HttpsCtx {
    fullchain: String,
    privkey: String,
    hsts: Option<String>,
    /// SSL_POLICY: `ssl_protocols`, `ssl_ciphers` (none for TLS 1.3 only), cipher order.
    protocols: &'static str,
    ciphers: Option<&'static str>,
    prefer_server_ciphers: bool,
}

#[derive(Debug, Serialize)]
struct LocationCtx {
    path: String,
    upstream: String,
    servers: Vec<String>,
    /// `proxy`, `grpc`, `uwsgi` or `fastcgi`: which pass directive and parameters.
    kind: &'static str,
    scheme: &'static str,
    dest: String,
    /// FastCGI document root.
    root: String,
    /// NETWORK_ACCESS=internal: allow private and loopback addresses only.
    internal: bool,
}

/// Pure: the template context for `sites`, given which hosts have an installed certificate.
pub fn context(
    sites: &Sites,
    certs: &BTreeMap<HostName, CertFiles>,
    s: &RenderSettings,
) -> Context {
    let mut upstreams = Vec::new();
    let mut out = Vec::new();
    for site in sites.sites.values() {
        let cert = certs
            .get(&site.host)
            .filter(|_| site.https_method != HttpsMethod::NoHttps);
        upstreams.extend(site::site_upstreams(site));
        out.push(site::site_ctx(site, cert, s));
    }
    upstreams.sort_by(|a, b| a.name.cmp(&b.name));
    let redirect_port = if s.https_port == 443 {
        String::new()
    } else {
        format!(":{}", s.https_port)
    };
    let longest = sites.sites.keys().map(|h| h.as_str().len()).max();
    let listens = |port: u16| {
        let mut l = vec![port.to_string()];
        if s.ipv6 {
            l.push(format!("[::]:{port}"));
        }
        l
    };
    let new_http2 = s
        .nginx_version
        .is_some_and(|v| v >= NginxVersion::HTTP2_DIRECTIVE);
    Context {
        http_port: s.http_port,
        https_port: s.https_port,
        http_listens: listens(s.http_port),
        https_listens: listens(s.https_port),
        listen_http2: s.http2 && !new_http2,
        http2_directive: s.http2 && new_http2,
        fallback_default: !out.iter().any(|site| site.default_server),
        trust_downstream: s.trust_downstream_proxy,
        default_ssl_protocols: union_protocols(
            out.iter()
                .filter_map(|s| s.https.as_ref())
                .map(|h| h.protocols),
        ),
        redirect_port,
        upstreams,
        sites: out,
        names_bucket_size: longest.and_then(names_bucket_size),
    }
}

/// Every protocol version some site's policy allows, in order (TLS 1.2 + 1.3 when no site has
/// HTTPS yet).
fn union_protocols<'a>(policies: impl Iterator<Item = &'a str>) -> String {
    let wanted: Vec<&str> = policies.flat_map(str::split_whitespace).collect();
    if wanted.is_empty() {
        return "TLSv1.2 TLSv1.3".into();
    }
    ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
        .into_iter()
        .filter(|v| wanted.contains(v))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `server_names_hash_bucket_size` a name of `len` bytes needs, when nginx's default of 64
/// is too small: without it one long name (47+ characters) makes nginx reject the whole config.
/// nginx needs room for a pointer, the name plus 2 bytes aligned to a pointer, and an end
/// pointer; sizes are powers of two.
pub fn names_bucket_size(len: usize) -> Option<usize> {
    let ptr = std::mem::size_of::<usize>();
    let need = ptr + (len + 2).div_ceil(ptr) * ptr + ptr;
    (need > 64).then(|| need.next_power_of_two())
}

fn location(l: &Location) -> LocationCtx {
    let (kind, scheme) = match l.proto {
        Proto::Http => ("proxy", "http"),
        Proto::Https => ("proxy", "https"),
        Proto::Grpc => ("grpc", "grpc"),
        Proto::Grpcs => ("grpc", "grpcs"),
        Proto::Uwsgi => ("uwsgi", "uwsgi"),
        Proto::Fastcgi => ("fastcgi", ""),
    };
    LocationCtx {
        path: l.path.to_string(),
        upstream: l.upstream.clone(),
        servers: l.servers.clone(),
        kind,
        scheme,
        dest: l.dest.as_ref().map(ToString::to_string).unwrap_or_default(),
        root: l.root.as_ref().map(ToString::to_string).unwrap_or_default(),
        internal: l.access == NetworkAccess::Internal,
    }
}

mod site;

#[cfg(test)]
mod tests;
