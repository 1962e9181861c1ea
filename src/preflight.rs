//! Start-up checks of `vhostd run`: what can't work later is refused now, with one line that
//! names the flag and the file. Docker being down is not checked here: it is retried.

use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::nginx::{Nginx, NginxError};

/// Why vhostd refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// `--acme-ca-bundle` can't be read.
    #[error("cannot read --acme-ca-bundle {path}: {source}")]
    CaBundle {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `--template-dir` is missing or not a directory.
    #[error(
        "--template-dir {path} is not a directory: {detail} (create it, or drop the flag to use the embedded templates)"
    )]
    TemplateDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The conf file's directory can't be written.
    #[error(
        "cannot write in the directory of --conf-file {path}: {source} (vhostd writes the config and a candidate beside it)"
    )]
    ConfDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The local nginx command does not run.
    #[error("--nginx-cmd does not run: {0}")]
    Nginx(NginxError),
}

/// Runs every check; the first failure is the answer.
pub async fn check(s: &Settings, nginx: &Nginx) -> Result<(), PreflightError> {
    let o = &s.opts;
    if let Some(path) = o.acme_ca_bundle.clone().filter(|_| !o.no_acme) {
        tokio::fs::read(&path)
            .await
            .map_err(|source| PreflightError::CaBundle { path, source })?;
    }
    if let Some(path) = o.template_dir.clone() {
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(PreflightError::TemplateDir {
                    path,
                    detail: "not a directory".into(),
                });
            }
            Err(e) => {
                return Err(PreflightError::TemplateDir {
                    path,
                    detail: e.to_string(),
                });
            }
        }
    }
    let dir = o
        .conf_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let probe = dir.clone();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&probe)?;
        tempfile::Builder::new()
            .prefix(".vhostd-probe-")
            .tempfile_in(&probe)
            .map(drop)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    .map_err(|source| PreflightError::ConfDir { path: dir, source })?;
    nginx.check_runs().await.map_err(PreflightError::Nginx)
}
