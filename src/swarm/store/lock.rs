//! Pure: what a lock says (holder, expiry) and the Swarm config names vhostd uses. A config
//! name is unique cluster-wide, so creating `vhostd-lock-HASH` is an atomic test-and-set.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::host::HostName;
use crate::sites::fnv1a;

/// The content of a lock config: who orders the certificate, and until when the lock holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// The holder (host name and pid of the vhostd that took it), for logs and status.
    pub holder: String,
    /// After this moment anyone may take the lock over: a node that died mid-order doesn't
    /// block the name.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
}

impl LockRecord {
    /// True once the lock may be taken over.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires
    }
}

/// Swarm config names hold at most 64 characters of `[a-zA-Z0-9-_.]`: the certificate key
/// (a host name, up to 253 characters) is hashed; the readable key goes into a label.
pub fn config_name(kind: &str, key: &HostName) -> String {
    format!("vhostd-{kind}-{:016x}", fnv1a(key.as_str().as_bytes()))
}

/// A certificate version's config name: newer versions sort after older ones.
pub fn cert_config_name(key: &HostName, now: OffsetDateTime) -> String {
    format!(
        "{}-{:020}",
        config_name("cert", key),
        now.unix_timestamp_nanos().max(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_docker_limits_and_sort_by_time() {
        let long = HostName::parse(&format!("{}.example.com", "a".repeat(63))).unwrap();
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let a = cert_config_name(&long, t);
        let b = cert_config_name(&long, t + time::Duration::seconds(1));
        assert!(a.len() <= 64 && a < b, "{a} {b}");
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
        assert_ne!(
            config_name("lock", &long),
            config_name("lock", &HostName::parse("b.example.com").unwrap())
        );
    }

    #[test]
    fn a_lock_expires_at_its_time() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let l = LockRecord {
            holder: "node-a/1".into(),
            expires: t,
        };
        assert!(!l.is_expired(t - time::Duration::seconds(1)));
        assert!(l.is_expired(t));
    }
}
