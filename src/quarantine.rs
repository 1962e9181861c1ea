//! Pure: which containers make nginx reject a config that the labels' validation let through.
//!
//! When `nginx -t` refuses a candidate, the containers that were not in the last accepted
//! config are the suspects. [`Bisect`] plans trials (which suspects to include) and narrows them
//! down by halving, so a few bad containers among many cost a few `nginx -t` runs, not one
//! each. The controller runs the trials and leaves the culprits out, naming them, so one
//! container nginx dislikes cannot block every other change.

use std::collections::{BTreeMap, BTreeSet};

use crate::facts::ContainerFacts;
use crate::sites::Problem;

/// A search for the suspects nginx rejects (see module docs). Containers are ids.
#[derive(Debug)]
pub struct Bisect {
    /// Suspects shown to be fine with the ones accepted before them.
    accepted: BTreeSet<String>,
    /// Groups still to try, the next one last.
    queue: Vec<Vec<String>>,
    /// The group of the trial handed out and not recorded yet (`None`: the base trial).
    trying: Option<Vec<String>>,
    /// Suspects nginx rejects, with its message.
    rejected: Vec<(String, String)>,
    /// Whether the config without any suspect passed (checked first).
    base_ok: bool,
    checks_left: usize,
    /// Containers are not the cause (the base fails) or the budget ran out.
    gave_up: bool,
}

impl Bisect {
    /// Starts a search over `suspects`, knowing that nginx rejected them all together with
    /// `message`; at most `max_checks` trials are planned.
    pub fn new(
        suspects: impl IntoIterator<Item = String>,
        message: &str,
        max_checks: usize,
    ) -> Self {
        let all: Vec<String> = suspects.into_iter().collect();
        let mut b = Bisect {
            accepted: BTreeSet::new(),
            queue: Vec::new(),
            trying: None,
            rejected: Vec::new(),
            base_ok: false,
            checks_left: max_checks,
            gave_up: all.is_empty(),
        };
        // The whole set was already tried (it is the refused candidate): start one level down.
        match all.len() {
            0 => {}
            1 => b.rejected.push((all[0].clone(), message.to_string())),
            _ => b.split(all),
        }
        b
    }

    fn split(&mut self, mut group: Vec<String>) {
        let second = group.split_off(group.len() / 2);
        self.queue.push(second);
        self.queue.push(group);
    }

    /// The suspects to include in the next trial, or `None` when the search is over.
    pub fn next_trial(&mut self) -> Option<BTreeSet<String>> {
        if self.gave_up || (self.base_ok && self.queue.is_empty()) {
            return None;
        }
        if self.checks_left == 0 {
            self.gave_up = true;
            return None;
        }
        self.checks_left -= 1;
        if !self.base_ok {
            self.trying = None;
            return Some(BTreeSet::new());
        }
        let group = self.queue.pop()?;
        let trial = self
            .accepted
            .iter()
            .cloned()
            .chain(group.iter().cloned())
            .collect();
        self.trying = Some(group);
        Some(trial)
    }

    /// Records nginx's verdict on the last trial: `Err` holds its message.
    pub fn record(&mut self, verdict: Result<(), String>) {
        match (self.trying.take(), verdict) {
            (None, Ok(())) => self.base_ok = true,
            // Even without any suspect nginx refuses: the cause is elsewhere (template, files).
            (None, Err(_)) => self.gave_up = true,
            (Some(group), Ok(())) => self.accepted.extend(group),
            (Some(group), Err(message)) if group.len() == 1 => {
                self.rejected.push((group[0].clone(), message));
            }
            (Some(group), Err(_)) => self.split(group),
        }
    }

    /// The suspects nginx rejects, each with its message; `None` when containers are not the
    /// cause or the search ran out of trials (then nothing should be left out).
    pub fn finish(self) -> Option<Vec<(String, String)>> {
        (!self.gave_up && self.base_ok && self.queue.is_empty()).then_some(self.rejected)
    }
}

/// Containers left out because nginx rejects the config they give, and the containers of the
/// config nginx last accepted (the others are the suspects when it rejects a candidate).
#[derive(Debug, Clone, Default)]
pub struct Quarantine {
    /// By id: the facts they had then and nginx's message. Tried again once their facts or
    /// the templates change.
    held: BTreeMap<String, (ContainerFacts, String)>,
    live: BTreeSet<String>,
}

impl Quarantine {
    /// True when `id` is left out.
    pub fn holds(&self, id: &str) -> bool {
        self.held.contains_key(id)
    }

