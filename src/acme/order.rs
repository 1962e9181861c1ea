//! One ACME order, HTTP-01 over the webroot: new order (profile, `replaces`), token files
//! ([`authz`](super::authz)), ready, poll, finalize with a fresh key, download, install. Token
//! files are removed whatever happens. Decides nothing about *when*; that is the machine's job.

use std::borrow::Cow;
use std::time::Duration;

use instant_acme::{
    Account, CertificateIdentifier, Identifier, NewOrder, Order, OrderStatus, RetryPolicy,
};

use super::authz::{TokenFiles, authorize, failure_detail};
use super::certinfo::CertInfo;
use super::error::AcmeError;
use super::pending::{PendingOrder, blocking, forget_pending, resume, save_pending};
use super::plan::CertSpec;
use super::store::Store;
use super::{AcmeSettings, KeyType};
use crate::host::HostName;

/// How long to wait for validation and for issuance (each); Retry-After is honoured inside.
const POLL_TIMEOUT: Duration = Duration::from_secs(120);

/// What the manager asks for.
#[derive(Clone, Copy)]
pub struct OrderRequest<'a> {
    /// The certificate.
    pub spec: &'a CertSpec,
    /// Effective profile (spec's, else global).
    pub profile: Option<&'a str>,
    /// ARI id of the certificate this one replaces (sent as `replaces`).
    pub replaces: Option<&'a str>,
    /// Serial of the installed certificate: a resumed order that already delivered it is spent.
    pub installed_serial: Option<&'a str>,
}

/// Checks `wanted` against the profiles the CA lists; the error lists what it offers.
pub fn check_profile<'a>(
    wanted: &str,
    offered: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let offered: Vec<&str> = offered.into_iter().collect();
    if offered.contains(&wanted) {
        return Ok(());
    }
    Err(if offered.is_empty() {
        "none: this CA does not support profiles".to_string()
    } else {
        offered.join(", ")
    })
}

/// Runs one order to the end and installs the result under `live/KEY/`: resumes the order a
/// previous run left in flight when it is still usable, else places a new one (persisted at
/// once, so a crash from here on resumes it).
pub async fn issue(
    settings: &AcmeSettings,
    store: &Store,
    account: &Account,
    req: OrderRequest<'_>,
) -> Result<CertInfo, AcmeError> {
    let key = req.spec.key.as_str();
    if let Some(p) = req.profile {
        check_profile(p, account.profiles().map(|m| m.name)).map_err(|available| {
            AcmeError::UnknownProfile {
                domain: key.to_string(),
                profile: p.to_string(),
                available,
            }
        })?;
    }
    // Swarm hook: one node orders, the others install its certificate (no-op on one host).
    let hooks = crate::swarm::share::hooks();
    let gate = hooks
        .before_order(store, req.spec, req.installed_serial)
        .await;
    let lock = match gate.map_err(|e| AcmeError::Relayed(format!("{key}: shared store: {e}")))? {
        crate::swarm::share::Gate::Installed(info) => return Ok(info),
        crate::swarm::share::Gate::Order(lock) => lock,
    };
    let result = order_and_finish(settings, store, account, &req).await;
    hooks
        .after_order(store, &req.spec.key, lock, result.is_ok())
        .await;
    result
}

/// Resumes or places the order and drives it to an installed certificate.
async fn order_and_finish(
    settings: &AcmeSettings,
    store: &Store,
    account: &Account,
    req: &OrderRequest<'_>,
) -> Result<CertInfo, AcmeError> {
    let key = req.spec.key.as_str();
    let (order, pending) = match resume(settings, store, account, req).await? {
        Some(resumed) => resumed,
        None => {
            let order = new_order(account, req).await?;
            tracing::info!(domain = key, action = "order_created", url = %order.url(), "the CA created an order");
            let pending = PendingOrder {
                url: order.url().to_string(),
                directory: settings.directory.clone(),
                names: req.spec.names.iter().map(HostName::to_string).collect(),
                key_pem: None,
                created: time::OffsetDateTime::now_utc(),
            };
            save_pending(store, &req.spec.key, &pending).await?;
            (order, pending)
        }
    };
    finish(settings, store, req.spec, order, pending).await
}

/// Drives an order from wherever it is (pending, ready, processing, valid) to an installed
/// certificate. The key is on disk before finalize; the token files go once the certificate is
/// downloaded (or the order failed); the pending file goes once it is installed.
async fn finish(
    settings: &AcmeSettings,
    store: &Store,
    spec: &CertSpec,
    mut order: Order,
    mut pending: PendingOrder,
) -> Result<CertInfo, AcmeError> {
    let mut tokens = TokenFiles::default();
    let chain = certificate(settings, store, spec, &mut order, &mut pending, &mut tokens).await;
    tokens.remove().await;
    install(store, spec, chain?, pending.key_pem).await
}

