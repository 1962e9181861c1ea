//! Why a config could not be made live, and the log `action` each failure is reported under.

use std::path::PathBuf;

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
