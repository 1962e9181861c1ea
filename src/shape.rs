//! The *shape* of a rendered config, to skip a second `nginx -t` parse when a candidate
//! differs from one nginx already accepted only in values nginx's grammar treats alike.
//!
//! A config is cut into top-level items (a directive, or a block with all it holds). In each
//! item, comments and layout are dropped, and three kinds of values become numbered
//! placeholders: literal `IP:port` upstream addresses (`server` in an `upstream` block), the
//! names of the config's own `upstream` blocks (at their definition and in `*_pass`), and DNS
//! names that are some `server_name`'s value (only in `server_name`, `root`, `alias`,
//! `ssl_certificate*` and `include`). A candidate is *allowed* without `nginx -t` when:
//! - it has exactly the set of item shapes of the reference (the last config `nginx -t`
//!   accepted), and a shape it repeats was repeated there too (so every pair of items that can
//!   meet was checked together: duplicate `default_server`, `listen` options, locations);
//! - its upstream names are unique (a masked `*_pass` target is then a defined upstream, never a
//!   name resolved at load), and no name is longer than the reference's longest (hash buckets);
//! - every file it names (`ssl_certificate`, `include`, any absolute path that is a file) was
//!   named by the reference and is unchanged on disk since (device, inode, size, mtime).
//!
//! nginx's verdict depends on its binary, its main config, the text and the files the text
//! loads. With those fixed, swapping one valid address for another, or one valid DNS name for
//! another in those positions, cannot turn an accepted config into a rejected one.
//!
//! The comparison is pure given the file stamps; [`Shape::of`] and [`stamp`] look at the
//! filesystem (blocking: the caller runs them off the async workers).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::conflex::{self, Statement};

/// Directives in which a server name is a value like any other.
const HOST_DIRECTIVES: &[&str] = &[
    "server_name",
    "root",
    "alias",
    "ssl_certificate",
    "ssl_certificate_key",
    "include",
];

/// Directives that take an upstream name after `scheme://`.
const PASS_DIRECTIVES: &[&str] = &[
    "proxy_pass",
    "grpc_pass",
    "uwsgi_pass",
    "scgi_pass",
    "fastcgi_pass",
];

/// Directives that load a file when nginx reads the config.
const FILE_DIRECTIVES: &[&str] = &[
    "include",
    "ssl_certificate",
    "ssl_certificate_key",
    "ssl_trusted_certificate",
    "ssl_client_certificate",
    "ssl_dhparam",
    "ssl_crl",
    "ssl_password_file",
    "ssl_session_ticket_key",
    "ssl_stapling_file",
];

/// The shape of one config text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Item shapes and how often each occurs.
    items: BTreeMap<String, usize>,
    /// The longest masked server name.
    longest_name: usize,
    /// Files the text names.
    files: BTreeSet<PathBuf>,
    /// False when something makes the shape unusable (a file named through a variable, a
    /// relative or glob include, duplicate upstream names).
    usable: bool,
}

/// A file's identity and version, to tell that it did not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

/// The stamp of `path` now (None when it can't be read).
pub fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

/// A config nginx accepted, with the stamps of the files it loaded then.
#[derive(Debug, Clone)]
pub struct Reference {
    shape: Shape,
    stamps: BTreeMap<PathBuf, Option<Stamp>>,
}

impl Reference {
    /// Remembers `shape` as accepted now; `context` adds files nginx read with it (main config).
    pub fn new(shape: Shape, context: &[PathBuf], stamp: impl Fn(&Path) -> Option<Stamp>) -> Self {
        let stamps = shape
            .files
            .iter()
            .chain(context)
            .map(|f| (f.clone(), stamp(f)))
            .collect();
        Reference { shape, stamps }
    }

    /// Whether `c` may go live without `nginx -t` (see the module doc for why this is safe).
    pub fn allows(&self, c: &Shape, stamp: impl Fn(&Path) -> Option<Stamp>) -> bool {
        let r = &self.shape;
        r.usable
            && c.usable
            && c.items.len() == r.items.len()
            && c.items
                .iter()
                .all(|(k, n)| r.items.get(k).is_some_and(|rn| *n == 1 || *rn >= 2))
            && c.longest_name <= r.longest_name
            && c.files.iter().all(|f| self.stamps.contains_key(f))
            && self
                .stamps
                .iter()
                .all(|(f, s)| s.is_some() && stamp(f) == *s)
    }
}

