//! A pass-through proxy in front of the test's Docker socket, in the place a docker-socket-proxy
//! takes: every byte goes to the real dockerd unchanged, and the request lines that go by are
//! recorded, so the test can hold the README's list of Docker API endpoints to what vhostd calls.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A listening recorder; its threads end with the test process.
pub struct ApiRecorder {
    /// The socket to hand to vhostd instead of dockerd's.
    pub socket: PathBuf,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ApiRecorder {
    /// Listens on `socket`, forwarding each connection to `upstream`.
    pub fn start(socket: &Path, upstream: &Path) -> ApiRecorder {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).expect("bind the recording socket");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, upstream) = (seen.clone(), upstream.to_path_buf());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = UnixStream::connect(&upstream) else {
                    continue;
                };
                let log = log.clone();
                std::thread::spawn(move || pump(client, server, log));
            }
        });
        ApiRecorder {
            socket: socket.to_path_buf(),
            seen,
        }
    }

    /// Every request so far as `METHOD /path`: API version prefix and query string removed,
    /// container and exec ids replaced by `{id}`; sorted, without duplicates.
    pub fn endpoints(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|l| normalize(l))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Copies both ways; the client's side is scanned for request lines.
fn pump(mut client: UnixStream, mut server: UnixStream, log: Arc<Mutex<Vec<String>>>) {
    let (Ok(mut client_w), Ok(mut server_r)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_r, &mut client_w);
        let _ = client_w.shutdown(std::net::Shutdown::Write);
    });
    let mut buf = [0u8; 16 * 1024];
    let mut line = Vec::new();
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if is_request_line(&text) {
                    log.lock().unwrap().push(text);
                }
                line.clear();
            } else if line.len() < 4096 {
                line.push(b);
            }
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(std::net::Shutdown::Write);
}

fn is_request_line(l: &str) -> bool {
    let mut parts = l.split(' ');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("GET" | "POST" | "PUT" | "DELETE" | "HEAD"), Some(p), Some(v))
            if p.starts_with('/') && v.starts_with("HTTP/1.")
    )
}

/// `GET /v1.41/containers/abc…/json?x=1 HTTP/1.1` → `GET /containers/{id}/json`.
fn normalize(line: &str) -> String {
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let segs = match segs.first() {
        Some(s) if s.starts_with('v') && s[1..].contains('.') => &segs[1..],
        _ => &segs[..],
    };
    let mut out = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let id_slot = i == 1 && matches!(segs[0], "containers" | "exec") && *s != "json";
        out.push(if id_slot { "{id}" } else { s });
    }
    format!("{method} /{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_normalized() {
        assert_eq!(
            normalize("GET /v1.41/containers/0123abcd/json HTTP/1.1"),
            "GET /containers/{id}/json"
        );
        assert_eq!(
            normalize("GET /v1.41/containers/json?all=false HTTP/1.1"),
            "GET /containers/json"
        );
        assert_eq!(
            normalize("POST /v1.41/exec/ff00/start HTTP/1.1"),
            "POST /exec/{id}/start"
        );
        assert_eq!(normalize("GET /version HTTP/1.1"), "GET /version");
        assert!(!is_request_line("{\"Cmd\":[\"nginx\"]}"));
    }
}
