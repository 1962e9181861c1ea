//! Swarm API reads over the Docker endpoint: `/info`, `/services`, `/tasks`, `/nodes`,
//! `/networks/ID`. Plain HTTP/1.1 GETs (one connection each) decoded into [`super::model`],
//! because bollard's task model lacks the task addresses. Only the event stream uses bollard.

use std::collections::HashMap;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::model::{Network, Node, Service, Task};

/// The API version of every read: the oldest engine vhostd supports (newer ones accept it).
const API: &str = "/v1.41";

/// A failed Swarm API read, naming the request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The engine is not (or no longer) a manager: it answers 503 to Swarm reads.
    #[error(
        "GET {path}: this Docker engine is not a Swarm manager; run vhostd on manager nodes \
         (stack file: deploy.placement.constraints: [node.role == manager])"
    )]
    NotManager {
        /// The request path.
        path: String,
    },
    /// Any other failure.
    #[error("GET {path} from the Docker engine failed: {detail}")]
    Failed {
        /// The request path.
        path: String,
        /// What went wrong.
        detail: String,
    },
}

/// What `/info` says about this engine's place in a Swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not in a Swarm (or joining/leaving).
    None,
    /// A worker: it cannot list services.
    Worker,
    /// A manager: services, tasks and nodes can be read.
    Manager,
}

/// The part of `GET /info` that tells an engine's Swarm role.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Info {
    swarm: SwarmInfo,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct SwarmInfo {
    local_node_state: String,
    control_available: bool,
}

impl Info {
    /// Pure: the role `/info` describes (a worker has no control, a manager has).
    pub fn role(&self) -> Role {
        match (
            self.swarm.local_node_state.as_str(),
            self.swarm.control_available,
        ) {
            ("active", true) => Role::Manager,
            ("active", false) => Role::Worker,
            _ => Role::None,
        }
    }
}

/// Reads the Swarm API at a Docker endpoint (`unix://`, `tcp://` or `http://`).
#[derive(Debug, Clone)]
pub struct Api {
    host: String,
}

impl Api {
    /// A reader for `host` (as `--docker-host` spells it).
    pub fn new(host: &str) -> Api {
        Api { host: host.into() }
    }

    /// This engine's role, from `GET /info`.
    pub async fn role(&self) -> Result<Role, ApiError> {
        let info: Info = self.get("/info").await?;
        Ok(
            match (
                info.swarm.local_node_state.as_str(),
                info.swarm.control_available,
            ) {
                ("active", true) => Role::Manager,
                ("active", false) => Role::Worker,
                _ => Role::None,
            },
        )
    }

    /// Every service.
    pub async fn services(&self) -> Result<Vec<Service>, ApiError> {
        self.get("/services").await
    }

    /// One service; `None` once it is removed.
    pub async fn service(&self, id: &str) -> Result<Option<Service>, ApiError> {
        self.get_opt(&format!("/services/{id}")).await
    }

    /// Tasks the orchestrator wants running, of one service or of all: one call.
    pub async fn running_tasks(&self, service: Option<&str>) -> Result<Vec<Task>, ApiError> {
        let mut filters = HashMap::from([("desired-state", vec!["running"])]);
        if let Some(s) = service {
            filters.insert("service", vec![s]);
        }
        let json = serde_json::to_string(&filters).unwrap_or_default();
        self.get(&format!("/tasks?filters={}", encode(&json))).await
    }

    /// Every node.
    pub async fn nodes(&self) -> Result<Vec<Node>, ApiError> {
        self.get("/nodes").await
    }

    /// One network by id (Swarm-scoped ids too, such as the Swarm's `host`); `None` if gone.
    pub async fn network(&self, id: &str) -> Result<Option<Network>, ApiError> {
        self.get_opt(&format!("/networks/{id}")).await
    }

    async fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ApiError> {
        match self.call("GET", path, None).await? {
            (404, _) => Ok(None),
            (status, body) => decode(path, status, &body).map(Some),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let (status, body) = self.call("GET", path, None).await?;
        decode(path, status, &body)
    }

    /// One request (`method path`, JSON `body`): the status and body, whatever the status.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Bytes), ApiError> {
        let fail = |detail: String| ApiError::Failed {
            path: format!("{method} {path}"),
            detail,
        };
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{API}{path}"))
            .header("Host", "docker")
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| fail(e.to_string()))?;
        let resp = match self.host.strip_prefix("unix://") {
            Some(sock) => {
                let io = tokio::net::UnixStream::connect(sock).await;
                send(io.map_err(|e| fail(format!("connect {sock}: {e}")))?, req).await
            }
            None => {
                let addr = self
                    .host
                    .trim_start_matches("tcp://")
                    .trim_start_matches("http://");
                let io = tokio::net::TcpStream::connect(addr.trim_end_matches('/')).await;
                send(io.map_err(|e| fail(format!("connect {addr}: {e}")))?, req).await
            }
        };
        resp.map_err(fail)
    }
}

async fn send<S>(io: S, req: hyper::Request<Full<Bytes>>) -> Result<(u16, Bytes), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}

/// Decodes a JSON answer; 503 means "not a manager", any other non-2xx is an error.
pub fn decode<T: DeserializeOwned>(path: &str, status: u16, body: &[u8]) -> Result<T, ApiError> {
    if status == 503 {
        return Err(ApiError::NotManager { path: path.into() });
    }
    if !(200..300).contains(&status) {
        return Err(ApiError::Failed {
            path: path.into(),
            detail: format!("HTTP {status}: {}", String::from_utf8_lossy(body).trim()),
        });
    }
    serde_json::from_slice(body).map_err(|e| ApiError::Failed {
        path: path.into(),
        detail: format!("unexpected JSON: {e}"),
    })
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_comes_from_info() {
        // Captured from a single-node Swarm manager (dockerd 20.10).
        let text = include_str!("../../tests/swarm-fixtures/info.json");
        let info: Info = serde_json::from_str(text).unwrap();
        assert_eq!(info.role(), Role::Manager);
        // A worker's /info differs in ControlAvailable only.
        let worker = text.replace("\"ControlAvailable\": true", "\"ControlAvailable\": false");
        let info: Info = serde_json::from_str(&worker).unwrap();
        assert_eq!(info.role(), Role::Worker);
        let outside: Info = serde_json::from_str(
            r#"{"Swarm":{"LocalNodeState":"inactive","ControlAvailable":false}}"#,
        )
        .unwrap();
        assert_eq!(outside.role(), Role::None);
    }

    #[test]
    fn a_503_names_the_fix() {
        let e = decode::<Vec<Service>>("/services", 503, b"{}").unwrap_err();
        assert!(e.to_string().contains("node.role == manager"), "{e}");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode(r#"{"a":["b c"]}"#),
            "%7B%22a%22%3A%5B%22b%20c%22%5D%7D"
        );
    }
}
