//! Files: installed certificates (`CERTS_DIR/live/KEY/*.pem`, certbot's layout), vhostd's own
//! state (`CERTS_DIR/vhostd/`: ACME accounts 0600, per-certificate JSON) and the HTTP-01 webroot.
//! Every write is atomic ([`crate::fsutil::write_atomic`]). No network, no decisions. Blocking:
//! async code calls it on the blocking pool (`spawn_blocking`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use instant_acme::AccountCredentials;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::certinfo::{CertInfo, key_mismatch, split_chain};
use super::install::{SetFile, install_set};
use super::jsonfile::{self, Loaded};
use super::schedule::AriWindow;
use crate::fsutil::write_atomic;
use crate::host::HostName;

/// Paths of an installed certificate: `CERTS_DIR/live/KEY/{fullchain,privkey,chain,cert}.pem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePaths {
    /// `live/KEY/`.
    pub dir: PathBuf,
    /// Leaf + intermediates: what nginx's `ssl_certificate` points at.
    pub fullchain: PathBuf,
    /// The private key (mode 0600): nginx's `ssl_certificate_key`.
    pub privkey: PathBuf,
    /// Intermediates only.
    pub chain: PathBuf,
    /// Leaf only.
    pub cert: PathBuf,
}

impl LivePaths {
    /// True when both files nginx needs exist (an HTTPS server block may be rendered).
    pub fn is_installed(&self) -> bool {
        self.fullchain.is_file() && self.privkey.is_file()
    }
}

/// Where the certificate keyed `key` lives under `certs_dir`.
pub fn live_paths(certs_dir: &Path, key: &HostName) -> LivePaths {
    let dir = certs_dir.join("live").join(key.as_str());
    LivePaths {
        fullchain: dir.join("fullchain.pem"),
        privkey: dir.join("privkey.pem"),
        chain: dir.join("chain.pem"),
        cert: dir.join("cert.pem"),
        dir,
    }
}

/// What vhostd remembers about one certificate across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CertState {
    /// Names of the last order (informational).
    pub names: Vec<String>,
    /// Profile of the last order.
    pub profile: Option<String>,
    /// Last failure, as shown in status.
    pub last_error: Option<String>,
    /// Consecutive failed orders (drives the backoff; reset by a success).
    pub failures: u32,
    /// Consecutive failed self-checks (their own, shorter backoff).
    pub self_check_failures: u32,
    /// No attempt before this moment (backoff or the CA's Retry-After).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt: Option<OffsetDateTime>,
    /// ARI id of the certificate this account issued (only that one is sent as `replaces`).
    pub issued_cert_id: Option<String>,
    /// Last ARI answer for the installed certificate.
    pub ari: Option<AriState>,
    /// After a failed ARI fetch: don't ask again before this.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ari_retry_at: Option<OffsetDateTime>,
    /// The ACME directory that issued the installed certificate (None: unknown, e.g. a file
    /// from before this field or one a user put there; it is then taken as the current CA's).
    pub directory: Option<String>,
    /// When the installed certificate was issued by vhostd.
    #[serde(with = "time::serde::rfc3339::option")]
    pub issued_at: Option<OffsetDateTime>,
}

/// The CA's renewal window for one certificate, with our random pick inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AriState {
    /// The certificate the window is for (a renewed certificate needs a fresh window).
    pub cert_id: String,
    /// The suggested window.
    pub window: AriWindow,
    /// The uniformly random moment picked in it (kept until the window changes).
    #[serde(with = "time::serde::rfc3339")]
    pub selected: OffsetDateTime,
    /// When to ask again.
    #[serde(with = "time::serde::rfc3339")]
    pub next_poll: OffsetDateTime,
}

/// The on-disk layout under `CERTS_DIR`.
#[derive(Debug, Clone)]
pub struct Store {
    certs_dir: PathBuf,
}

/// Account file: the credentials plus what they belong to, for humans.
#[derive(Serialize)]
struct AccountFileRef<'a> {
    directory: &'a str,
    contact: Option<&'a str>,
    credentials: &'a AccountCredentials,
}

#[derive(Deserialize)]
struct AccountFile {
    credentials: AccountCredentials,
}

impl Store {
    /// A store rooted at `certs_dir`.
    pub fn new(certs_dir: &Path) -> Self {
        Store {
            certs_dir: certs_dir.to_path_buf(),
        }
    }

    /// `CERTS_DIR/vhostd/`: accounts and per-certificate state.
    pub(super) fn state_dir(&self) -> PathBuf {
        self.certs_dir.join("vhostd")
    }

