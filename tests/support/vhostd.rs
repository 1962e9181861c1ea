//! The real `vhostd` binary, started as a user would, with DESIGN.md's flags.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::nginx::Nginx;
use super::{docker, free_port, http_get, scratch, wait_for};

/// A running `vhostd run`.
pub struct Vhostd {
    child: Child,
    /// Admin port on 127.0.0.1.
    pub admin_port: u16,
    /// Its log file.
    pub log: PathBuf,
    /// Its certs dir.
    pub certs_dir: PathBuf,
    /// Its webroot.
    pub webroot: PathBuf,
}

/// The flags every test passes: Docker, nginx (local mode), files under `dir`.
pub fn base_args(dir: &Path, docker_host: &str, nginx: &Nginx, admin_port: u16) -> Vec<String> {
    [
        "--docker-host",
        docker_host,
        "--conf-file",
        &nginx.conf_file().display().to_string(),
        "--webroot",
        &dir.join("www").display().to_string(),
        "--certs-dir",
        &dir.join("certs").display().to_string(),
        "--nginx-cmd",
        &nginx.cmd(),
        "--http-port",
        &nginx.http_port.to_string(),
        "--https-port",
        &nginx.https_port.to_string(),
        "--admin-addr",
        &format!("127.0.0.1:{admin_port}"),
        // Far beyond any test: every change a test sees must come from following events.
        "--resync-interval",
        "1h",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The flags of container mode (nginx found by label on `docker_host`, config in `conf_d`),
/// with files under `dir`, nginx's ports and no ACME; `--admin-addr` is added by
/// [`Vhostd::start_with`].
pub fn container_args(
    dir: &Path,
    docker_host: &str,
    conf_d: &Path,
    http: u16,
    https: u16,
) -> Vec<String> {
    [
        "--docker-host",
        docker_host,
        "--conf-file",
        &conf_d.join("vhostd.conf").display().to_string(),
        "--webroot",
        &dir.join("www").display().to_string(),
        "--certs-dir",
        &dir.join("certs").display().to_string(),
        "--http-port",
        &http.to_string(),
        "--https-port",
        &https.to_string(),
        "--no-acme",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A scratch dir named `name`, a local nginx, and `vhostd run --no-acme EXTRA` on the shared
/// dockerd, ready (its first config is live).
pub fn setup(name: &str, extra: &[&str]) -> (PathBuf, Nginx, Vhostd) {
    let dir = scratch(name);
    let nginx = Nginx::start(&dir);
    let mut args = vec!["--no-acme"];
    args.extend_from_slice(extra);
    let v = Vhostd::start(&dir, &docker::shared().host, &nginx, &args);
    v.wait_ready();
    (dir, nginx, v)
}

/// `vhostd render` with the base flags of the daemon at `admin_port`, `--no-acme` and
/// `extra`: its stdout (it must succeed).
pub fn render(
    dir: &Path,
    docker_host: &str,
    nginx: &Nginx,
    admin_port: u16,
    extra: &[&str],
) -> Vec<u8> {
    let mut args = vec!["render".to_string()];
    args.extend(base_args(dir, docker_host, nginx, admin_port));
    args.push("--no-acme".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = Command::new(bin()).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The built binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vhostd")
}

impl Vhostd {
    /// Starts `vhostd run` with the base flags plus `extra`, logging to `dir/vhostd-PORT.log`.
    pub fn start(dir: &Path, docker_host: &str, nginx: &Nginx, extra: &[&str]) -> Vhostd {
        let admin_port = free_port();
        let mut args = base_args(dir, docker_host, nginx, admin_port);
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::start_args(dir, admin_port, args)
    }

    /// Starts `vhostd run ARGS` (the caller passes every flag but `--admin-addr`).
    pub fn start_with(dir: &Path, args: &[String]) -> Vhostd {
        let admin_port = free_port();
        let mut args = args.to_vec();
        args.extend([
            "--admin-addr".to_string(),
            format!("127.0.0.1:{admin_port}"),
        ]);
        Self::start_args(dir, admin_port, args)
    }

    fn start_args(dir: &Path, admin_port: u16, flags: Vec<String>) -> Vhostd {
        let mut args = vec!["run".to_string()];
        args.extend(flags);
        let log = dir.join(format!("vhostd-{admin_port}.log"));
        let child = Command::new(bin())
            .args(&args)
            .env("VHOSTD_LOG", "vhostd=debug,info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .expect("start vhostd");
        Vhostd {
            child,
            admin_port,
            log,
            certs_dir: dir.join("certs"),
            webroot: dir.join("www"),
        }
    }

    /// Waits until `/readyz` answers 200 (the first config is live).
    pub fn wait_ready(&self) {
        wait_for(Duration::from_secs(30), "vhostd /readyz", || {
            (http_get(self.admin_port, "127.0.0.1", "/readyz").status == 200).then_some(())
        });
    }

    /// `/status` as JSON.
    pub fn status(&self) -> serde_json::Value {
        let a = http_get(self.admin_port, "127.0.0.1", "/status");
        serde_json::from_str(&a.body).unwrap_or(serde_json::Value::Null)
    }

    /// The daemon's process id (to kill it the hard way in crash tests).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the daemon with SIGKILL (a crash: nothing is cleaned up); it is reaped on drop.
    pub fn kill9(&self) {
        let st = std::process::Command::new("kill")
            .args(["-9", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(st.success(), "kill -9 {}", self.pid());
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the daemon with SIGTERM and waits for it.
    pub fn stop(mut self) {
        super::stop_pid(self.child.id());
        let _ = self.child.wait();
    }
}

impl Drop for Vhostd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
