//! Docker engine I/O: connect (negotiating the API version), list + inspect on (re)connect,
//! then follow the event stream, inspecting only the container an event names. Reconnects
//! with jittered backoff and resyncs fully. Sends [`Update`]s; owns no state of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, watch};

use crate::backoff::Backoff;
use crate::facts::ContainerFacts;

/// A Docker failure, naming the operation.
#[derive(Debug, thiserror::Error)]
#[error("docker {op} failed: {source} (is dockerd running and --docker-host right?)")]
pub struct DockerError {
    /// What was being done.
    pub op: String,
    /// bollard's error.
    #[source]
    pub source: bollard::errors::Error,
}

fn derr(op: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    move |source| DockerError {
        op: op.into(),
        source,
    }
}

/// What the watcher tells the controller.
#[derive(Debug)]
pub enum Update {
    /// Connected (or reconnected) with this negotiated client; sent before the first `Synced`.
    Connected(Docker),
    /// A full, fresh view of every running container (after connect, reconnect or resync).
    Synced(Vec<ContainerFacts>),
    /// One container's new facts (it may have stopped: `running` says).
    Upsert(ContainerFacts),
    /// A container (re)started: its new facts; any earlier drain is over.
    Started(ContainerFacts),
    /// A container was asked to stop: stop sending it new requests while it shuts down.
    Draining(String),
    /// A container is gone.
    Remove(String),
    /// A container with routing labels was created and not yet started: a start is coming
    /// (`docker compose up` creates every container, then starts them), so reloads can wait.
    Created(String),
    /// The connection is lost; the controller keeps the last config as it is.
    Lost(String),
}

/// Counts Docker API requests (exported as `vhostd_docker_api_requests_total`).
pub type ApiCounter = prometheus_client::metrics::counter::Counter;

/// Connects to `host` (unix:// or tcp://) and negotiates the API version (engines from 1.41 up).
pub async fn connect(host: &str) -> Result<Docker, DockerError> {
    let docker = if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_http(host, 120, bollard::API_DEFAULT_VERSION)
    }
    .map_err(derr(format!("connect to {host}")))?;
    docker
        .negotiate_version()
        .await
        .map_err(derr(format!("version negotiation with {host}")))
}

/// Lists running containers and inspects each: one list plus one inspect per container.
pub async fn snapshot(
    docker: &Docker,
    api: &ApiCounter,
) -> Result<Vec<ContainerFacts>, DockerError> {
    let opts = ListContainersOptionsBuilder::default().all(false).build();
    let list = docker
        .list_containers(Some(opts))
        .await
        .map_err(derr("list containers"))?;
    api.inc();
    let mut out = Vec::with_capacity(list.len());
    for summary in list {
        let Some(id) = summary.id else { continue };
        if let Some(f) = inspect(docker, &id, api).await? {
            out.push(f);
        }
    }
    Ok(out)
}

/// Inspects one container; `None` when it no longer exists.
async fn inspect(
    docker: &Docker,
    id: &str,
    api: &ApiCounter,
) -> Result<Option<ContainerFacts>, DockerError> {
    api.inc();
    match docker.inspect_container(id, None).await {
        Ok(c) => Ok(ContainerFacts::from_inspect(c)),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(derr(format!("inspect container {id}"))(e)),
    }
}

/// What an event asks of the inventory.
#[derive(Debug, PartialEq, Eq)]
pub enum EventAction {
    /// Re-inspect this container.
    Inspect(String),
    /// It (re)started: re-inspect it, and forget any earlier drain.
    Started(String),
    /// It was asked to stop (SIGTERM/SIGINT/SIGQUIT): take it out of rotation now, no inspect.
    Drain(String),
    /// Drop this container (no inspect needed).
    Remove(String),
    /// Created with routing labels; expect its start (no inspect: nothing to render yet).
    Created(String),
}

/// Labels that make a created container worth waiting for (a Swarm task container is left out:
/// the Swarm starts it at once, and it may be routed through its service instead).
fn announces_a_site(attrs: Option<&HashMap<String, String>>) -> bool {
    attrs.is_some_and(|a| {
        (a.contains_key("VIRTUAL_HOST") || a.contains_key("VIRTUAL_HOST_MULTIPORTS"))
            && !a.contains_key("com.docker.swarm.task.id")
    })
}

