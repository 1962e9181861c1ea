//! Admin HTTP server (axum): `/healthz`, `/readyz`, `/metrics`, `/status`, `POST /renew/{domain}`,
//! and the small client the `status`, `renew` and `health` subcommands use to ask it.
//!
//! Every request other than GET must carry `Authorization: Bearer TOKEN` when a token is set
//! (`--admin-token-file`; required when the admin address is not loopback). Tokens are compared
//! in constant time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;

use crate::acme::{AcmeError, RenewOutcome};
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
    /// The token non-GET requests must carry (`--admin-token-file`); None: loopback, no token.
    pub token: Option<Arc<str>>,
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
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
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
        st.certificates = c.status();
    }
    axum::Json(st).into_response()
}

/// Lets GET and HEAD through; anything else needs the token when one is set.
async fn authorize(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let Some(token) = &s.token else {
        return next.run(req).await;
    };
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if token_matches(token, given) {
        next.run(req).await
    } else {
        tracing::warn!(action = "admin_unauthorized", method = %req.method(), path = %req.uri().path(),
            "admin request without the right token refused");
        (
            StatusCode::UNAUTHORIZED,
            "this admin action needs the token of --admin-token-file (vhostd renew reads the same file)\n",
        )
            .into_response()
    }
}

/// Constant-time comparison (no early exit on the first differing byte).
fn token_matches(expected: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// `?force=true` on `POST /renew/{domain}`.
#[derive(Debug, Default, serde::Deserialize)]
struct RenewQuery {
    #[serde(default)]
    force: bool,
}

async fn renew(
    State(s): State<AdminState>,
    Path(domain): Path<String>,
    Query(q): Query<RenewQuery>,
) -> Response {
    let Some(c) = &s.certs else {
        return (StatusCode::CONFLICT, "certificates are off (--no-acme)\n").into_response();
    };
    match c.renew_now(&domain, q.force).await {
        Ok(RenewOutcome::Issued) => (
            StatusCode::OK,
            format!("{domain}: new certificate installed\n"),
        )
            .into_response(),
        Ok(RenewOutcome::Joined) => (
            StatusCode::OK,
            format!("{domain}: an order was already running; its new certificate is installed (no second order)\n"),
        )
            .into_response(),
        Ok(RenewOutcome::Fresh { issued_at }) => (
            StatusCode::OK,
            format!(
                "{domain}: certificate issued at {}, less than an hour ago; nothing ordered (vhostd renew --force orders anyway)\n",
                crate::acme::fmt_time(Some(issued_at))
            ),
        )
            .into_response(),
        Err(e @ AcmeError::NotWanted { .. }) => {
            (StatusCode::NOT_FOUND, format!("{e}\n")).into_response()
        }
        Err(e @ AcmeError::BackingOff { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, format!("{e}\n")).into_response()
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

/// Sends `method path` to the admin server (with `token` as a bearer token, when given) and
/// waits up to `timeout` for the whole answer; returns the status code and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    timeout: std::time::Duration,
) -> Result<(u16, String), ClientError> {
    let fail = |detail: String| ClientError {
        addr,
        path: path.to_string(),
        detail,
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req.body(Empty::new()).map_err(|e| fail(e.to_string()))?;
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

/// Reads the admin token from `path` (surrounding whitespace trimmed); an empty file is an error.
pub async fn read_token(path: &std::path::Path) -> Result<Arc<str>, String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("--admin-token-file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!(
            "--admin-token-file {}: the file is empty",
            path.display()
        ));
    }
    Ok(Arc::from(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", "s3cret "));
        assert!(!token_matches("s3cret", ""));
        assert!(!token_matches("s3cret", "S3cret"));
    }
}
