//! Container facts: the plain data vhostd needs from one `docker inspect`, and the pure
//! conversion from bollard's inspect model. Everything downstream works on these, never on bollard.

use std::collections::BTreeMap;

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use serde::{Deserialize, Serialize};

/// What one running container looks like to vhostd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerFacts {
    /// Full container id.
    pub id: String,
    /// Name without Docker's leading `/`; used in every log line and error.
    pub name: String,
    /// Whether inspect says it runs (trust inspect over a list after `die`).
    pub running: bool,
    /// Health check state when the container has one; `starting`/`unhealthy` keep it out of upstreams.
    pub health: Option<Health>,
    /// Docker labels.
    pub labels: BTreeMap<String, String>,
    /// Environment, split at the first `=` (later entries win, as in Docker).
    pub env: BTreeMap<String, String>,
    /// Exposed ports as `PORT/PROTO`, sorted.
    pub exposed_ports: Vec<String>,
    /// `HostConfig.NetworkMode` (`host`, `bridge`, `none`, `container:..`, a network name).
    pub network_mode: String,
    /// Networks it is attached to, by name.
    pub networks: BTreeMap<String, NetworkFacts>,
}

/// Health state of a container with a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// The check has not passed yet.
    Starting,
    /// The check passes.
    Healthy,
    /// The check fails.
    Unhealthy,
}

/// A container's address on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NetworkFacts {
    /// IPv4 address, empty on host/none networks.
    pub ip: String,
    /// The network's IPv4 gateway (a host-network backend's address as seen from a bridged nginx).
    pub gateway: String,
}

impl ContainerFacts {
    /// Converts bollard's inspect response; `None` when it lacks an id (never seen from a real engine).
    pub fn from_inspect(c: ContainerInspectResponse) -> Option<ContainerFacts> {
        let id = c.id?;
        let name = c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string();
        let state = c.state.unwrap_or_default();
        let health = state.health.and_then(|h| h.status).and_then(|s| match s {
            HealthStatusEnum::STARTING => Some(Health::Starting),
            HealthStatusEnum::HEALTHY => Some(Health::Healthy),
            HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
            _ => None,
        });
        let config = c.config.unwrap_or_default();
        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let mut exposed_ports = config.exposed_ports.unwrap_or_default();
        exposed_ports.sort();
        let networks = c
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, ep)| {
                let facts = NetworkFacts {
                    ip: ep.ip_address.unwrap_or_default(),
                    gateway: ep.gateway.unwrap_or_default(),
                };
                (name, facts)
            })
            .collect();
        Some(ContainerFacts {
            id,
            name,
            running: state.running.unwrap_or(false),
            health,
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            env,
            exposed_ports,
            network_mode: c
                .host_config
                .and_then(|h| h.network_mode)
                .unwrap_or_default(),
            networks,
        })
    }

    /// A setting from label or env; the label wins. Both are read so nginx-proxy setups work unchanged.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.labels
            .get(key)
            .or_else(|| self.env.get(key))
            .map(String::as_str)
    }

    /// True when the container runs with `--network host`.
    pub fn is_host_network(&self) -> bool {
        self.network_mode == "host"
    }
}

#[cfg(test)]
impl ContainerFacts {
    /// Test builder: a running host-network container `id` called `name` with `labels` and
    /// nothing else; tests set the fields they care about on top.
    pub(crate) fn labelled(id: &str, name: &str, labels: &[(&str, &str)]) -> ContainerFacts {
        ContainerFacts {
            id: id.into(),
            name: name.into(),
            running: true,
            health: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env: Default::default(),
            exposed_ports: vec![],
            network_mode: "host".into(),
            networks: Default::default(),
        }
    }
}