    /// Releases the containers whose facts changed or that are gone (`current` looks one up).
    pub fn prune<'a>(&mut self, current: impl Fn(&str) -> Option<&'a ContainerFacts>) {
        self.held
            .retain(|id, (facts, _)| current(id).is_some_and(|c| c == facts));
    }

    /// Releases every container (the templates changed: the verdicts may differ).
    pub fn clear(&mut self) {
        self.held.clear();
    }

    /// Leaves `c` out with nginx's `message`.
    pub fn hold(&mut self, c: &ContainerFacts, message: &str) {
        self.held
            .insert(c.id.clone(), (c.clone(), message.to_string()));
    }

    /// Records the containers of the config nginx just accepted.
    pub fn set_live(&mut self, ids: BTreeSet<String>) {
        self.live = ids;
    }

    /// The containers to search when nginx rejects a candidate: routed, not live, not held.
    pub fn suspects<'a>(&self, all: impl IntoIterator<Item = &'a ContainerFacts>) -> Vec<String> {
        all.into_iter()
            .filter(|c| {
                !self.live.contains(&c.id)
                    && !self.held.contains_key(&c.id)
                    && crate::labels::wants_routes(c)
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// The held containers as problems (key `nginx`), with nginx's message.
    pub fn problems(&self) -> impl Iterator<Item = Problem> + '_ {
        self.held.values().map(|(c, message)| Problem {
            container: c.name.clone(),
            key: "nginx".into(),
            problem: format!(
                "nginx rejects the config this container gives, so it is left out until its labels change: {message}"
            ),
        })
    }

    /// Ids of the held containers (for `vhostd render`, through `/status`).
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.held.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search where nginx rejects any trial containing one of `bad`, or the pair `a`+`b`.
    fn run(
        suspects: &[&str],
        bad: &[&str],
        pair: Option<(&str, &str)>,
        base_ok: bool,
    ) -> (Option<Vec<String>>, usize) {
        let all: Vec<String> = suspects.iter().map(|s| s.to_string()).collect();
        let mut b = Bisect::new(all, "refused", 64);
        let mut trials = 0;
        while let Some(t) = b.next_trial() {
            trials += 1;
            let bad_one = t.iter().find(|c| bad.contains(&c.as_str()));
            let bad_pair = pair.filter(|(a, b)| t.contains(*a) && t.contains(*b));
            let verdict = if t.is_empty() && !base_ok {
                Err("base".to_string())
            } else if let Some(c) = bad_one {
                Err(format!("{c} is bad"))
            } else if bad_pair.is_some() {
                Err("pair".to_string())
            } else {
                Ok(())
            };
            b.record(verdict);
        }
        let found = b.finish().map(|v| v.into_iter().map(|(c, _)| c).collect());
        (found, trials)
    }

    #[test]
    fn one_bad_container_among_many_is_found_in_few_trials() {
        let names: Vec<String> = (0..64).map(|i| format!("c{i:02}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (found, trials) = run(&refs, &["c37"], None, true);
        assert_eq!(found, Some(vec!["c37".to_string()]));
        assert!(trials <= 1 + 2 * 6, "{trials} trials for 64 suspects");
    }

    #[test]
    fn several_bad_ones_and_a_clashing_pair_are_all_found() {
        let (found, _) = run(&["a", "b", "c", "d", "e"], &["c", "e"], None, true);
        assert_eq!(found, Some(vec!["c".to_string(), "e".to_string()]));
        // Each alone is fine, together nginx refuses: the later one is left out.
        let (found, _) = run(&["a", "b", "c", "d"], &[], Some(("a", "d")), true);
        assert_eq!(found, Some(vec!["d".to_string()]));
    }

    #[test]
    fn a_lone_suspect_is_the_culprit_without_a_trial_beyond_the_base() {
        let (found, trials) = run(&["only"], &["only"], None, true);
        assert_eq!(found, Some(vec!["only".to_string()]));
        assert_eq!(trials, 1);
    }

    #[test]
    fn when_the_base_fails_too_nobody_is_blamed() {
        assert_eq!(run(&["a", "b"], &["a"], None, false).0, None);
        assert_eq!(run(&[], &[], None, true).0, None);
    }

    #[test]
    fn an_exhausted_budget_blames_nobody() {
        let mut b = Bisect::new(["a".to_string(), "b".to_string(), "c".to_string()], "x", 2);
        while let Some(t) = b.next_trial() {
            b.record(if t.is_empty() {
                Ok(())
            } else {
                Err("no".into())
            });
        }
        assert_eq!(b.finish(), None);
    }
}
