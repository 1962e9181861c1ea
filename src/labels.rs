//! Pure: one container's labels and env → its validated routes, or errors naming the key.
//!
//! Every value that reaches nginx text or a file path is validated here into a typed value, so
//! a hostile label can never inject a directive or escape `--webroot`/`--certs-dir`.

use std::fmt;

use serde::Serialize;

use crate::facts::ContainerFacts;
use crate::host::HostName;

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

/// A URL path prefix safe in nginx text: starts with `/`, no whitespace, `;`, braces, quotes, `$`, `\`, `#` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct UrlPath(String);

impl UrlPath {
    /// Validates a path value.
    pub fn parse(raw: &str) -> Result<UrlPath, String> {
        let s = raw.trim();
        if !s.starts_with('/') {
            return Err(format!("{s:?} must start with /"));
        }
        if s.split('/').any(|seg| seg == "..") {
            return Err(format!("{s:?} must not contain .."));
        }
        if let Some(c) = s
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || "\";'{}$\\#`".contains(*c))
        {
            return Err(format!(
                "{s:?} contains {c:?}, which is not allowed in a path"
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

/// Everything one container asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    /// Host names from VIRTUAL_HOST (deduplicated, in the given order; the first keys its certificate).
    pub hosts: Vec<HostName>,
    /// Upstream port.
    pub port: u16,
    /// Upstream protocol.
    pub proto: Proto,
    /// Location prefix.
    pub path: UrlPath,
    /// Path the prefix is rewritten to upstream.
    pub dest: Option<UrlPath>,
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

/// The HTTP-01 route belongs to vhostd on every host: a VIRTUAL_PATH at or under it would
/// either duplicate nginx's location (a rejected config) or shadow some challenge tokens.
fn reserved_path(p: Option<UrlPath>) -> Result<Option<UrlPath>, LabelError> {
    match p {
        Some(p) if p.as_str().starts_with("/.well-known/acme-challenge") => Err(err(
            "VIRTUAL_PATH",
            format!(
                "{:?} is vhostd's ACME challenge route on every host; choose another path",
                p.as_str()
            ),
        )),
        p => Ok(p),
    }
}

/// Parses a container's routes. `Ok(None)`: it has no VIRTUAL_HOST. `Err`: every bad key.
pub fn parse(c: &ContainerFacts) -> Result<Option<Routes>, Vec<LabelError>> {
    let Some(raw_hosts) = c.setting("VIRTUAL_HOST") else {
        return Ok(None);
    };
    let mut errs = Vec::new();
    let hosts = host_list("VIRTUAL_HOST", raw_hosts).unwrap_or_else(|e| {
        errs.push(e);
        Vec::new()
    });
    if hosts.is_empty() && errs.is_empty() {
        errs.push(err("VIRTUAL_HOST", "no host names (empty value)"));
    }
    let port = take(&mut errs, port(c));
    let proto = take(&mut errs, proto(c.setting("VIRTUAL_PROTO")));
    let path = take(
        &mut errs,
        opt_path("VIRTUAL_PATH", c.setting("VIRTUAL_PATH")).and_then(reserved_path),
    )
    .flatten()
    .unwrap_or_else(UrlPath::root);
    let dest = take(
        &mut errs,
        opt_path("VIRTUAL_DEST", c.setting("VIRTUAL_DEST")),
    )
    .flatten();
    let network = take(&mut errs, network(c.setting("VIRTUAL_NETWORK"))).flatten();
    let https_method = take(&mut errs, https_method(c.setting("HTTPS_METHOD")));
    let hsts = take(&mut errs, hsts(c.setting("HSTS")));
    let cert_hosts = take(
        &mut errs,
        c.setting("LETSENCRYPT_HOST")
            .map(|v| host_list("LETSENCRYPT_HOST", v))
            .transpose(),
    )
    .flatten();
    let email = take(&mut errs, email(c.setting("LETSENCRYPT_EMAIL"))).flatten();
    let profile = take(&mut errs, profile(c.setting("ACME_PROFILE"))).flatten();
    if let Some(ch) = &cert_hosts
        && let Some(h) = ch.iter().find(|h| !hosts.contains(h))
    {
        errs.push(err(
            "LETSENCRYPT_HOST",
            format!("{h} is not one of VIRTUAL_HOST's names"),
        ));
    }
    match (port, proto, https_method, hsts) {
        (Some(port), Some(proto), Some(https_method), Some(hsts)) if errs.is_empty() => {
            Ok(Some(Routes {
                hosts,
                port,
                proto,
                path,
                dest,
                network,
                https_method,
                hsts,
                cert_hosts,
                email,
                profile,
            }))
        }
        _ => Err(errs),
    }
}

fn take<T>(errs: &mut Vec<LabelError>, r: Result<T, LabelError>) -> Option<T> {
    r.map_err(|e| errs.push(e)).ok()
}

fn host_list(key: &'static str, raw: &str) -> Result<Vec<HostName>, LabelError> {
    let mut out: Vec<HostName> = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let h = HostName::parse(part).map_err(|e| err(key, e.to_string()))?;
        if !out.contains(&h) {
            out.push(h);
        }
    }
    Ok(out)
}

fn port(c: &ContainerFacts) -> Result<u16, LabelError> {
    if let Some(v) = c.setting("VIRTUAL_PORT") {
        return match v.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(err(
                "VIRTUAL_PORT",
                format!("{v:?} is not a port number 1-65535"),
            )),
        };
    }
    let tcp: Vec<u16> = c
        .exposed_ports
        .iter()
        .filter_map(|p| p.strip_suffix("/tcp")?.parse().ok())
        .collect();
    Ok(if tcp.len() == 1 { tcp[0] } else { 80 })
}

fn proto(v: Option<&str>) -> Result<Proto, LabelError> {
    match v.map(str::trim) {
        None | Some("") | Some("http") => Ok(Proto::Http),
        Some("https") => Ok(Proto::Https),
        Some("grpc") => Ok(Proto::Grpc),
        Some("grpcs") => Ok(Proto::Grpcs),
        Some(o) => Err(err(
            "VIRTUAL_PROTO",
            format!("{o:?} is not one of http, https, grpc, grpcs"),
        )),
    }
}

fn opt_path(key: &'static str, v: Option<&str>) -> Result<Option<UrlPath>, LabelError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(p) => UrlPath::parse(p).map(Some).map_err(|e| err(key, e)),
    }
}

fn network(v: Option<&str>) -> Result<Option<String>, LabelError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n)
            if n.len() <= 128
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) =>
        {
            Ok(Some(n.into()))
        }
        Some(n) => Err(err(
            "VIRTUAL_NETWORK",
            format!("{n:?} is not a Docker network name ([A-Za-z0-9_.-])"),
        )),
    }
}

