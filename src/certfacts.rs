//! Facts about the installed certificates: which names each `live/KEY/` pair covers and its
//! dates, or why nginx could not load it. Read from disk once, then refreshed when a
//! certificate is installed (or on the periodic resync), so the pure core
//! ([`crate::desired`]) never reads a file per reconcile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::acme::LivePaths;
use crate::acme::certinfo::CertInfo;
use crate::host::HostName;

/// What one installed pair holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFact {
    /// DNS names of the leaf, in certificate order.
    pub sans: Vec<String>,
    /// The leaf's notBefore.
    pub not_before: OffsetDateTime,
    /// The leaf's notAfter.
    pub not_after: OffsetDateTime,
}

/// Every pair under `CERTS/live/`, by key (the directory name); a pair nginx could not load
/// holds the reason instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    certs_dir: PathBuf,
    by_key: BTreeMap<String, Result<CertFact, String>>,
}

impl CertFacts {
    /// No certificate known yet (before the first read).
    pub fn empty(certs_dir: &Path) -> CertFacts {
        CertFacts {
            certs_dir: certs_dir.into(),
            by_key: BTreeMap::new(),
        }
    }

    /// Reads every pair under `certs_dir/live/` (blocking: call off the async workers).
    pub fn load(certs_dir: &Path) -> CertFacts {
        let mut facts = CertFacts::empty(certs_dir);
        let Ok(entries) = std::fs::read_dir(certs_dir.join("live")) else {
            return facts;
        };
        for name in entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
        {
            // Any directory: CERT_NAME may name one that is not a host name.
            facts.refresh_named(&name);
        }
        facts
    }

    /// Reads the pair keyed `key` again (blocking): after an install, or when its files changed.
    pub fn refresh(&mut self, key: &HostName) {
        self.refresh_named(key.as_str());
    }

    /// Reads the pair in `live/NAME/` again (blocking); `NAME` is a file name, not always a host.
    pub fn refresh_named(&mut self, name: &str) {
        let paths = self.named_paths(name);
        if paths.is_installed() {
            self.by_key.insert(
                name.to_string(),
                read_pair(&paths.fullchain, &paths.privkey),
            );
        } else {
            self.by_key.remove(name);
        }
    }

    /// The pair keyed `key`: `None` when none is installed, `Err` when nginx could not load it.
    pub fn get(&self, key: &HostName) -> Option<&Result<CertFact, String>> {
        self.get_named(key.as_str())
    }

    /// The pair in `live/NAME/` (a `CERT_NAME`), like [`CertFacts::get`].
    pub fn get_named(&self, name: &str) -> Option<&Result<CertFact, String>> {
        self.by_key.get(name)
    }

    /// Where the pair keyed `key` is (or would be) installed.
    pub fn paths(&self, key: &HostName) -> LivePaths {
        self.named_paths(key.as_str())
    }

    /// Where the pair in `live/NAME/` is (or would be).
    pub fn named_paths(&self, name: &str) -> LivePaths {
        let dir = self.certs_dir.join("live").join(name);
        LivePaths {
            fullchain: dir.join("fullchain.pem"),
            privkey: dir.join("privkey.pem"),
            chain: dir.join("chain.pem"),
            cert: dir.join("cert.pem"),
            dir,
        }
    }

    /// Test and bench helper: records a pair without reading any file.
    pub fn insert(&mut self, key: &HostName, fact: Result<CertFact, String>) {
        self.by_key.insert(key.to_string(), fact);
    }
}

/// The facts of a pair, or why nginx could not load it: the leaf must parse and the key file
/// must hold a PEM private key. Whether the key fits the certificate is left to the
/// certificate task ([`crate::acme::certinfo::key_mismatch`]): during an install the two files
/// differ for a moment, and that must not take the host off HTTPS.
fn read_pair(fullchain: &Path, privkey: &Path) -> Result<CertFact, String> {
    let chain = std::fs::read(fullchain).map_err(|e| format!("{}: {e}", fullchain.display()))?;
    let leaf = CertInfo::from_pem(&chain).map_err(|e| format!("{}: {e}", fullchain.display()))?;
    let key = std::fs::read(privkey).map_err(|e| format!("{}: {e}", privkey.display()))?;
    let marker = b"PRIVATE KEY-----";
    if !key.windows(marker.len()).any(|w| w == marker) {
        return Err(format!("{} holds no PEM private key", privkey.display()));
    }
    Ok(CertFact {
        sans: leaf.sans,
        not_before: leaf.validity.not_before,
        not_after: leaf.validity.not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_read_once_and_refreshed_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let key = HostName::parse("a.example.com").unwrap();
        let live = dir.path().join("live/a.example.com");
        std::fs::create_dir_all(&live).unwrap();
        let pair = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example.com".to_string()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        std::fs::write(live.join("fullchain.pem"), cert.pem()).unwrap();
        std::fs::write(live.join("privkey.pem"), pair.serialize_pem()).unwrap();
        let mut facts = CertFacts::load(dir.path());
        assert_eq!(
            facts.get(&key).unwrap().as_ref().unwrap().sans,
            ["a.example.com"]
        );
        // Removed on disk: the cached facts hold until refreshed.
        std::fs::remove_dir_all(&live).unwrap();
        assert!(facts.get(&key).is_some());
        facts.refresh(&key);
        assert!(facts.get(&key).is_none());
    }
}
