//! Pure: every running container's facts → the sites nginx should serve (hosts, locations,
//! upstream servers), plus the problems found, each naming its container and key.
//!
//! Deterministic: containers are taken in name order, servers sorted, so the same inventory
//! always yields the same sites and the same rendered bytes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::facts::{ContainerFacts, Health};
use crate::host::HostName;
use crate::labels::{self, Hsts, HttpsMethod, NetworkAccess, Proto, Route, Routes, SslPolicy, UrlPath};

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
        let routes = match labels::parse(c) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(errs) => {
                out.problems.extend(errs.into_iter().map(|e| Problem {
                    container: c.name.clone(),
                    key: e.key.into(),
                    problem: e.problem,
                }));
                continue;
            }
        };
        // Like a bad value, a conflict with a container already serving one of the names drops
        // this container whole: half a container's names served would surprise more than none.
        if let Some((key, problem)) = conflict(&out, &routes) {
            out.problems.push(Problem {
                container: c.name.clone(),
                key: key.into(),
                problem,
            });
            continue;
        }
        let healthy = c.health.is_none() || c.health == Some(Health::Healthy);
        let mut unreachable = None;
        for route in &routes.routes {
            let server = match address(c, route.port, routes.network.as_deref(), reach) {
                Ok(addr) => healthy.then_some((addr, draining.contains(&c.id))),
                Err(p) => {
                    unreachable.get_or_insert(p);
                    None
                }
            };
            let server = server.as_ref().map(|(s, d)| (s.as_str(), *d));
            add_route(&mut out, c, &routes, route, server);
        }
        if let Some(p) = unreachable {
            out.problems.push(Problem {
                container: c.name.clone(),
                key: "VIRTUAL_NETWORK".into(),
                problem: p,
            });
        }
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
mod tests {
    use super::*;
    use crate::facts::NetworkFacts;

