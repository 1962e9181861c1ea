//! [`CertStore`] on Swarm configs, through a manager's API. Config names are unique
//! cluster-wide, so `POST /configs/create` of `vhostd-lock-HASH` is an atomic lock; an expired
//! lock is removed by its id (never by name: a lock another node just re-took survives) and
//! the creation retried. Certificates are `vhostd-cert-HASH-TIME` configs, labelled with their
//! key; the newest wins and older ones are removed.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::lock::{LockRecord, cert_config_name, config_name};
use super::seal::SealKey;
use super::{Bundle, CertStore, LockOutcome, LockToken, StoreError, Stored};
use crate::host::HostName;
use crate::swarm::api::{Api, decode, encode};

const KIND: &str = "vhostd.kind";
const KEY: &str = "vhostd.key";

/// Swarm configs as the shared certificate store.
#[derive(Debug)]
pub struct SwarmConfigs {
    api: Api,
    seal: SealKey,
    /// Names this node in the locks it takes.
    holder: String,
    /// How long a lock holds without being released: longer than an order takes.
    lock_time: Duration,
}

/// One config as the API returns it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Config {
    #[serde(rename = "ID")]
    id: String,
    spec: ConfigSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigSpec {
    name: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// A certificate version's content (the key sealed).
#[derive(Debug, Serialize, Deserialize)]
struct CertRecord {
    fullchain: String,
    privkey_sealed: String,
    #[serde(with = "time::serde::rfc3339")]
    saved_at: OffsetDateTime,
}

#[derive(Debug, Deserialize)]
struct Created {
    #[serde(rename = "ID")]
    id: String,
}

impl SwarmConfigs {
    /// A store on the manager at `docker_host`; `holder` names this node in its locks.
    pub fn new(docker_host: &str, seal: SealKey, holder: String, lock_time: Duration) -> Self {
        SwarmConfigs {
            api: Api::new(docker_host),
            seal,
            holder,
            lock_time,
        }
    }

    fn err(key: &HostName, detail: impl ToString) -> StoreError {
        StoreError {
            key: key.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Creates a config; `None` when the name exists.
    async fn create(
        &self,
        key: &HostName,
        name: &str,
        kind: &str,
        data: &[u8],
    ) -> Result<Option<String>, StoreError> {
        self.create_labelled(key, name, &[(KIND, kind), (KEY, key.as_str())], data)
            .await
    }

    /// Creates a config with `labels`; `None` when the name exists.
    async fn create_labelled(
        &self,
        key: &HostName,
        name: &str,
        labels: &[(&str, &str)],
        data: &[u8],
    ) -> Result<Option<String>, StoreError> {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let body =
            serde_json::json!({"Name": name, "Labels": labels, "Data": STANDARD.encode(data)});
        let path = "/configs/create";
        let (status, resp) = self
            .api
            .call("POST", path, Some(body.to_string().into_bytes()))
            .await
            .map_err(|e| Self::err(key, e))?;
        if status == 409 {
            return Ok(None);
        }
        let created: Created = decode(path, status, &resp).map_err(|e| Self::err(key, e))?;
        Ok(Some(created.id))
    }

    async fn get(&self, key: &HostName, name: &str) -> Result<Option<Config>, StoreError> {
        let path = format!("/configs/{name}");
        let (status, body) = self
            .api
            .call("GET", &path, None)
            .await
            .map_err(|e| Self::err(key, e))?;
        if status == 404 {
            return Ok(None);
        }
        decode(&path, status, &body)
            .map(Some)
            .map_err(|e| Self::err(key, e))
    }

    async fn delete(&self, key: &HostName, id: &str) -> Result<(), StoreError> {
        let path = format!("/configs/{id}");
        let (status, body) = self
            .api
            .call("DELETE", &path, None)
            .await
            .map_err(|e| Self::err(key, e))?;
        match status {
            200..=299 | 404 => Ok(()),
            _ => Err(Self::err(
                key,
                format!(
                    "DELETE {path}: HTTP {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                ),
            )),
        }
    }

    /// Every stored version of `key`'s certificate, oldest first.
    async fn versions(&self, key: &HostName) -> Result<Vec<Config>, StoreError> {
        self.list(key, &[format!("{KIND}=cert"), format!("{KEY}={key}")])
            .await
    }

    /// Configs carrying every label filter (`k=v` or `k`), sorted by name.
    async fn list(&self, key: &HostName, labels: &[String]) -> Result<Vec<Config>, StoreError> {
        let filters = serde_json::json!({ "label": labels });
        let path = format!("/configs?filters={}", encode(&filters.to_string()));
        let (status, body) = self
            .api
            .call("GET", &path, None)
            .await
            .map_err(|e| Self::err(key, e))?;
        let mut list: Vec<Config> = decode(&path, status, &body).map_err(|e| Self::err(key, e))?;
        list.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(list)
    }
}

fn data<T: serde::de::DeserializeOwned>(key: &HostName, c: &Config) -> Result<T, StoreError> {
    let raw = STANDARD
        .decode(&c.spec.data)
        .map_err(|e| SwarmConfigs::err(key, format!("config {}: {e}", c.spec.name)))?;
    serde_json::from_slice(&raw)
        .map_err(|e| SwarmConfigs::err(key, format!("config {}: {e}", c.spec.name)))
}

impl CertStore for SwarmConfigs {
    async fn try_lock(
        &self,
        key: &HostName,
        now: OffsetDateTime,
    ) -> Result<LockOutcome, StoreError> {
        let name = config_name("lock", key);
        let record = LockRecord {
            holder: self.holder.clone(),
            expires: now + self.lock_time,
        };
        let body = serde_json::to_vec(&record).map_err(|e| Self::err(key, e))?;
        // Each round either takes the lock, finds it held, or removes one expired lock: a
        // few rounds suffice unless other nodes keep racing.
        for _ in 0..4 {
            if let Some(id) = self.create(key, &name, "lock", &body).await? {
                return Ok(LockOutcome::Acquired(LockToken {
                    id,
                    key: key.clone(),
                }));
            }
            let Some(existing) = self.get(key, &name).await? else {
                continue;
            };
            let held: LockRecord = data(key, &existing)?;
            if !held.is_expired(now) {
                return Ok(LockOutcome::Held(held));
            }
            tracing::info!(domain = %key, holder = %held.holder, action = "lock_expired", "taking over an expired order lock");
            self.delete(key, &existing.id).await?;
        }
        Err(Self::err(
            key,
            "the order lock keeps changing hands; try again",
        ))
    }

    async fn unlock(&self, token: &LockToken) -> Result<(), StoreError> {
        self.delete(&token.key, &token.id).await
    }

    async fn load(&self, key: &HostName) -> Result<Option<Stored>, StoreError> {
        let Some(newest) = self.versions(key).await?.pop() else {
            return Ok(None);
        };
        let rec: CertRecord = data(key, &newest)?;
        let privkey = self
            .seal
            .open(&rec.privkey_sealed, key.as_str())
            .map_err(|e| Self::err(key, e))?;
        let privkey = String::from_utf8(privkey).map_err(|e| Self::err(key, e))?;
        Ok(Some(Stored {
            bundle: Bundle {
                fullchain: rec.fullchain,
                privkey,
            },
            saved_at: rec.saved_at,
        }))
    }

    async fn save(
        &self,
        key: &HostName,
        bundle: &Bundle,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let rec = CertRecord {
            fullchain: bundle.fullchain.clone(),
            privkey_sealed: self
                .seal
                .seal(bundle.privkey.as_bytes(), key.as_str())
                .map_err(|e| Self::err(key, e))?,
            saved_at: now,
        };
        let body = serde_json::to_vec(&rec).map_err(|e| Self::err(key, e))?;
        let name = cert_config_name(key, now);
        if self.create(key, &name, "cert", &body).await?.is_none() {
            return Err(Self::err(key, format!("config {name} exists already")));
        }
        for old in self.versions(key).await? {
            if old.spec.name < name {
                self.delete(key, &old.id).await?;
            }
        }
        Ok(())
    }
}

/// A pending HTTP-01 token, as every node writes it into its webroot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SharedToken {
    /// The name being validated.
    pub name: HostName,
    /// The CA's token (the file name; base64url, checked again when written).
    pub token: String,
    /// The key authorization (the file's body).
    pub body: String,
}

/// What the store holds right now: pending tokens, and the newest certificate config per key.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Tokens to answer.
    pub tokens: Vec<SharedToken>,
    /// Certificate key → name of its newest config (a new name = a new certificate).
    pub certs: BTreeMap<HostName, String>,
}

impl SwarmConfigs {
    /// Publishes a pending token so every node answers it (one config per token, labelled).
    pub async fn publish_token(&self, t: &SharedToken, key: &HostName) -> Result<(), StoreError> {
        let id = crate::sites::fnv1a(format!("{}/{}", t.name, t.token).as_bytes());
        let labels = [
            (KIND, "token"),
            (KEY, key.as_str()),
            ("vhostd.name", t.name.as_str()),
            ("vhostd.token", t.token.as_str()),
        ];
        let name = format!("vhostd-token-{id:016x}");
        self.create_labelled(key, &name, &labels, t.body.as_bytes())
            .await
            .map(drop)
    }

    /// Removes every token published for `key`'s order.
    pub async fn withdraw_tokens(&self, key: &HostName) -> Result<(), StoreError> {
        for c in self
            .list(key, &[format!("{KIND}=token"), format!("{KEY}={key}")])
            .await?
        {
            self.delete(key, &c.id).await?;
        }
        Ok(())
    }

    /// One list call: every pending token and the newest certificate config of every key.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let any = HostName::parse("store.invalid").map_err(|e| Self::err_text(&e))?;
        let mut out = Snapshot::default();
        for c in self.list(&any, &[KIND.to_string()]).await? {
            let label = |k: &str| c.spec.labels.get(k).map(String::as_str);
            let Some(key) = label(KEY).and_then(|k| HostName::parse(k).ok()) else {
                continue;
            };
            match label(KIND) {
                Some("cert") => {
                    let slot = out.certs.entry(key).or_default();
                    if c.spec.name > *slot {
                        *slot = c.spec.name.clone();
                    }
                }
                Some("token") => {
                    let name = label("vhostd.name").and_then(|n| HostName::parse(n).ok());
                    let token = label("vhostd.token").map(str::to_string);
                    let body = STANDARD.decode(&c.spec.data).ok();
                    let body = body.and_then(|b| String::from_utf8(b).ok());
                    if let (Some(name), Some(token), Some(body)) = (name, token, body) {
                        out.tokens.push(SharedToken { name, token, body });
                    }
                }
                _ => {}
            }
        }
        out.tokens.sort();
        Ok(out)
    }

    fn err_text(e: &impl ToString) -> StoreError {
        StoreError {
            key: "-".into(),
            detail: e.to_string(),
        }
    }
}
