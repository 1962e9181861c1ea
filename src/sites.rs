//! Pure: every running container's facts → the sites nginx should serve (hosts, locations,
//! upstream servers), plus the problems found, each naming its container and key.
//!
//! Deterministic: containers are taken in name order, servers sorted, so the same inventory
//! always yields the same sites and the same rendered bytes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::facts::{ContainerFacts, Health};
use crate::host::HostName;
use crate::labels::{
    self, Hsts, HttpsMethod, NetworkAccess, Proto, Route, Routes, SslPolicy, UrlPath,
};

/// What nginx can reach, decided by where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NginxReach {
    /// nginx runs on the host (local process or `--network host` container): every container IP,
    /// and host-network containers on 127.0.0.1.
    Host,
    /// nginx is a container on these networks (name → its gateway, for host-network backends).
    Networks(BTreeMap<String, String>),
}

/// The nginx container among `containers`: by name or id prefix when `name` is given, else the
/// one labelled `vhostd.nginx=true` (or nginx-proxy's `com.github.nginx-proxy.nginx`).
pub fn find_nginx<'a>(
    containers: impl IntoIterator<Item = &'a ContainerFacts>,
    name: Option<&str>,
) -> Option<&'a ContainerFacts> {
    let wanted = name.filter(|n| !n.is_empty());
    let matches = |c: &ContainerFacts| match wanted {
        Some(n) => c.name == n || c.id.starts_with(n),
        None => {
            c.labels.get("vhostd.nginx").is_some_and(|v| v == "true")
                || c.labels.contains_key("com.github.nginx-proxy.nginx")
        }
    };
    // Several matches: an exact name first, then the lowest id, whatever order the caller
    // lists them in, so `vhostd render` and the daemon pick the same container.
    containers
        .into_iter()
        .filter(|c| c.running && matches(c))
        .min_by_key(|c| (Some(c.name.as_str()) != wanted, c.id.as_str()))
}

/// What an nginx container reaches: everything when it uses the host network, else its networks.
/// No nginx container found: nothing is reachable (hosts answer 503 until it appears).
pub fn reach_of(nginx: Option<&ContainerFacts>) -> NginxReach {
    match nginx {
        Some(c) if c.is_host_network() => NginxReach::Host,
        Some(c) => NginxReach::Networks(
            c.networks
                .iter()
                .map(|(n, f)| (n.clone(), f.gateway.clone()))
                .collect(),
        ),
        None => NginxReach::Networks(BTreeMap::new()),
    }
}

/// One problem with one container; the container is left out (bad value) or unreachable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// Container name.
    pub container: String,
    /// The label/env key at fault (or `network`).
    pub key: String,
    /// What is wrong and what to do.
    pub problem: String,
}

/// One location of a site: a path prefix and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Path prefix.
    pub path: UrlPath,
    /// Upstream protocol.
    pub proto: Proto,
    /// Rewrite target, if any.
    pub dest: Option<UrlPath>,
    /// FastCGI document root (VIRTUAL_ROOT), for `fastcgi` only.
    pub root: Option<UrlPath>,
    /// NETWORK_ACCESS: `internal` answers 403 to public addresses.
    pub access: NetworkAccess,
    /// nginx upstream name (unique, stable).
    pub upstream: String,
    /// `ip:port` of every reachable, healthy container, sorted; empty → nginx answers 503.
    pub servers: Vec<String>,
    /// Containers serving it (names, sorted), for status.
    pub containers: Vec<String>,
    /// Servers of containers that are stopping: used only when no other server is left, so a
    /// lone container still serves through its graceful shutdown.
    #[serde(skip)]
    pub draining: Vec<String>,
}

/// One virtual host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    /// The host name.
    pub host: HostName,
    /// HTTPS_METHOD (first container by name wins).
    pub https_method: HttpsMethod,
    /// HSTS value (first container by name wins).
    pub hsts: Hsts,
    /// CERT_NAME: the `live/NAME/` certificate to serve, and the container that asked for it
    /// (named in the problem when it is missing); the first container by name wins.
    pub cert_name: Option<(String, String)>,
    /// SSL_POLICY (first container by name wins).
    pub ssl_policy: SslPolicy,
    /// Locations by path.
    pub locations: BTreeMap<UrlPath, Location>,
}

