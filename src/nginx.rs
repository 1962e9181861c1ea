//! nginx: make a given config text live safely. The candidate is written next to the live file
//! under a name no nginx glob matches, validated by `nginx -t` against a test main config that
//! includes it in the live file's place ([`crate::testconf`]), and only then renamed onto the
//! live path and reloaded: a crash at any moment leaves a validated file live. Local process
//! (`--nginx-cmd`) or container (through the Docker API).
//!
//! This module decides nothing about content; it only makes a given text live.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bollard::Docker;

use crate::nginxfs::{self, blocking, list, promote, write_err, write_file};
use crate::nginxpaths::{self, candidate_path, container_dir, container_main, sibling, with_conf};
use crate::nginxrun::{self, run_local};
use crate::shape::{self, Reference, Shape};
use crate::testconf::{self, Layout};

/// Why a config could not be made live.
#[derive(Debug, thiserror::Error)]
pub enum NginxError {
    /// nginx rejected the candidate; the live file was not touched. Holds nginx's own message.
    #[error("nginx rejected the new config (previous config kept): {output}")]
    Rejected {
        /// What `nginx -t` printed.
        output: String,
    },
    /// A config file (live, candidate or test main config) could not be written or read.
    #[error("cannot write {path}: {source} (is the conf directory writable?)")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A local nginx command could not run or failed.
    #[error("`{cmd}` failed: {detail}")]
    Command {
        /// The command line.
        cmd: String,
        /// What went wrong (exit status and output, or the spawn error).
        detail: String,
    },
    /// A Docker API call for the nginx container failed.
    #[error("docker {op} on nginx container {container} failed: {detail}")]
    Docker {
        /// The operation (exec, kill).
        op: &'static str,
        /// The container.
        container: String,
        /// The error.
        detail: String,
    },
    /// Container mode, but no nginx container is running.
    #[error(
        "no nginx container found: start one labelled vhostd.nginx=true or pass --nginx-container"
    )]
    NoContainer,
}

impl NginxError {
    /// The log `action` for this failure: a rejection, a write failure, or nginx unreachable.
    pub fn action(&self) -> &'static str {
        match self {
            NginxError::Rejected { .. } => "nginx_rejected",
            NginxError::Write { .. } => "config_write_failed",
            NginxError::Command { .. } | NginxError::Docker { .. } | NginxError::NoContainer => {
                "nginx_failed"
            }
        }
    }
}

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

/// Local nginx's files.
#[derive(Clone)]
struct LocalPaths {
    main: PathBuf,
    pid: Option<PathBuf>,
}

/// The nginx container, seen from inside.
#[derive(Clone)]
struct ContainerView {
    /// Its main config path and text.
    main: PathBuf,
    main_text: String,
    /// The conf directory's path inside the container.
    conf_dir: PathBuf,
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

    /// Makes `text` the live config at `conf`: validate it as a candidate (or see that its
    /// shape was validated already), rename it onto the live path, reload. On rejection the live
    /// file is untouched. Returns false when the file already held `text` and `force_reload` is
    /// off (nothing to do).
    pub async fn apply(
        &self,
        conf: &Path,
        text: &str,
        force_reload: bool,
    ) -> Result<bool, NginxError> {
        let conf = std::path::absolute(conf).map_err(|source| write_err(conf, source))?;
        let old = blocking({
            let conf = conf.clone();
            move || Ok(std::fs::read(conf).ok())
        })
        .await?;
        let changed = old.as_deref() != Some(text.as_bytes());
        if !changed && !force_reload {
            return Ok(false);
        }
        if changed {
            let shape = Shape::of(text);
            if self.known_shape(&shape).await {
                tracing::debug!(action = "check_skipped", conf = %conf.display(), "same shape as a validated config: nginx -t skipped");
                write_file(&candidate_path(&conf), text.as_bytes()).await?;
            } else {
                self.validate(&conf, text).await?;
                self.remember(shape, &conf).await;
            }
            promote(&conf).await?;
            tracing::debug!(action = "config_written", conf = %conf.display(), "validated candidate renamed onto the live path");
        } else {
            // Files the config names (certificates) changed: check them before the reload.
            self.memo().reference = None;
            self.validate(&conf, text).await?;
        }
        self.reload().await?;
        Ok(true)
    }

    /// Whether `shape` may skip `nginx -t` against the last validated config.
    async fn known_shape(&self, shape: &Shape) -> bool {
        let Some(r) = self.memo().reference.clone() else {
            return false;
        };
        let shape = shape.clone();
        tokio::task::spawn_blocking(move || r.allows(&shape, shape::stamp))
            .await
            .unwrap_or(false)
    }

    /// Remembers `shape` as validated, with the files nginx read besides it: its main config
    /// (local mode) and the other files of the conf directory.
    async fn remember(&self, shape: Shape, conf: &Path) {
        let main = self.memo().local.as_ref().map(|l| l.main.clone());
        let dir = conf.parent().map(Path::to_path_buf).unwrap_or_default();
        let live = conf
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let context: Vec<PathBuf> = list(&dir)
            .await
            .into_iter()
            .filter(|n| !n.starts_with('.') && *n != live)
            .map(|n| dir.join(n))
            .chain(main)
            .collect();
        let r = tokio::task::spawn_blocking(move || Reference::new(shape, &context, shape::stamp))
            .await
            .ok();
        self.memo().reference = r;
    }

    /// Asks nginx whether it would accept `text` at `conf`; the live file is untouched and
    /// nothing is reloaded.
    pub async fn check(&self, conf: &Path, text: &str) -> Result<(), NginxError> {
        let conf = std::path::absolute(conf).map_err(|source| write_err(conf, source))?;
        self.validate(&conf, text).await
    }

