//! ACME accounts: one per (directory, contact), created once, stored 0600 under
//! `CERTS_DIR/vhostd/accounts/` and restored on later runs. Restoring fetches the directory, so
//! this can fail while the CA is down: callers retry with backoff; nothing here panics or exits.
//! File work runs off the async threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use instant_acme::{Account, AccountBuilder, AccountCredentials, ExternalAccountKey, NewAccount};
use tokio::sync::OnceCell;

use super::AcmeSettings;
use super::error::AcmeError;
use super::jsonfile::Loaded;
use super::store::Store;

/// Accounts by contact, each restored or created at most once per process (lazily).
pub struct Accounts {
    settings: Arc<AcmeSettings>,
    store: Store,
    cells: Mutex<HashMap<Option<String>, Arc<OnceCell<Account>>>>,
}

impl Accounts {
    /// No network until [`Accounts::get`].
    pub fn new(settings: Arc<AcmeSettings>, store: Store) -> Self {
        Accounts {
            settings,
            store,
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// The account for `email` (else the global contact); `domain` only names the error.
    pub async fn get(&self, email: Option<&str>, domain: &str) -> Result<Account, AcmeError> {
        let contact = email.or(self.settings.email.as_deref()).map(mailto);
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            cells.entry(contact.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| self.load_or_create(contact.as_deref(), domain))
            .await
            .cloned()
    }

    /// Forgets a cached account whose registration the CA no longer knows (e.g. a reset test CA),
    /// and moves its file aside (off the async threads) so the next attempt registers anew.
    pub async fn forget(&self, email: Option<&str>) {
        let contact = email.or(self.settings.email.as_deref()).map(mailto);
        let path = self
            .store
            .account_path(&self.settings.directory, contact.as_deref());
        let _ = tokio::task::spawn_blocking(move || {
            std::fs::rename(&path, path.with_extension("json.gone"))
        })
        .await;
        self.cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&contact);
    }

    /// The stored account for `contact`, else a new registration (stored at once).
    async fn load_or_create(
        &self,
        contact: Option<&str>,
        domain: &str,
    ) -> Result<Account, AcmeError> {
        let builder = self
            .builder()
            .await
            .map_err(|e| self.account_err(domain, e))?;
        match self.load(contact, domain).await? {
            Loaded::Found(creds) => {
                return builder
                    .from_credentials(creds)
                    .await
                    .map_err(|e| self.account_err(domain, e));
            }
            Loaded::Missing => {}
            Loaded::Corrupt { moved_to } => {
                let path = self.store.account_path(&self.settings.directory, contact);
                tracing::warn!(domain, action = "account_file_replaced", path = %path.display(), moved_to = %moved_to.display(),
                    "the account file did not parse; it was moved aside and a new account is registered");
            }
        }
        self.register(builder, contact, domain).await
    }

    /// Reads the stored credentials for `contact`, off the async threads.
    async fn load(
        &self,
        contact: Option<&str>,
        domain: &str,
    ) -> Result<Loaded<AccountCredentials>, AcmeError> {
        let directory = self.settings.directory.clone();
        let path = self.store.account_path(&directory, contact);
        let (store, who) = (self.store.clone(), contact.map(str::to_string));
        tokio::task::spawn_blocking(move || store.load_account(&directory, who.as_deref()))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|source| AcmeError::Io {
                domain: domain.to_string(),
                path,
                source,
            })
    }

    /// Registers a new account (with EAB when configured) and stores it (0600, off the async
    /// threads).
    async fn register(
        &self,
        builder: AccountBuilder,
        contact: Option<&str>,
        domain: &str,
    ) -> Result<Account, AcmeError> {
        let directory = self.settings.directory.clone();
        let eab = match &self.settings.eab {
            Some((kid, hmac)) => Some(ExternalAccountKey::new(
                kid.clone(),
                &b64url_decode(hmac).ok_or(AcmeError::EabKey)?,
            )),
            None => None,
        };
        let contacts: Vec<&str> = contact.into_iter().collect();
        let new = NewAccount {
            contact: &contacts,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let mut builder = Some(builder);
        let (account, creds) = nonce_retry!(
            async {
                // A retry needs a fresh builder: `create` consumes it.
                let b = match builder.take() {
                    Some(b) => b,
                    None => self.builder().await?,
                };
                b.create(&new, directory.clone(), eab.as_ref()).await
            }
            .await
        )
        .map_err(|e| self.account_err(domain, e))?;
        let (store, dir, who) = (
            self.store.clone(),
            directory.clone(),
            contact.map(str::to_string),
        );
        let path =
            tokio::task::spawn_blocking(move || store.save_account(&dir, who.as_deref(), &creds))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map_err(|source| AcmeError::Io {
                    domain: domain.to_string(),
                    path: self.store.account_path(&directory, contact),
                    source,
                })?;
        tracing::info!(domain, action = "account_created", directory = %directory, contact = contact.unwrap_or("-"),
            path = %path.display(), "ACME account registered");
        Ok(account)
    }

    /// The error for a failed account request.
    fn account_err(&self, domain: &str, source: instant_acme::Error) -> AcmeError {
        AcmeError::Account {
            domain: domain.to_string(),
            directory: self.settings.directory.clone(),
            source: Box::new(source),
        }
    }

    /// An HTTP client for the CA: `--acme-ca-bundle` is read from disk, so this runs off the
    /// async threads.
    async fn builder(&self) -> Result<AccountBuilder, instant_acme::Error> {
        let bundle = self.settings.ca_bundle.clone();
        tokio::task::spawn_blocking(move || match bundle {
            Some(pem) => Account::builder_with_root(pem),
            None => Account::builder(),
        })
        .await
        .unwrap_or_else(|e| Err(instant_acme::Error::Other(Box::new(e))))
    }
}

/// `ops@example.com` → `mailto:ops@example.com` (left alone when already a URI).
fn mailto(email: &str) -> String {
    if email.starts_with("mailto:") {
        email.to_string()
    } else {
        format!("mailto:{email}")
    }
}

/// Decodes base64url (padding and standard-alphabet `+/` tolerated), as CAs hand out EAB keys.
pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let url: String = s
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(url)
        .ok()
        .filter(|b| !b.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eab_keys_decode() {
        assert_eq!(b64url_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(b64url_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(b64url_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(b64url_decode("+/8").unwrap(), [0xfb, 0xff]);
        assert!(b64url_decode("not base64!").is_none());
        assert!(b64url_decode("").is_none());
    }

    #[test]
    fn contacts_are_mailto_uris() {
        assert_eq!(mailto("a@b.c"), "mailto:a@b.c");
        assert_eq!(mailto("mailto:a@b.c"), "mailto:a@b.c");
    }
}
