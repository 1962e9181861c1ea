//! Finding what nginx rejects: the candidate without given containers and hosts, and the
//! search ([`crate::quarantine::Bisect`]) over the suspects, run as `nginx -t` trials.

use std::collections::BTreeSet;

use crate::controller::{Applier, Controller};
use crate::desired::Desired;
use crate::host::HostName;
use crate::nginx::NginxError;
use crate::quarantine::Bisect;
use crate::sites::NginxReach;

use super::reconcile;

/// Marks a host among the suspects of an isolation (container ids are hex, never like this).
const HOST_SUSPECT: &str = "host:";

/// At most this many `nginx -t` runs are spent finding the containers nginx rejects.
const MAX_ISOLATION_CHECKS: usize = 32;

impl<A: Applier> Controller<A> {
    /// The candidate without the quarantined containers and hosts, nor `leave_out`: container
    /// ids, and hosts as [`HOST_SUSPECT`]`NAME`.
    pub(super) fn candidate(&self, reach: &NginxReach, leave_out: &BTreeSet<String>) -> Desired {
        let settings = self.render_settings();
        let mut snippets = self.snippets.clone();
        for host in leave_out
            .iter()
            .filter_map(|s| s.strip_prefix(HOST_SUSPECT))
        {
            if let Ok(h) = HostName::parse(host) {
                snippets.reject(&h, "");
            }
        }
        let world = reconcile::World {
            inventory: &self.inventory,
            quarantine: &self.quarantine,
            renderer: &self.renderer,
            settings: &settings,
            installed: &self.installed,
            snippets: &snippets,
            reach,
        };
        reconcile::candidate(&world, leave_out)
    }

    /// nginx rejected a candidate with `message`: finds the containers new since the last
    /// accepted config, and the `hosts` with snippet files, that cause it (a few `nginx -t`
    /// runs, nothing reloaded) and leaves them out. False when neither is the cause (a
    /// template, a file) or it can't tell.
    pub(super) async fn isolate(
        &mut self,
        reach: &NginxReach,
        message: &str,
        hosts: &[HostName],
    ) -> bool {
        // Containers first: a new container is tried without its host's snippets before the
        // snippets are, so a broken snippet is blamed on the host, not on its container.
        let mut suspects = self.quarantine.suspects(self.inventory.containers());
        suspects.extend(
            hosts
                .iter()
                .filter(|h| self.snippets.touches(h) && !self.snippets.is_rejected(h))
                .map(|h| format!("{HOST_SUSPECT}{h}")),
        );
        let mut search = Bisect::new(suspects.iter().cloned(), message, MAX_ISOLATION_CHECKS);
        let conf = self.settings.opts.conf_file.clone();
        while let Some(trial) = search.next_trial() {
            let leave_out: BTreeSet<String> = suspects
                .iter()
                .filter(|id| !trial.contains(*id))
                .cloned()
                .collect();
            let Ok(text) = self.candidate(reach, &leave_out).text else {
                return false;
            };
            let verdict = match self.applier.check(&conf, &text).await {
                Ok(()) => Ok(()),
                Err(NginxError::Rejected { output }) => Err(output),
                Err(e) => {
                    tracing::warn!(action = "isolate_failed", error = %e, "cannot tell which container nginx rejects");
                    return false;
                }
            };
            search.record(verdict);
        }
        let Some(culprits) = search.finish() else {
            return false;
        };
        for (id, message) in &culprits {
            // Logged with the other problems (container_quarantined, host_quarantined).
            if let Some(host) = id.strip_prefix(HOST_SUSPECT) {
                if let Ok(h) = HostName::parse(host) {
                    self.snippets.reject(&h, message);
                }
            } else if let Some(c) = self.inventory.get(id) {
                self.quarantine.hold(c, message);
            }
        }
        !culprits.is_empty()
    }
}
