//! Pure: where nginx's files are — flags of the nginx command line, the candidate and test
//! files beside the live one, and the conf directory as the nginx container sees it.

use std::path::{Path, PathBuf};

/// The conf directory inside the container: under the mount whose source holds it (the
/// longest), else the same path (vhostd and nginx mount the volume at the same place).
pub fn container_dir(info: &bollard::models::ContainerInspectResponse, local: &Path) -> PathBuf {
    let mounts = info.mounts.iter().flatten();
    let best = mounts
        .filter_map(|m| Some((PathBuf::from(m.source.as_ref()?), m.destination.as_ref()?)))
        .filter(|(src, _)| local.starts_with(src))
        .max_by_key(|(src, _)| src.as_os_str().len());
    match best {
        Some((src, dest)) => Path::new(dest).join(local.strip_prefix(&src).unwrap_or(local)),
        None => local.to_path_buf(),
    }
}

/// The container's main config: its command's `-c`, else the stock `/etc/nginx/nginx.conf`.
pub fn container_main(info: &bollard::models::ContainerInspectResponse) -> PathBuf {
    let cfg = info.config.as_ref();
    let argv: Vec<String> = cfg
        .and_then(|c| c.entrypoint.clone())
        .into_iter()
        .flatten()
        .chain(cfg.and_then(|c| c.cmd.clone()).into_iter().flatten())
        .collect();
    match flag(&argv, "-c") {
        Some(c) if Path::new(&c).is_absolute() => PathBuf::from(c),
        Some(c) => Path::new("/etc/nginx").join(c),
        None => PathBuf::from("/etc/nginx/nginx.conf"),
    }
}

/// The value of an nginx flag (`-c X` or `-cX`).
pub fn flag(argv: &[String], name: &str) -> Option<String> {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        if a == name {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(name).filter(|v| !v.is_empty()) {
            return Some(v.to_string());
        }
    }
    None
}

/// `argv` with its `-c` replaced by (or extended with) `conf`.
pub fn with_conf(argv: &[String], conf: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len() + 2);
    let mut it = argv.iter();
    let mut replaced = false;
    while let Some(a) = it.next() {
        if out.is_empty() {
            out.push(a.clone());
        } else if a == "-c" {
            it.next();
            out.extend(["-c".to_string(), conf.to_string()]);
            replaced = true;
        } else if a.starts_with("-c") {
            out.extend(["-c".to_string(), conf.to_string()]);
            replaced = true;
        } else {
            out.push(a.clone());
        }
    }
    if !replaced {
        out.extend(["-c".to_string(), conf.to_string()]);
    }
    out
}

/// `.NAME.SUFFIX` beside `conf`: a dot file, which no nginx glob (`*.conf`, `*`) matches.
pub fn sibling(conf: &Path, suffix: &str) -> PathBuf {
    let name = conf.file_name().unwrap_or_default().to_string_lossy();
    conf.with_file_name(format!(".{name}.{suffix}"))
}

/// Where the candidate is written and validated.
pub fn candidate_path(conf: &Path) -> PathBuf {
    sibling(conf, "candidate")
}

/// A value nginx was built with (`--prefix=`, `--conf-path=`, `--pid-path=`), from `nginx -V`.
fn compiled(v: &str, key: &str) -> Option<String> {
    v.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .map(str::to_string)
}

/// `path` as nginx resolves it: relative paths are under the prefix (`-p`, else compiled in).
fn under_prefix(argv: &[String], v: &str, path: &str) -> PathBuf {
    if Path::new(path).is_absolute() {
        return PathBuf::from(path);
    }
    let prefix = flag(argv, "-p")
        .or_else(|| compiled(v, "--prefix="))
        .unwrap_or_default();
    Path::new(&prefix).join(path)
}

/// nginx's main config: `-c`, else the compiled-in path.
pub fn local_main(argv: &[String], v: &str) -> PathBuf {
    let conf = flag(argv, "-c")
        .or_else(|| compiled(v, "--conf-path="))
        .unwrap_or_else(|| "conf/nginx.conf".into());
    under_prefix(argv, v, &conf)
}

/// nginx's pid file: a `pid` in `-g` or at the top of the main config, else compiled in.
pub fn pid_file(argv: &[String], v: &str, main_text: &str) -> Option<PathBuf> {
    let top_pid = |text: &str| {
        crate::conflex::statements(text)
            .into_iter()
            .find(|s| s.depth == 0 && !s.opens && s.words.len() == 2 && s.words[0] == "pid")
            .map(|s| s.words[1].clone())
    };
    let pid = flag(argv, "-g")
        .and_then(|g| top_pid(&g))
        .or_else(|| top_pid(main_text))
        .or_else(|| compiled(v, "--pid-path="))?;
    Some(under_prefix(argv, v, &pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_from_flags_main_config_and_build() {
        let v = "nginx version: nginx/1.22.1 configure arguments: --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf --pid-path=/run/nginx.pid";
        assert_eq!(
            local_main(&v_(&["nginx"]), v),
            PathBuf::from("/etc/nginx/nginx.conf")
        );
        assert_eq!(
            local_main(&v_(&["nginx", "-p", "/srv", "-c", "n.conf"]), v),
            PathBuf::from("/srv/n.conf")
        );
        let argv = v_(&["nginx", "-p", "/srv"]);
        assert_eq!(
            pid_file(&argv, v, "pid logs/x.pid;\nhttp { }"),
            Some(PathBuf::from("/srv/logs/x.pid"))
        );
        assert_eq!(
            pid_file(&argv, v, "http { pid no; }"),
            Some(PathBuf::from("/run/nginx.pid"))
        );
        let g = v_(&["nginx", "-g", "pid /g.pid; daemon off;"]);
        assert_eq!(
            pid_file(&g, v, "pid /m.pid;"),
            Some(PathBuf::from("/g.pid"))
        );
    }

    fn v_(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_test_config_replaces_or_adds_dash_c() {
        let argv = v(&["nginx", "-p", "/srv", "-c", "/srv/nginx.conf", "-e", "x"]);
        assert_eq!(flag(&argv, "-c").as_deref(), Some("/srv/nginx.conf"));
        assert_eq!(
            with_conf(&argv, "/t.conf"),
            v(&["nginx", "-p", "/srv", "-c", "/t.conf", "-e", "x"])
        );
        assert_eq!(
            with_conf(&v(&["nginx", "-c/a"]), "/t"),
            v(&["nginx", "-c", "/t"])
        );
        assert_eq!(with_conf(&v(&["nginx"]), "/t"), v(&["nginx", "-c", "/t"]));
        assert_eq!(
            sibling(Path::new("/d/vhostd.conf"), "candidate"),
            PathBuf::from("/d/.vhostd.conf.candidate")
        );
    }
}
