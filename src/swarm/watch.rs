//! Follows the Swarm while the engine is a manager: one full read, then `service` events
//! (one inspect of the named service), a task list every [`TASK_POLL`] while some service is
//! routed to tasks or nodes (Docker has no task events; every [`FAST_POLL`] for a few seconds
//! after a service event), `/info` every [`ROLE_POLL`] to notice a
//! Swarm joined, left, or a demotion, and a full re-read every [`FULL_RESYNC`].
//! Sends whole [`SwarmView`]s, only when they change; owns no routing decision.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::EventMessageTypeEnum;
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::api::{Api, Role};
use super::catalog::Catalog;
use crate::backoff::Backoff;
use crate::config::SwarmArg;
use crate::facts::ContainerFacts;

/// How often running tasks are listed (one call) while some service needs them.
pub const TASK_POLL: Duration = Duration::from_secs(2);
/// After a service event, tasks are listed this often for [`FAST_FOR`]: a created or updated
/// service's new tasks start about a second later, and no event says when.
pub const FAST_POLL: Duration = Duration::from_millis(250);
/// How long the fast task poll lasts after a service event.
pub const FAST_FOR: Duration = Duration::from_secs(5);
/// How often `/info` is read to notice a Swarm joined or left, or a demotion.
pub const ROLE_POLL: Duration = Duration::from_secs(5);
/// How often everything is re-read, repairing any drift.
pub const FULL_RESYNC: Duration = Duration::from_secs(60);

/// What the watcher knows about Swarm services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmView {
    /// No services are read (not a manager, not in a Swarm, or `--swarm off`): task
    /// containers count as plain containers.
    Off,
    /// The engine is a manager: every routed service, as facts (task containers are left to
    /// their service).
    Services(Vec<ContainerFacts>),
}

/// Reads everything: services, the networks they name, running tasks where needed, nodes.
pub async fn load(api: &Api) -> Result<Catalog, String> {
    let mut cat = Catalog {
        services: api
            .services()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect(),
        ..Catalog::default()
    };
    complete(api, &mut cat).await?;
    refresh_tasks(api, &mut cat).await?;
    Ok(cat)
}

/// Looks up networks the services name and nodes the tasks sit on that are not known yet.
async fn complete(api: &Api, cat: &mut Catalog) -> Result<(), String> {
    for id in cat.unknown_networks() {
        if let Some(n) = api.network(&id).await.map_err(|e| e.to_string())? {
            cat.networks.insert(id, n);
        }
    }
    if cat.unknown_nodes() {
        let nodes = api.nodes().await.map_err(|e| e.to_string())?;
        cat.nodes = nodes.into_iter().map(|n| (n.id, n.status.addr)).collect();
    }
    Ok(())
}

/// One `GET /tasks` for every service routed to tasks or nodes (none when no service is).
async fn refresh_tasks(api: &Api, cat: &mut Catalog) -> Result<(), String> {
    let wanted: Vec<String> = cat
        .services
        .values()
        .filter(|s| cat.needs_tasks(s))
        .map(|s| s.id.clone())
        .collect();
    cat.tasks.clear();
    if wanted.is_empty() {
        return Ok(());
    }
    for t in api.running_tasks(None).await.map_err(|e| e.to_string())? {
        if wanted.contains(&t.service_id) {
            cat.tasks.entry(t.service_id.clone()).or_default().push(t);
        }
    }
    complete(api, cat).await
}

/// A service event: re-read that one service (and its tasks if it needs them).
async fn service_changed(api: &Api, cat: &mut Catalog, id: &str) -> Result<(), String> {
    cat.tasks.remove(id);
    match api.service(id).await.map_err(|e| e.to_string())? {
        None => {
            cat.services.remove(id);
            return Ok(());
        }
        Some(svc) => cat.services.insert(id.to_string(), svc),
    };
    complete(api, cat).await?;
    if cat.services.get(id).is_some_and(|s| cat.needs_tasks(s)) {
        let tasks = api
            .running_tasks(Some(id))
            .await
            .map_err(|e| e.to_string())?;
        cat.tasks.insert(id.to_string(), tasks);
        complete(api, cat).await?;
    }
    Ok(())
}

