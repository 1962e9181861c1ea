//! Docker Swarm services, routed like containers (`--swarm auto|on|off`).
//!
//! When the engine is a Swarm manager, each service with `VIRTUAL_HOST` (service labels,
//! task-container labels or env) becomes [`crate::facts::ContainerFacts`] — at its virtual IP,
//! its tasks' addresses, or its nodes' addresses (see [`catalog`]) — so labels, validation,
//! sites and rendering are the same code as for containers.
//!
//! - [`model`]: the Swarm API's JSON; [`catalog`]: pure mapping to facts;
//! - [`api`]: reads; [`watch`]: events and polls; [`merge`]: joins containers and services;
//! - [`store`]: the certificate store shared by the Swarm's edge nodes (Swarm configs);
//!   [`share`]: how orders use it (one node orders, every node installs and answers).

pub mod api;
pub mod catalog;
pub mod merge;
pub mod model;
pub mod share;
pub mod store;
pub mod watch;

pub use merge::{Merge, attach, is_routed_task};

use crate::config::SwarmArg;
use crate::facts::ContainerFacts;

/// For `vhostd render`: `containers` plus the services, when the engine is a manager (task
/// containers asking for routing then leave the list: their service routes them).
pub async fn with_services(
    mode: SwarmArg,
    host: &str,
    containers: Vec<ContainerFacts>,
) -> Result<Vec<ContainerFacts>, String> {
    if mode == SwarmArg::Off {
        return Ok(containers);
    }
    let api = api::Api::new(host);
    match api.role().await.map_err(|e| e.to_string())? {
        api::Role::Manager => {}
        api::Role::Worker => {
            tracing::error!(
                action = "swarm_worker",
                "this Docker engine is a Swarm worker, which cannot list services: run vhostd on manager nodes (deploy.placement.constraints: [node.role == manager])"
            );
            return Ok(containers);
        }
        api::Role::None => return Ok(containers),
    }
    let cat = watch::load(&api).await?;
    let mut all: Vec<ContainerFacts> = containers
        .into_iter()
        .filter(|c| !is_routed_task(c))
        .collect();
    all.extend(cat.facts());
    Ok(all)
}
