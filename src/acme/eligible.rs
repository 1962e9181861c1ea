//! Pure: can a host name get a publicly trusted certificate over HTTP-01? Names that can't are
//! routed over plain HTTP and reported; they must never reach the CA (each refused order costs
//! rate limit and counts as a failed authorization).

use std::fmt;

use serde::Serialize;

use crate::host::HostName;

/// Why a name gets no certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SkipReason {
    /// An IPv4 literal (Let's Encrypt issues those only on the `shortlived` profile; not over our flow).
    IpLiteral,
    /// `localhost` or a name under `.localhost`.
    Localhost,
    /// A private suffix (`.local`, `.internal`, `.home.arpa`).
    PrivateSuffix {
        /// The suffix that matched, e.g. `.local`.
        suffix: &'static str,
    },
    /// A name without a dot (a container alias, not a public name).
    SingleLabel,
    /// A wildcard: HTTP-01 cannot validate it (needs DNS-01).
    Wildcard,
    /// An underscore: allowed in host names nginx routes, refused by public CAs in certificates.
    Underscore,
    /// Another container's certificate already covers the name.
    Covered {
        /// The key of the certificate that covers it.
        key: HostName,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::IpLiteral => {
                f.write_str("an IP address cannot get a certificate over HTTP-01")
            }
            SkipReason::Localhost => f.write_str("localhost names cannot get a public certificate"),
            SkipReason::PrivateSuffix { suffix } => {
                write!(
                    f,
                    "names under {suffix} are not public and cannot get a public certificate"
                )
            }
            SkipReason::SingleLabel => f.write_str("a name without a dot is not a public domain"),
            SkipReason::Wildcard => {
                f.write_str("wildcard names need DNS-01; HTTP-01 cannot validate them")
            }
            SkipReason::Underscore => f.write_str("public CAs refuse names with an underscore"),
            SkipReason::Covered { key } => {
                write!(f, "already covered by the certificate for {key}")
            }
        }
    }
}

/// Suffixes that never resolve publicly (RFC 6762 mDNS, ICANN `.internal`, RFC 8375).
/// `.test` is deliberately allowed: test CAs such as Pebble issue for it.
const PRIVATE_SUFFIXES: [&str; 3] = [".local", ".internal", ".home.arpa"];

/// Why `name` cannot have a public certificate, or `None` when it can.
pub fn ineligible(name: &HostName) -> Option<SkipReason> {
    let s = name.as_str();
    if name.is_wildcard() {
        return Some(SkipReason::Wildcard);
    }
    if name.is_ipv4_literal() {
        return Some(SkipReason::IpLiteral);
    }
    if s == "localhost" || s.ends_with(".localhost") {
        return Some(SkipReason::Localhost);
    }
    if !s.contains('.') {
        return Some(SkipReason::SingleLabel);
    }
    if s.contains('_') {
        return Some(SkipReason::Underscore);
    }
    PRIVATE_SUFFIXES
        .iter()
        .find(|suffix| s.ends_with(*suffix) || s == &suffix[1..])
        .map(|suffix| SkipReason::PrivateSuffix { suffix })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(s: &str) -> Option<SkipReason> {
        ineligible(&HostName::parse(s).unwrap())
    }

    #[test]
    fn public_names_pass() {
        for ok in [
            "example.com",
            "a.b.example.org",
            "xn--bcher-kva.de",
            "localhost.example.com",
        ] {
            assert_eq!(why(ok), None, "{ok}");
        }
    }

    #[test]
    fn non_public_names_are_refused_with_a_reason() {
        assert_eq!(why("10.0.0.1"), Some(SkipReason::IpLiteral));
        assert_eq!(why("localhost"), Some(SkipReason::Localhost));
        assert_eq!(why("app.localhost"), Some(SkipReason::Localhost));
        assert_eq!(
            why("printer.local"),
            Some(SkipReason::PrivateSuffix { suffix: ".local" })
        );
        assert_eq!(
            why("db.corp.internal"),
            Some(SkipReason::PrivateSuffix {
                suffix: ".internal"
            })
        );
        assert_eq!(
            why("nas.home.arpa"),
            Some(SkipReason::PrivateSuffix {
                suffix: ".home.arpa"
            })
        );
        assert_eq!(why("web"), Some(SkipReason::SingleLabel));
        assert_eq!(why("my_app.example.net"), Some(SkipReason::Underscore));
        assert_eq!(why("*.example.com"), Some(SkipReason::Wildcard));
        assert_eq!(why("example.*"), Some(SkipReason::Wildcard));
        assert_eq!(
            why("app.example.test"),
            None,
            "Pebble test names must stay orderable"
        );
    }
}
