//! Self-check before ordering: write a random probe file where the CA's token will go, fetch it
//! through nginx's HTTP listener with the right `Host`, compare the body, delete the probe. A
//! broken challenge route is found here, without spending any of the CA's failure budget.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
use rand::distr::Alphanumeric;

use super::error::chain;
use super::store::write_challenge;
use crate::host::HostName;

/// How long one probe GET may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a failing probe is retried: `nginx -s reload` returns before the new workers
/// serve, so the route for a name added a moment ago may need a few hundred milliseconds.
const SETTLE: Duration = Duration::from_secs(3);

/// Checks that `http://NAME/.well-known/acme-challenge/PROBE` via `addr` serves the probe file,
/// retrying for a short settle time. The error says what was seen instead.
pub async fn check(webroot: &Path, addr: SocketAddr, name: &HostName) -> Result<(), String> {
    check_settled(webroot, addr, name, SETTLE).await
}

/// [`check`] with an explicit settle time (zero: one attempt).
pub async fn check_settled(
    webroot: &Path,
    addr: SocketAddr,
    name: &HostName,
    settle: Duration,
) -> Result<(), String> {
    let probe: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let probe = format!("vhostd-probe-{probe}");
    let body = format!("vhostd self-check {probe}\n");
    let (dir, n, file, text) = (
        webroot.to_path_buf(),
        name.clone(),
        probe.clone(),
        body.clone(),
    );
    let path = tokio::task::spawn_blocking(move || write_challenge(&dir, &n, &file, &text))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| format!("cannot write the probe file: {e}"))?;
    let url = format!("http://{name}/.well-known/acme-challenge/{probe} via {addr}");
    let deadline = tokio::time::Instant::now() + settle;
    // An HTTP answer says more about a broken route than a refused connection does: keep it.
    let mut answered: Option<String> = None;
    let result = loop {
        let failed = match tokio::time::timeout(TIMEOUT, fetch(addr, name, &probe)).await {
            Ok(Ok((200, b))) if b == body.as_bytes() => break Ok(()),
            Ok(Ok((200, _))) => {
                answered = Some(format!(
                    "GET {url} answered 200 with another body (wrong webroot?)"
                ));
                None
            }
            Ok(Ok((status, _))) => {
                answered = Some(format!("GET {url} answered HTTP {status}"));
                None
            }
            Ok(Err(e)) => Some(format!("GET {url} failed: {e}")),
            Err(_) => Some(format!("GET {url} timed out after {}s", TIMEOUT.as_secs())),
        };
        if tokio::time::Instant::now() >= deadline {
            break Err(answered.or(failed).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if let Err(e) = tokio::fs::remove_file(&path).await {
        tracing::debug!(domain = %name, path = %path.display(), error = %e, "probe file removal failed");
    }
    result
}

/// One GET, returning status and body (bodies are tiny: a probe file or an error page).
async fn fetch(addr: SocketAddr, name: &HostName, probe: &str) -> Result<(u16, Vec<u8>), String> {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let req = hyper::Request::get(format!("http://{addr}/.well-known/acme-challenge/{probe}"))
        .header(hyper::header::HOST, name.as_str())
        .header(hyper::header::USER_AGENT, "vhostd-self-check")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let rsp = client.request(req).await.map_err(|e| chain(&e))?;
    let status = rsp.status().as_u16();
    let body = rsp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-request HTTP server that serves a file of the webroot by Host header, like nginx.
    async fn serve_once(webroot: std::path::PathBuf) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap().to_string();
            let host = req
                .lines()
                .find_map(|l| l.strip_prefix("host: "))
                .unwrap()
                .trim()
                .to_string();
            let body = std::fs::read(webroot.join(host).join(path.trim_start_matches('/'))).ok();
            let (status, body) =
                body.map_or(("404 Not Found", b"nope".to_vec()), |b| ("200 OK", b));
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(&body).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn passes_when_served_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let name = HostName::parse("a.example.com").unwrap();
        let addr = serve_once(dir.path().to_path_buf()).await;
        check_settled(dir.path(), addr, &name, Duration::ZERO)
            .await
            .unwrap();
        let left = std::fs::read_dir(super::super::store::challenge_dir(dir.path(), &name))
            .unwrap()
            .count();
        assert_eq!(left, 0, "probe file removed");
    }

    #[tokio::test]
    async fn reports_wrong_route_and_dead_port() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let name = HostName::parse("a.example.com").unwrap();
        let addr = serve_once(other.path().to_path_buf()).await;
        let e = check_settled(dir.path(), addr, &name, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.contains("HTTP 404"), "{e}");
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let e = check_settled(dir.path(), dead, &name, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(e.contains("refused"), "{e}");
    }
}
