//! Unit tests of the controller's decisions, with a test double for nginx (an in-memory live
//! config that refuses the texts holding a given marker). Integration tests use real nginx.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use clap::Parser;

use super::*;
use crate::config::{Cli, Command};
use crate::facts::ContainerFacts;

/// What the double has seen and how it answers.
#[derive(Default)]
struct State {
    live: Option<String>,
    /// `nginx -t` refuses a text holding any of these.
    refuse: Vec<String>,
    reload_fails: bool,
    reloads: usize,
    applies: Vec<bool>,
    checks: usize,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

impl Fake {
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    fn verdict(st: &State, text: &str) -> Result<(), NginxError> {
        match st.refuse.iter().find(|r| text.contains(r.as_str())) {
            Some(r) => Err(NginxError::Rejected {
                output: format!("refused {r}"),
            }),
            None => Ok(()),
        }
    }
}

impl Applier for Fake {
    fn in_container(&self) -> bool {
        false
    }
    fn set_docker(&mut self, _: bollard::Docker) {}
    fn set_container(&mut self, _: Option<String>) {}

    async fn apply(&self, _: &Path, text: &str, force: bool) -> Result<bool, NginxError> {
        let mut st = self.st();
        st.applies.push(force);
        let changed = st.live.as_deref() != Some(text);
        if !changed && !force {
            return Ok(false);
        }
        if changed {
            Fake::verdict(&st, text)?;
            st.live = Some(text.to_string());
        }
        if st.reload_fails {
            return Err(NginxError::Command {
                cmd: "nginx -s reload".into(),
                detail: "no master process".into(),
            });
        }
        st.reloads += 1;
        Ok(true)
    }

    async fn check(&self, _: &Path, text: &str) -> Result<(), NginxError> {
        let mut st = self.st();
        st.checks += 1;
        Fake::verdict(&st, text)
    }

