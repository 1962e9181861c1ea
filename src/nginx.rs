//! nginx: make a given config text live safely. The candidate is written next to the live file
//! under a name no nginx glob matches, validated by `nginx -t` against a test main config that
//! includes it in the live file's place ([`crate::testconf`]), and only then renamed onto the
//! live path and reloaded: a crash at any moment leaves a validated file live. Local process
//! (`--nginx-cmd`) or container (through the Docker API).
//!
//! This module decides nothing about content; it only makes a given text live. Here: where
//! nginx runs and the commands sent to it (`-t`, reload); `apply` the apply step,
//! `validate` the candidate check, `view` what nginx sees (main config, conf directory).

mod apply;
mod error;
mod validate;
mod view;

use std::sync::{Arc, Mutex};

use bollard::Docker;

pub use error::NginxError;

use crate::nginxfs;
use crate::nginxrun::{self, run_local};
use crate::shape::Reference;
use view::{ContainerView, LocalPaths};

/// Where nginx runs.
#[derive(Clone)]
enum Target {
    /// Local process: the argv prefix (e.g. `nginx -p /srv -c /srv/nginx.conf`).
    Local(Vec<String>),
    /// A container: the client once Docker is connected, the id once the container is found.
    Container(Option<Docker>, Option<String>),
}

/// What is remembered between applies.
#[derive(Default)]
struct Memo {
    /// Local mode: nginx's main config and pid file.
    local: Option<LocalPaths>,
    /// Container mode: the container id and what was learned of it.
    container: Option<(String, ContainerView)>,
    /// The last config `nginx -t` accepted, for skipping the check on changes of the same shape.
    reference: Option<Reference>,
    /// The main config includes the live file only indirectly: warned once.
    warned_in_place: bool,
}

/// How vhostd reaches nginx to validate and reload it; clones share what was learned.
#[derive(Clone)]
pub struct Nginx {
    target: Target,
    memo: Arc<Mutex<Memo>>,
}

impl Nginx {
    /// nginx as a local process run with the argv prefix `argv`.
    pub fn local(argv: Vec<String>) -> Nginx {
        Nginx::with(Target::Local(argv))
    }

    /// nginx in a container, found later (Docker may be down at start).
    pub fn container() -> Nginx {
        Nginx::with(Target::Container(None, None))
    }

    fn with(target: Target) -> Nginx {
        Nginx {
            target,
            memo: Arc::default(),
        }
    }

    /// True in container mode.
    pub fn is_container(&self) -> bool {
        matches!(self.target, Target::Container(..))
    }

    /// Local mode: the argv prefix that runs nginx.
    pub fn local_argv(&self) -> Option<&[String]> {
        match &self.target {
            Target::Local(argv) => Some(argv),
            Target::Container(..) => None,
        }
    }

    /// Container mode: the Docker client and the nginx container's id, once both are known.
    pub fn container_target(&self) -> Option<(&Docker, &str)> {
        match &self.target {
            Target::Container(Some(docker), Some(id)) => Some((docker, id)),
            _ => None,
        }
    }

    /// Container mode: the Docker client to use (after each (re)connect).
    pub fn set_docker(&mut self, docker: Docker) {
        if let Target::Container(client, _) = &mut self.target {
            *client = Some(docker);
        }
    }

    /// Container mode: the nginx container now running (None: none found). A new container
    /// forgets everything learned about the previous one.
    pub fn set_container(&mut self, found: Option<String>) {
        if let Target::Container(_, id) = &mut self.target {
            if *id != found {
                let mut m = self.memo.lock().unwrap_or_else(|e| e.into_inner());
                m.container = None;
                m.reference = None;
            }
            *id = found;
        }
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Local mode: checks that the nginx command runs (`nginx -v`); container mode: nothing
    /// to check before the container is found.
    pub async fn check_runs(&self) -> Result<(), NginxError> {
        match &self.target {
            Target::Local(argv) => run_local(argv, &["-v"]).await.map(drop),
            Target::Container(..) => Ok(()),
        }
    }

    /// Validates the configuration nginx would load now (`nginx -t`).
    pub async fn test(&self) -> Result<(), NginxError> {
        match &self.target {
            Target::Local(argv) => run_local(argv, &["-t", "-q"]).await.map(drop),
            Target::Container(Some(docker), Some(id)) => nginxrun::exec_test(docker, id, &[]).await,
            Target::Container(..) => Err(NginxError::NoContainer),
        }
    }

    /// Tells nginx to reload its configuration (`-s reload` or SIGHUP through Docker).
    pub async fn reload(&self) -> Result<(), NginxError> {
        match &self.target {
            Target::Local(argv) => self.reload_local(argv).await,
            Target::Container(Some(docker), Some(id)) => nginxrun::hup(docker, id).await,
            Target::Container(..) => Err(NginxError::NoContainer),
        }
    }

    /// Local mode: SIGHUP to the master named by the pid file (no config parse, unlike
    /// `nginx -s reload`, which parses the whole config to find that file); `-s reload` when the
    /// pid file does not name a running nginx.
    async fn reload_local(&self, argv: &[String]) -> Result<(), NginxError> {
        let pid = match self.local_paths(argv).await.ok().and_then(|p| p.pid) {
            Some(file) => nginxfs::nginx_pid(&file).await,
            None => None,
        };
        let Some(pid) = pid else {
            return run_local(argv, &["-s", "reload"]).await.map(drop);
        };
        let kill = vec!["kill".to_string()];
        run_local(&kill, &["-HUP", &pid.to_string()])
            .await
            .map(drop)
    }
}
