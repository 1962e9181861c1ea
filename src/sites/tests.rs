//! Unit tests of site building: load balancing, networks, health, draining, conflicts.

use super::*;
use crate::facts::NetworkFacts;

fn c(name: &str, labels: &[(&str, &str)], nets: &[(&str, &str)]) -> ContainerFacts {
    ContainerFacts {
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
        ..ContainerFacts::labelled(&format!("id-{name}"), name, labels)
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
