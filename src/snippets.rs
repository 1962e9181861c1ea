//! Per-host nginx snippets and basic-auth files, under nginx-proxy's names: in `--vhost-dir`,
//! `HOST` goes into that host's server blocks and `HOST_location` into each proxied location
//! (`default` / `default_location` for hosts without a file of their own); in
//! `--htpasswd-dir`, `HOST` puts the host behind `auth_basic`. nginx reads the files itself:
//! vhostd only knows which exist (read when the directories change) and which hosts nginx
//! rejects with them (those are left out, the default server answers them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::host::HostName;
use crate::sites::{Problem, Sites};

/// The problem key of a host left out for its snippets.
pub const KEY: &str = "vhost.d";

/// Which snippet and htpasswd files exist, and the hosts nginx rejects with theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippets {
    vhost_dir: PathBuf,
    htpasswd_dir: PathBuf,
    vhost: BTreeSet<String>,
    htpasswd: BTreeSet<String>,
    /// Hosts left out, with nginx's message; tried again when the files change.
    rejected: BTreeMap<HostName, String>,
}

/// The files one host's server blocks and locations include (paths as nginx sees them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SiteSnippets {
    /// Included in the server blocks (HTTPS, and HTTP when it proxies).
    pub server: Option<String>,
    /// Included in each proxied location.
    pub location: Option<String>,
    /// `auth_basic_user_file` of each proxied location.
    pub htpasswd: Option<String>,
}

impl Snippets {
    /// No files known (before the first read).
    pub fn empty(vhost_dir: &Path, htpasswd_dir: &Path) -> Snippets {
        Snippets {
            vhost_dir: vhost_dir.into(),
            htpasswd_dir: htpasswd_dir.into(),
            vhost: BTreeSet::new(),
            htpasswd: BTreeSet::new(),
            rejected: BTreeMap::new(),
        }
    }

    /// Lists both directories (blocking: call off the async workers); a missing one is empty.
    pub fn load(vhost_dir: &Path, htpasswd_dir: &Path) -> Snippets {
        let mut s = Snippets::empty(vhost_dir, htpasswd_dir);
        s.vhost = files(vhost_dir);
        s.htpasswd = files(htpasswd_dir);
        s
    }

    /// True when both hold the same files (ignoring the rejected hosts).
    pub fn same_files(&self, other: &Snippets) -> bool {
        self.vhost == other.vhost && self.htpasswd == other.htpasswd
    }

    /// The files `host` uses.
    pub fn for_host(&self, host: &HostName) -> SiteSnippets {
        let h = host.as_str();
        let pick = |own: String, default: &str| {
            [own.as_str(), default]
                .into_iter()
                .find(|n| self.vhost.contains(*n))
                .map(|n| self.vhost_dir.join(n).display().to_string())
        };
        SiteSnippets {
            server: pick(h.to_string(), "default"),
            location: pick(format!("{h}_location"), "default_location"),
            htpasswd: self
                .htpasswd
                .contains(h)
                .then(|| self.htpasswd_dir.join(h).display().to_string()),
        }
    }

    /// True when `host` includes any file (a suspect when nginx rejects a candidate).
    pub fn touches(&self, host: &HostName) -> bool {
        self.for_host(host) != SiteSnippets::default()
    }

    /// Leaves `host` out: nginx rejects it with its snippets, saying `message`.
    pub fn reject(&mut self, host: &HostName, message: &str) {
        self.rejected.insert(host.clone(), message.to_string());
    }

    /// True when `host` is left out.
    pub fn is_rejected(&self, host: &HostName) -> bool {
        self.rejected.contains_key(host)
    }

    /// The hosts left out.
    pub fn rejected(&self) -> impl Iterator<Item = &HostName> {
        self.rejected.keys()
    }

    /// Takes the rejected hosts out of `sites` and reports each as a problem of its containers.
    pub fn take_out(&self, sites: &mut Sites) {
        for (host, message) in &self.rejected {
            let Some(site) = sites.sites.remove(host) else {
                continue;
            };
            let containers = site.containers();
            sites.problems.push(Problem {
                container: containers.join(","),
                key: KEY.into(),
                problem: format!(
                    "{host}: nginx rejects the config with this host's snippets from {} or {}, so the host is left out (the default server answers it) until they change: {message}",
                    self.vhost_dir.display(),
                    self.htpasswd_dir.display()
                ),
            });
        }
    }
}

/// Names of the regular files (or links to them) in `dir`; none when it is missing.
fn files(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter(|e| std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_files_win_over_defaults_and_missing_dirs_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("vhost.d");
        std::fs::create_dir(&v).unwrap();
        for f in ["a.test", "default_location", "b.test_location"] {
            std::fs::write(v.join(f), "").unwrap();
        }
        let s = Snippets::load(&v, &dir.path().join("missing"));
        let h = |n: &str| HostName::parse(n).unwrap();
        let a = s.for_host(&h("a.test"));
        assert_eq!(a.server, Some(v.join("a.test").display().to_string()));
        assert_eq!(
            a.location,
            Some(v.join("default_location").display().to_string())
        );
        assert_eq!(a.htpasswd, None);
        let b = s.for_host(&h("b.test"));
        assert_eq!(b.server, None, "no `default` file");
        assert!(b.location.unwrap().ends_with("b.test_location"));
        assert!(
            s.touches(&h("c.test")),
            "default_location applies to every host"
        );
        assert!(
            !Snippets::load(&dir.path().join("x"), &dir.path().join("y")).touches(&h("c.test"))
        );
    }
}