    /// `nginx -t` on `text` as the candidate, in the context of nginx's main config.
    async fn validate(&self, conf: &Path, text: &str) -> Result<(), NginxError> {
        let candidate = candidate_path(conf);
        write_file(&candidate, text.as_bytes()).await?;
        let test_main = sibling(conf, "test-main.conf");
        let (layout, main_text) = self.layout(conf).await?;
        let local_dir = conf.parent().map(Path::to_path_buf).unwrap_or_default();
        let nginx_dir = layout.live.parent().map(Path::to_path_buf);
        let listing = list(&local_dir).await;
        let list_dir = |d: &Path| {
            if Some(d) == nginx_dir.as_deref() {
                listing.clone()
            } else {
                Vec::new()
            }
        };
        let derived = testconf::derive(&main_text, &layout, list_dir);
        let Ok(test_text) = derived else {
            return self.validate_in_place(conf, text, derived.err()).await;
        };
        write_file(&test_main, test_text.as_bytes()).await?;
        let started = std::time::Instant::now();
        let verdict = match &self.target {
            Target::Local(argv) => {
                let path = test_main.display().to_string();
                run_local(&with_conf(argv, &path), &["-t", "-q"])
                    .await
                    .map(drop)
            }
            Target::Container(Some(docker), Some(id)) => {
                let path = nginx_dir
                    .unwrap_or_default()
                    .join(test_main.file_name().unwrap_or_default());
                nginxrun::exec_test(docker, id, &["-c", &path.to_string_lossy()]).await
            }
            Target::Container(..) => Err(NginxError::NoContainer),
        };
        tracing::debug!(
            action = "nginx_checked",
            ok = verdict.is_ok(),
            took_ms = started.elapsed().as_millis() as u64,
            "candidate validated by nginx -t"
        );
        verdict
    }

    /// The main config includes the live file only through another file: the old way (write
    /// the live file, `nginx -t`, put the old bytes back on rejection), with a warning once.
    async fn validate_in_place(
        &self,
        conf: &Path,
        text: &str,
        why: Option<testconf::DeriveError>,
    ) -> Result<(), NginxError> {
        if !std::mem::replace(&mut self.memo().warned_in_place, true) {
            let why = why.map(|e| e.to_string()).unwrap_or_default();
            tracing::warn!(action = "validate_in_place", error = %why, "cannot validate the candidate beside the live file; validating it in place");
        }
        let old = tokio::fs::read(conf).await.ok();
        write_file(conf, text.as_bytes()).await?;
        let verdict = self.test().await;
        if verdict.is_err() {
            match old {
                Some(bytes) => write_file(conf, &bytes).await?,
                None => tokio::fs::remove_file(conf)
                    .await
                    .map_err(|source| write_err(conf, source))?,
            }
        }
        verdict
    }

    /// The paths nginx sees and its main config's text.
    async fn layout(&self, conf: &Path) -> Result<(Layout, String), NginxError> {
        let name = |p: &Path| p.file_name().unwrap_or_default().to_owned();
        match &self.target {
            Target::Local(argv) => {
                let main = self.local_paths(argv).await?.main;
                let text =
                    tokio::fs::read_to_string(&main)
                        .await
                        .map_err(|e| NginxError::Command {
                            cmd: format!("read nginx's main config {}", main.display()),
                            detail: e.to_string(),
                        })?;
                let layout = Layout {
                    main,
                    live: conf.to_path_buf(),
                    candidate: candidate_path(conf),
                };
                Ok((layout, text))
            }
            Target::Container(Some(docker), Some(id)) => {
                let view = self.container_view(docker, id, conf).await?;
                let layout = Layout {
                    main: view.main.clone(),
                    live: view.conf_dir.join(name(conf)),
                    candidate: view.conf_dir.join(name(&candidate_path(conf))),
                };
                Ok((layout, view.main_text))
            }
            Target::Container(..) => Err(NginxError::NoContainer),
        }
    }

    /// nginx's main config and pid file (local mode), from its flags and `nginx -V`; learned once.
    async fn local_paths(&self, argv: &[String]) -> Result<LocalPaths, NginxError> {
        if let Some(p) = self.memo().local.clone() {
            return Ok(p);
        }
        let v = run_local(argv, &["-V"]).await?;
        let main = nginxpaths::local_main(argv, &v);
        let text = tokio::fs::read_to_string(&main).await.unwrap_or_default();
        let paths = LocalPaths {
            pid: nginxpaths::pid_file(argv, &v, &text),
            main,
        };
        self.memo().local = Some(paths.clone());
        Ok(paths)
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

    /// Learns the container's main config and where the conf directory is mounted in it.
    async fn container_view(
        &self,
        docker: &Docker,
        id: &str,
        conf: &Path,
    ) -> Result<ContainerView, NginxError> {
        if let Some((known, view)) = &self.memo().container
            && known == id
        {
            return Ok(view.clone());
        }
        let info = docker
            .inspect_container(id, None)
            .await
            .map_err(|e| NginxError::Docker {
                op: "inspect",
                container: id.into(),
                detail: e.to_string(),
            })?;
        let local_dir = conf.parent().unwrap_or(Path::new("/"));
        let conf_dir = container_dir(&info, local_dir);
        let main = container_main(&info);
        let main_text = nginxrun::read_file(docker, id, &main.to_string_lossy()).await?;
        let view = ContainerView {
            main,
            main_text,
            conf_dir,
        };
        self.memo().container = Some((id.to_string(), view.clone()));
        Ok(view)
    }
}