/// Validates a pending order, finalizes a ready one (its key saved first) and downloads the
/// certificate chain.
async fn certificate(
    settings: &AcmeSettings,
    store: &Store,
    spec: &CertSpec,
    order: &mut Order,
    pending: &mut PendingOrder,
    tokens: &mut TokenFiles,
) -> Result<String, AcmeError> {
    let key = spec.key.as_str();
    if order.state().status == OrderStatus::Pending {
        authorize(settings, spec, order, tokens).await?;
        let status = nonce_retry!(order.poll_ready(&retry()).await)
            .map_err(|e| AcmeError::protocol(key, "validation", e))?;
        if status != OrderStatus::Ready {
            let detail = failure_detail(order).await;
            forget_pending(store, &spec.key).await;
            return Err(AcmeError::Validation {
                domain: key.to_string(),
                detail,
            });
        }
    }
    if order.state().status == OrderStatus::Ready {
        let key_pem = match pending.key_pem.clone() {
            Some(k) => k,
            None => new_key(spec, settings.key_type)?,
        };
        pending.key_pem = Some(key_pem.clone());
        save_pending(store, &spec.key, pending).await?;
        let csr = csr(spec, &key_pem)?;
        nonce_retry!(order.finalize_csr(&csr).await)
            .map_err(|e| AcmeError::protocol(key, "finalize", e))?;
    }
    nonce_retry!(order.poll_certificate(&retry()).await)
        .map_err(|e| AcmeError::protocol(key, "certificate download", e))
}

/// Installs the chain with the order's key under `live/KEY/` (off the async threads), then
/// forgets the pending order.
async fn install(
    store: &Store,
    spec: &CertSpec,
    chain: String,
    key_pem: Option<String>,
) -> Result<CertInfo, AcmeError> {
    let key = spec.key.as_str();
    let key_pem = key_pem.ok_or_else(|| AcmeError::Crypto {
        domain: key.to_string(),
        detail: "the order was finalized without a stored key".into(),
    })?;
    let (st, k) = (store.clone(), spec.key.clone());
    let info = blocking(move || st.install(&k, &chain, &key_pem))
        .await
        .and_then(|r| r)
        .map_err(|(path, source)| AcmeError::Io {
            domain: key.to_string(),
            path,
            source,
        })?;
    forget_pending(store, &spec.key).await;
    Ok(info)
}

/// Polls soon (a CA that validates at once answers within 100 ms), then doubling, so a slow
/// validation costs few requests; the CA's Retry-After, when it sends one, replaces the delay.
fn retry() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(100))
        .backoff(2.0)
        .timeout(POLL_TIMEOUT)
}

/// new-order with `replaces` when given; without it when the CA has no ARI or says `alreadyReplaced`.
async fn new_order(account: &Account, req: &OrderRequest<'_>) -> Result<Order, AcmeError> {
    let key = req.spec.key.as_str();
    let ids: Vec<Identifier> = req
        .spec
        .names
        .iter()
        .map(|n| Identifier::Dns(n.to_string()))
        .collect();
    let base = || match req.profile {
        Some(p) => NewOrder::new(&ids).profile(p),
        None => NewOrder::new(&ids),
    };
    if let Some(cert_id) = req.replaces.and_then(parse_cert_id) {
        match nonce_retry!(account.new_order(&base().replaces(cert_id.clone())).await) {
            Ok(o) => return Ok(o),
            Err(e) if retry_without_replaces(&e) => {
                tracing::info!(domain = key, action = "replaces_dropped", error = %e,
                    "renewal order refused with `replaces`; ordering without it");
            }
            Err(e) => return Err(AcmeError::protocol(key, "new order", e)),
        }
    }
    nonce_retry!(account.new_order(&base()).await)
        .map_err(|e| AcmeError::protocol(key, "new order", e))
}

/// True when a new-order with `replaces` should be sent again without it: the CA has no ARI
/// (client-side `Unsupported`) or says the certificate was already replaced (RFC 9773 §5).
fn retry_without_replaces(e: &instant_acme::Error) -> bool {
    match e {
        instant_acme::Error::Unsupported(_) => true,
        instant_acme::Error::Api(p) => p
            .r#type
            .as_deref()
            .is_some_and(|t| t.ends_with(":alreadyReplaced")),
        _ => false,
    }
}

/// `AKI.serial` → the typed id.
fn parse_cert_id(s: &str) -> Option<CertificateIdentifier<'static>> {
    let (aki, serial) = s.split_once('.')?;
    Some(CertificateIdentifier {
        authority_key_identifier: Cow::Owned(aki.into()),
        serial: Cow::Owned(serial.into()),
    })
}

