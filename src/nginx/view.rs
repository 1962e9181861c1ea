//! What nginx sees: its main config and pid file (local mode), or the container's main config
//! and where the conf directory is mounted in it; learned once and remembered.

use std::path::{Path, PathBuf};

use bollard::Docker;

use super::{Nginx, NginxError, Target};
use crate::nginxpaths::{self, candidate_path, container_dir, container_main};
use crate::nginxrun::{self, run_local};
use crate::testconf::Layout;

/// Local nginx's files.
#[derive(Clone)]
pub(super) struct LocalPaths {
    /// nginx's main config (from `-c`, else `nginx -V`'s `--conf-path`).
    pub(super) main: PathBuf,
    /// The pid file naming the master (`pid` in `-g` or the main config, else compiled in).
    pub(super) pid: Option<PathBuf>,
}

/// The nginx container, seen from inside.
#[derive(Clone)]
pub(super) struct ContainerView {
    /// Its main config path and text.
    main: PathBuf,
    main_text: String,
    /// The conf directory's path inside the container.
    conf_dir: PathBuf,
}

impl Nginx {
    /// The paths nginx sees and its main config's text.
    pub(super) async fn layout(&self, conf: &Path) -> Result<(Layout, String), NginxError> {
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
    pub(super) async fn local_paths(&self, argv: &[String]) -> Result<LocalPaths, NginxError> {
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
