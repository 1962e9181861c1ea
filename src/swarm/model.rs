//! The few fields of the Swarm API's services, tasks, nodes and networks that routing needs,
//! read straight from the engine's JSON (bollard's `Task` lacks `NetworksAttachments`).
//!
//! Plain serde data, no I/O: fixtures captured from a real engine deserialize into these.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// Docker writes `null` for empty lists and maps: read it as empty.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// One service (`GET /services`, `GET /services/ID`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Service {
    /// Service id.
    #[serde(rename = "ID")]
    pub id: String,
    /// What the user declared.
    pub spec: ServiceSpec,
    /// What the Swarm allocated (virtual IPs, published ports).
    pub endpoint: Endpoint,
}

/// A service's declared spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceSpec {
    /// Service name; names the service in every log line and error.
    pub name: String,
    /// Service labels (a stack file's `deploy.labels`).
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// The task template.
    pub task_template: TaskTemplate,
    /// Endpoint mode and ports as declared.
    pub endpoint_spec: EndpointSpec,
}

/// The part of a service's task template routing reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskTemplate {
    /// Labels and env of the task containers.
    pub container_spec: ContainerSpec,
    /// Networks the tasks attach to, by network id.
    #[serde(deserialize_with = "nullable")]
    pub networks: Vec<NetworkTarget>,
}

/// Task container labels (a stack file's service-level `labels:`) and env (`environment:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSpec {
    /// Container labels.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// `KEY=VALUE` entries.
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
}

/// One network a service attaches to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkTarget {
    /// The network's id.
    pub target: String,
}

/// Declared endpoint: `vip` (default) or `dnsrr`, and published ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSpec {
    /// `vip` or `dnsrr`.
    pub mode: String,
    /// Published ports.
    #[serde(deserialize_with = "nullable")]
    pub ports: Vec<PortConfig>,
}

/// One published port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortConfig {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// Port inside the task.
    pub target_port: u16,
    /// Port on the node (host mode) or on every node (ingress); 0 = not yet assigned.
    pub published_port: u16,
    /// `host` or `ingress`.
    pub publish_mode: String,
}

/// What the Swarm allocated to a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Endpoint {
    /// Published ports, with assigned numbers.
    #[serde(deserialize_with = "nullable")]
    pub ports: Vec<PortConfig>,
    /// One virtual IP per network (vip mode).
    #[serde(rename = "VirtualIPs", deserialize_with = "nullable")]
    pub virtual_ips: Vec<VirtualIp>,
}

/// A service's virtual IP on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VirtualIp {
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// `10.0.1.2/24`; empty on the host network.
    pub addr: String,
}

/// One task (`GET /tasks`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Task {
    /// Task id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its service.
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    /// Replica number (replicated services); absent for global ones.
    pub slot: Option<u64>,
    /// The node it is placed on.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// Observed state.
    pub status: TaskStatus,
    /// What the orchestrator wants (`running`, `shutdown`, ...).
    pub desired_state: String,
    /// Its addresses, per network.
    #[serde(deserialize_with = "nullable")]
    pub networks_attachments: Vec<Attachment>,
}

/// A task's observed state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskStatus {
    /// `running` once the container runs (and passed its health check, if it has one).
    pub state: String,
    /// Host-mode ports actually bound on the node.
    pub port_status: PortStatus,
}

/// Ports a task bound on its node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortStatus {
    /// The bound ports.
    #[serde(deserialize_with = "nullable")]
    pub ports: Vec<PortConfig>,
}

/// A task's attachment to one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Attachment {
    /// The network.
    pub network: AttachedNetwork,
    /// `10.0.1.5/24` addresses.
    #[serde(deserialize_with = "nullable")]
    pub addresses: Vec<String>,
}

/// The network of an attachment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AttachedNetwork {
    /// Network id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its spec (name).
    pub spec: AttachedNetworkSpec,
}

/// Name and kind of an attached network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AttachedNetworkSpec {
    /// Network name.
    pub name: String,
    /// True for the routing mesh's `ingress` network, which nginx never joins.
    pub ingress: bool,
}

/// One node (`GET /nodes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Node {
    /// Node id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its state and address.
    pub status: NodeStatus,
}

/// A node's observed status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeStatus {
    /// The node's advertise address (host-network and host-mode tasks are reached there).
    pub addr: String,
}

/// One network (`GET /networks/ID`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Network {
    /// Network id.
    #[serde(rename = "Id")]
    pub id: String,
    /// Network name, as nginx's container sees it.
    pub name: String,
    /// `overlay`, `host`, `bridge`, ...
    pub driver: String,
    /// True for the routing mesh's `ingress` network.
    pub ingress: bool,
}
