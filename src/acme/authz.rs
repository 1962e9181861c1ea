//! HTTP-01 for one order: a token file under the webroot for every pending authorization, the
//! CA told it may validate, and the CA's reasons when validation failed. Token files are
//! removed whatever happens ([`TokenFiles`]). File work runs off the async threads.

use std::path::PathBuf;

use instant_acme::{
    AuthorizationHandle, AuthorizationStatus, ChallengeStatus, ChallengeType, Identifier, Order,
};

use super::AcmeSettings;
use super::error::AcmeError;
use super::plan::CertSpec;
use super::store::write_challenge;
use crate::host::HostName;

/// Writes a token file for every pending authorization and tells the CA it may validate.
pub(super) async fn authorize(
    settings: &AcmeSettings,
    spec: &CertSpec,
    order: &mut Order,
    tokens: &mut TokenFiles,
) -> Result<(), AcmeError> {
    let key = spec.key.as_str();
    let mut readied: Vec<HostName> = Vec::new();
    let mut tries = 0;
    'walk: loop {
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let authz = match authz {
                Ok(a) => a,
                // A rejected nonce: walk the authorizations again (ready ones are skipped).
                Err(e) if tries < super::NONCE_RETRIES && super::is_bad_nonce(&e) => {
                    tries += 1;
                    continue 'walk;
                }
                Err(e) => return Err(AcmeError::protocol(key, "authorization fetch", e)),
            };
            let Some(name) = pending_name(spec, &authz)? else {
                continue;
            };
            if !readied.contains(&name) {
                ready(settings, spec, authz, &name, tokens).await?;
                readied.push(name);
            }
        }
        return Ok(());
    }
}

/// The wanted name a pending authorization is for (None: already valid). Any other status, or
/// a name we did not order, ends the order.
fn pending_name(
    spec: &CertSpec,
    authz: &AuthorizationHandle<'_>,
) -> Result<Option<HostName>, AcmeError> {
    let key = spec.key.as_str();
    match authz.status {
        AuthorizationStatus::Valid => return Ok(None),
        AuthorizationStatus::Pending => {}
        other => {
            return Err(AcmeError::Validation {
                domain: key.to_string(),
                detail: format!("authorization is {other:?}"),
            });
        }
    }
    let name = match authz.identifier().identifier {
        Identifier::Dns(n) => spec.names.iter().find(|h| h.as_str() == n).cloned(),
        _ => None,
    };
    name.map(Some).ok_or_else(|| AcmeError::Validation {
        domain: key.to_string(),
        detail: "the CA asked about a name we did not order".into(),
    })
}

/// Writes `name`'s token file (and shares it with the Swarm), then tells the CA to validate.
async fn ready(
    settings: &AcmeSettings,
    spec: &CertSpec,
    mut authz: AuthorizationHandle<'_>,
    name: &HostName,
    tokens: &mut TokenFiles,
) -> Result<(), AcmeError> {
    let mut challenge =
        authz
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| AcmeError::Validation {
                domain: name.to_string(),
                detail: "the CA offers no http-01 challenge for this name".into(),
            })?;
    let (webroot, n, token) = (
        settings.webroot.clone(),
        name.clone(),
        challenge.token.clone(),
    );
    let body = challenge.key_authorization().as_str().to_string();
    let b = body.clone();
    let path = tokio::task::spawn_blocking(move || write_challenge(&webroot, &n, &token, &b))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|source| AcmeError::Io {
            domain: name.to_string(),
            path: settings.webroot.join(name.as_str()),
            source,
        })?;
    tokens.0.push(path);
    crate::swarm::share::hooks()
        .publish_token(&spec.key, name, &challenge.token, &body)
        .await;
    // A resumed order's challenge may already be processing: the file is what it needs.
    if challenge.status == ChallengeStatus::Pending {
        nonce_retry!(challenge.set_ready().await)
            .map_err(|e| AcmeError::protocol(name.as_str(), "challenge", e))?;
    }
    Ok(())
}

/// The CA's reasons from the failed authorizations ("a.example.com: connection refused; ...").
pub(super) async fn failure_detail(order: &mut Order) -> String {
    let mut out = Vec::new();
    if let Some(e) = &order.state().error {
        out.push(e.to_string());
    }
    let mut authzs = order.authorizations();
    while let Some(Ok(mut authz)) = authzs.next().await {
        let Ok(state) = authz.refresh().await else {
            continue;
        };
        let who = state.identifier().to_string();
        out.extend(
            state
                .challenges
                .iter()
                .filter_map(|c| c.error.as_ref())
                .map(|e| format!("{who}: {e}")),
        );
    }
    if out.is_empty() {
        "the order became invalid".to_string()
    } else {
        out.join("; ")
    }
}

/// Token files written for one order. [`TokenFiles::remove`] deletes them off the async
/// threads; a set dropped without it (the order was cancelled: its time limit, shutdown) hands
/// them to the blocking pool.
#[derive(Default)]
pub(super) struct TokenFiles(Vec<PathBuf>);

impl TokenFiles {
    /// Deletes the files and waits for it.
    pub(super) async fn remove(mut self) {
        let paths = std::mem::take(&mut self.0);
        let _ = tokio::task::spawn_blocking(move || remove_all(&paths)).await;
    }
}

impl Drop for TokenFiles {
    fn drop(&mut self) {
        let paths = std::mem::take(&mut self.0);
        if paths.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || remove_all(&paths))),
            Err(_) => remove_all(&paths),
        }
    }
}

/// Blocking: deletes every file, ignoring ones already gone.
fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}
