//! Pure: one container's labels and env → its validated routes, or errors naming the key.
//!
//! Every value that reaches nginx text or a file path is validated here into a typed value, so
//! a hostile label can never inject a directive or escape `--webroot`/`--certs-dir`. Syntax is
//! exact ([`value`]): lengths are bounded, and control or invisible characters are refused.

mod multiports;
pub mod policy;
pub mod value;

use std::fmt;

use serde::Serialize;

use crate::facts::ContainerFacts;
use crate::host::HostName;
pub use policy::SslPolicy;
use value::{MAX_LIST, MAX_VALUE};

/// Upstream protocol (`VIRTUAL_PROTO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// `proxy_pass http://`.
    Http,
    /// `proxy_pass https://`.
    Https,
    /// `grpc_pass grpc://`.
    Grpc,
    /// `grpc_pass grpcs://`.
    Grpcs,
    /// `uwsgi_pass uwsgi://`.
    Uwsgi,
    /// `fastcgi_pass`, with `VIRTUAL_ROOT` as the document root.
    Fastcgi,
}

/// How HTTP and HTTPS relate once a certificate exists (`HTTPS_METHOD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpsMethod {
    /// HTTP answers 301 to HTTPS (the challenge path stays on HTTP).
    Redirect,
    /// Both serve the site; no HSTS.
    NoRedirect,
    /// HTTPS only; HTTP answers only the challenge path.
    NoHttp,
    /// HTTP only, no certificate is used.
    NoHttps,
}

/// Who may reach a location (`NETWORK_ACCESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkAccess {
    /// Everyone (the default).
    External,
    /// Private and loopback addresses only; everyone else gets 403.
    Internal,
}

/// A URL path prefix safe in nginx text: starts with `/`, no whitespace, `;`, braces, quotes,
/// `$`, `\`, `#`, `..`, control or invisible characters; at most [`MAX_VALUE`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct UrlPath(String);

impl UrlPath {
    /// Validates a path value exactly as given (no trimming).
    pub fn parse(s: &str) -> Result<UrlPath, String> {
        if s.len() > MAX_VALUE {
            return Err(format!(
                "{} is longer than {MAX_VALUE} bytes",
                value::preview(s)
            ));
        }
        if !s.starts_with('/') {
            return Err(format!("{} must start with /", value::preview(s)));
        }
        if s.split('/').any(|seg| seg == "..") {
            return Err(format!("{} must not contain ..", value::preview(s)));
        }
        if let Some(c) = s.chars().find(|&c| {
            c.is_whitespace() || c.is_control() || value::invisible(c) || "\";'{}$\\#`".contains(c)
        }) {
            return Err(format!(
                "{} contains {c:?}, which is not allowed in a path",
                value::preview(s)
            ));
        }
        Ok(UrlPath(s.to_string()))
    }

    /// The root path `/`.
    pub fn root() -> UrlPath {
        UrlPath("/".into())
    }

    /// The path text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UrlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An HSTS header value, or off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hsts(pub Option<String>);

/// The default HSTS value when redirecting.
pub const DEFAULT_HSTS: &str = "max-age=31536000";

/// nginx-proxy's default `VIRTUAL_ROOT` for FastCGI.
pub const DEFAULT_ROOT: &str = "/var/www/public";

/// One host/path of a container and the port it listens on there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The host name.
    pub host: HostName,
    /// Location prefix.
    pub path: UrlPath,
    /// Upstream port.
    pub port: u16,
    /// Path the prefix is rewritten to upstream.
    pub dest: Option<UrlPath>,
}

/// Everything one container asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    /// Every host name (deduplicated, in the given order; the first keys its certificate).
    pub hosts: Vec<HostName>,
    /// Host/path pairs: every host on VIRTUAL_PATH, or VIRTUAL_HOST_MULTIPORTS' entries.
    pub routes: Vec<Route>,
    /// Upstream protocol.
    pub proto: Proto,
    /// FastCGI document root (VIRTUAL_ROOT), set only for `fastcgi`.
    pub root: Option<UrlPath>,
    /// Network to reach the container on.
    pub network: Option<String>,
    /// HTTPS_METHOD.
    pub https_method: HttpsMethod,
    /// HSTS header (`None` = off); applies only with a certificate and `redirect`/`nohttp`.
    pub hsts: Hsts,
    /// LETSENCRYPT_HOST subset (validated), when given.
    pub cert_hosts: Option<Vec<HostName>>,
    /// LETSENCRYPT_EMAIL.
    pub email: Option<String>,
    /// ACME_PROFILE.
    pub profile: Option<String>,
    /// CERT_NAME: serve `live/NAME/` (a certificate the user manages) and order nothing.
    pub cert_name: Option<String>,
    /// SSL_POLICY.
    pub ssl_policy: SslPolicy,
    /// NETWORK_ACCESS.
    pub network_access: NetworkAccess,
}

