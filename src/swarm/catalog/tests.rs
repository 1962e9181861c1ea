//! Unit tests of the catalog against JSON captured from a real Swarm.

use std::collections::BTreeSet;

use super::*;
use crate::sites::{self, NginxReach};
use crate::swarm::model::Node;

/// A catalog from JSON captured from a real single-node Swarm (dockerd 20.10, see
/// tests/swarm-fixtures): services web-vip (2 replicas on overlay `front`), web-dnsrr
/// (dnsrr, env VIRTUAL_HOST), web-tasklabel (vhostd.endpoint=tasks), web-host
/// (`--network host`), web-pub (host-mode port 80 → 21002), web-evil (hostile label).
fn captured() -> Catalog {
    let services: Vec<Service> =
        serde_json::from_str(include_str!("../../../tests/swarm-fixtures/services.json")).unwrap();
    let tasks: Vec<Task> =
        serde_json::from_str(include_str!("../../../tests/swarm-fixtures/tasks.json")).unwrap();
    let nodes: Vec<Node> =
        serde_json::from_str(include_str!("../../../tests/swarm-fixtures/nodes.json")).unwrap();
    let networks: Vec<Network> =
        serde_json::from_str(include_str!("../../../tests/swarm-fixtures/networks.json")).unwrap();
    let mut cat = Catalog {
        services: services.into_iter().map(|s| (s.id.clone(), s)).collect(),
        nodes: nodes.into_iter().map(|n| (n.id, n.status.addr)).collect(),
        networks: networks.into_iter().map(|n| (n.id.clone(), n)).collect(),
        ..Catalog::default()
    };
    for t in tasks {
        cat.tasks.entry(t.service_id.clone()).or_default().push(t);
    }
    cat
}

fn by_name(facts: &[ContainerFacts], prefix: &str) -> Vec<ContainerFacts> {
    facts
        .iter()
        .filter(|f| f.name == prefix || f.name.starts_with(&format!("{prefix}.")))
        .cloned()
        .collect()
}

fn servers(s: &sites::Sites, host: &str) -> Vec<String> {
    s.sites[&crate::host::HostName::parse(host).unwrap()].locations[&labels::UrlPath::root()]
        .servers
        .clone()
}

#[test]
fn each_service_is_reached_the_way_it_asks() {
    let cat = captured();
    let facts = cat.facts();
    let vip = by_name(&facts, "web-vip");
    assert_eq!(
        vip.len(),
        1,
        "one entry at the virtual IP, not one per task"
    );
    assert_eq!(vip[0].networks["front"].ip, "10.0.1.2");
    assert_eq!(
        by_name(&facts, "web-dnsrr").len(),
        2,
        "one entry per dnsrr task"
    );
    assert_eq!(by_name(&facts, "web-tasklabel").len(), 1);
    let s = sites::build(&facts, &NginxReach::Host, &BTreeSet::new());
    assert_eq!(servers(&s, "vip.example.test"), ["10.0.1.2:80"]);
    let dnsrr = servers(&s, "dnsrr.example.test");
    assert_eq!(dnsrr.len(), 2, "{dnsrr:?}");
    assert!(dnsrr.iter().all(|a| a.starts_with("10.0.1.")), "{dnsrr:?}");
    let tl = servers(&s, "tl.example.test");
    assert!(
        tl.len() == 1 && tl[0].ends_with(":8081"),
        "container label VIRTUAL_PORT: {tl:?}"
    );
    assert_eq!(
        servers(&s, "host.example.test"),
        ["127.0.0.1:21001"],
        "node address"
    );
    assert_eq!(
        servers(&s, "pub.example.test"),
        ["127.0.0.1:21002"],
        "host-mode port 80 is reached at the node's published port"
    );
}

#[test]
fn a_hostile_label_is_reported_once_naming_the_service() {
    let facts = captured().facts();
    let s = sites::build(&facts, &NginxReach::Host, &BTreeSet::new());
    assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
    assert_eq!(s.problems[0].container, "web-evil");
    assert_eq!(s.problems[0].key, "VIRTUAL_HOST");
    assert_eq!(s.sites.len(), 5, "the five other services are served");
}

#[test]
fn service_labels_beat_container_labels_and_env() {
    let mut cat = captured();
    let svc = cat
        .services
        .values_mut()
        .find(|s| s.spec.name == "web-host")
        .unwrap();
    let cs = &mut svc.spec.task_template.container_spec;
    cs.labels.insert("VIRTUAL_PORT".into(), "1".into());
    cs.env.push("VIRTUAL_PORT=2".into());
    let f = by_name(&cat.facts(), "web-host");
    assert_eq!(f[0].setting("VIRTUAL_PORT"), Some("21001"));
    assert_eq!(f[0].setting("VIRTUAL_PATH"), Some("/"), "env is read");
    assert_eq!(f[0].name, "web-host.1", "tasks are named service.slot");
}

#[test]
fn tasks_not_running_and_unlabelled_services_give_nothing() {
    let mut cat = captured();
    for t in cat.tasks.values_mut().flatten() {
        t.status.state = "starting".into();
    }
    let names: BTreeSet<String> = cat.facts().into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["web-evil", "web-vip"].map(String::from).into());
    for s in cat.services.values_mut() {
        s.spec.labels.clear();
        s.spec.task_template.container_spec.env.clear();
    }
    assert!(cat.facts().is_empty());
}

#[test]
fn only_services_routed_to_tasks_or_nodes_need_the_task_list() {
    let cat = captured();
    let mut need: Vec<&str> = cat
        .services
        .values()
        .filter(|s| cat.needs_tasks(s))
        .map(|s| s.spec.name.as_str())
        .collect();
    need.sort();
    assert_eq!(need, ["web-dnsrr", "web-host", "web-pub", "web-tasklabel"]);
    assert!(cat.unknown_networks().is_empty());
    assert!(!cat.unknown_nodes());
}
