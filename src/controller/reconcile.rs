//! Pure: the candidate config from the inventory, the templates and the certificate facts,
//! leaving out the quarantined containers (and, while nginx's verdict is searched, a trial's
//! outsiders). The controller hands the result to the applier.

use std::collections::BTreeSet;

use crate::certfacts::CertFacts;
use crate::controller::inventory::Inventory;
use crate::desired::{self, Desired};
use crate::quarantine::Quarantine;
use crate::render::{RenderSettings, Renderer};
use crate::sites::{self, NginxReach};
use crate::snippets::Snippets;

/// Everything a candidate is computed from.
pub struct World<'a> {
    /// Running containers and the draining set.
    pub inventory: &'a Inventory,
    /// Containers nginx rejects.
    pub quarantine: &'a Quarantine,
    /// The loaded templates.
    pub renderer: &'a Renderer,
    /// Ports and paths the templates need.
    pub settings: &'a RenderSettings,
    /// Installed certificates.
    pub installed: &'a CertFacts,
    /// Snippet files, and the hosts nginx rejects with theirs.
    pub snippets: &'a Snippets,
    /// What nginx can reach.
    pub reach: &'a NginxReach,
}

/// What nginx reaches, and the nginx container's id when it runs in one (`in_container`),
/// found in the inventory by `name` or label.
pub fn reach(
    inventory: &Inventory,
    in_container: bool,
    name: Option<&str>,
) -> (NginxReach, Option<String>) {
    if !in_container {
        return (NginxReach::Host, None);
    }
    let found = sites::find_nginx(inventory.containers(), name);
    (sites::reach_of(found), found.map(|c| c.id.clone()))
}

/// The desired state from every container but the quarantined ones and `leave_out`; the
/// quarantined ones are reported among the problems.
pub fn candidate(w: &World<'_>, leave_out: &BTreeSet<String>) -> Desired {
    let included = w
        .inventory
        .containers()
        .filter(|c| !w.quarantine.holds(&c.id) && !leave_out.contains(&c.id));
    let mut d = desired::compute(
        included,
        w.reach,
        w.inventory.draining(),
        w.renderer,
        w.settings,
        w.installed,
        w.snippets,
    );
    d.sites.problems.extend(w.quarantine.problems());
    d.sites.problems.sort();
    d
}

/// Ids of the containers a candidate is built from.
pub fn included_ids(inventory: &Inventory, quarantine: &Quarantine) -> BTreeSet<String> {
    inventory
        .containers()
        .filter(|c| !quarantine.holds(&c.id))
        .map(|c| c.id.clone())
        .collect()
}
