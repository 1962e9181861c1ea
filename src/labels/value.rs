//! Pure: the exact syntax of every single label value — length, characters, and the scalar
//! keys' grammars. Nothing here trims silently: a value with spaces around it, a control
//! character or an invisible one is refused with its key named, never "fixed".

use super::{DEFAULT_HSTS, Hsts, HttpsMethod, LabelError, err};

/// Longest value of an ordinary key: far above any real value, far below what nginx chokes on.
pub const MAX_VALUE: usize = 1024;
/// Longest comma-separated host list (`VIRTUAL_HOST`, `LETSENCRYPT_HOST`).
pub const MAX_LIST: usize = 4096;
/// Longest `VIRTUAL_HOST_MULTIPORTS` document.
pub const MAX_DOCUMENT: usize = 16 * 1024;

/// True for characters a reader cannot see or tell apart from a space: non-ASCII white space,
/// zero-width and joiner characters, bidi controls, variation selectors, tags, filler letters.
/// IDN conversion would delete several of them silently, so a name would not be what it looks like.
pub fn invisible(c: char) -> bool {
    (c.is_whitespace() && c != ' ')
        || matches!(c as u32,
            0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x2800 | 0x3164
            | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// The characters every value must be free of: control characters (a newline too) and
/// invisible ones. `multiline` allows the newline and tab a YAML document needs.
pub fn base(key: &'static str, v: &str, max: usize, multiline: bool) -> Result<(), LabelError> {
    if v.len() > max {
        return Err(err(
            key,
            format!(
                "value is {} bytes long; at most {max} are accepted",
                v.len()
            ),
        ));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if let Some(c) = v
        .chars()
        .find(|&c| (c.is_control() && !allowed(c)) || (invisible(c) && !allowed(c)))
    {
        return Err(err(
            key,
            format!(
                "{} contains the invisible or control character U+{:04X}; remove it",
                preview(v),
                c as u32
            ),
        ));
    }
    Ok(())
}

/// A scalar value must be exactly its text: spaces around it are refused, not trimmed.
pub fn exact(key: &'static str, v: &str) -> Result<(), LabelError> {
    base(key, v, MAX_VALUE, false)?;
    if v.trim() != v {
        return Err(err(
            key,
            format!("{} has spaces around it; remove them", preview(v)),
        ));
    }
    Ok(())
}

/// A value shown in an error: quoted, and cut short when long.
pub fn preview(v: &str) -> String {
    match v.char_indices().nth(60) {
        Some((i, _)) => format!("{:?}… ({} bytes)", &v[..i], v.len()),
        None => format!("{v:?}"),
    }
}

/// A port: decimal digits, no sign, no leading zero, 1–65535 (`+80`, `080`, ` 81 ` are refused).
pub fn port(key: &'static str, v: &str) -> Result<u16, LabelError> {
    exact(key, v)?;
    let digits = !v.is_empty() && v.len() <= 5 && v.bytes().all(|b| b.is_ascii_digit());
    match v.parse::<u16>() {
        Ok(p) if digits && p > 0 && !v.starts_with('0') => Ok(p),
        _ => Err(err(
            key,
            format!(
                "{} is not a port number 1-65535 (plain digits, no sign or leading zero)",
                preview(v)
            ),
        )),
    }
}

/// One word out of a fixed set (`""` = the default, the first of `words`' values).
pub fn one_of<T: Copy>(
    key: &'static str,
    v: Option<&str>,
    words: &[(&str, T)],
) -> Result<T, LabelError> {
    let v = v.unwrap_or("");
    exact(key, v)?;
    if v.is_empty() {
        return Ok(words[0].1);
    }
    words
        .iter()
        .find(|(w, _)| *w == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
            err(
                key,
                format!("{} is not one of {}", preview(v), names.join(", ")),
            )
        })
}

/// A name that is used as one path component (`CERT_NAME` → `live/NAME/`) and in nginx text:
/// `[A-Za-z0-9._-]`, 1–253 characters, not starting with a dot.
pub fn file_name(key: &'static str, v: &str) -> Result<String, LabelError> {
    exact(key, v)?;
    let ok = !v.is_empty()
        && v.len() <= 253
        && !v.starts_with('.')
        && !v.contains("..")
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(v.to_string())
    } else {
        Err(err(
            key,
            format!(
                "{} is not a certificate directory name under live/ ([A-Za-z0-9._-], no leading dot or ..)",
                preview(v)
            ),
        ))
    }
}

/// VIRTUAL_NETWORK: a Docker network name.
pub fn network(key: &'static str, n: &str) -> Result<String, LabelError> {
    exact(key, n)?;
    if n.len() <= 128
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Ok(n.into());
    }
    Err(err(
        key,
        format!(
            "{} is not a Docker network name ([A-Za-z0-9_.-])",
            preview(n)
        ),
    ))
}