/// One bad value: which key and why. The container name is added by the caller's context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct LabelError {
    /// The label/env key.
    pub key: &'static str,
    /// What is wrong and what is expected.
    pub problem: String,
}

fn err(key: &'static str, problem: impl Into<String>) -> LabelError {
    LabelError {
        key,
        problem: problem.into(),
    }
}

/// The HTTP-01 route belongs to vhostd on every host: a path at or under it would either
/// duplicate nginx's location (a rejected config) or shadow some challenge tokens.
fn reserved_path(key: &'static str, p: UrlPath) -> Result<UrlPath, LabelError> {
    if p.as_str().starts_with("/.well-known/acme-challenge") {
        return Err(err(
            key,
            format!(
                "{:?} is vhostd's ACME challenge route on every host; choose another path",
                p.as_str()
            ),
        ));
    }
    Ok(p)
}

/// True when the container asks to be routed at all (VIRTUAL_HOST or VIRTUAL_HOST_MULTIPORTS).
pub fn wants_routes(c: &ContainerFacts) -> bool {
    c.setting("VIRTUAL_HOST").is_some() || c.setting("VIRTUAL_HOST_MULTIPORTS").is_some()
}

/// Parses a container's routes. `Ok(None)`: it asks for none. `Err`: every bad key.
pub fn parse(c: &ContainerFacts) -> Result<Option<Routes>, Vec<LabelError>> {
    if !wants_routes(c) {
        return Ok(None);
    }
    let mut errs = Vec::new();
    let routes = routes(c, &mut errs);
    let mut hosts: Vec<HostName> = Vec::new();
    for r in &routes {
        if !hosts.contains(&r.host) {
            hosts.push(r.host.clone());
        }
    }
    let proto = take(&mut errs, proto(c.setting("VIRTUAL_PROTO")));
    let root = take(&mut errs, opt(c, "VIRTUAL_ROOT", path_value)).flatten();
    let network = take(&mut errs, opt(c, "VIRTUAL_NETWORK", value::network)).flatten();
    let https_method = take(&mut errs, value::https_method(c.setting("HTTPS_METHOD")));
    let hsts = take(&mut errs, value::hsts(c.setting("HSTS")));
    let cert_hosts = take(&mut errs, opt(c, "LETSENCRYPT_HOST", host_list)).flatten();
    let email = take(&mut errs, opt(c, "LETSENCRYPT_EMAIL", value::email)).flatten();
    let profile = take(&mut errs, opt(c, "ACME_PROFILE", value::profile)).flatten();
    let cert_name = take(&mut errs, opt(c, "CERT_NAME", value::file_name)).flatten();
    let ssl_policy = take(
        &mut errs,
        value::one_of("SSL_POLICY", c.setting("SSL_POLICY"), policy::NAMES),
    );
    let network_access = take(&mut errs, network_access(c.setting("NETWORK_ACCESS")));
    if let Some(ch) = &cert_hosts
        && let Some(h) = ch.iter().find(|h| !hosts.contains(h))
    {
        errs.push(err(
            "LETSENCRYPT_HOST",
            format!("{h} is not one of the container's host names"),
        ));
    }
    let (Some(proto), Some(https_method), Some(hsts), Some(ssl_policy), Some(network_access)) =
        (proto, https_method, hsts, ssl_policy, network_access)
    else {
        return Err(errs);
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Some(Routes {
        hosts,
        routes,
        proto,
        root: (proto == Proto::Fastcgi)
            .then(|| root.unwrap_or_else(|| UrlPath(DEFAULT_ROOT.into()))),
        network,
        https_method,
        hsts,
        cert_hosts,
        email,
        profile,
        cert_name,
        ssl_policy,
        network_access,
    }))
}