    fn c(name: &str, labels: &[(&str, &str)], nets: &[(&str, &str)]) -> ContainerFacts {
        ContainerFacts {
            id: format!("id-{name}"),
            name: name.into(),
            running: true,
            health: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env: Default::default(),
            exposed_ports: vec![],
            network_mode: if nets.is_empty() {
                "host".into()
            } else {
                "bridge".into()
            },
            networks: nets
                .iter()
                .map(|(n, ip)| {
                    (
                        n.to_string(),
                        NetworkFacts {
                            ip: ip.to_string(),
                            gateway: "172.18.0.1".into(),
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn load_balances_and_picks_networks_deterministically() {
        let a = c(
            "a",
            &[("VIRTUAL_HOST", "x.com")],
            &[("zeta", "172.20.0.2"), ("alpha", "172.19.0.2")],
        );
        let b = c(
            "b",
            &[("VIRTUAL_HOST", "x.com"), ("VIRTUAL_PORT", "8080")],
            &[],
        );
        let s = build([&b, &a], &NginxReach::Host, &BTreeSet::new());
        let loc = &s.sites[&HostName::parse("x.com").unwrap()].locations[&UrlPath::root()];
        assert_eq!(loc.servers, ["127.0.0.1:8080", "172.19.0.2:80"]);
        assert_eq!(loc.containers, ["a", "b"]);
    }

    #[test]
    fn networks_shared_with_nginx_and_virtual_network() {
        let reach = NginxReach::Networks([("zeta".to_string(), "172.20.0.1".to_string())].into());
        let a = c(
            "a",
            &[("VIRTUAL_HOST", "x.com")],
            &[("zeta", "172.20.0.2"), ("alpha", "172.19.0.2")],
        );
        let b = c(
            "b",
            &[("VIRTUAL_HOST", "y.com"), ("VIRTUAL_NETWORK", "alpha")],
            &[("alpha", "172.19.0.3")],
        );
        let s = build([&a, &b], &reach, &BTreeSet::new());
        assert_eq!(
            s.sites[&HostName::parse("x.com").unwrap()].locations[&UrlPath::root()].servers,
            ["172.20.0.2:80"]
        );
        let y = &s.sites[&HostName::parse("y.com").unwrap()].locations[&UrlPath::root()];
        assert!(
            y.servers.is_empty(),
            "unreachable → no server, host still present"
        );
        assert_eq!(s.problems[0].container, "b");
    }

    #[test]
    fn unhealthy_and_stopped_containers_serve_nothing() {
        let mut a = c("a", &[("VIRTUAL_HOST", "x.com")], &[]);
        a.health = Some(Health::Starting);
        let mut b = c("b", &[("VIRTUAL_HOST", "y.com")], &[]);
        b.running = false;
        let s = build([&a, &b], &NginxReach::Host, &BTreeSet::new());
        assert!(
            s.sites[&HostName::parse("x.com").unwrap()].locations[&UrlPath::root()]
                .servers
                .is_empty()
        );
        assert!(!s.sites.contains_key(&HostName::parse("y.com").unwrap()));
    }

    #[test]
    fn a_stopping_container_leaves_rotation_unless_it_is_the_last() {
        let a = c(
            "a",
            &[("VIRTUAL_HOST", "x.com"), ("VIRTUAL_PORT", "1")],
            &[],
        );
        let b = c(
            "b",
            &[("VIRTUAL_HOST", "x.com"), ("VIRTUAL_PORT", "2")],
            &[],
        );
        let solo = c(
            "solo",
            &[("VIRTUAL_HOST", "y.com"), ("VIRTUAL_PORT", "3")],
            &[],
        );
        let draining: BTreeSet<String> = ["id-a".to_string(), "id-solo".to_string()].into();
        let s = build([&a, &b, &solo], &NginxReach::Host, &draining);
        let servers = |h: &str| {
            s.sites[&HostName::parse(h).unwrap()].locations[&UrlPath::root()]
                .servers
                .clone()
        };
        assert_eq!(servers("x.com"), ["127.0.0.1:2"]);
        assert_eq!(
            servers("y.com"),
            ["127.0.0.1:3"],
            "the last server keeps serving while it shuts down"
        );
    }

    #[test]
    fn a_conflicting_container_is_left_out_whole() {
        let a = c("a", &[("VIRTUAL_HOST", "x.com")], &[]);
        let b = c(
            "b",
            &[("VIRTUAL_HOST", "x.com,y.com"), ("VIRTUAL_PROTO", "https")],
            &[],
        );
        let s = build([&b, &a], &NginxReach::Host, &BTreeSet::new());
        assert_eq!(
            s.sites.keys().map(|h| h.as_str()).collect::<Vec<_>>(),
            ["x.com"],
            "y.com must not be served by half of b"
        );
        assert_eq!(s.routes.len(), 1, "b asks for no certificate");
        assert_eq!(
            (s.problems[0].container.as_str(), s.problems[0].key.as_str()),
            ("b", "VIRTUAL_PROTO")
        );
        assert!(s.problems[0].problem.contains("by a"), "{:?}", s.problems);
        // Same protocol, another rewrite: the problem names VIRTUAL_DEST.
        let d = c(
            "d",
            &[("VIRTUAL_HOST", "x.com"), ("VIRTUAL_DEST", "/app/")],
            &[],
        );
        let s = build([&a, &d], &NginxReach::Host, &BTreeSet::new());
        assert_eq!(s.problems[0].key, "VIRTUAL_DEST", "{:?}", s.problems);
    }

    #[test]
    fn upstream_names_are_distinct_and_safe() {
        let p = UrlPath::root();
        let a = upstream_name(&HostName::parse("*.a.com").unwrap(), &p);
        let b = upstream_name(&HostName::parse("_.a.com").unwrap(), &p);
        assert_ne!(a, b);
        assert!(a.starts_with("_.a.com-"));
    }
}
