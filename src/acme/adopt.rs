//! Adopting certificates that already exist in nginx-proxy's layout (`--nginx-proxy-certs DIR`,
//! read-only): `DIR/HOST.crt` (full chain) and `DIR/HOST.key`, as acme-companion writes them
//! (usually symlinks into `DIR/HOST/`). A pair that parses, belongs together, is unexpired and
//! names exactly the certificate's names is installed under `live/KEY/` as is, so switching
//! from acme-companion costs no order; vhostd renews it at its own renewal time.
//!
//! Blocking file reads; decides only whether a pair is usable. Never writes into `DIR`.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::certinfo::{CertInfo, key_mismatch};
use super::plan::CertSpec;

/// A usable pair found for a certificate.
#[derive(Debug)]
pub struct Found {
    /// The `.crt` file it came from (for the log).
    pub crt: PathBuf,
    /// Its full chain, PEM.
    pub fullchain: String,
    /// Its private key, PEM.
    pub key_pem: String,
}

/// Looks for a pair named after one of `spec`'s names (its key first). `Ok(None)`: no pair
/// there; `Err`: a pair that exists but can't be used, with the file and the reason.
pub fn find(dir: &Path, spec: &CertSpec, now: OffsetDateTime) -> Result<Option<Found>, String> {
    for name in &spec.names {
        let crt = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        if !crt.exists() && !key.exists() {
            continue;
        }
        return check(&crt, &key, spec, now).map(Some);
    }
    Ok(None)
}

/// Checks one pair (see module docs); the error names the file and says what is wrong.
fn check(crt: &Path, key: &Path, spec: &CertSpec, now: OffsetDateTime) -> Result<Found, String> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))
    };
    let fullchain = read(crt)?;
    let key_pem = read(key)?;
    let info =
        CertInfo::from_pem(fullchain.as_bytes()).map_err(|e| format!("{}: {e}", crt.display()))?;
    if !key_pem.contains("PRIVATE KEY-----") {
        return Err(format!("{}: not a PEM private key", key.display()));
    }
    if key_mismatch(fullchain.as_bytes(), &key_pem) {
        return Err(format!(
            "{}: the key does not belong to the certificate in {}",
            key.display(),
            crt.display()
        ));
    }
    if !info.is_valid_at(now) {
        return Err(format!(
            "{}: not valid now (valid {} to {})",
            crt.display(),
            info.validity.not_before,
            info.validity.not_after
        ));
    }
    if !info.covers_exactly(spec.names.iter().map(|n| n.as_str())) {
        let want: Vec<&str> = spec.names.iter().map(|n| n.as_str()).collect();
        return Err(format!(
            "{}: names {} differ from the container's {}",
            crt.display(),
            info.sans.join(","),
            want.join(",")
        ));
    }
    Ok(Found {
        crt: crt.to_path_buf(),
        fullchain,
        key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostName;

    fn spec(names: &[&str]) -> CertSpec {
        let names: Vec<HostName> = names.iter().map(|n| HostName::parse(n).unwrap()).collect();
        CertSpec {
            key: names[0].clone(),
            names,
            email: None,
            profile: None,
            container: "c".into(),
        }
    }

    /// acme-companion's layout: `HOST.crt` → `HOST/fullchain.pem`, `HOST.key` → `HOST/key.pem`.
    fn companion(dir: &Path, host: &str, names: &[&str], key: Option<&rcgen::KeyPair>) {
        let own = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(&own).unwrap();
        let sub = dir.join(host);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("fullchain.pem"), cert.pem()).unwrap();
        std::fs::write(sub.join("key.pem"), key.unwrap_or(&own).serialize_pem()).unwrap();
        std::os::unix::fs::symlink(
            format!("./{host}/fullchain.pem"),
            dir.join(format!("{host}.crt")),
        )
        .unwrap();
        std::os::unix::fs::symlink(format!("./{host}/key.pem"), dir.join(format!("{host}.key")))
            .unwrap();
    }

    #[test]
    fn a_matching_pair_through_symlinks_is_adopted_and_a_bad_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        companion(
            dir.path(),
            "a.example.com",
            &["a.example.com", "www.a.example.com"],
            None,
        );
        let s = spec(&["a.example.com", "www.a.example.com"]);
        let found = find(dir.path(), &s, now).unwrap().unwrap();
        assert!(found.crt.ends_with("a.example.com.crt"));
        assert!(
            find(dir.path(), &spec(&["none.example.com"]), now)
                .unwrap()
                .is_none()
        );
        let e = find(dir.path(), &spec(&["a.example.com"]), now).unwrap_err();
        assert!(
            e.contains("a.example.com.crt") && e.contains("differ"),
            "{e}"
        );
        let stray = rcgen::KeyPair::generate().unwrap();
        companion(
            dir.path(),
            "b.example.com",
            &["b.example.com"],
            Some(&stray),
        );
        let e = find(dir.path(), &spec(&["b.example.com"]), now).unwrap_err();
        assert!(
            e.contains("b.example.com.key") && e.contains("does not belong"),
            "{e}"
        );
        let later = time::macros::datetime!(4100-01-01 0:00 UTC); // rcgen: valid to 4096
        let e = find(dir.path(), &s, later).unwrap_err();
        assert!(e.contains("not valid now"), "{e}");
    }
}
