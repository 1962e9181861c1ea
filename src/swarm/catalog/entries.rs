//! Pure: one service → its [`ContainerFacts`] entries at the addresses its [`Reach`] names:
//! the virtual IPs, each running task's addresses, or each task's node address (with a
//! host-mode published port).

use std::collections::BTreeMap;

use super::{Catalog, NODE_NETWORK, Reach};
use crate::facts::{ContainerFacts, NetworkFacts};
use crate::labels;
use crate::swarm::model::{PortConfig, Service, Task};

impl Catalog {
    /// The entries of `svc`: none when it asks for no routing, one under its name when its
    /// labels are invalid, else one per address its reach names.
    pub(super) fn service_facts(&self, svc: &Service) -> Vec<ContainerFacts> {
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
    let host = |p: &&PortConfig| p.publish_mode == "host" && p.target_port == target;
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

/// A service as one container: service labels over container labels, env, target ports.
pub(super) fn base_facts(svc: &Service) -> ContainerFacts {
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
