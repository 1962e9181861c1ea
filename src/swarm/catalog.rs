//! Pure: the Swarm state vhostd knows (services, their running tasks, node addresses, network
//! names) → [`ContainerFacts`], so that labels, validation, sites and rendering stay exactly as
//! for containers.
//!
//! How a service is reached:
//! - **vip** (default): one entry whose networks hold the service's virtual IP per overlay
//!   network (stable across rolling updates: an update changes nothing nginx sees);
//! - **tasks**: `endpoint_mode: dnsrr`, or the label `vhostd.endpoint=tasks`: one entry per
//!   running task with its own addresses;
//! - **node**: a host-network service, or one published in `host` mode: one entry per running
//!   task at its node's advertise address (with the published port for host-mode ports).
//!
//! A service whose labels are invalid gives one entry, under the service's name, so the core
//! reports each bad key once, naming the service.

use std::collections::BTreeMap;

use super::model::{Network, Service, Task};
use crate::facts::{ContainerFacts, NetworkFacts};
use crate::labels;

/// Label asking for task addresses (`tasks`) instead of the virtual IP (`vip`, the default).
pub const ENDPOINT_LABEL: &str = "vhostd.endpoint";
/// Label Docker puts on every task container: such containers are routed through their service.
pub const TASK_CONTAINER_LABEL: &str = "com.docker.swarm.service.id";
/// Pseudo network name under which node-address entries are listed.
pub const NODE_NETWORK: &str = "host";

/// Everything known about the Swarm, kept current by the watcher.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Services by id.
    pub services: BTreeMap<String, Service>,
    /// Running tasks by service id (only for services routed to tasks or nodes).
    pub tasks: BTreeMap<String, Vec<Task>>,
    /// Node advertise addresses by node id.
    pub nodes: BTreeMap<String, String>,
    /// Networks by id.
    pub networks: BTreeMap<String, Network>,
}

/// How nginx reaches a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Its virtual IP on each overlay network.
    Vip,
    /// Each running task's own address.
    Tasks,
    /// Each running task's node address (host network or host-mode published port).
    Node,
}

impl Catalog {
    /// Every service's facts, in service-name order.
    pub fn facts(&self) -> Vec<ContainerFacts> {
        let mut services: Vec<&Service> = self.services.values().collect();
        services.sort_by(|a, b| a.spec.name.cmp(&b.spec.name).then(a.id.cmp(&b.id)));
        services
            .into_iter()
            .flat_map(|s| self.service_facts(s))
            .collect()
    }

    /// True when routing `svc` needs its tasks (so `GET /tasks` is worth polling).
    pub fn needs_tasks(&self, svc: &Service) -> bool {
        wants_routing(svc) && self.reach(svc) != Reach::Vip
    }

    /// Network ids that services name but the catalog does not know yet.
    pub fn unknown_networks(&self) -> Vec<String> {
        let vips = self.services.values().flat_map(|s| {
            let spec = s.spec.task_template.networks.iter().map(|n| &n.target);
            spec.chain(s.endpoint.virtual_ips.iter().map(|v| &v.network_id))
        });
        let mut out: Vec<String> = vips
            .filter(|id| !id.is_empty() && !self.networks.contains_key(*id))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// True when some running task sits on a node whose address is not known.
    pub fn unknown_nodes(&self) -> bool {
        self.tasks
            .values()
            .flatten()
            .any(|t| !self.nodes.contains_key(&t.node_id))
    }

    /// How `svc` is reached (see the module doc).
    pub fn reach(&self, svc: &Service) -> Reach {
        let label = svc.spec.labels.get(ENDPOINT_LABEL).or_else(|| {
            svc.spec
                .task_template
                .container_spec
                .labels
                .get(ENDPOINT_LABEL)
        });
        if svc.spec.endpoint_spec.mode == "dnsrr" || label.is_some_and(|v| v.trim() == "tasks") {
            return Reach::Tasks;
        }
        let drivers: Vec<&str> = svc
            .spec
            .task_template
            .networks
            .iter()
            .filter_map(|n| self.networks.get(&n.target))
            .filter(|n| !n.ingress)
            .map(|n| n.driver.as_str())
            .collect();
        if drivers.contains(&"host") {
            return Reach::Node;
        }
        let host_mode = svc.endpoint.ports.iter().any(|p| p.publish_mode == "host");
        if host_mode && drivers.is_empty() {
            return Reach::Node;
        }
        Reach::Vip
    }

    fn service_facts(&self, svc: &Service) -> Vec<ContainerFacts> {
        let base = base_facts(svc);
        match labels::parse(&base) {
            Ok(None) => return Vec::new(),
            // The core reports every bad key once, under the service's name.
            Err(_) => return vec![base],
            Ok(Some(_)) => {}
        }
        match self.reach(svc) {
            Reach::Vip => vec![self.vip_facts(svc, base)],
            Reach::Tasks => self
                .running(svc)
                .map(|t| task_facts(svc, &base, t))
                .collect(),
            Reach::Node => self
                .running(svc)
                .map(|t| self.node_facts(svc, &base, t))
                .collect(),
        }
    }

    fn running<'a>(&'a self, svc: &Service) -> impl Iterator<Item = &'a Task> {
        self.tasks
            .get(&svc.id)
            .into_iter()
            .flatten()
            .filter(|t| t.status.state == "running" && t.desired_state == "running")
    }

    fn vip_facts(&self, svc: &Service, mut f: ContainerFacts) -> ContainerFacts {
        for vip in &svc.endpoint.virtual_ips {
            let Some(net) = self.networks.get(&vip.network_id) else {
                continue;
            };
            let ip = strip_prefix(&vip.addr);
            if !net.ingress && !ip.is_empty() {
                f.networks.insert(net.name.clone(), network(ip));
            }
        }
        f
    }

    fn node_facts(&self, svc: &Service, base: &ContainerFacts, t: &Task) -> ContainerFacts {
        let mut f = task_facts(svc, base, t);
        f.networks.clear();
        if let Some(addr) = self.nodes.get(&t.node_id).filter(|a| !a.is_empty()) {
            f.networks.insert(NODE_NETWORK.into(), network(addr));
        }
        // A host-mode published port: nginx connects to the node's published port, which
        // the route's port (VIRTUAL_PORT, else the single target port) is mapped to.
        // Only for one upstream port: VIRTUAL_HOST_MULTIPORTS in host mode keeps its ports.
        if let Ok(Some(routes)) = labels::parse(base)
            && let Some(port) = single_port(&routes)
            && let Some(published) = published_port(svc, t, port)
        {
            f.labels
                .insert("VIRTUAL_PORT".into(), published.to_string());
        }
        f
    }
}