impl Shape {
    /// The shape of `text`. Blocking: it asks the filesystem whether each absolute path
    /// argument is a file (call it off the async workers).
    pub fn of(text: &str) -> Shape {
        let sts = conflex::statements(text);
        let mut shape = Shape {
            usable: true,
            ..Shape::default()
        };
        let mut upstreams = BTreeSet::new();
        let mut hosts = BTreeSet::new();
        for st in &sts {
            match (st.words.first().map(String::as_str), st.words.get(1)) {
                (Some("upstream"), Some(name)) if st.opens => {
                    shape.usable &= is_token(name) && upstreams.insert(name.clone());
                }
                (Some("server_name"), _) => {
                    for n in st.words[1..].iter().filter(|n| is_dns_name(n)) {
                        shape.longest_name = shape.longest_name.max(n.len());
                        hosts.insert(n.clone());
                    }
                }
                _ => {}
            }
        }
        let mut item = Item::default();
        let mut in_upstream = false;
        for st in &sts {
            if st.depth == 0 {
                item.finish(&mut shape);
                in_upstream = st.opens && st.words.first().is_some_and(|w| w == "upstream");
            }
            item.push(st, in_upstream, &upstreams, &hosts);
            shape.note_files(st);
        }
        item.finish(&mut shape);
        shape
    }

    fn note_files(&mut self, st: &Statement) {
        let Some(directive) = st.words.first() else {
            return;
        };
        for arg in &st.words[1..] {
            let named = FILE_DIRECTIVES.contains(&directive.as_str());
            if named && (arg.contains(['$', '*', '?', '[']) || !arg.starts_with('/')) {
                self.usable = false;
            } else if named || (arg.starts_with('/') && Path::new(arg).is_file()) {
                self.files.insert(PathBuf::from(arg));
            }
        }
    }
}

/// How a block head ends in an item's text.
const OPENS: char = '{';
/// How a simple directive ends in an item's text.
const ENDS: char = ';';

/// One top-level item being built: its normalized text and placeholder numbering.
#[derive(Default)]
struct Item {
    text: String,
    names: BTreeMap<String, usize>,
}

impl Item {
    /// Adds one statement: its depth, its words (arguments masked) and how it ends.
    fn push(
        &mut self,
        st: &Statement,
        in_upstream: bool,
        upstreams: &BTreeSet<String>,
        hosts: &BTreeSet<String>,
    ) {
        self.text.push_str(&format!("{}|", st.depth));
        for (i, w) in st.words.iter().enumerate() {
            let masked = if i == 0 {
                w.clone()
            } else {
                self.mask(st, i, in_upstream, upstreams, hosts)
            };
            self.text.push_str(&masked);
            self.text.push('\u{1f}');
        }
        self.text.push(if st.opens { OPENS } else { ENDS });
        self.text.push('\n');
    }

    /// Argument `i` of `st` as the shape sees it: a placeholder for a literal upstream
    /// address, one of the config's upstream names, or one of its server names.
    fn mask(
        &mut self,
        st: &Statement,
        i: usize,
        in_upstream: bool,
        upstreams: &BTreeSet<String>,
        hosts: &BTreeSet<String>,
    ) -> String {
        let directive = st.words[0].as_str();
        let w = &st.words[i];
        if directive == "server" && in_upstream && i == 1 && is_ip_port(w) {
            "«A»".into()
        } else if directive == "upstream" && st.opens && upstreams.contains(w) {
            self.name(w)
        } else if PASS_DIRECTIVES.contains(&directive) {
            self.mask_pass(w, upstreams)
        } else if HOST_DIRECTIVES.contains(&directive) {
            self.mask_hosts(w, hosts)
        } else {
            w.clone()
        }
    }

    fn name(&mut self, w: &str) -> String {
        let next = self.names.len();
        format!("«{}»", *self.names.entry(w.to_string()).or_insert(next))
    }

    fn mask_pass(&mut self, w: &str, upstreams: &BTreeSet<String>) -> String {
        let Some((scheme, rest)) = w.split_once("://") else {
            return w.to_string();
        };
        let end = rest.find(['/', ':']).unwrap_or(rest.len());
        if upstreams.contains(&rest[..end]) {
            format!("{scheme}://{}{}", self.name(&rest[..end]), &rest[end..])
        } else {
            w.to_string()
        }
    }

    /// Replaces every run of name characters that is one of `hosts`.
    fn mask_hosts(&mut self, w: &str, hosts: &BTreeSet<String>) -> String {
        let mut out = String::new();
        let mut run = String::new();
        for c in w.chars().chain(std::iter::once('\0')) {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                run.push(c);
                continue;
            }
            if hosts.contains(&run) {
                out.push_str(&self.name(&run));
            } else {
                out.push_str(&run);
            }
            run.clear();
            if c != '\0' {
                out.push(c);
            }
        }
        out
    }

    fn finish(&mut self, shape: &mut Shape) {
        if !self.text.is_empty() {
            *shape
                .items
                .entry(std::mem::take(&mut self.text))
                .or_default() += 1;
        }
        self.names.clear();
    }
}

/// A literal `IPv4:port` or `[IPv6]:port` with a port above 0.
fn is_ip_port(w: &str) -> bool {
    w.parse::<SocketAddr>().is_ok_and(|a| a.port() != 0)
}

/// An upstream name nginx reads as one plain word.
fn is_token(w: &str) -> bool {
    !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

/// A lowercase DNS name of LDH labels (no wildcard, no underscore), at most 253 bytes.
fn is_dns_name(w: &str) -> bool {
    w.len() <= 253
        && w.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests;