/// Pure: the action an event calls for, or `None` for events that change nothing we render.
pub fn event_action(ev: &EventMessage) -> Option<EventAction> {
    let action = ev.action.as_deref()?;
    let actor = ev.actor.as_ref()?;
    match ev.typ? {
        EventMessageTypeEnum::CONTAINER => {
            let id = actor.id.clone()?;
            let verb = action.split(':').next().unwrap_or(action).trim();
            match verb {
                "destroy" => Some(EventAction::Remove(id)),
                "create" => {
                    announces_a_site(actor.attributes.as_ref()).then_some(EventAction::Created(id))
                }
                "start" | "restart" => Some(EventAction::Started(id)),
                "kill" => {
                    let signal = actor.attributes.as_ref()?.get("signal")?;
                    matches!(
                        signal.as_str(),
                        "15" | "2" | "3" | "SIGTERM" | "SIGINT" | "SIGQUIT"
                    )
                    .then_some(EventAction::Drain(id))
                }
                "die" | "stop" | "health_status" | "pause" | "unpause" | "rename" | "update" => {
                    Some(EventAction::Inspect(id))
                }
                _ => None,
            }
        }
        EventMessageTypeEnum::NETWORK if action == "connect" || action == "disconnect" => {
            let attrs = actor.attributes.as_ref()?;
            // Joining `host` or `none` changes no address; start/die already say everything.
            if matches!(attrs.get("type").map(String::as_str), Some("host" | "null")) {
                return None;
            }
            attrs.get("container").cloned().map(EventAction::Inspect)
        }
        _ => None,
    }
}

