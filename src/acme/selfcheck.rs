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

/// Checks that `http://NAME/.well-known/acme-challenge/PROBE` via `addr` serves the probe file.
/// The error says what was seen instead.
pub async fn check(webroot: &Path, addr: SocketAddr, name: &HostName) -> Result<(), String> {
    let probe: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let probe = format!("vhostd-probe-{probe}");
    let body = format!("vhostd self-check {probe}\n");
    let path = write_challenge(webroot, name, &probe, &body)
        .map_err(|e| format!("cannot write the probe file: {e}"))?;
    let got = tokio::time::timeout(TIMEOUT, fetch(addr, name, &probe)).await;
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::debug!(domain = %name, path = %path.display(), error = %e, "probe file removal failed");
    }
    let url = format!("http://{name}/.well-known/acme-challenge/{probe} via {addr}");
    match got {
        Err(_) => Err(format!("GET {url} timed out after {}s", TIMEOUT.as_secs())),
        Ok(Err(e)) => Err(format!("GET {url} failed: {e}")),
        Ok(Ok((200, b))) if b == body.as_bytes() => Ok(()),
        Ok(Ok((200, _))) => Err(format!(
            "GET {url} answered 200 with another body (wrong webroot?)"
        )),
        Ok(Ok((status, _))) => Err(format!("GET {url} answered HTTP {status}")),
    }
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
        check(dir.path(), addr, &name).await.unwrap();
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
        let e = check(dir.path(), addr, &name).await.unwrap_err();
        assert!(e.contains("HTTP 404"), "{e}");
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let e = check(dir.path(), dead, &name).await.unwrap_err();
        assert!(e.contains("refused"), "{e}");
    }
}