fn https_method(v: Option<&str>) -> Result<HttpsMethod, LabelError> {
    match v.map(str::trim) {
        None | Some("") | Some("redirect") => Ok(HttpsMethod::Redirect),
        Some("noredirect") => Ok(HttpsMethod::NoRedirect),
        Some("nohttp") => Ok(HttpsMethod::NoHttp),
        Some("nohttps") => Ok(HttpsMethod::NoHttps),
        Some(o) => Err(err(
            "HTTPS_METHOD",
            format!("{o:?} is not one of redirect, noredirect, nohttp, nohttps"),
        )),
    }
}

fn hsts(v: Option<&str>) -> Result<Hsts, LabelError> {
    match v.map(str::trim) {
        None | Some("") => Ok(Hsts(Some(DEFAULT_HSTS.into()))),
        Some("off") => Ok(Hsts(None)),
        Some(h)
            if h.len() <= 200
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " =;-_".contains(c)) =>
        {
            Ok(Hsts(Some(h.into())))
        }
        Some(h) => Err(err(
            "HSTS",
            format!(
                "{h:?} is not an HSTS value like \"max-age=31536000; includeSubDomains\" or off"
            ),
        )),
    }
}

fn email(v: Option<&str>) -> Result<Option<String>, LabelError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(e)
            if e.len() <= 254
                && e.contains('@')
                && !e
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>\",;".contains(c)) =>
        {
            Ok(Some(e.into()))
        }
        Some(e) => Err(err(
            "LETSENCRYPT_EMAIL",
            format!("{e:?} is not an e-mail address"),
        )),
    }
}