/// Follows Docker until `shutdown`, sending updates; reconnects with backoff and resyncs.
/// `resync` asks for a full re-list (the periodic drift repair).
pub async fn watch(
    host: String,
    tx: mpsc::Sender<Update>,
    resync: Arc<Notify>,
    api: ApiCounter,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = reconnect_backoff(&host);
    let mut down_since: Option<tokio::time::Instant> = None;
    loop {
        let result = tokio::select! {
            r = follow(&host, &tx, &resync, &api, &mut backoff) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let reason = match result {
            Ok(()) => "event stream ended".to_string(),
            Err(e) => e.to_string(),
        };
        if tx.send(Update::Lost(reason.clone())).await.is_err() {
            return;
        }
        // A backoff back at its start means the last connection worked: a new loss.
        if backoff.base() == reconnect_backoff(&host).base() {
            down_since = None;
        }
        let delay = backoff.next_delay();
        // One warning per loss (and one a minute while it lasts); every retry at debug level.
        let now = tokio::time::Instant::now();
        if down_since.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
            down_since = Some(now);
            tracing::warn!(action = "docker_reconnect", error = %reason, retry_in_ms = delay.as_millis() as u64, "lost Docker; keeping the live config and retrying");
        } else {
            tracing::debug!(action = "docker_reconnect", error = %reason, retry_in_ms = delay.as_millis() as u64, "Docker still unreachable; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Reconnect pacing: a local socket costs nothing to try, so its engine's return is noticed
/// within half a second; a TCP engine (maybe remote) backs off up to 30 s.
pub fn reconnect_backoff(host: &str) -> Backoff {
    if host.starts_with("unix://") {
        Backoff::new(Duration::from_millis(100), Duration::from_millis(500))
    } else {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(30))
    }
}

/// The update an event makes (inspecting the container when the event calls for it).
async fn update_for(
    docker: &Docker,
    ev: &EventMessage,
    api: &ApiCounter,
) -> Result<Option<Update>, DockerError> {
    Ok(Some(match event_action(ev) {
        None => return Ok(None),
        Some(EventAction::Remove(id)) => Update::Remove(id),
        Some(EventAction::Drain(id)) => Update::Draining(id),
        Some(EventAction::Created(id)) => Update::Created(id),
        Some(EventAction::Inspect(id)) => match inspect(docker, &id, api).await? {
            Some(f) => Update::Upsert(f),
            None => Update::Remove(id),
        },
        Some(EventAction::Started(id)) => match inspect(docker, &id, api).await? {
            Some(f) => Update::Started(f),
            None => Update::Remove(id),
        },
    }))
}

async fn follow(
    host: &str,
    tx: &mpsc::Sender<Update>,
    resync: &Notify,
    api: &ApiCounter,
    backoff: &mut Backoff,
) -> Result<(), DockerError> {
    let docker = connect(host).await?;
    api.inc();
    if tx.send(Update::Connected(docker.clone())).await.is_err() {
        return Ok(());
    }
    // Subscribe from a moment before the list, so an event racing the list is replayed, not lost.
    let since = (time::OffsetDateTime::now_utc().unix_timestamp() - 1).to_string();
    let filters = HashMap::from([("type", vec!["container", "network"])]);
    let opts = EventsOptionsBuilder::default()
        .since(&since)
        .filters(&filters)
        .build();
    let mut events = docker.events(Some(opts));
    api.inc();
    let all = snapshot(&docker, api).await?;
    tracing::info!(action = "docker_sync", containers = all.len(), api_version = %docker.client_version(), "synced with Docker");
    if tx.send(Update::Synced(all)).await.is_err() {
        return Ok(());
    }
    backoff.reset();
    loop {
        tokio::select! {
            ev = events.next() => {
                let ev = match ev {
                    None => return Ok(()),
                    Some(r) => r.map_err(derr("event stream"))?,
                };
                let Some(update) = update_for(&docker, &ev, api).await? else {
                    continue;
                };
                if tx.send(update).await.is_err() {
                    return Ok(());
                }
            }
            _ = resync.notified() => {
                let all = snapshot(&docker, api).await?;
                if tx.send(Update::Synced(all)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_socket_is_retried_within_half_a_second() {
        let mut b = reconnect_backoff("unix:///run/docker.sock");
        assert!((0..20).all(|_| b.next_delay() <= Duration::from_millis(500)));
        let mut b = reconnect_backoff("tcp://10.0.0.1:2375");
        assert!((0..20).map(|_| b.next_delay()).max() > Some(Duration::from_secs(10)));
    }

    fn ev(json: &str) -> EventMessage {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn events_map_to_one_action() {
        // Shapes as the 20.10 engine sends them (see tests/golden/events.jsonl).
        let start = ev(
            r#"{"Type":"container","Action":"start","Actor":{"ID":"c1","Attributes":{"VIRTUAL_HOST":"a.com"}}}"#,
        );
        assert_eq!(
            event_action(&start),
            Some(EventAction::Started("c1".into()))
        );
        let health = ev(
            r#"{"Type":"container","Action":"health_status: healthy","Actor":{"ID":"c1","Attributes":{}}}"#,
        );
        assert_eq!(
            event_action(&health),
            Some(EventAction::Inspect("c1".into()))
        );
        // Recorded from dockerd 20.10: `docker stop` sends kill signal=15, then die, stop.
        let term = ev(
            r#"{"Type":"container","Action":"kill","Actor":{"ID":"c1","Attributes":{"signal":"15","name":"web"}}}"#,
        );
        assert_eq!(event_action(&term), Some(EventAction::Drain("c1".into())));
        let hup = ev(
            r#"{"Type":"container","Action":"kill","Actor":{"ID":"c1","Attributes":{"signal":"1","name":"web"}}}"#,
        );
        assert_eq!(
            event_action(&hup),
            None,
            "SIGHUP (reload) keeps the container in rotation"
        );
        let destroy =
            ev(r#"{"Type":"container","Action":"destroy","Actor":{"ID":"c1","Attributes":{}}}"#);
        assert_eq!(
            event_action(&destroy),
            Some(EventAction::Remove("c1".into()))
        );
        // Recorded from dockerd 20.10 (`docker create -l VIRTUAL_HOST=...`).
        let create = ev(
            r#"{"status":"create","id":"b3ac1bb51da4","from":"local/busybox:latest","Type":"container","Action":"create","Actor":{"ID":"b3ac1bb51da4","Attributes":{"VIRTUAL_HOST":"a.example.com","image":"local/busybox:latest","name":"capt"}},"scope":"local","time":1796216759,"timeNano":1796216759203917156}"#,
        );
        assert_eq!(
            event_action(&create),
            Some(EventAction::Created("b3ac1bb51da4".into()))
        );
        let unlabelled = ev(
            r#"{"Type":"container","Action":"create","Actor":{"ID":"c3","Attributes":{"image":"busybox","name":"x"}}}"#,
        );
        assert_eq!(
            event_action(&unlabelled),
            None,
            "only routed containers are awaited"
        );
        let exec = ev(
            r#"{"Type":"container","Action":"exec_start: nginx -t","Actor":{"ID":"c1","Attributes":{}}}"#,
        );
        assert_eq!(event_action(&exec), None);
        let connect = ev(
            r#"{"Type":"network","Action":"connect","Actor":{"ID":"n1","Attributes":{"container":"c2","name":"front"}}}"#,
        );
        assert_eq!(
            event_action(&connect),
            Some(EventAction::Inspect("c2".into()))
        );
    }
}
