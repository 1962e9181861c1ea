//! The work the manager spawns: an order (self-check every name, then the ACME order) under the
//! concurrency bound, and an ARI poll. Jobs return plain results; the manager owns all state.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::AcmeSettings;
use super::account::Accounts;
use super::certinfo::CertInfo;
use super::error::AcmeError;
use super::order::{self, OrderRequest};
use super::orderrate::OrderRate;
use super::plan::CertSpec;
use super::schedule::{AriWindow, window_from};
use super::selfcheck;
use super::store::Store;

/// A whole order may not take longer than this (each poll has its own, shorter limit).
const ORDER_LIMIT: Duration = Duration::from_secs(600);

/// What every job needs; shared by all jobs.
pub struct Ctx {
    /// Global settings.
    pub settings: Arc<AcmeSettings>,
    /// Files.
    pub store: Store,
    /// Accounts, created lazily.
    pub accounts: Accounts,
    /// Bounds concurrent orders.
    pub permits: Semaphore,
    /// Spaces new orders out under the CA's per-account limit.
    pub order_rate: Mutex<OrderRate>,
}

/// What a job reports back.
pub enum JobResult {
    /// An order finished (installed, or why not).
    Order(Result<CertInfo, AcmeError>),
    /// An ARI poll got a window and the delay until the next poll.
    Ari(Result<(AriWindow, Duration), String>),
    /// The CA has no ARI at all.
    AriUnsupported,
}

/// Self-checks every name, then orders; waits for a permit first.
pub async fn run_order(
    ctx: Arc<Ctx>,
    spec: CertSpec,
    replaces: Option<String>,
    installed_serial: Option<String>,
) -> JobResult {
    let renewal = installed_serial.is_some();
    let Ok(_permit) = ctx.permits.acquire().await else {
        return JobResult::Order(Err(AcmeError::Stopped));
    };
    let profile = spec
        .profile
        .clone()
        .or_else(|| ctx.settings.profile.clone());
    if let Err(e) = self_check(&ctx, &spec).await {
        return JobResult::Order(Err(e));
    }
    order_slot(&ctx, &spec).await;
    let names: Vec<&str> = spec.names.iter().map(|n| n.as_str()).collect();
    tracing::info!(domain = %spec.key, container = %spec.container, action = if renewal { "renewal_started" } else { "order_started" },
        names = %names.join(","), profile = profile.as_deref().unwrap_or("-"), "ordering certificate");
    let req = OrderRequest {
        spec: &spec,
        profile: profile.as_deref(),
        replaces: replaces.as_deref(),
        installed_serial: installed_serial.as_deref(),
    };
    let result = match tokio::time::timeout(ORDER_LIMIT, order_once_more(&ctx, req)).await {
        Ok(r) => r,
        Err(_) => Err(AcmeError::Timeout {
            domain: spec.key.to_string(),
            minutes: ORDER_LIMIT.as_secs() / 60,
        }),
    };
    if result.as_ref().err().is_some_and(AcmeError::account_gone) {
        ctx.accounts.forget(spec.email.as_deref()).await;
    }
    JobResult::Order(result)
}

/// Probes every name through nginx; the first failure ends the order before the CA is asked.
async fn self_check(ctx: &Ctx, spec: &CertSpec) -> Result<(), AcmeError> {
    for name in &spec.names {
        if let Err(reason) =
            selfcheck::check(&ctx.settings.webroot, ctx.settings.self_check, name).await
        {
            return Err(AcmeError::SelfCheck {
                domain: name.to_string(),
                reason,
            });
        }
    }
    Ok(())
}

/// Orders; a CA that forgot our account (a reset test CA, a deactivated account) gets a new
/// registration and the order once more at once, instead of waiting out a backoff.
async fn order_once_more(ctx: &Ctx, req: OrderRequest<'_>) -> Result<CertInfo, AcmeError> {
    let spec = req.spec;
    let mut registered_again = false;
    loop {
        let account = ctx
            .accounts
            .get(spec.email.as_deref(), spec.key.as_str())
            .await?;
        match order::issue(&ctx.settings, &ctx.store, &account, req).await {
            Err(e) if !registered_again && e.account_gone() => {
                registered_again = true;
                tracing::warn!(domain = %spec.key, action = "account_gone", error = %e, "the CA no longer knows our account; registering a new one");
                ctx.accounts.forget(spec.email.as_deref()).await;
            }
            r => return r,
        }
    }
}

/// Waits until the account may place one more order (see [`OrderRate`]); logs the wait once.
async fn order_slot(ctx: &Ctx, spec: &CertSpec) {
    let mut logged = false;
    loop {
        let now = tokio::time::Instant::now();
        let took = ctx
            .order_rate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(spec.email.as_deref(), now);
        let Err(wait) = took else { return };
        if !logged {
            logged = true;
            tracing::warn!(domain = %spec.key, container = %spec.container, action = "order_rate_limited",
                wait = %humantime::format_duration(wait), "the account's new-order budget (300 per 3 h) is spent; waiting");
        }
        tokio::time::sleep(wait).await;
    }
}

/// Fetches the ARI window for `cert_id`.
pub async fn poll_ari(ctx: Arc<Ctx>, spec: CertSpec, cert_id: String) -> JobResult {
    let account = match ctx
        .accounts
        .get(spec.email.as_deref(), spec.key.as_str())
        .await
    {
        Ok(a) => a,
        Err(e) => return JobResult::Ari(Err(e.to_string())),
    };
    let Some((aki, serial)) = cert_id.split_once('.') else {
        return JobResult::Ari(Err(format!("bad certificate id {cert_id:?}")));
    };
    let id = instant_acme::CertificateIdentifier {
        authority_key_identifier: aki.into(),
        serial: serial.into(),
    };
    match account.renewal_info(&id).await {
        Ok((info, wait)) => {
            let w = info.suggested_window;
            JobResult::Ari(window_from(w.start, w.end, info.explanation_url).map(|w| (w, wait)))
        }
        Err(instant_acme::Error::Unsupported(_)) => JobResult::AriUnsupported,
        Err(e) => JobResult::Ari(Err(e.to_string())),
    }
}
