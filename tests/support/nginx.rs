//! A real nginx per test: its own prefix, pid file, ports and conf.d, started and stopped by PID.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{free_port, running, stop_pid, wait_for};

/// A running nginx.
pub struct Nginx {
    /// Its prefix directory (config, logs, temp files).
    pub dir: PathBuf,
    /// HTTP port.
    pub http_port: u16,
    /// HTTPS port.
    pub https_port: u16,
    /// The network namespace it runs in (multi-node tests), else the test's own.
    pub netns: Option<String>,
}

impl Nginx {
    /// Starts nginx in `dir/nginx`, including `dir/nginx/conf.d/*.conf`.
    pub fn start(dir: &Path) -> Nginx {
        Self::start_in(dir, None, free_port(), free_port())
    }

    /// Starts nginx in `dir/nginx` inside network namespace `netns` (`/run/netns/NAME`) on the
    /// given ports (each namespace has its own ports).
    pub fn start_in(dir: &Path, netns: Option<&str>, http_port: u16, https_port: u16) -> Nginx {
        let n = dir.join("nginx");
        std::fs::create_dir_all(n.join("conf.d")).unwrap();
        std::fs::create_dir_all(n.join("tmp")).unwrap();
        let conf = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\nevents {{ worker_connections 256; }}\n\
             http {{\n  include /etc/nginx/mime.types;\n  access_log {d}/access.log;\n  client_body_temp_path {d}/tmp/body;\n  \
             proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  \
             scgi_temp_path {d}/tmp/scgi;\n  include {d}/conf.d/*.conf;\n}}\n",
            d = n.display()
        );
        std::fs::write(n.join("nginx.conf"), conf).unwrap();
        let ngx = Nginx {
            dir: n,
            http_port,
            https_port,
            netns: netns.map(str::to_string),
        };
        let argv = ngx.argv();
        let st = Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .expect("nginx is installed (scripts/test installs it)");
        assert!(
            st.success(),
            "nginx failed to start; see {}/error.log",
            ngx.dir.display()
        );
        let master = wait_for(Duration::from_secs(10), "nginx pid file", || ngx.pid());
        // nginx installs its SIGHUP handler before writing the pid file but only blocks signals
        // (so that a reload is acted on) just before forking workers: a `-s reload` sent in
        // between is swallowed until some other signal arrives. Once a worker exists, reloads work.
        wait_for(Duration::from_secs(10), "nginx worker process", || {
            has_child(master).then_some(())
        });
        ngx
    }

    /// nginx's worker processes now (old ones still finishing after a reload included).
    pub fn workers(&self) -> std::collections::BTreeSet<u32> {
        self.pid().map(children).unwrap_or_default()
    }

    /// Waits until only workers started after `before` was taken remain, and at least one:
    /// every connection from then on is served by a configuration loaded after `before`
    /// (after a SIGHUP, the old workers accept connections until they are told to quit).
    pub fn wait_workers_replaced(&self, before: &std::collections::BTreeSet<u32>) {
        wait_for(
            Duration::from_secs(20),
            "nginx's old workers to exit",
            || {
                let now = self.workers();
                (!now.is_empty() && now.is_disjoint(before)).then_some(())
            },
        );
    }

    /// `-e -p -c` arguments for this instance.
    pub fn args(&self) -> Vec<String> {
        let d = self.dir.display();
        vec![
            "-e".into(),
            format!("{d}/error.log"),
            "-p".into(),
            format!("{d}"),
            "-c".into(),
            format!("{d}/nginx.conf"),
        ]
    }

    /// The `--nginx-cmd` value for vhostd.
    pub fn cmd(&self) -> String {
        self.argv().join(" ")
    }

    /// The whole command line (under `nsenter --net` when in a namespace).
    fn argv(&self) -> Vec<String> {
        let mut v = match &self.netns {
            Some(ns) => vec!["nsenter".into(), format!("--net=/run/netns/{ns}")],
            None => vec![],
        };
        v.push("nginx".into());
        v.extend(self.args());
        v
    }

    /// vhostd's config file inside conf.d.
    pub fn conf_file(&self) -> PathBuf {
        self.dir.join("conf.d/vhostd.conf")
    }

    /// The master's pid, once running.
    pub fn pid(&self) -> Option<u32> {
        let p: u32 = std::fs::read_to_string(self.dir.join("nginx.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        running(p).then_some(p)
    }
}

/// True when some live process has `pid` as its parent.
fn has_child(pid: u32) -> bool {
    !children(pid).is_empty()
}

/// Live (non-zombie) child processes of `pid`.
fn children(pid: u32) -> std::collections::BTreeSet<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Default::default();
    };
    dir.flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
            let (head, rest) = stat.rsplit_once(')')?;
            let mut f = rest.split_whitespace();
            let (state, ppid) = (f.next()?, f.next()?.parse::<u32>().ok()?);
            (ppid == pid && state != "Z").then(|| head.split_whitespace().next()?.parse().ok())?
        })
        .collect()
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(p) = self.pid() {
            stop_pid(p);
        }
    }
}

/// The installed nginx's version (`nginx -v`), which the tests render for.
pub fn version() -> vhostd::nginx_version::NginxVersion {
    let out = Command::new("nginx")
        .arg("-v")
        .output()
        .expect("nginx is installed (scripts/test installs it)");
    vhostd::nginx_version::NginxVersion::parse(&String::from_utf8_lossy(&out.stderr))
        .expect("nginx -v prints nginx/X.Y.Z")
}

/// `nginx -t` of `conf` (a vhostd.conf) inside a minimal main config under `dir`; nginx's
/// message when it refuses.
pub fn check(dir: &Path, conf: &str) -> Result<(), String> {
    let p = dir.join("nginx-t");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("vhostd.conf"), conf).unwrap();
    std::fs::write(
        p.join("nginx.conf"),
        format!("pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n client_body_temp_path {d}/b;\n proxy_temp_path {d}/p;\n fastcgi_temp_path {d}/f;\n uwsgi_temp_path {d}/u;\n scgi_temp_path {d}/s;\n include {d}/vhostd.conf;\n}}\n", d = p.display()),
    )
    .unwrap();
    let out = Command::new("nginx")
        .args(["-t", "-q", "-e"])
        .arg(p.join("error.log"))
        .arg("-p")
        .arg(&p)
        .arg("-c")
        .arg(p.join("nginx.conf"))
        .output()
        .expect("nginx is installed (scripts/test installs it)");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
