//! Pure: the test main config that makes `nginx -t` read a candidate file instead of the live
//! one. It is nginx's own main config with every `include` that would load the live file
//! rewritten to load the same files with the candidate in the live file's place, so a candidate
//! is validated in its real context without ever sitting where nginx loads it.

use std::path::{Component, Path, PathBuf};

use crate::conflex;

/// Paths as nginx sees them (in container mode: inside the nginx container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// nginx's main config file.
    pub main: PathBuf,
    /// The live file vhostd renders.
    pub live: PathBuf,
    /// The candidate file (next to the live one, named so no glob of nginx's matches it).
    pub candidate: PathBuf,
}

/// Why no test main config can be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError {
    /// No `include` of the main config loads the live file (it may be included from a nested
    /// file): the candidate can't be validated in its context.
    #[error("no `include` in {main} loads {live}; include it from the main config")]
    NotIncluded {
        /// The main config.
        main: String,
        /// The live file.
        live: String,
    },
}

/// Directives whose relative file argument nginx resolves against the main config's
/// directory: the test main config lives elsewhere, so they are made absolute.
const CONF_RELATIVE: &[&str] = &[
    "include",
    "ssl_certificate",
    "ssl_certificate_key",
    "ssl_trusted_certificate",
    "ssl_client_certificate",
    "ssl_dhparam",
    "ssl_password_file",
    "ssl_crl",
    "ssl_session_ticket_key",
];

/// The test main config's text. `list_dir` lists the file names of a directory (nginx's view);
/// it is only asked about the live file's own directory.
pub fn derive(
    main_text: &str,
    layout: &Layout,
    list_dir: impl Fn(&Path) -> Vec<String>,
) -> Result<String, DeriveError> {
    let base = layout.main.parent().unwrap_or(Path::new("/"));
    let live = normalize(&layout.live);
    let mut out = String::with_capacity(main_text.len() + 256);
    let mut pos = 0;
    let mut included = false;
    for st in conflex::statements(main_text) {
        let [directive, arg] = st.words.as_slice() else {
            continue;
        };
        if st.opens || !CONF_RELATIVE.contains(&directive.as_str()) {
            continue;
        }
        let abs = normalize(&base.join(arg));
        let replacement = if directive == "include" {
            match expand_with_candidate(&abs, &live, &layout.candidate, &list_dir) {
                Some(files) => {
                    included = true;
                    files
                        .iter()
                        .map(|f| format!("include {};", quote(f)))
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                None => format!("include {};", quote(&abs)),
            }
        } else {
            format!("{directive} {};", quote(&abs))
        };
        out.push_str(&main_text[pos..st.start]);
        out.push_str(&replacement);
        pos = st.end;
    }
    out.push_str(&main_text[pos..]);
    if !included {
        return Err(DeriveError::NotIncluded {
            main: layout.main.display().to_string(),
            live: layout.live.display().to_string(),
        });
    }
    Ok(out)
}

/// When the include `pattern` loads `live`: the files it loads, in nginx's (sorted) order,
/// with the candidate in place of the live file. `None` when it does not load `live`.
fn expand_with_candidate(
    pattern: &Path,
    live: &Path,
    candidate: &Path,
    list_dir: &impl Fn(&Path) -> Vec<String>,
) -> Option<Vec<PathBuf>> {
    let text = pattern.to_string_lossy();
    if !text.contains(['*', '?', '[']) {
        return (pattern == live).then(|| vec![candidate.to_path_buf()]);
    }
    let (dir, name_pat) = (pattern.parent()?, pattern.file_name()?.to_string_lossy());
    let live_name = live.file_name()?.to_string_lossy();
    if dir.to_string_lossy().contains(['*', '?', '['])
        || dir != live.parent()?
        || !glob_match(&name_pat, &live_name)
    {
        return None;
    }
    let mut names: Vec<String> = list_dir(dir)
        .into_iter()
        .filter(|n| glob_match(&name_pat, n) && *n != *live_name)
        .collect();
    names.push(live_name.into_owned());
    names.sort();
    Some(
        names
            .into_iter()
            .map(|n| {
                if *n == *live.file_name().unwrap_or_default().to_string_lossy() {
                    candidate.to_path_buf()
                } else {
                    dir.join(n)
                }
            })
            .collect(),
    )
}

/// glob(3) on one name: `*`, `?`, `[...]`; a leading dot is never matched by a wildcard.
pub fn glob_match(pat: &str, name: &str) -> bool {
    if name.starts_with('.') && !pat.starts_with('.') {
        return false;
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(2).position(|c| *c == ']').map(|i| i + 2) else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(c) = n.first() else { return false };
                let (neg, set) = match p[1] {
                    '!' | '^' => (true, &p[2..close]),
                    _ => (false, &p[1..close]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= *c && *c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == *c;
                        i += 1;
                    }
                }
                hit != neg && go(&p[close + 1..], &n[1..])
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    go(&p, &n)
}

/// `a/./b//c/../d` → `a/b/d`, lexically (nginx does not resolve symlinks either).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A path as one nginx argument, double-quoted with `"` and `\` escaped.
fn quote(p: &Path) -> String {
    let s = p.to_string_lossy();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            main: "/etc/nginx/nginx.conf".into(),
            live: "/etc/nginx/conf.d/vhostd.conf".into(),
            candidate: "/etc/nginx/conf.d/.vhostd.conf.candidate".into(),
        }
    }

    fn listing(_: &Path) -> Vec<String> {
        [
            "a.conf",
            "vhostd.conf",
            "z.conf",
            "notes.txt",
            ".vhostd.conf.candidate",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn the_glob_that_loads_the_live_file_loads_the_candidate_instead() {
        let main = "events {}\nhttp {\n  include mime.types; # types\n  include conf.d/*.conf;\n  include /etc/nginx/other/*.conf;\n}\n";
        let out = derive(main, &layout(), listing).unwrap();
        assert_eq!(
            out,
            "events {}\nhttp {\n  include \"/etc/nginx/mime.types\"; # types\n  include \"/etc/nginx/conf.d/a.conf\"; \
             include \"/etc/nginx/conf.d/.vhostd.conf.candidate\"; include \"/etc/nginx/conf.d/z.conf\";\n  \
             include \"/etc/nginx/other/*.conf\";\n}\n"
        );
    }

    #[test]
    fn an_exact_include_and_a_missing_one() {
        let main = "http { include /etc/nginx/conf.d/vhostd.conf; }";
        assert_eq!(
            derive(main, &layout(), listing).unwrap(),
            "http { include \"/etc/nginx/conf.d/.vhostd.conf.candidate\"; }"
        );
        let nested = "http { include sites/*; }";
        assert!(matches!(
            derive(nested, &layout(), listing),
            Err(DeriveError::NotIncluded { .. })
        ));
    }

    #[test]
    fn globs_like_glob3() {
        assert!(glob_match("*.conf", "vhostd.conf"));
        assert!(!glob_match("*.conf", ".vhostd.conf.candidate"));
        assert!(!glob_match("*", ".hidden"));
        assert!(glob_match("v?ostd.[a-c]onf", "vhostd.conf"));
        assert!(!glob_match("[!v]*", "vhostd.conf"));
        assert!(glob_match("*", "vhostd.conf"));
    }
}