    async fn probe_version(&self, _: &mut crate::nginx_version::Probe) {}
}

fn site(id: &str, host: &str) -> ContainerFacts {
    let labels = [("VIRTUAL_HOST", host), ("VIRTUAL_PORT", "8080")];
    ContainerFacts::labelled(id, &format!("c-{id}"), &labels)
}

struct Rig {
    c: Controller<Fake>,
    fake: Fake,
    status: Arc<RwLock<Status>>,
    dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let cli = Cli::try_parse_from([
        "vhostd".to_string(),
        "run".into(),
        "--no-acme".into(),
        "--nginx-cmd".into(),
        "nginx".into(),
        "--conf-file".into(),
        format!("{d}/vhostd.conf"),
        "--certs-dir".into(),
        format!("{d}/certs"),
        "--webroot".into(),
        format!("{d}/www"),
        "--vhost-dir".into(),
        format!("{d}/vhost.d"),
        "--htpasswd-dir".into(),
        format!("{d}/htpasswd"),
    ])
    .unwrap();
    let Command::Run(opts) = cli.command else {
        unreachable!()
    };
    let settings = Settings::from_opts(opts, None).unwrap();
    let status = Arc::new(RwLock::new(Status::default()));
    let fake = Fake::default();
    let c = Controller::new(
        settings,
        fake.clone(),
        Renderer::embedded(),
        None,
        status.clone(),
        Metrics::default(),
    );
    Rig {
        c,
        fake,
        status,
        dir,
    }
}

impl Rig {
    fn live(&self) -> String {
        self.fake.st().live.clone().unwrap_or_default()
    }
    fn status(&self) -> Status {
        self.status.read().unwrap().clone()
    }
}

#[tokio::test]
async fn never_renders_from_an_unsynced_inventory() {
    let mut r = rig();
    assert!(r.c.on_docker(Update::Started(site("a", "a.test"))));
    r.c.reconcile().await;
    assert!(
        r.fake.st().applies.is_empty(),
        "nothing applied before the first list"
    );
    assert!(!r.status().ready);
    r.c.on_docker(Update::Synced(vec![site("a", "a.test")]));
    r.c.reconcile().await;
    assert!(r.live().contains("a.test"));
    assert!(r.status().ready);
}

#[tokio::test]
async fn a_certificate_event_forces_a_reload_of_identical_bytes() {
    let mut r = rig();
    r.c.on_docker(Update::Synced(vec![site("a", "a.test")]));
    r.c.reconcile().await;
    r.c.reconcile().await;
    assert_eq!(r.fake.st().reloads, 1, "same bytes: no second reload");
    let key = HostName::parse("a.test").unwrap();
    assert!(r.c.on_cert_event(acme::CertEvent::Installed { key }).await);
    r.c.reconcile().await;
    assert_eq!(
        r.fake.st().reloads,
        2,
        "nginx re-reads the certificate files"
    );
    assert_eq!(r.fake.st().applies.last(), Some(&true));
    r.c.reconcile().await;
    assert_eq!(r.fake.st().reloads, 2, "forced once, not forever");
}

#[tokio::test]
async fn a_failed_reload_is_retried_by_the_next_reconcile() {
    let mut r = rig();
    r.c.on_docker(Update::Synced(vec![site("a", "a.test")]));
    r.fake.st().reload_fails = true;
    r.c.reconcile().await;
    assert!(r.status().last_error.is_some_and(|e| e.contains("reload")));
    // The new bytes are in place now; "unchanged" must not hide that nginx never loaded them.
    r.fake.st().reload_fails = false;
    r.c.reconcile().await;
    let st = r.fake.st();
    assert_eq!((st.reloads, st.applies.last()), (1, Some(&true)));
    drop(st);
    assert_eq!(r.status().last_error, None);
}

#[tokio::test]
async fn a_rejected_container_is_quarantined_until_its_facts_change() {
    let mut r = rig();
    r.fake.st().refuse.push("bad.test".into());
    r.c.on_docker(Update::Synced(vec![site("a", "a.test")]));
    r.c.reconcile().await;
    r.c.on_docker(Update::Started(site("bad", "bad.test")));
    r.c.on_docker(Update::Started(site("b", "b.test")));
    r.c.reconcile().await;
    let live = r.live();
    assert!(
        live.contains("b.test") && !live.contains("bad.test"),
        "{live}"
    );
    let st = r.status();
    assert_eq!(st.quarantined, ["bad"]);
    assert!(st.problems.iter().any(|p| p.container == "c-bad"
        && p.key == "nginx"
        && p.problem.contains("refused bad.test")));
    assert_eq!(st.last_error, None);
    // Still there and unchanged: not tried again.
    let checks = r.fake.st().checks;
    r.c.on_docker(Update::Started(site("c", "c.test")));
    r.c.reconcile().await;
    assert!(r.live().contains("c.test"));
    assert_eq!(
        r.fake.st().checks,
        checks,
        "no new nginx -t for a known culprit"
    );
    // Its labels change: it is tried again and, now fine, goes live.
    r.c.on_docker(Update::Upsert(site("bad", "fixed.test")));
    r.c.reconcile().await;
    assert!(r.live().contains("fixed.test"));
    assert!(r.status().quarantined.is_empty());
    assert!(r.status().problems.is_empty());
}

#[tokio::test]
async fn a_snippet_nginx_rejects_takes_only_its_host_out_until_the_files_change() {
    let mut r = rig();
    r.c.on_docker(Update::Synced(vec![
        site("a", "a.test"),
        site("b", "b.test"),
    ]));
    r.c.reconcile().await;
    let vdir = r.dir.path().join("vhost.d");
    std::fs::create_dir(&vdir).unwrap();
    std::fs::write(vdir.join("a.test"), "not_a_directive;").unwrap();
    // The double refuses any config including that file, as nginx would.
    let include = format!("include \"{}\"", vdir.join("a.test").display());
    r.fake.st().refuse.push(include.clone());
    assert!(r.c.on_snippets().await);
    r.c.reconcile().await;
    let live = r.live();
    assert!(
        !live.contains("a.test") && live.contains("b.test"),
        "{live}"
    );
    let st = r.status();
    assert_eq!(st.quarantined_hosts, ["a.test"]);
    assert!(st.quarantined.is_empty(), "the container is not blamed");
    assert!(
        st.problems
            .iter()
            .any(|p| p.key == "vhost.d" && p.problem.contains("refused"))
    );
    // Other changes keep flowing; the host stays out.
    r.c.on_docker(Update::Started(site("c", "c.test")));
    r.c.reconcile().await;
    assert!(r.live().contains("c.test") && !r.live().contains("server_name a.test"));
    // Fixed: back, with its snippet.
    r.fake.st().refuse.clear();
    std::fs::write(vdir.join("a.test"), "add_header X-A 1;").unwrap();
    r.c.on_snippets().await;
    r.c.reconcile().await;
    assert!(r.live().contains(&include));
    assert!(r.status().quarantined_hosts.is_empty());
}

#[tokio::test]
async fn an_edited_snippet_is_checked_and_reloaded_though_the_bytes_are_the_same() {
    let mut r = rig();
    let vdir = r.dir.path().join("vhost.d");
    std::fs::create_dir(&vdir).unwrap();
    std::fs::write(vdir.join("a.test"), "add_header X-A 1;").unwrap();
    r.c.on_snippets().await;
    r.c.on_docker(Update::Synced(vec![site("a", "a.test")]));
    r.c.reconcile().await;
    let reloads = r.fake.st().reloads;
    let checks = r.fake.st().checks;
    std::fs::write(vdir.join("a.test"), "add_header X-A 2;").unwrap();
    r.c.on_snippets().await;
    r.c.reconcile().await;
    assert_eq!(r.fake.st().reloads, reloads + 1);
    assert_eq!(r.fake.st().checks, checks + 1, "nginx -t before the reload");
}
