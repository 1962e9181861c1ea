//! Sites + installed certificates → nginx config text, through Tera templates.
//!
//! [`context`] is pure and decides everything (which server blocks, redirects, HSTS); the
//! templates only lay text out. Templates are embedded; `--template-dir` files override them by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::host::HostName;
use crate::labels::{HttpsMethod, Proto};
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
}

#[derive(Debug, Serialize)]
struct LocationCtx {
    path: String,
    upstream: String,
    servers: Vec<String>,
    grpc: bool,
    scheme: &'static str,
    dest: String,
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
        });
        let locations: Vec<LocationCtx> = site.locations.values().map(location).collect();
        upstreams.extend(
            site.locations
                .values()
                .filter(|l| !l.servers.is_empty())
                .map(|l| UpstreamCtx {
                    name: l.upstream.clone(),
                    servers: l.servers.clone(),
                }),
        );
        let mut containers: Vec<String> = site
            .locations
            .values()
            .flat_map(|l| l.containers.iter().cloned())
            .collect();
        containers.sort();
        containers.dedup();
        out.push(SiteCtx {
            host: site.host.clone(),
            containers,
            challenge_root: s.webroot.join(site.host.as_str()).display().to_string(),
            http,
            https,
            root_404: !locations.iter().any(|l| l.path == "/"),
            locations,
            snippets: SiteSnippets::default(),
        });
    }
    upstreams.sort_by(|a, b| a.name.cmp(&b.name));
    let redirect_port = if s.https_port == 443 {
        String::new()
    } else {
        format!(":{}", s.https_port)
    };
    let longest = sites.sites.keys().map(|h| h.as_str().len()).max();
    Context {
        http_port: s.http_port,
        https_port: s.https_port,
        redirect_port,
        upstreams,
        sites: out,
        names_bucket_size: longest.and_then(names_bucket_size),
    }
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
    let (grpc, scheme) = match l.proto {
        Proto::Http => (false, "http"),
        Proto::Https => (false, "https"),
        Proto::Grpc => (true, "grpc"),
        Proto::Grpcs => (true, "grpcs"),
    };
    LocationCtx {
        path: l.path.to_string(),
        upstream: l.upstream.clone(),
        servers: l.servers.clone(),
        grpc,
        scheme,
        dest: l.dest.as_ref().map(ToString::to_string).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::names_bucket_size;

    #[test]
    fn the_bucket_grows_only_for_names_nginx_64_cannot_hold() {
        assert_eq!(
            names_bucket_size(46),
            None,
            "46 + 2 + two pointers fit in 64"
        );
        assert_eq!(names_bucket_size(47), Some(128));
        assert_eq!(names_bucket_size(253), Some(512));
    }
}
