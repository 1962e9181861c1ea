//! nginx's processes: run the local command (`-t`, `-s reload`, `-V`), or reach the nginx
//! container through the Docker API (exec `nginx -t`, SIGHUP, read a file from its filesystem).

use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::{DownloadFromContainerOptionsBuilder, KillContainerOptionsBuilder};
use futures_util::StreamExt;

use crate::nginx::NginxError;

/// How long `nginx -t` or a reload may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `argv ARGS`; a failing `-t` is a rejection (nginx's message), any other failure a
/// command error. Returns what the command printed (stderr then stdout).
pub async fn run_local(argv: &[String], args: &[&str]) -> Result<String, NginxError> {
    let cmd = format!("{} {}", argv.join(" "), args.join(" "));
    let fail = |detail: String| NginxError::Command {
        cmd: cmd.clone(),
        detail,
    };
    let Some(program) = argv.first() else {
        return Err(fail("empty command".into()));
    };
    let child = tokio::process::Command::new(program)
        .args(&argv[1..])
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child)
        .await
        .map_err(|_| fail(format!("no answer within {COMMAND_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    let printed = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    if out.status.success() {
        return Ok(printed);
    }
    if args.contains(&"-t") {
        Err(NginxError::Rejected {
            output: one_line(&printed),
        })
    } else {
        Err(fail(format!("{}: {}", out.status, one_line(&printed))))
    }
}

fn docker_err(op: &'static str, id: &str, e: impl ToString) -> NginxError {
    NginxError::Docker {
        op,
        container: id.to_string(),
        detail: e.to_string(),
    }
}

/// `nginx -t -q ARGS` inside the container: a non-zero exit is a rejection.
pub async fn exec_test(docker: &Docker, id: &str, args: &[&str]) -> Result<(), NginxError> {
    let mut cmd = vec!["nginx", "-t", "-q"];
    cmd.extend_from_slice(args);
    let opts = CreateExecOptions::<&str> {
        cmd: Some(cmd),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = docker
        .create_exec(id, opts)
        .await
        .map_err(|e| docker_err("exec create", id, e))?;
    let mut output = String::new();
    if let StartExecResults::Attached {
        output: mut stream, ..
    } = docker
        .start_exec(&exec.id, None)
        .await
        .map_err(|e| docker_err("exec start", id, e))?
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
        .map_err(|e| docker_err("exec inspect", id, e))?;
    match info.exit_code {
        Some(0) => Ok(()),
        _ => Err(NginxError::Rejected {
            output: one_line(&output),
        }),
    }
}

/// SIGHUP to the container's main process: nginx reloads.
pub async fn hup(docker: &Docker, id: &str) -> Result<(), NginxError> {
    let opts = KillContainerOptionsBuilder::default()
        .signal("SIGHUP")
        .build();
    docker
        .kill_container(id, Some(opts))
        .await
        .map_err(|e| docker_err("kill SIGHUP", id, e))
}

/// The text of one file inside the container (through the archive API: no shell needed).
pub async fn read_file(docker: &Docker, id: &str, path: &str) -> Result<String, NginxError> {
    let opts = DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let mut stream = docker.download_from_container(id, Some(opts));
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        tar.extend_from_slice(&chunk.map_err(|e| docker_err("read file", id, e))?);
    }
    first_tar_file(&tar)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or_else(|| docker_err("read file", id, format!("{path}: not a regular file")))
}

/// The content of the first regular file of a tar archive (ustar headers are 512 bytes; the
/// size is octal at offset 124; type `0` or NUL is a regular file).
fn first_tar_file(tar: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let h = &tar[at..at + 512];
        if h.iter().all(|b| *b == 0) {
            return None;
        }
        let size_field = std::str::from_utf8(&h[124..136]).ok()?;
        let size =
            usize::from_str_radix(size_field.trim_matches(|c| c == '\0' || c == ' '), 8).ok()?;
        let body = at + 512;
        if matches!(h[156], b'0' | 0) {
            return tar.get(body..body + size);
        }
        at = body + size.div_ceil(512) * 512;
    }
    None
}

/// nginx's multi-line output as one line (log lines and status fields stay one line each).
pub fn one_line(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_file_of_a_docker_archive() {
        let mut tar = vec![0u8; 512];
        tar[..10].copy_from_slice(b"nginx.conf");
        tar[124..135].copy_from_slice(b"00000000005");
        tar[156] = b'0';
        tar.extend_from_slice(b"hello");
        tar.resize(2048, 0);
        assert_eq!(first_tar_file(&tar), Some(&b"hello"[..]));
        assert_eq!(first_tar_file(&[0u8; 1024]), None);
    }
}
