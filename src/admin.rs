//! Admin HTTP server (axum): `/healthz`, `/readyz`, `/metrics`, `/status`, `POST /renew/{domain}`,
//! and the small client the `status`, `renew` and `health` subcommands use to ask it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;

use crate::acme::AcmeError;
use tokio::sync::watch;

use crate::acme::CertHandle;
use crate::status::Status;

/// What the admin server reads.
#[derive(Clone)]
pub struct AdminState {
    /// The controller's published status.
    pub status: Arc<RwLock<Status>>,
    /// Cleared when the controller task ends (liveness).
    pub alive: Arc<AtomicBool>,
    /// The metrics registry.
    pub registry: Arc<prometheus_client::registry::Registry>,
    /// The metric handles (certificate series are refreshed at scrape time).
    pub metrics: crate::metrics::Metrics,
    /// The certificate task, when ACME is on.
    pub certs: Option<CertHandle>,
}

/// Serves the admin API on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/renew/{domain}", post(renew))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
}

async fn healthz(State(s): State<AdminState>) -> impl IntoResponse {
    if s.alive.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "controller stopped\n")
    }
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    let ready = s.status.read().map(|st| st.ready).unwrap_or(false);
    if ready {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no config live yet\n")
    }
}

async fn metrics(State(s): State<AdminState>) -> Response {
    if let Some(c) = &s.certs {
        s.metrics.set_certificates(&c.status());
    }
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, &s.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn status(State(s): State<AdminState>) -> Response {
    let mut st = s.status.read().map(|st| st.clone()).unwrap_or_default();
    if let Some(c) = &s.certs {
        st.certificates = c
            .status()
            .into_iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect();
    }
    axum::Json(st).into_response()
}

async fn renew(State(s): State<AdminState>, Path(domain): Path<String>) -> Response {
    let Some(c) = &s.certs else {
        return (StatusCode::CONFLICT, "certificates are off (--no-acme)\n").into_response();
    };
    match c.renew_now(&domain).await {
        Ok(()) => (
            StatusCode::OK,
            format!("{domain}: new certificate installed\n"),
        )
            .into_response(),
        Err(e @ AcmeError::NotWanted { .. }) => {
            (StatusCode::NOT_FOUND, format!("{e}\n")).into_response()
        }
        // The CA or the self-check refused: the order was tried and failed.
        Err(e) => (StatusCode::BAD_GATEWAY, format!("{e}\n")).into_response(),
    }
}

/// An admin request failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "admin request to http://{addr}{path} failed: {detail} (is `vhostd run` running with this --admin-addr?)"
)]
pub struct ClientError {
    /// Admin address.
    pub addr: SocketAddr,
    /// Request path.
    pub path: String,
    /// What went wrong.
    pub detail: String,
}

/// Sends `method path` to the admin server and waits up to `timeout` for the whole answer;
/// returns the status code and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    timeout: std::time::Duration,
) -> Result<(u16, String), ClientError> {
    let fail = |detail: String| ClientError {
        addr,
        path: path.to_string(),
        detail,
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Empty::new())
        .map_err(|e| fail(e.to_string()))?;
    let call = async {
        let resp = client.request(req).await.map_err(|e| fail(e.to_string()))?;
        let code = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        Ok((code, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| fail(format!("no answer within {timeout:?}")))?
}
