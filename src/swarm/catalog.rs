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
//!
//! `entries` builds each service's entries; this module holds the catalog and decides reach.

mod entries;

use std::collections::BTreeMap;

use super::model::{Network, Service, Task};
use crate::facts::ContainerFacts;
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
}

/// Whether a service asks to be routed at all (VIRTUAL_HOST or VIRTUAL_HOST_MULTIPORTS, label or env).
fn wants_routing(svc: &Service) -> bool {
    labels::wants_routes(&entries::base_facts(svc))
}

#[cfg(test)]
mod tests;
