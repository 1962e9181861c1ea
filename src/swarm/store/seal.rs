//! Private keys are sealed (AES-256-GCM, random nonce) before they go into a Swarm config:
//! configs are readable by anyone with API access and are stored in the clear inside tasks.
//! The sealing key comes from a Swarm secret file (`/run/secrets/NAME`), which the API never
//! returns. Pure apart from reading that file.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The secret must hold at least this many bytes (e.g. `openssl rand -base64 32`).
pub const MIN_SECRET_LEN: usize = 16;

/// A key that seals and opens private keys.
pub struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// Derives the key from the secret's content (SHA-256 of it, trimmed), so any random
    /// string of [`MIN_SECRET_LEN`]+ bytes works.
    pub fn from_secret(secret: &[u8]) -> Result<SealKey, String> {
        let trimmed = secret.trim_ascii();
        if trimmed.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the store secret holds {} bytes; it needs at least {MIN_SECRET_LEN} \
                 (create it with: openssl rand -base64 32 | docker secret create vhostd_store_key -)",
                trimmed.len()
            ));
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, trimmed);
        let key = UnboundKey::new(&AES_256_GCM, digest.as_ref()).map_err(|e| e.to_string())?;
        Ok(SealKey(LessSafeKey::new(key)))
    }

    /// Reads the secret file (off the async workers) and derives the key.
    pub async fn from_file(path: &std::path::Path) -> Result<SealKey, String> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read the store secret {}: {e}", path.display()))?;
        SealKey::from_secret(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Seals `plain`, bound to `context` (the certificate key): base64 of nonce + ciphertext.
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "no randomness for a nonce".to_string())?;
        let mut buf = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buf,
            )
            .map_err(|_| "sealing failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }

    /// Opens what [`SealKey::seal`] gave for the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, String> {
        let raw = STANDARD.decode(sealed).map_err(|e| e.to_string())?;
        if raw.len() < NONCE_LEN {
            return Err("sealed data too short".into());
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|e| e.to_string())?;
        let mut buf = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| {
                format!("cannot decrypt the private key of {context}: every vhostd must mount the same store secret")
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_refuses_the_wrong_key_or_context() {
        let k = SealKey::from_secret(b"0123456789abcdef0123\n").unwrap();
        let sealed = k
            .seal(b"-----BEGIN PRIVATE KEY-----", "a.example.com")
            .unwrap();
        assert!(!sealed.contains("PRIVATE"));
        assert_eq!(
            k.open(&sealed, "a.example.com").unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
        assert!(
            k.open(&sealed, "b.example.com").is_err(),
            "bound to its name"
        );
        let other = SealKey::from_secret(b"another secret of some length").unwrap();
        let e = other.open(&sealed, "a.example.com").unwrap_err();
        assert!(e.contains("same store secret"), "{e}");
        assert!(
            SealKey::from_secret(b"short")
                .unwrap_err()
                .contains("openssl rand")
        );
    }
}