fn profile(v: Option<&str>) -> Result<Option<String>, LabelError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(p)
            if p.len() <= 64
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) =>
        {
            Ok(Some(p.into()))
        }
        Some(p) => Err(err(
            "ACME_PROFILE",
            format!("{p:?} is not a profile name like tlsserver"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(labels: &[(&str, &str)], env: &[(&str, &str)]) -> ContainerFacts {
        ContainerFacts {
            id: "abc".into(),
            name: "web".into(),
            running: true,
            health: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            exposed_ports: vec![],
            network_mode: "bridge".into(),
            networks: Default::default(),
        }
    }

    #[test]
    fn label_wins_over_env_and_defaults_apply() {
        let c = facts(
            &[("VIRTUAL_HOST", " a.com, ,B.com,a.com ")],
            &[("VIRTUAL_HOST", "env.com"), ("VIRTUAL_PORT", "8080")],
        );
        let r = parse(&c).unwrap().unwrap();
        assert_eq!(
            r.hosts.iter().map(HostName::as_str).collect::<Vec<_>>(),
            ["a.com", "b.com"]
        );
        assert_eq!(r.port, 8080);
        assert_eq!(r.proto, Proto::Http);
        assert_eq!(r.path, UrlPath::root());
        assert_eq!(r.https_method, HttpsMethod::Redirect);
        assert_eq!(r.hsts, Hsts(Some(DEFAULT_HSTS.into())));
    }

    #[test]
    fn single_exposed_port_is_the_default() {
        let mut c = facts(&[("VIRTUAL_HOST", "a.com")], &[]);
        c.exposed_ports = vec!["3000/tcp".into()];
        assert_eq!(parse(&c).unwrap().unwrap().port, 3000);
        c.exposed_ports = vec!["3000/tcp".into(), "4000/tcp".into()];
        assert_eq!(parse(&c).unwrap().unwrap().port, 80);
    }

    #[test]
    fn no_virtual_host_is_not_an_error() {
        assert_eq!(parse(&facts(&[], &[])).unwrap(), None);
    }

    #[test]
    fn every_bad_key_is_named() {
        let c = facts(
            &[
                ("VIRTUAL_HOST", "a.com"),
                ("VIRTUAL_PORT", "0"),
                ("VIRTUAL_PROTO", "ftp"),
                ("VIRTUAL_PATH", "/a;b"),
                ("HTTPS_METHOD", "sometimes"),
                ("HSTS", "max-age=1\nX: y"),
                ("LETSENCRYPT_HOST", "b.com"),
            ],
            &[],
        );
        let keys: Vec<_> = parse(&c).unwrap_err().into_iter().map(|e| e.key).collect();
        assert_eq!(
            keys,
            [
                "VIRTUAL_PORT",
                "VIRTUAL_PROTO",
                "VIRTUAL_PATH",
                "HTTPS_METHOD",
                "HSTS",
                "LETSENCRYPT_HOST"
            ]
        );
    }

    #[test]
    fn hostile_values_are_refused() {
        for (k, v) in [
            ("VIRTUAL_HOST", "../../etc"),
            ("VIRTUAL_HOST", "a.com;include /x"),
            ("VIRTUAL_HOST", "a.com\nb.com"),
            ("VIRTUAL_HOST", "$host"),
            ("VIRTUAL_PATH", "/../x"),
            ("VIRTUAL_PATH", "/x { }"),
            ("VIRTUAL_DEST", "/$1"),
            ("VIRTUAL_PATH", "/a\"b"),
            ("VIRTUAL_PATH", "/.well-known/acme-challenge/"),
            ("VIRTUAL_PATH", "/.well-known/acme-challenge/x"),
            ("VIRTUAL_NETWORK", "n;x"),
            ("LETSENCRYPT_EMAIL", "a@b.c\nx"),
        ] {
            let mut labels = vec![("VIRTUAL_HOST", "ok.com")];
            labels.retain(|(lk, _)| *lk != k);
            labels.push((k, v));
            let e = parse(&facts(&labels, &[])).unwrap_err();
            assert_eq!(e[0].key, k, "{k}={v:?}");
        }
    }
}