impl Site {
    /// The names of the containers behind its locations, sorted, each once.
    pub fn containers(&self) -> Vec<String> {
        let mut all: Vec<String> = (self.locations.values())
            .flat_map(|l| l.containers.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The whole desired state derived from the inventory.
#[derive(Debug, Clone, Default)]
pub struct Sites {
    /// Sites by host.
    pub sites: BTreeMap<HostName, Site>,
    /// Accepted containers' routes, in container-name order (input for certificates).
    pub routes: Vec<(String, Routes)>,
    /// Problems, in container-name order.
    pub problems: Vec<Problem>,
}

/// Builds the sites from every container in the inventory.
/// `draining` holds the ids of containers asked to stop (see [`Location::draining`]).
pub fn build<'a>(
    containers: impl IntoIterator<Item = &'a ContainerFacts>,
    reach: &NginxReach,
    draining: &BTreeSet<String>,
) -> Sites {
    let mut sorted: Vec<&ContainerFacts> = containers.into_iter().filter(|c| c.running).collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let mut out = Sites::default();
    for c in sorted {
        let Some(routes) = accepted_routes(&mut out, c) else {
            continue;
        };
        add_container(&mut out, c, &routes, reach, draining.contains(&c.id));
        out.routes.push((c.name.clone(), routes));
    }
    for loc in out
        .sites
        .values_mut()
        .flat_map(|s| s.locations.values_mut())
    {
        if loc.servers.is_empty() {
            loc.servers = loc.draining.clone();
        }
    }
    out
}

/// The routes of `c`, or none: it asks for none, or its problems (a bad value, a conflict
/// with the sites built so far) are added to `out` and it is left out.
fn accepted_routes(out: &mut Sites, c: &ContainerFacts) -> Option<Routes> {
    let routes = match labels::parse(c) {
        Ok(r) => r?,
        Err(errs) => {
            out.problems.extend(errs.into_iter().map(|e| Problem {
                container: c.name.clone(),
                key: e.key.into(),
                problem: e.problem,
            }));
            return None;
        }
    };
    // Like a bad value, a conflict with a container already serving one of the names drops
    // this container whole: half a container's names served would surprise more than none.
    if let Some((key, problem)) = conflict(out, &routes) {
        out.problems.push(Problem {
            container: c.name.clone(),
            key: key.into(),
            problem,
        });
        return None;
    }
    Some(routes)
}

/// Adds every route of `c` to the sites, with its address when nginx reaches it and it is
/// healthy; the first reason it is unreachable becomes a problem.
fn add_container(
    out: &mut Sites,
    c: &ContainerFacts,
    routes: &Routes,
    reach: &NginxReach,
    draining: bool,
) {
    let healthy = c.health.is_none() || c.health == Some(Health::Healthy);
    let mut unreachable = None;
    for route in &routes.routes {
        let server = match address(c, route.port, routes.network.as_deref(), reach) {
            Ok(addr) => healthy.then_some((addr, draining)),
            Err(p) => {
                unreachable.get_or_insert(p);
                None
            }
        };
        let server = server.as_ref().map(|(s, d)| (s.as_str(), *d));
        add_route(out, c, routes, route, server);
    }
    if let Some(p) = unreachable {
        out.problems.push(Problem {
            container: c.name.clone(),
            key: "VIRTUAL_NETWORK".into(),
            problem: p,
        });
    }
}

/// Why `r` cannot join the sites built so far (the key that differs, and the problem): one of
/// its host/path pairs is already served with another protocol or rewrite, which one upstream
/// cannot do both ways.
fn conflict(out: &Sites, r: &Routes) -> Option<(&'static str, String)> {
    r.routes.iter().find_map(|route| {
        let loc = out.sites.get(&route.host)?.locations.get(&route.path)?;
        let key = if loc.proto != r.proto {
            "VIRTUAL_PROTO"
        } else if loc.dest != route.dest {
            "VIRTUAL_DEST"
        } else if loc.root != r.root {
            "VIRTUAL_ROOT"
        } else if loc.access != r.network_access {
            "NETWORK_ACCESS"
        } else {
            return None;
        };
        Some((
            key,
            format!(
                "{}{} is already served with another {key} by {}; \
                 this container (all its names) is left out until they agree",
                route.host,
                route.path,
                loc.containers.join(",")
            ),
        ))
    })
}

fn add_route(
    out: &mut Sites,
    c: &ContainerFacts,
    r: &Routes,
    route: &Route,
    server: Option<(&str, bool)>,
) {
    let host = &route.host;
    let site = out.sites.entry(host.clone()).or_insert_with(|| Site {
        host: host.clone(),
        https_method: r.https_method,
        hsts: r.hsts.clone(),
        cert_name: r.cert_name.clone().map(|n| (n, c.name.clone())),
        ssl_policy: r.ssl_policy,
        locations: BTreeMap::new(),
    });
    let loc = site
        .locations
        .entry(route.path.clone())
        .or_insert_with(|| Location {
            path: route.path.clone(),
            proto: r.proto,
            dest: route.dest.clone(),
            root: r.root.clone(),
            access: r.network_access,
            upstream: upstream_name(host, &route.path),
            servers: Vec::new(),
            containers: Vec::new(),
            draining: Vec::new(),
        });
    if !loc.containers.contains(&c.name) {
        loc.containers.push(c.name.clone());
    }
    if let Some((s, draining)) = server {
        let list = if draining {
            &mut loc.draining
        } else {
            &mut loc.servers
        };
        let set: BTreeSet<String> = list.drain(..).chain([s.to_string()]).collect();
        *list = set.into_iter().collect();
    }
}

/// Where nginx reaches this container, or why it can't.
fn address(
    c: &ContainerFacts,
    port: u16,
    network: Option<&str>,
    reach: &NginxReach,
) -> Result<String, String> {
    if c.is_host_network() {
        return match reach {
            NginxReach::Host => Ok(format!("127.0.0.1:{port}")),
            NginxReach::Networks(nets) => nets
                .values()
                .find(|g| !g.is_empty())
                .map(|g| format!("{g}:{port}"))
                .ok_or_else(|| {
                    "host-network container, but nginx's networks have no gateway to reach the host"
                        .into()
                }),
        };
    }
    let reachable = |name: &str| match reach {
        NginxReach::Host => true,
        NginxReach::Networks(n) => n.contains_key(name),
    };
    let with_ip = |name: &str| {
        c.networks
            .get(name)
            .filter(|n| !n.ip.is_empty())
            .map(|n| format!("{}:{port}", n.ip))
    };
    if let Some(want) = network {
        if !c.networks.contains_key(want) {
            return Err(format!(
                "VIRTUAL_NETWORK={want} but the container is not attached to it (attached: {})",
                names(c)
            ));
        }
        if !reachable(want) {
            return Err(format!(
                "VIRTUAL_NETWORK={want} is not a network nginx is attached to"
            ));
        }
        return with_ip(want).ok_or_else(|| format!("the container has no IPv4 address on {want}"));
    }
    c.networks
        .keys()
        .filter(|n| reachable(n))
        .find_map(|n| with_ip(n))
        .ok_or_else(|| format!("no network shared with nginx has an address for it (attached: {}); connect nginx to one or set VIRTUAL_NETWORK", names(c)))
}

fn names(c: &ContainerFacts) -> String {
    if c.networks.is_empty() {
        "none".into()
    } else {
        c.networks.keys().cloned().collect::<Vec<_>>().join(",")
    }
}

/// A stable nginx upstream name: readable host part plus a hash of host and path, so that
/// wildcards and distinct paths never collide.
pub fn upstream_name(host: &HostName, path: &UrlPath) -> String {
    let readable: String = host
        .as_str()
        .chars()
        .map(|c| if c == '*' { '_' } else { c })
        .collect();
    let key = format!("{host}{path}");
    format!("{readable}-{:08x}", fnv1a(key.as_bytes()) as u32)
}

/// FNV-1a (64-bit): a tiny hash that is stable across Rust releases (std's hasher is not), for
/// names that must not change between runs: upstream names here, account file names in `acme`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
