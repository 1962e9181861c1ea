//! Merges Swarm services into the controller's container inventory: the controller sees one
//! stream of [`Update`]s in which each routed service (or task) is one more "container", and
//! task containers are left out while their service is read (they would be routed twice).
//!
//! [`Merge`] is pure state; [`attach`] is the task that runs it between the two watchers and
//! the controller.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc, watch};

use super::catalog::TASK_CONTAINER_LABEL;
use super::watch::{self as swarm_watch, SwarmView};
use crate::config::SwarmArg;
use crate::docker::Update;
use crate::facts::ContainerFacts;

/// The services last reported, and whether task containers are hidden.
#[derive(Debug, Default)]
pub struct Merge {
    /// True while services are read: task containers are then routed through their service.
    active: bool,
    /// Service (or task) facts by id, as last sent to the controller.
    services: BTreeMap<String, ContainerFacts>,
}

/// True for a container Docker runs as a Swarm task whose own labels or env ask for routing:
/// its service routes it. Other task containers (nginx's own, say) stay visible.
pub fn is_routed_task(c: &ContainerFacts) -> bool {
    c.labels.contains_key(TASK_CONTAINER_LABEL) && c.setting("VIRTUAL_HOST").is_some()
}

impl Merge {
    /// A container update, as the controller should see it (`None`: drop it).
    pub fn docker(&self, u: Update) -> Option<Update> {
        match u {
            Update::Synced(all) => {
                let mut all: Vec<ContainerFacts> = all
                    .into_iter()
                    .filter(|c| !(self.active && is_routed_task(c)))
                    .collect();
                all.extend(self.services.values().cloned());
                Some(Update::Synced(all))
            }
            Update::Upsert(c) | Update::Started(c) if self.active && is_routed_task(&c) => None,
            u => Some(u),
        }
    }

    /// A new Swarm view: the updates that bring the controller to it, and whether containers
    /// must be re-listed (task containers hidden or shown again).
    pub fn swarm(&mut self, view: SwarmView) -> (Vec<Update>, bool) {
        let (active, facts) = match view {
            SwarmView::Off => (false, Vec::new()),
            SwarmView::Services(f) => (true, f),
        };
        let relist = active != self.active;
        self.active = active;
        let next: BTreeMap<String, ContainerFacts> =
            facts.into_iter().map(|f| (f.id.clone(), f)).collect();
        let mut out: Vec<Update> = self
            .services
            .keys()
            .filter(|id| !next.contains_key(*id))
            .map(|id| Update::Remove(id.clone()))
            .collect();
        out.extend(
            next.iter()
                .filter(|(id, f)| self.services.get(*id) != Some(*f))
                .map(|(_, f)| Update::Upsert(f.clone())),
        );
        self.services = next;
        (out, relist)
    }
}

/// Puts the Swarm watcher between the Docker watcher (`docker`) and the controller: returns
/// the receiver the controller reads. With `--swarm off`, `docker` itself.
pub fn attach(
    mode: SwarmArg,
    host: String,
    mut docker: mpsc::Receiver<Update>,
    resync: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> mpsc::Receiver<Update> {
    if mode == SwarmArg::Off {
        return docker;
    }
    let (swarm_tx, mut swarm_rx) = mpsc::channel(16);
    let (out_tx, out_rx) = mpsc::channel(1024);
    tokio::spawn(swarm_watch::run(mode, host, swarm_tx, shutdown));
    tokio::spawn(async move {
        let mut merge = Merge::default();
        loop {
            let updates = tokio::select! {
                u = docker.recv() => match u {
                    None => return,
                    Some(u) => merge.docker(u).into_iter().collect(),
                },
                Some(view) = swarm_rx.recv() => {
                    let (updates, relist) = merge.swarm(view);
                    if relist {
                        resync.notify_one();
                    }
                    updates
                }
            };
            for u in updates {
                if out_tx.send(u).await.is_err() {
                    return;
                }
            }
        }
    });
    out_rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(id: &str, labels: &[(&str, &str)]) -> ContainerFacts {
        ContainerFacts::labelled(id, id, labels)
    }

    fn ids(u: &Update) -> Vec<String> {
        match u {
            Update::Synced(all) => all.iter().map(|c| c.id.clone()).collect(),
            Update::Upsert(c) | Update::Started(c) => vec![c.id.clone()],
            Update::Remove(id) => vec![format!("-{id}")],
            _ => vec![],
        }
    }

    #[test]
    fn task_containers_are_hidden_only_while_services_are_read() {
        let task = facts(
            "t1",
            &[(TASK_CONTAINER_LABEL, "svc"), ("VIRTUAL_HOST", "a.test")],
        );
        let plain = facts("c1", &[("VIRTUAL_HOST", "b.test")]);
        let mut m = Merge::default();
        let u = m
            .docker(Update::Synced(vec![task.clone(), plain.clone()]))
            .unwrap();
        assert_eq!(
            ids(&u),
            ["t1", "c1"],
            "no Swarm read: a task container is a container"
        );
        let (updates, relist) = m.swarm(SwarmView::Services(vec![facts("swarm-service:s", &[])]));
        assert!(
            relist,
            "containers are re-listed so the task container leaves"
        );
        assert_eq!(
            updates.iter().flat_map(ids).collect::<Vec<_>>(),
            ["swarm-service:s"]
        );
        let u = m
            .docker(Update::Synced(vec![task.clone(), plain.clone()]))
            .unwrap();
        assert_eq!(ids(&u), ["c1", "swarm-service:s"]);
        assert!(m.docker(Update::Started(task.clone())).is_none());
        assert!(m.docker(Update::Upsert(plain.clone())).is_some());
        let (updates, relist) = m.swarm(SwarmView::Off);
        assert!(relist);
        assert_eq!(
            updates.iter().flat_map(ids).collect::<Vec<_>>(),
            ["-swarm-service:s"]
        );
        assert!(m.docker(Update::Started(task)).is_some());
    }

    #[test]
    fn only_changed_services_are_sent() {
        let mut m = Merge::default();
        let a = facts("swarm-service:a", &[("VIRTUAL_HOST", "a.test")]);
        let b = facts("swarm-service:b", &[("VIRTUAL_HOST", "b.test")]);
        m.swarm(SwarmView::Services(vec![a.clone(), b.clone()]));
        let mut b2 = b.clone();
        b2.labels.insert("VIRTUAL_PORT".into(), "81".into());
        let (updates, relist) = m.swarm(SwarmView::Services(vec![b2]));
        assert!(!relist);
        let got: Vec<String> = updates.iter().flat_map(ids).collect();
        assert_eq!(got, ["-swarm-service:a", "swarm-service:b"]);
    }
}
