//! Pure: what vhostd needs to know about a PEM certificate (validity, SANs, serial, issuer, ARI
//! id), and splitting the CA's chain into certbot's `cert.pem` / `chain.pem`. Bytes in, data out.

use instant_acme::CertificateIdentifier;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use super::schedule::Validity;

/// Facts about an installed or freshly issued leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// notBefore / notAfter.
    pub validity: Validity,
    /// DNS names in the subjectAltName extension, in certificate order.
    pub sans: Vec<String>,
    /// Serial number, lower-case hex (for logs, status and tests).
    pub serial: String,
    /// Issuer common name (or the whole issuer DN when it has no CN).
    pub issuer: String,
    /// RFC 9773 certificate id (`AKI.serial`), when the certificate has an AKI.
    pub ari_id: Option<String>,
}

impl CertInfo {
    /// Reads the first certificate of a PEM file (the leaf of a full chain).
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem)
            .map_err(|e| format!("not a PEM certificate: {e}"))?;
        Self::from_der(&pem.contents)
    }

    /// Reads one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("unreadable certificate: {e}"))?;
        let sans = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DNSName(n) => Some(n.to_ascii_lowercase()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let issuer = cert
            .issuer()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok().map(str::to_string))
            .unwrap_or_else(|| cert.issuer().to_string());
        let ari_id = CertificateIdentifier::try_from(&CertificateDer::from(der.to_vec()))
            .ok()
            .map(|id| id.to_string());
        Ok(CertInfo {
            validity: Validity {
                not_before: cert.validity().not_before.to_datetime(),
                not_after: cert.validity().not_after.to_datetime(),
            },
            sans,
            serial: cert.tbs_certificate.serial.to_str_radix(16),
            issuer,
            ari_id,
        })
    }

    /// True while `now` is inside the validity period.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.validity.not_before <= now && now < self.validity.not_after
    }

    /// True when the SAN set equals `names` (order ignored).
    pub fn covers_exactly<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> bool {
        let mut a: Vec<&str> = self.sans.iter().map(String::as_str).collect();
        let mut b: Vec<&str> = names.into_iter().collect();
        a.sort_unstable();
        a.dedup();
        b.sort_unstable();
        b.dedup();
        a == b
    }
}

/// Splits a PEM chain (leaf first) into (leaf, rest); each block re-encoded with a final newline.
pub fn split_chain(fullchain: &str) -> Result<(String, String), String> {
    let mut blocks = Vec::new();
    for pem in Pem::iter_from_buffer(fullchain.as_bytes()) {
        let pem = pem.map_err(|e| format!("unreadable certificate chain: {e}"))?;
        if pem.label == "CERTIFICATE" {
            blocks.push(encode_pem(&pem.contents));
        }
    }
    let mut blocks = blocks.into_iter();
    let leaf = blocks.next().ok_or("the CA returned no certificate")?;
    Ok((leaf, blocks.collect()))
}

/// PEM-encodes one DER certificate (64-column base64, LF line ends, as openssl writes it).
fn encode_pem(der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der), config)
}

/// True when the PEM private key `key_pem` provably belongs to another certificate than the
/// leaf of `cert_pem`: a pair torn by a crash between the two writes would make nginx reject
/// every config, so it counts as missing. A key this crate cannot read (a user's RSA key in
/// PKCS#1 form, say) is given the benefit of the doubt.
pub fn key_mismatch(cert_pem: &[u8], key_pem: &str) -> bool {
    use rcgen::PublicKeyData;
    let Ok(key) = rcgen::KeyPair::from_pem(key_pem) else {
        return false;
    };
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(cert_pem) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&pem.contents) else {
        return false;
    };
    key.der_bytes() != &*cert.public_key().subject_public_key.data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn reads_sans_validity_and_splits_chains() {
        let leaf = self_signed(&["a.example.com", "b.example.com"]);
        let other = self_signed(&["ca.example"]);
        let info = CertInfo::from_pem(leaf.as_bytes()).unwrap();
        assert_eq!(info.sans, ["a.example.com", "b.example.com"]);
        assert!(info.covers_exactly(["b.example.com", "a.example.com"]));
        assert!(!info.covers_exactly(["a.example.com"]));
        assert!(info.validity.not_after > info.validity.not_before);
        assert!(!info.serial.is_empty());

        let full = format!("{leaf}\n{other}");
        let (l, rest) = split_chain(&full).unwrap();
        assert_eq!(
            l.trim(),
            leaf.trim().replace("\r\n", "\n"),
            "leaf re-encodes byte-identically"
        );
        assert_eq!(rest.trim(), other.trim());
        assert!(split_chain("junk").is_err());
    }

    #[test]
    fn a_key_matches_only_its_own_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example.com".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem();
        let other = rcgen::KeyPair::generate().unwrap();
        assert!(!key_mismatch(cert.as_bytes(), &key.serialize_pem()));
        assert!(key_mismatch(cert.as_bytes(), &other.serialize_pem()));
        assert!(!key_mismatch(cert.as_bytes(), "unreadable: no verdict"));
    }
}
