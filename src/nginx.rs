//! nginx: write a candidate config, have nginx validate it, then reload — or put the previous
//! file back and reload nothing. Local process (`--nginx-cmd`) or container (through the Docker API).
//!
//! This module decides nothing about content; it only makes a given text live safely.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::KillContainerOptionsBuilder;
use futures_util::StreamExt;

use crate::fsutil;

/// How long `nginx -t` or a reload may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a config could not be made live.
#[derive(Debug, thiserror::Error)]
pub enum NginxError {
    /// nginx rejected the candidate; the previous file was put back. Holds nginx's own message.
    #[error("nginx rejected the new config (previous config kept): {output}")]
    Rejected {
        /// What `nginx -t` printed.
        output: String,
    },
    /// The config file could not be written.
    #[error("cannot write {path}: {source}")]
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

/// Where nginx runs and how to talk to it.
#[derive(Clone)]
pub enum Nginx {
    /// Local process: the argv prefix (e.g. `nginx -p /srv -c /srv/nginx.conf`).
    Local(Vec<String>),
    /// A container reached through Docker: the client once Docker is connected, and the
    /// container's id once it is found.
    Container(Option<Docker>, Option<String>),
}

impl Nginx {
    /// Validates the configuration nginx would load now (`nginx -t`).
    pub async fn test(&self) -> Result<(), NginxError> {
        match self {
            Nginx::Local(argv) => run_local(argv, &["-t", "-q"]).await,
            Nginx::Container(Some(docker), Some(id)) => exec_test(docker, id).await,
            Nginx::Container(..) => Err(NginxError::NoContainer),
        }
    }

    /// Tells nginx to reload its configuration (`-s reload` or SIGHUP through Docker).
    pub async fn reload(&self) -> Result<(), NginxError> {
        match self {
            Nginx::Local(argv) => run_local(argv, &["-s", "reload"]).await,
            Nginx::Container(Some(docker), Some(id)) => {
                let opts = KillContainerOptionsBuilder::default()
                    .signal("SIGHUP")
                    .build();
                docker
                    .kill_container(id, Some(opts))
                    .await
                    .map_err(|e| NginxError::Docker {
                        op: "kill SIGHUP",
                        container: id.clone(),
                        detail: e.to_string(),
                    })
            }
            Nginx::Container(..) => Err(NginxError::NoContainer),
        }
    }

    /// Makes `text` the live config at `conf`: write, validate, reload; on rejection the previous
    /// bytes go back and nothing is reloaded. Returns false when the file already held `text`
    /// and `force_reload` is off (nothing to do).
    pub async fn apply(
        &self,
        conf: &Path,
        text: &str,
        force_reload: bool,
    ) -> Result<bool, NginxError> {
        let old = std::fs::read(conf).ok();
        let changed = old.as_deref() != Some(text.as_bytes());
        if !changed && !force_reload {
            return Ok(false);
        }
        if changed {
            write(conf, text.as_bytes())?;
            if let Err(e) = self.test().await {
                restore(conf, old.as_deref())?;
                return Err(e);
            }
        }
        self.reload().await?;
        Ok(true)
    }

    /// Asks nginx whether it would accept `text` at `conf`, then puts the previous bytes back
    /// whatever the answer: nothing is reloaded.
    pub async fn check(&self, conf: &Path, text: &str) -> Result<(), NginxError> {
        let old = std::fs::read(conf).ok();
        write(conf, text.as_bytes())?;
        let verdict = self.test().await;
        restore(conf, old.as_deref())?;
        verdict
    }
}

/// Puts `old` back at `conf` (no file before: none after).
fn restore(conf: &Path, old: Option<&[u8]>) -> Result<(), NginxError> {
    match old {
        Some(bytes) => write(conf, bytes),
        None => std::fs::remove_file(conf).map_err(|source| NginxError::Write {
            path: conf.into(),
            source,
        }),
    }
}

fn write(conf: &Path, bytes: &[u8]) -> Result<(), NginxError> {
    fsutil::write_atomic(conf, bytes, 0o644).map_err(|source| NginxError::Write {
        path: conf.into(),
        source,
    })
}

async fn run_local(argv: &[String], args: &[&str]) -> Result<(), NginxError> {
    let cmd = format!("{} {}", argv.join(" "), args.join(" "));
    let fail = |detail: String| NginxError::Command {
        cmd: cmd.clone(),
        detail,
    };
    let child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child)
        .await
        .map_err(|_| fail(format!("no answer within {COMMAND_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    let output = one_line(&format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    ));
    if args[0] == "-t" {
        Err(NginxError::Rejected { output })
    } else {
        Err(fail(format!("{}: {output}", out.status)))
    }
}

async fn exec_test(docker: &Docker, id: &str) -> Result<(), NginxError> {
    let fail = |op, e: bollard::errors::Error| NginxError::Docker {
        op,
        container: id.to_string(),
        detail: e.to_string(),
    };
    let opts = CreateExecOptions::<&str> {
        cmd: Some(vec!["nginx", "-t", "-q"]),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = docker
        .create_exec(id, opts)
        .await
        .map_err(|e| fail("exec create", e))?;
    let mut output = String::new();
    if let StartExecResults::Attached {
        output: mut stream, ..
    } = docker
        .start_exec(&exec.id, None)
        .await
        .map_err(|e| fail("exec start", e))?
    {
        let collect = async {
            while let Some(Ok(chunk)) = stream.next().await {
                output.push_str(&chunk.to_string());
            }
        };
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, collect).await;
    }
    let info = docker
        .inspect_exec(&exec.id)
        .await
        .map_err(|e| fail("exec inspect", e))?;
    match info.exit_code {
        Some(0) => Ok(()),
        _ => Err(NginxError::Rejected {
            output: one_line(&output),
        }),
    }
}

/// nginx's multi-line output as one line (log lines and status fields stay one line each).
fn one_line(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}
