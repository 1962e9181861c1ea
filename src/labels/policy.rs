//! TLS policies by nginx-proxy's names (`SSL_POLICY`): which protocol versions and ciphers an
//! HTTPS server offers. Pure data; the renderer writes the two strings into the server block.

use serde::Serialize;

/// A named TLS policy (nginx-proxy's names, so existing labels work unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SslPolicy {
    /// TLS 1.3 only (Mozilla "modern").
    MozillaModern,
    /// TLS 1.2 + 1.3 with forward-secret AEAD ciphers (Mozilla "intermediate"), the default.
    MozillaIntermediate,
    /// TLS 1.0–1.3 with legacy ciphers, for very old clients (Mozilla "old").
    MozillaOld,
    /// AWS ELB `ELBSecurityPolicy-TLS13-1-3-2021-06`: TLS 1.3 only.
    AwsTls13_13_2021_06,
    /// AWS ELB `ELBSecurityPolicy-TLS13-1-2-2021-06`: TLS 1.2 + 1.3.
    AwsTls13_12_2021_06,
    /// AWS ELB `ELBSecurityPolicy-FS-1-2-Res-2020-10`: TLS 1.2, forward secrecy, GCM only.
    AwsFs12Res2020_10,
}

/// Every accepted name, the default first.
pub const NAMES: &[(&str, SslPolicy)] = &[
    ("Mozilla-Intermediate", SslPolicy::MozillaIntermediate),
    ("Mozilla-Modern", SslPolicy::MozillaModern),
    ("Mozilla-Old", SslPolicy::MozillaOld),
    ("AWS-TLS13-1-3-2021-06", SslPolicy::AwsTls13_13_2021_06),
    ("AWS-TLS13-1-2-2021-06", SslPolicy::AwsTls13_12_2021_06),
    ("AWS-FS-1-2-Res-2020-10", SslPolicy::AwsFs12Res2020_10),
];

const INTERMEDIATE: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:\
DHE-RSA-CHACHA20-POLY1305";
const OLD: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:\
DHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:\
ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:\
ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:\
AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:DES-CBC3-SHA";
const AWS_TLS12: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384";
const AWS_FS_RES: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

impl SslPolicy {
    /// The `ssl_protocols` value.
    pub fn protocols(self) -> &'static str {
        match self {
            SslPolicy::MozillaModern | SslPolicy::AwsTls13_13_2021_06 => "TLSv1.3",
            SslPolicy::MozillaOld => "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3",
            SslPolicy::AwsFs12Res2020_10 => "TLSv1.2",
            SslPolicy::MozillaIntermediate | SslPolicy::AwsTls13_12_2021_06 => "TLSv1.2 TLSv1.3",
        }
    }

    /// The `ssl_ciphers` value for TLS 1.2 and below (`None`: TLS 1.3 only, whose suites
    /// OpenSSL chooses).
    pub fn ciphers(self) -> Option<&'static str> {
        match self {
            SslPolicy::MozillaModern | SslPolicy::AwsTls13_13_2021_06 => None,
            SslPolicy::MozillaIntermediate => Some(INTERMEDIATE),
            SslPolicy::MozillaOld => Some(OLD),
            SslPolicy::AwsTls13_12_2021_06 => Some(AWS_TLS12),
            SslPolicy::AwsFs12Res2020_10 => Some(AWS_FS_RES),
        }
    }

    /// Whether the server's cipher order wins (only the legacy policies ask for it).
    pub fn prefer_server_ciphers(self) -> bool {
        matches!(self, SslPolicy::MozillaOld | SslPolicy::AwsFs12Res2020_10)
    }
}