/// Follows the Swarm until shutdown, per `mode` (never called with `off`).
pub async fn run(
    mode: SwarmArg,
    host: String,
    tx: mpsc::Sender<SwarmView>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api = Api::new(&host);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    let mut last_role = None;
    loop {
        let result = tokio::select! {
            r = cycle(mode, &api, &host, &tx, &mut last_role, &mut backoff) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let Err(reason) = result else { continue };
        if tx.is_closed() {
            return;
        }
        last_role = None;
        let delay = backoff.next_delay();
        tracing::warn!(action = "swarm_retry", error = %reason, retry_in_ms = delay.as_millis() as u64, "cannot read the Swarm; keeping the services last read");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Reads the role; follows the Swarm while a manager, else reports Off and waits one poll.
async fn cycle(
    mode: SwarmArg,
    api: &Api,
    host: &str,
    tx: &mpsc::Sender<SwarmView>,
    last_role: &mut Option<Role>,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let role = api.role().await.map_err(|e| e.to_string())?;
    if *last_role != Some(role) {
        log_role(mode, role);
        *last_role = Some(role);
    }
    if role == Role::Manager {
        return follow(api, host, tx, backoff).await;
    }
    if tx.send(SwarmView::Off).await.is_err() {
        return Ok(());
    }
    backoff.reset();
    tokio::time::sleep(ROLE_POLL).await;
    Ok(())
}

fn log_role(mode: SwarmArg, role: Role) {
    match (role, mode) {
        (Role::Manager, _) => {
            tracing::info!(
                action = "swarm_manager",
                "the engine is a Swarm manager: services are routed as well as containers"
            )
        }
        (Role::Worker, _) => tracing::error!(
            action = "swarm_worker",
            "this Docker engine is a Swarm worker, which cannot list services: run vhostd on manager nodes \
             (stack file: deploy.placement.constraints: [node.role == manager]); until then only containers are routed"
        ),
        (Role::None, SwarmArg::On) => tracing::error!(
            action = "swarm_inactive",
            "--swarm on, but this Docker engine is not in a Swarm: only containers are routed until it joins one"
        ),
        (Role::None, _) => {
            tracing::debug!(action = "swarm_inactive", "not in a Swarm: containers only")
        }
    }
}

/// Follows events and polls while the engine is a manager; `Ok` when it no longer is.
async fn follow(
    api: &Api,
    host: &str,
    tx: &mpsc::Sender<SwarmView>,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let docker = crate::docker::connect(host)
        .await
        .map_err(|e| e.to_string())?;
    let since = (time::OffsetDateTime::now_utc().unix_timestamp() - 1).to_string();
    let filters = HashMap::from([("type", vec!["service"])]);
    let opts = EventsOptionsBuilder::default()
        .since(&since)
        .filters(&filters)
        .build();
    let mut events = docker.events(Some(opts));
    let mut cat = load(api).await?;
    let mut sent = None;
    send(tx, &cat, &mut sent).await;
    tracing::info!(
        action = "swarm_sync",
        services = cat.services.len(),
        "read the Swarm's services"
    );
    backoff.reset();
    let start = tokio::time::Instant::now();
    let mut tasks_tick = tokio::time::interval_at(start + FAST_POLL, FAST_POLL);
    let (mut fast_until, mut next_poll) = (start, start + TASK_POLL);
    let mut role_tick = tokio::time::interval_at(start + ROLE_POLL, ROLE_POLL);
    let mut full_tick = tokio::time::interval_at(start + FULL_RESYNC, FULL_RESYNC);
    loop {
        tokio::select! {
            ev = events.next() => {
                let ev = ev.ok_or("the event stream ended")?.map_err(|e| format!("event stream: {e}"))?;
                let id = ev.actor.as_ref().and_then(|a| a.id.clone());
                if let (Some(EventMessageTypeEnum::SERVICE), Some(id)) = (ev.typ, id) {
                    tracing::debug!(service = %id, event = ev.action.as_deref().unwrap_or(""), action = "swarm_event", "service event");
                    service_changed(api, &mut cat, &id).await?;
                    fast_until = tokio::time::Instant::now() + FAST_FOR;
                }
            }
            now = tasks_tick.tick() => {
                let due = now < fast_until || now >= next_poll;
                if due && cat.services.values().any(|s| cat.needs_tasks(s)) {
                    refresh_tasks(api, &mut cat).await?;
                    next_poll = now + TASK_POLL;
                }
            }
            _ = role_tick.tick() => {
                if api.role().await.map_err(|e| e.to_string())? != Role::Manager {
                    return Ok(());
                }
            }
            _ = full_tick.tick() => cat = load(api).await?,
        }
        send(tx, &cat, &mut sent).await;
    }
}

/// Sends the catalog's facts when they differ from the last ones sent.
async fn send(tx: &mpsc::Sender<SwarmView>, cat: &Catalog, sent: &mut Option<Vec<ContainerFacts>>) {
    let facts = cat.facts();
    if sent.as_ref() != Some(&facts) {
        *sent = Some(facts.clone());
        let _ = tx.send(SwarmView::Services(facts)).await;
    }
}
