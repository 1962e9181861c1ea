//! Which nginx renders are for: its version decides the syntax of some directives (HTTP/2 is
//! `http2 on;` from 1.25.1, a `listen … http2` parameter before). The version is a plain input
//! of the renderer, so rendering stays pure; [`probe_local`] and [`probe_container`] ask nginx.

use std::fmt;
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;

/// How long `nginx -v` may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// An nginx version, `major.minor.patch`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NginxVersion(pub u32, pub u32, pub u32);

impl NginxVersion {
    /// The first version with the `http2` directive (`listen … http2` is deprecated there).
    pub const HTTP2_DIRECTIVE: NginxVersion = NginxVersion(1, 25, 1);

    /// Finds `nginx/X.Y.Z` in `nginx -v` output (`nginx version: nginx/1.22.1`, or
    /// `nginx version: openresty/…`, which is not nginx's numbering: `None`).
    pub fn parse(output: &str) -> Option<NginxVersion> {
        let rest = &output[output.find("nginx/")? + "nginx/".len()..];
        let v: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
        let (major, minor) = (parts.next()??, parts.next()??);
        Some(NginxVersion(
            major,
            minor,
            parts.next().flatten().unwrap_or(0),
        ))
    }
}

impl fmt::Display for NginxVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// `ARGV -v` for a local nginx (`--nginx-cmd`); `None` when it can't be run or read.
pub async fn probe_local(argv: &[String]) -> Option<NginxVersion> {
    let (cmd, args) = argv.split_first()?;
    let run = tokio::process::Command::new(cmd)
        .args(args)
        .arg("-v")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(PROBE_TIMEOUT, run).await.ok()?.ok()?;
    // nginx prints its version on stderr.
    NginxVersion::parse(&String::from_utf8_lossy(&out.stderr))
        .or_else(|| NginxVersion::parse(&String::from_utf8_lossy(&out.stdout)))
}

/// `nginx -v` inside the nginx container, through the Docker API.
pub async fn probe_container(docker: &Docker, id: &str) -> Option<NginxVersion> {
    let opts = CreateExecOptions::<&str> {
        cmd: Some(vec!["nginx", "-v"]),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = docker.create_exec(id, opts).await.ok()?;
    let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.ok()?
    else {
        return None;
    };
    let mut text = String::new();
    let collect = async {
        while let Some(Ok(chunk)) = output.next().await {
            text.push_str(&chunk.to_string());
        }
    };
    let _ = tokio::time::timeout(PROBE_TIMEOUT, collect).await;
    NginxVersion::parse(&text)
}

/// The version of the nginx vhostd talks to, asked once per nginx (process or container id).
#[derive(Debug, Default)]
pub struct Probe {
    /// Which nginx was asked (`local` or a container id) and what it said.
    asked: Option<(String, Option<NginxVersion>)>,
}

impl Probe {
    /// Asks nginx for its version unless this nginx was already asked.
    pub async fn refresh(&mut self, nginx: &crate::nginx::Nginx) {
        let target = match (nginx.local_argv(), nginx.container_target()) {
            (Some(_), _) => "local".to_string(),
            (None, Some((_, id))) => id.to_string(),
            (None, None) => return,
        };
        if self.asked.as_ref().is_some_and(|(t, _)| *t == target) {
            return;
        }
        let version = match (nginx.local_argv(), nginx.container_target()) {
            (Some(argv), _) => probe_local(argv).await,
            (None, Some((docker, id))) => probe_container(docker, id).await,
            (None, None) => None,
        };
        match version {
            Some(v) => {
                tracing::info!(action = "nginx_version", version = %v, nginx = %target, "rendering for this nginx version")
            }
            None => {
                tracing::warn!(action = "nginx_version", nginx = %target, "nginx -v gave no version; rendering syntax every nginx accepts")
            }
        }
        self.asked = Some((target, version));
    }

    /// The version found, if any.
    pub fn get(&self) -> Option<NginxVersion> {
        self.asked.as_ref().and_then(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nginx_v_output() {
        assert_eq!(
            NginxVersion::parse("nginx version: nginx/1.22.1\n"),
            Some(NginxVersion(1, 22, 1))
        );
        assert_eq!(
            NginxVersion::parse("nginx version: nginx/1.27.3 (Ubuntu)"),
            Some(NginxVersion(1, 27, 3))
        );
        assert_eq!(
            NginxVersion::parse("nginx version: nginx/1.25"),
            Some(NginxVersion(1, 25, 0))
        );
        assert_eq!(NginxVersion::parse("sh: nginx: not found"), None);
        assert!(NginxVersion(1, 25, 1) >= NginxVersion::HTTP2_DIRECTIVE);
        assert!(NginxVersion(1, 24, 9) < NginxVersion::HTTP2_DIRECTIVE);
    }
}
