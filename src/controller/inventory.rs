//! Pure: the running containers vhostd knows and the ones draining, kept up to date from
//! updates. Each update names its source (Docker today; Swarm services may be another), and
//! nothing is rendered until every expected source has been listed once.

use std::collections::{BTreeMap, BTreeSet};

use crate::facts::ContainerFacts;

/// Where a container's facts come from (e.g. [`DOCKER`]).
pub type Source = &'static str;

/// The Docker engine's containers.
pub const DOCKER: Source = "docker";

/// One change to the inventory, from one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A full, fresh list of the source's containers (running or not).
    Synced(Vec<ContainerFacts>),
    /// A container (re)started: any earlier drain is over.
    Started(ContainerFacts),
    /// A container's new facts (it may have stopped).
    Upsert(ContainerFacts),
    /// A container was asked to stop: no new requests while others serve its hosts.
    Draining(String),
    /// A container is gone.
    Remove(String),
}

/// Running containers by id, with their source, and the draining set.
#[derive(Debug, Clone)]
pub struct Inventory {
    containers: BTreeMap<String, (Source, ContainerFacts)>,
    /// Containers asked to stop (SIGTERM) that still run. Cleared when they die, restart or go.
    draining: BTreeSet<String>,
    expected: BTreeSet<Source>,
    synced: BTreeSet<Source>,
}

impl Inventory {
    /// An empty inventory that counts as synced once each of `sources` has been listed.
    pub fn new(sources: &[Source]) -> Inventory {
        Inventory {
            containers: BTreeMap::new(),
            draining: BTreeSet::new(),
            expected: sources.iter().copied().collect(),
            synced: BTreeSet::new(),
        }
    }

    /// True once every source has been listed: never render from an empty, unknown inventory.
    pub fn is_synced(&self) -> bool {
        self.synced.is_superset(&self.expected)
    }

    /// Running containers, in id order.
    pub fn containers(&self) -> impl Iterator<Item = &ContainerFacts> {
        self.containers.values().map(|(_, c)| c)
    }

    /// One container by id.
    pub fn get(&self, id: &str) -> Option<&ContainerFacts> {
        self.containers.get(id).map(|(_, c)| c)
    }

    /// Number of running containers.
    pub fn len(&self) -> usize {
        self.containers.len()
    }

    /// True when no container runs.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }

    /// Ids of the containers shutting down.
    pub fn draining(&self) -> &BTreeSet<String> {
        &self.draining
    }

    /// Applies `change` from `source`; returns whether the desired config may differ.
    pub fn apply(&mut self, source: Source, change: Change) -> bool {
        match change {
            Change::Synced(all) => {
                self.containers.retain(|_, (s, _)| *s != source);
                self.containers.extend(
                    all.into_iter()
                        .filter(|c| c.running)
                        .map(|c| (c.id.clone(), (source, c))),
                );
                self.synced.insert(source);
                let ids = &self.containers;
                self.draining.retain(|id| ids.contains_key(id));
                true
            }
            Change::Started(c) => {
                self.draining.remove(&c.id);
                tracing::debug!(container = %c.name, running = c.running, action = "inspect", "container started");
                self.put(source, c)
            }
            Change::Upsert(c) => {
                if !c.running {
                    self.draining.remove(&c.id);
                }
                tracing::debug!(container = %c.name, running = c.running, action = "inspect", "container changed");
                self.put(source, c)
            }
            Change::Draining(id) => {
                let Some((_, c)) = self.containers.get(&id) else {
                    return false;
                };
                let name = c.name.clone();
                if !self.draining.insert(id) {
                    return false;
                }
                tracing::info!(container = %name, action = "drain", "container is stopping: no new requests while others serve its hosts");
                true
            }
            Change::Remove(id) => {
                self.draining.remove(&id);
                self.containers.remove(&id).is_some()
            }
        }
    }

    /// Stores a running container, or forgets a stopped one (trust the inspect over a list).
    fn put(&mut self, source: Source, c: ContainerFacts) -> bool {
        if c.running {
            self.containers.insert(c.id.clone(), (source, c));
            true
        } else {
            self.containers.remove(&c.id).is_some()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(id: &str, running: bool) -> ContainerFacts {
        ContainerFacts {
            running,
            ..ContainerFacts::labelled(id, &format!("n-{id}"), &[])
        }
    }

    #[test]
    fn synced_only_once_every_source_listed() {
        let mut inv = Inventory::new(&[DOCKER, "swarm"]);
        assert!(!inv.is_synced());
        inv.apply(
            DOCKER,
            Change::Synced(vec![facts("a", true), facts("b", false)]),
        );
        assert!(!inv.is_synced());
        inv.apply("swarm", Change::Synced(vec![facts("s", true)]));
        assert!(inv.is_synced());
        assert_eq!(inv.len(), 2, "stopped containers are not kept");
        // A re-list of one source leaves the other's containers alone.
        inv.apply(DOCKER, Change::Synced(vec![]));
        assert_eq!(
            inv.containers().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["s"]
        );
    }

    #[test]
    fn draining_ends_with_restart_stop_or_removal() {
        let mut inv = Inventory::new(&[DOCKER]);
        inv.apply(DOCKER, Change::Synced(vec![facts("a", true)]));
        assert!(inv.apply(DOCKER, Change::Draining("a".into())));
        assert!(
            !inv.apply(DOCKER, Change::Draining("a".into())),
            "already draining"
        );
        assert!(
            !inv.apply(DOCKER, Change::Draining("zz".into())),
            "unknown container"
        );
        assert!(inv.draining().contains("a"));
        inv.apply(DOCKER, Change::Started(facts("a", true)));
        assert!(inv.draining().is_empty());
        inv.apply(DOCKER, Change::Draining("a".into()));
        assert!(inv.apply(DOCKER, Change::Upsert(facts("a", false))));
        assert!(inv.draining().is_empty() && inv.is_empty());
        assert!(
            !inv.apply(DOCKER, Change::Remove("a".into())),
            "already gone"
        );
    }
}
