//! Validated host names: the only way a name from a label reaches a config file or a path.
//!
//! A `HostName` is lower-case ASCII (IDN converted to punycode), RFC 1123 labels, optionally one
//! wildcard label at the start (`*.example.com`) or the end (`example.*`). It can never contain
//! `/`, `..`, whitespace, `;`, braces, quotes or `$`, so it is safe in nginx text and in paths.

use std::fmt;

use serde::{Serialize, Serializer};

/// Why a host name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The value is empty after trimming.
    #[error("empty host name")]
    Empty,
    /// The value is longer than DNS allows.
    #[error("host name {0:?} is longer than 253 characters")]
    TooLong(String),
    /// IDN conversion failed (invalid Unicode name).
    #[error("host name {0:?} is not a valid internationalised name")]
    Idna(String),
    /// A control or invisible character (zero-width space, bidi control, ...): IDN conversion
    /// would drop some of them silently, so the name would not be what it looks like.
    #[error("host name {0:?} contains the invisible or control character U+{1:04X}; remove it")]
    Invisible(String, u32),
    /// A character IDN maps to another one (full-width letters, ideographic dots, ...): the
    /// name served would differ from the name written.
    #[error("host name {0:?} is ambiguous: it would be served as {1:?}; write that instead")]
    Ambiguous(String, String),
    /// One label breaks RFC 1123 (characters, length, leading/trailing hyphen).
    #[error(
        "host name {name:?}: label {label:?} is not valid (letters, digits, inner hyphens, 1-63 chars)"
    )]
    BadLabel {
        /// The whole name as given.
        name: String,
        /// The offending label.
        label: String,
    },
    /// Two dots in a row or a leading dot (`../x`, `.a.com`).
    #[error("host name {0:?} has an empty label (a leading dot or two dots in a row)")]
    EmptyLabel(String),
    /// A `*` anywhere but a whole first or last label.
    #[error(
        "host name {0:?}: a wildcard must be a whole first label (*.a.com) or last label (a.*)"
    )]
    BadWildcard(String),
}

/// A validated, normalised host name (see module docs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostName(String);

impl HostName {
    /// Validates and normalises `raw` (trimmed, lower-cased, IDN → punycode, trailing dot dropped).
    pub fn parse(raw: &str) -> Result<Self, HostError> {
        if let Some(c) = raw
            .chars()
            .find(|&c| c.is_control() || crate::labels::value::invisible(c))
        {
            return Err(HostError::Invisible(raw.to_string(), c as u32));
        }
        let trimmed = raw.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err(HostError::Empty);
        }
        let ascii = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            unambiguous_ascii(raw, trimmed)?
        };
        if ascii.len() > 253 {
            return Err(HostError::TooLong(raw.to_string()));
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        let last = labels.len() - 1;
        for (i, label) in labels.iter().enumerate() {
            if label.contains('*') {
                let whole = *label == "*";
                let at_edge = (i == 0 || i == last) && labels.len() > 1;
                if !whole || !at_edge || (i == last && labels[0] == "*") {
                    return Err(HostError::BadWildcard(raw.to_string()));
                }
                continue;
            }
            if label.is_empty() {
                return Err(HostError::EmptyLabel(raw.to_string()));
            }
            if !valid_label(label) {
                return Err(HostError::BadLabel {
                    name: raw.to_string(),
                    label: label.to_string(),
                });
            }
        }
        Ok(HostName(ascii))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `*.a.com` and `a.*` names, which nginx matches as patterns.
    pub fn is_wildcard(&self) -> bool {
        self.0.contains('*')
    }

    /// True when the name is an IPv4 literal (all-digit labels).
    pub fn is_ipv4_literal(&self) -> bool {
        self.0.parse::<std::net::Ipv4Addr>().is_ok()
    }
}

/// IDN → punycode, refusing a name whose conversion changes what a reader sees: converted
/// back, it must give the lower-cased original.
fn unambiguous_ascii(raw: &str, trimmed: &str) -> Result<String, HostError> {
    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| HostError::Idna(raw.to_string()))?;
    let (back, res) = idna::domain_to_unicode(&ascii);
    if res.is_err() || back != trimmed.to_lowercase() {
        return Err(HostError::Ambiguous(raw.to_string(), back));
    }
    Ok(ascii)
}

/// RFC 1123 label: 1–63 of `[a-z0-9-]`, no leading/trailing hyphen. Underscore is allowed too,
/// since service names like `_acme` or `my_app` appear in real container setups and nginx accepts them.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for HostName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for HostName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HostName::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(
            HostName::parse(" App.Example.COM. ").unwrap().as_str(),
            "app.example.com"
        );
        assert_eq!(
            HostName::parse("bücher.de").unwrap().as_str(),
            "xn--bcher-kva.de"
        );
        assert!(HostName::parse("*.a.com").unwrap().is_wildcard());
        assert!(HostName::parse("a.*").unwrap().is_wildcard());
        assert!(HostName::parse("10.0.0.1").unwrap().is_ipv4_literal());
    }

    #[test]
    fn refuses_hostile_values() {
        for bad in [
            "",
            "../../etc",
            "a.com;include /x",
            "a.com\nb",
            "$host",
            "a..com",
            "-a.com",
            "a b.com",
            "a.com}",
            "a\"b.com",
            "a/b",
            "*",
            "a.*.com",
            "*a.com",
            "*.a.*",
            "a'b.com",
        ] {
            assert!(HostName::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(HostName::parse(&format!("{}.com", "a".repeat(64))).is_err());
        for ambiguous in [
            "a\u{200b}b.com",
            "ａｂ.com",
            "a\u{3002}com",
            "a\u{ad}b.com",
            "a.com\n",
        ] {
            assert!(
                HostName::parse(ambiguous).is_err(),
                "{ambiguous:?} must be refused, not silently changed"
            );
        }
        assert_eq!(
            HostName::parse("../../etc"),
            Err(HostError::EmptyLabel("../../etc".into())),
            "a traversal attempt is named for what it is, not as a bad empty label"
        );
    }
}