fn take<T>(errs: &mut Vec<LabelError>, r: Result<T, LabelError>) -> Option<T> {
    r.map_err(|e| errs.push(e)).ok()
}

/// An optional key: absent or empty → `None`, else `f`'s verdict.
fn opt<T>(
    c: &ContainerFacts,
    key: &'static str,
    f: impl Fn(&'static str, &str) -> Result<T, LabelError>,
) -> Result<Option<T>, LabelError> {
    match c.setting(key) {
        None | Some("") => Ok(None),
        Some(v) => f(key, v).map(Some),
    }
}

/// The host/path pairs: VIRTUAL_HOST_MULTIPORTS when present, else VIRTUAL_HOST × VIRTUAL_PATH.
fn routes(c: &ContainerFacts, errs: &mut Vec<LabelError>) -> Vec<Route> {
    let default_port = default_port(c);
    if let Some(doc) = c.setting("VIRTUAL_HOST_MULTIPORTS") {
        return take(errs, multiports::parse(doc, default_port)).unwrap_or_default();
    }
    let hosts = take(
        errs,
        host_list("VIRTUAL_HOST", c.setting("VIRTUAL_HOST").unwrap_or("")),
    );
    if hosts.as_ref().is_some_and(Vec::is_empty) {
        errs.push(err("VIRTUAL_HOST", "no host names (empty value)"));
    }
    let port = match c.setting("VIRTUAL_PORT") {
        Some(v) => take(errs, value::port("VIRTUAL_PORT", v)),
        None => Some(default_port),
    };
    let path = take(
        errs,
        opt(c, "VIRTUAL_PATH", path_value)
            .and_then(|p| p.map(|p| reserved_path("VIRTUAL_PATH", p)).transpose()),
    );
    let dest = take(errs, opt(c, "VIRTUAL_DEST", path_value));
    let (Some(hosts), Some(port), Some(path), Some(dest)) = (hosts, port, path, dest) else {
        return Vec::new();
    };
    let path = path.unwrap_or_else(UrlPath::root);
    hosts
        .into_iter()
        .map(|host| Route {
            host,
            path: path.clone(),
            port,
            dest: dest.clone(),
        })
        .collect()
}

/// The single exposed TCP port, else 80 (nginx-proxy's rule).
fn default_port(c: &ContainerFacts) -> u16 {
    let tcp: Vec<u16> = c
        .exposed_ports
        .iter()
        .filter_map(|p| p.strip_suffix("/tcp")?.parse().ok())
        .collect();
    if tcp.len() == 1 { tcp[0] } else { 80 }
}

/// A comma-separated list of host names: spaces around each name are allowed (nginx-proxy's
/// syntax), empty entries ignored, duplicates dropped.
fn host_list(key: &'static str, raw: &str) -> Result<Vec<HostName>, LabelError> {
    value::base(key, raw, MAX_LIST, false)?;
    let mut out: Vec<HostName> = Vec::new();
    for part in raw
        .split(',')
        .map(|p| p.trim_matches(' '))
        .filter(|p| !p.is_empty())
    {
        let h = HostName::parse(part).map_err(|e| err(key, e.to_string()))?;
        if !out.contains(&h) {
            out.push(h);
        }
    }
    Ok(out)
}

fn path_value(key: &'static str, v: &str) -> Result<UrlPath, LabelError> {
    value::exact(key, v)?;
    UrlPath::parse(v).map_err(|e| err(key, e))
}

fn proto(v: Option<&str>) -> Result<Proto, LabelError> {
    value::one_of(
        "VIRTUAL_PROTO",
        v,
        &[
            ("http", Proto::Http),
            ("https", Proto::Https),
            ("grpc", Proto::Grpc),
            ("grpcs", Proto::Grpcs),
            ("uwsgi", Proto::Uwsgi),
            ("fastcgi", Proto::Fastcgi),
        ],
    )
}

fn network_access(v: Option<&str>) -> Result<NetworkAccess, LabelError> {
    value::one_of(
        "NETWORK_ACCESS",
        v,
        &[
            ("external", NetworkAccess::External),
            ("internal", NetworkAccess::Internal),
        ],
    )
}

#[cfg(test)]
mod tests;