/// HTTPS_METHOD.
pub fn https_method(v: Option<&str>) -> Result<HttpsMethod, LabelError> {
    one_of(
        "HTTPS_METHOD",
        v,
        &[
            ("redirect", HttpsMethod::Redirect),
            ("noredirect", HttpsMethod::NoRedirect),
            ("nohttp", HttpsMethod::NoHttp),
            ("nohttps", HttpsMethod::NoHttps),
        ],
    )
}

/// HSTS: a header value of safe characters, or `off`.
pub fn hsts(v: Option<&str>) -> Result<Hsts, LabelError> {
    let v = v.unwrap_or("");
    exact("HSTS", v)?;
    match v {
        "" => Ok(Hsts(Some(DEFAULT_HSTS.into()))),
        "off" => Ok(Hsts(None)),
        h if h.len() <= 200
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || " =;-_".contains(c)) =>
        {
            Ok(Hsts(Some(h.into())))
        }
        h => Err(err(
            "HSTS",
            format!(
                "{} is not an HSTS value like \"max-age=31536000; includeSubDomains\" or off",
                preview(h)
            ),
        )),
    }
}

/// LETSENCRYPT_EMAIL: an address with no characters that could break out of text.
pub fn email(key: &'static str, e: &str) -> Result<String, LabelError> {
    exact(key, e)?;
    let ok = e.len() <= 254
        && e.contains('@')
        && !e
            .chars()
            .any(|c| c.is_whitespace() || "<>\",;'`$\\{}".contains(c));
    if ok {
        return Ok(e.into());
    }
    Err(err(key, format!("{} is not an e-mail address", preview(e))))
}

/// ACME_PROFILE: a profile name.
pub fn profile(key: &'static str, p: &str) -> Result<String, LabelError> {
    exact(key, p)?;
    if p.len() <= 64
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Ok(p.into());
    }
    Err(err(
        key,
        format!("{} is not a profile name like tlsserver", preview(p)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_have_one_spelling() {
        for good in ["1", "80", "8080", "65535"] {
            assert!(port("P", good).is_ok(), "{good}");
        }
        for bad in [
            "+80", "080", "80\n", " 81 ", "81 ", "0", "65536", "", "8o", "-1", "1e3", "0x50", "٨٠",
            "８０", "99999",
        ] {
            assert!(port("P", bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn invisible_and_control_characters_are_named() {
        for bad in [
            "a\u{200b}b",
            "a\u{feff}",
            "a\u{202e}b",
            "a\u{a0}b",
            "a\nb",
            "a\u{7f}",
            "a\u{85}",
        ] {
            let e = exact("K", bad).unwrap_err();
            assert_eq!(e.key, "K");
            assert!(e.problem.contains("U+"), "{e}");
        }
        assert!(base("K", "a:\n  b: 1\n", 100, true).is_ok());
        assert!(base("K", &"x".repeat(5000), MAX_VALUE, false).is_err());
    }
}