/// The one upstream port of `routes`, when all of its routes share it.
fn single_port(routes: &labels::Routes) -> Option<u16> {
    let first = routes.routes.first()?.port;
    routes
        .routes
        .iter()
        .all(|r| r.port == first)
        .then_some(first)
}

/// The node port a host-mode published `target` port is bound to, if it is published so.
fn published_port(svc: &Service, t: &Task, target: u16) -> Option<u16> {
    let host = |p: &&super::model::PortConfig| p.publish_mode == "host" && p.target_port == target;
    let declared = svc
        .endpoint
        .ports
        .iter()
        .find(host)
        .map(|p| p.published_port);
    let bound = t
        .status
        .port_status
        .ports
        .iter()
        .find(host)
        .map(|p| p.published_port);
    bound.or(declared).filter(|p| *p != 0)
}

/// Whether a service asks to be routed at all (VIRTUAL_HOST or VIRTUAL_HOST_MULTIPORTS, label or env).
fn wants_routing(svc: &Service) -> bool {
    labels::wants_routes(&base_facts(svc))
}

/// A service as one container: service labels over container labels, env, target ports.
fn base_facts(svc: &Service) -> ContainerFacts {
    let cs = &svc.spec.task_template.container_spec;
    let mut labels = cs.labels.clone();
    labels.extend(svc.spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let env = cs
        .env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut exposed_ports: Vec<String> = svc
        .spec
        .endpoint_spec
        .ports
        .iter()
        .map(|p| format!("{}/{}", p.target_port, p.protocol))
        .collect();
    exposed_ports.sort();
    exposed_ports.dedup();
    ContainerFacts {
        id: format!("swarm-service:{}", svc.id),
        name: svc.spec.name.clone(),
        running: true,
        health: None,
        labels,
        env,
        exposed_ports,
        network_mode: "swarm-service".into(),
        networks: BTreeMap::new(),
    }
}

/// One running task of `svc` as a container on its task addresses.
fn task_facts(svc: &Service, base: &ContainerFacts, t: &Task) -> ContainerFacts {
    let mut f = base.clone();
    f.id = format!("swarm-task:{}", t.id);
    f.name = match t.slot {
        Some(slot) if slot > 0 => format!("{}.{slot}", svc.spec.name),
        _ => format!("{}.{}", svc.spec.name, t.node_id),
    };
    for a in &t.networks_attachments {
        let ip = a.addresses.first().map(|s| strip_prefix(s)).unwrap_or("");
        if !a.network.spec.ingress && !ip.is_empty() {
            f.networks.insert(a.network.spec.name.clone(), network(ip));
        }
    }
    f
}

fn network(ip: &str) -> NetworkFacts {
    NetworkFacts {
        ip: ip.to_string(),
        gateway: String::new(),
    }
}

/// `10.0.1.2/24` → `10.0.1.2`.
fn strip_prefix(addr: &str) -> &str {
    addr.split('/').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::{self, NginxReach};
    use std::collections::BTreeSet;

    /// A catalog from JSON captured from a real single-node Swarm (dockerd 20.10, see
    /// tests/swarm-fixtures): services web-vip (2 replicas on overlay `front`), web-dnsrr
    /// (dnsrr, env VIRTUAL_HOST), web-tasklabel (vhostd.endpoint=tasks), web-host
    /// (`--network host`), web-pub (host-mode port 80 → 21002), web-evil (hostile label).
    fn captured() -> Catalog {
        let services: Vec<Service> =
            serde_json::from_str(include_str!("../../tests/swarm-fixtures/services.json")).unwrap();
        let tasks: Vec<Task> =
            serde_json::from_str(include_str!("../../tests/swarm-fixtures/tasks.json")).unwrap();
        let nodes: Vec<super::super::model::Node> =
            serde_json::from_str(include_str!("../../tests/swarm-fixtures/nodes.json")).unwrap();
        let networks: Vec<Network> =
            serde_json::from_str(include_str!("../../tests/swarm-fixtures/networks.json")).unwrap();
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
}