    /// Creates `vhostd/`, `vhostd/accounts/` and `vhostd/certs/` mode 0700 (and tightens them
    /// when an older version made them wider): they hold account keys and pending orders' keys.
    pub fn ensure_state_dirs(&self) -> io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let root = self.state_dir();
        for dir in [root.clone(), root.join("accounts"), root.join("certs")] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            if fs::metadata(&dir)?.permissions().mode() & 0o777 != 0o700 {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
            }
        }
        Ok(())
    }

    /// `live/` paths for `key`.
    pub fn live(&self, key: &HostName) -> LivePaths {
        live_paths(&self.certs_dir, key)
    }

    fn state_path(&self, key: &HostName) -> PathBuf {
        self.certs_dir
            .join("vhostd")
            .join("certs")
            .join(format!("{key}.json"))
    }

    /// The account file for (directory, contact): one account per pair, reused across restarts.
    pub fn account_path(&self, directory: &str, contact: Option<&str>) -> PathBuf {
        let id = crate::sites::fnv1a(format!("{directory}\n{}", contact.unwrap_or("")).as_bytes());
        self.certs_dir
            .join("vhostd")
            .join("accounts")
            .join(format!("{id:016x}.json"))
    }

    /// Stored state for `key`: a missing file is the default; a corrupt one is moved aside
    /// (logged) and gives the default; an unreadable one is an error — never a silent reset of
    /// its backoff. The caller reports it and tries again later.
    pub fn load_state(&self, key: &HostName) -> io::Result<CertState> {
        Ok(match jsonfile::load(&self.state_path(key))? {
            Loaded::Found(state) => state,
            Loaded::Missing | Loaded::Corrupt { .. } => CertState::default(),
        })
    }

    /// Persists the state for `key`.
    pub fn save_state(&self, key: &HostName, state: &CertState) -> io::Result<PathBuf> {
        let path = self.state_path(key);
        let bytes = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
        self.ensure_state_dirs()?;
        write_atomic(&path, &bytes, 0o600).map(|()| path)
    }

    /// Stored account credentials for (directory, contact). A file that does not parse is moved
    /// aside (logged, `Corrupt`) so a new registration never silently overwrites it; an
    /// unreadable one is an error.
    pub fn load_account(
        &self,
        directory: &str,
        contact: Option<&str>,
    ) -> io::Result<Loaded<AccountCredentials>> {
        Ok(
            match jsonfile::load::<AccountFile>(&self.account_path(directory, contact))? {
                Loaded::Found(f) => Loaded::Found(f.credentials),
                Loaded::Missing => Loaded::Missing,
                Loaded::Corrupt { moved_to } => Loaded::Corrupt { moved_to },
            },
        )
    }

    /// Stores account credentials (mode 0600).
    pub fn save_account(
        &self,
        directory: &str,
        contact: Option<&str>,
        creds: &AccountCredentials,
    ) -> io::Result<PathBuf> {
        let path = self.account_path(directory, contact);
        let file = AccountFileRef {
            directory,
            contact,
            credentials: creds,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        self.ensure_state_dirs()?;
        write_atomic(&path, &bytes, 0o600).map(|()| path)
    }

    /// The installed certificate for `key`, when its files exist, parse and belong together.
    pub fn installed(&self, key: &HostName) -> Option<CertInfo> {
        let live = self.live(key);
        if !live.is_installed() {
            return None;
        }
        let chain = fs::read(&live.fullchain).ok()?;
        let privkey = fs::read_to_string(&live.privkey).ok()?;
        if key_mismatch(&chain, &privkey) {
            tracing::warn!(domain = %key, action = "cert_torn", path = %live.dir.display(),
                "the private key does not belong to the certificate (interrupted install?); ordering a new pair");
            return None;
        }
        CertInfo::from_pem(&chain).ok()
    }

    /// Installs a new certificate's four files as one unit (see [`super::install`]): nginx
    /// sees the old set or the new one, never a mix.
    pub fn install(
        &self,
        key: &HostName,
        fullchain: &str,
        key_pem: &str,
    ) -> Result<CertInfo, (PathBuf, io::Error)> {
        let live = self.live(key);
        let (leaf, chain) =
            split_chain(fullchain).map_err(|e| (live.fullchain.clone(), io::Error::other(e)))?;
        let info = CertInfo::from_pem(leaf.as_bytes())
            .map_err(|e| (live.cert.clone(), io::Error::other(e)))?;
        let files = [
            SetFile {
                name: "privkey.pem",
                bytes: key_pem.as_bytes(),
                mode: 0o600,
            },
            SetFile {
                name: "cert.pem",
                bytes: leaf.as_bytes(),
                mode: 0o644,
            },
            SetFile {
                name: "chain.pem",
                bytes: chain.as_bytes(),
                mode: 0o644,
            },
            SetFile {
                name: "fullchain.pem",
                bytes: fullchain.as_bytes(),
                mode: 0o644,
            },
        ];
        let archive = self.certs_dir.join("archive").join(key.as_str());
        install_set(&live.dir, &archive, &files).map_err(|e| (live.dir.clone(), e))?;
        Ok(info)
    }
}

/// The HTTP-01 directory of `name`: `WEBROOT/NAME/.well-known/acme-challenge/`.
pub fn challenge_dir(webroot: &Path, name: &HostName) -> PathBuf {
    webroot
        .join(name.as_str())
        .join(".well-known")
        .join("acme-challenge")
}

/// Writes `WEBROOT/NAME/.well-known/acme-challenge/FILE` (0644: nginx workers must read it).
/// `file` must be base64url (a CA token or our probe), so it can never escape the directory.
pub fn write_challenge(
    webroot: &Path,
    name: &HostName,
    file: &str,
    body: &str,
) -> io::Result<PathBuf> {
    let ok = !file.is_empty()
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing challenge file name {file:?}"),
        ));
    }
    let path = challenge_dir(webroot, name).join(file);
    write_atomic(&path, body.as_bytes(), 0o644).map(|()| path)
}

#[cfg(test)]
mod tests;