/// A fresh private key (PEM) of `key_type`.
fn new_key(spec: &CertSpec, key_type: KeyType) -> Result<String, AcmeError> {
    let alg = match key_type {
        KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    };
    rcgen::KeyPair::generate_for(alg)
        .map(|k| k.serialize_pem())
        .map_err(|e| AcmeError::Crypto {
            domain: spec.key.to_string(),
            detail: format!("key generation failed: {e}"),
        })
}

/// A CSR for the spec's names, signed with `key_pem` (a fresh or a resumed order's key).
fn csr(spec: &CertSpec, key_pem: &str) -> Result<Vec<u8>, AcmeError> {
    let err = |e: rcgen::Error| AcmeError::Crypto {
        domain: spec.key.to_string(),
        detail: format!("CSR generation failed: {e}"),
    };
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(err)?;
    let mut params = rcgen::CertificateParams::new(
        spec.names
            .iter()
            .map(HostName::to_string)
            .collect::<Vec<_>>(),
    )
    .map_err(err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(err)?;
    Ok(csr.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory as Let's Encrypt serves it (recorded 2026; trimmed).
    const LE_DIRECTORY: &str = r#"{
      "keyChange": "https://acme-v02.api.letsencrypt.org/acme/key-change",
      "meta": {
        "caaIdentities": ["letsencrypt.org"],
        "profiles": {
          "classic": "https://letsencrypt.org/docs/profiles#classic",
          "shortlived": "https://letsencrypt.org/docs/profiles#shortlived",
          "tlsserver": "https://letsencrypt.org/docs/profiles#tlsserver"
        },
        "termsOfService": "https://letsencrypt.org/documents/LE-SA-v1.5-February-24-2025.pdf",
        "website": "https://letsencrypt.org"
      },
      "newAccount": "https://acme-v02.api.letsencrypt.org/acme/new-acct",
      "newNonce": "https://acme-v02.api.letsencrypt.org/acme/new-nonce",
      "newOrder": "https://acme-v02.api.letsencrypt.org/acme/new-order",
      "renewalInfo": "https://acme-v02.api.letsencrypt.org/draft-ietf-acme-ari-03/renewalInfo",
      "revokeCert": "https://acme-v02.api.letsencrypt.org/acme/revoke-cert"
    }"#;

    fn profiles(directory: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(directory).unwrap();
        v["meta"]["profiles"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn profiles_are_checked_against_the_directory() {
        let offered = profiles(LE_DIRECTORY);
        assert!(check_profile("tlsserver", offered.iter().map(String::as_str)).is_ok());
        let e = check_profile("tlsclient", offered.iter().map(String::as_str)).unwrap_err();
        assert_eq!(e, "classic, shortlived, tlsserver");
        let pebble_24 = r#"{"meta":{"externalAccountRequired":false,"termsOfService":"data:x"},"newOrder":"x"}"#;
        let e = check_profile("shortlived", profiles(pebble_24).iter().map(String::as_str))
            .unwrap_err();
        assert!(e.contains("does not support profiles"), "{e}");
    }

    #[test]
    fn already_replaced_and_no_ari_fall_back_to_a_plain_order() {
        let already = r#"{"type":"urn:ietf:params:acme:error:alreadyReplaced","detail":"cert already replaced","status":409}"#;
        let e = instant_acme::Error::Api(serde_json::from_str(already).unwrap());
        assert!(retry_without_replaces(&e));
        assert!(retry_without_replaces(&instant_acme::Error::Unsupported(
            "ACME renewal information (ARI)"
        )));
        let other =
            r#"{"type":"urn:ietf:params:acme:error:malformed","detail":"bad","status":400}"#;
        assert!(!retry_without_replaces(&instant_acme::Error::Api(
            serde_json::from_str(other).unwrap()
        )));
    }

    #[test]
    fn cert_ids_round_trip() {
        let id = parse_cert_id("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
        assert!(parse_cert_id("nodot").is_none());
    }

    #[test]
    fn csr_has_every_name_and_a_p256_key() {
        let spec = CertSpec {
            key: HostName::parse("a.example.com").unwrap(),
            names: vec![
                HostName::parse("a.example.com").unwrap(),
                HostName::parse("b.example.com").unwrap(),
            ],
            email: None,
            profile: None,
            container: "c".into(),
        };
        let key = new_key(&spec, KeyType::EcdsaP256).unwrap();
        let der = csr(&spec, &key).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        use x509_parser::prelude::FromDer;
        let (_, req) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
        let text = format!(
            "{:?}",
            req.requested_extensions().map(|e| e.collect::<Vec<_>>())
        );
        assert!(
            text.contains("a.example.com") && text.contains("b.example.com"),
            "{text}"
        );
        let key384 = new_key(&spec, KeyType::EcdsaP384).unwrap();
        assert_ne!(key384.len(), key.len());
        assert!(
            csr(&spec, &key384).is_ok(),
            "a stored P-384 key signs a CSR too"
        );
    }
}
