//! Test harness shared by the integration test binaries: a real dockerd (started by the
//! project's `scripts/testenv/up.sh`), a real nginx per test, the real `vhostd` binary, and
//! small helpers to wait on conditions with a deadline. Nothing here is a fake.
#![allow(dead_code)]

pub mod docker;
pub mod nginx;
pub mod pebble;
pub mod vhostd;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on 127.0.0.1 below the ephemeral range, never handed out twice in this process: parallel tests start
/// containers some time after choosing their port, so "bind :0 and release" alone could repeat.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20000 + (std::process::id() % 200) as u16 * 50,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let p = NEXT.fetch_add(1, Ordering::SeqCst);
        // Stay below the kernel's ephemeral range (32768+): an outgoing connection could take a
        // port there between our check and the server's bind.
        if !(20000..32768).contains(&p) {
            NEXT.store(20000, Ordering::SeqCst);
            continue;
        }
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// An HTTP answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code (0 when the connection failed).
    pub status: u16,
    /// Response body.
    pub body: String,
    /// Raw header block.
    pub headers: String,
}

/// `GET path` on 127.0.0.1:port with `Host: host`, HTTP/1.0 (no keep-alive), raw over TCP.
pub fn http_get(port: u16, host: &str, path: &str) -> Answer {
    http_get_with(port, host, path, "")
}

/// Like [`http_get`], with `extra` request header lines (each ending in `\r\n`).
pub fn http_get_with(port: u16, host: &str, path: &str, extra: &str) -> Answer {
    let fail = Answer {
        status: 0,
        body: String::new(),
        headers: String::new(),
    };
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
    else {
        return fail;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: vhostd-test\r\n{extra}\r\n"
    )
    .is_err()
    {
        return fail;
    }
    let mut raw = Vec::new();
    if s.read_to_end(&mut raw).is_err() {
        return fail;
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        body: body.to_string(),
        headers: head.to_string(),
    }
}

/// Waits until `GET /` for `host` answers `status` (and, if given, a body containing `body`).
pub fn wait_http(
    port: u16,
    host: &str,
    status: u16,
    body: Option<&str>,
    limit: Duration,
) -> Answer {
    let what = format!("http://{host}:{port}/ to answer {status} {body:?}");
    let end = Instant::now() + limit;
    loop {
        let a = http_get(port, host, "/");
        if a.status == status && body.is_none_or(|b| a.body.contains(b)) {
            return a;
        }
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}; last answer: {a:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Writes a self-signed pair for `sans` at `certs_dir/live/DIR/` (fullchain.pem, privkey.pem),
/// as a user would put one there; returns the certificate file.
pub fn self_signed(certs_dir: &Path, dir: &str, sans: &[String]) -> PathBuf {
    let live = certs_dir.join("live").join(dir);
    std::fs::create_dir_all(&live).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(sans.to_vec())
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(live.join("fullchain.pem"), cert.pem()).unwrap();
    std::fs::write(live.join("privkey.pem"), key.serialize_pem()).unwrap();
    live.join("fullchain.pem")
}

/// A scratch directory under target/ that is kept on failure for inspection, named after the test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = repo().join("target/test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_traversable(&dir);
    dir
}

/// nginx workers run as `nobody`: every parent of a served directory must be traversable.
pub fn make_traversable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut p = Some(dir);
    while let Some(d) = p {
        if let Ok(m) = std::fs::metadata(d) {
            let mode = m.permissions().mode();
            if mode & 0o005 != 0o005 {
                let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o755));
            }
        }
        p = d.parent();
    }
}

/// True while the process `pid` exists and is not a zombie (PID 1 here reaps late).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .unwrap_or(false)
}

/// Sends SIGTERM to `pid` and waits (bounded) for it to end, then SIGKILL.
pub fn stop_pid(pid: u32) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let end = Instant::now() + Duration::from_secs(15);
    while running(pid) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    if running(pid) {
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
}
