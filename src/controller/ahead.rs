//! Pure: the starts Docker has announced. A container created with routing labels and not yet
//! started is about to be (`docker compose up` creates every container, then starts them), so
//! the reload pacing holds a burst until they have all come. Each is forgotten after
//! [`AHEAD_FOR`], so a container created and left stopped delays nothing for long.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::docker::Update;

/// How long a created container is expected to start.
pub const AHEAD_FOR: Duration = Duration::from_secs(10);

/// Containers created and not yet started, with when they were created.
#[derive(Debug, Default)]
pub struct StartsAhead {
    created: HashMap<String, Instant>,
}

impl StartsAhead {
    /// Notes what a Docker update says about announced starts.
    pub fn note(&mut self, u: &Update, now: Instant) {
        match u {
            Update::Created(id) => {
                self.created.insert(id.clone(), now);
            }
            Update::Started(c) | Update::Upsert(c) => {
                self.created.remove(&c.id);
            }
            Update::Remove(id) | Update::Draining(id) => {
                self.created.remove(id);
            }
            Update::Synced(all) => {
                for c in all {
                    self.created.remove(&c.id);
                }
            }
            Update::Connected(_) | Update::Lost(_) => {}
        }
    }

    /// Whether starts are still coming at `now` (forgets those announced too long ago).
    pub fn any(&mut self, now: Instant) -> bool {
        self.created
            .retain(|_, at| now.saturating_duration_since(*at) < AHEAD_FOR);
        !self.created.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn created_until_started_removed_or_expired() {
        let t0 = Instant::now();
        let mut a = StartsAhead::default();
        assert!(!a.any(t0));
        a.note(&Update::Created("a".into()), t0);
        a.note(&Update::Created("b".into()), t0);
        a.note(&Update::Created("c".into()), t0);
        assert!(a.any(t0));
        a.note(&Update::Remove("a".into()), t0);
        let started = crate::facts::ContainerFacts::labelled("b", "b", &[]);
        a.note(&Update::Started(started), t0);
        assert!(a.any(t0 + Duration::from_secs(9)), "c is still coming");
        assert!(!a.any(t0 + AHEAD_FOR), "c was created and left stopped");
    }
}
