//! A real Docker engine for tests: started (and the packages installed) by the project's
//! `scripts/testenv/up.sh --docker-only`, with its own socket, data-root and exec-root.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use super::{repo, running, stop_pid, wait_for};

/// The image every test container uses (busybox, imported locally: nothing is pulled).
pub const IMAGE: &str = "local/busybox:latest";

/// A private dockerd.
pub struct Engine {
    /// Its testenv state directory.
    pub state: PathBuf,
    /// `unix://…/docker.sock`.
    pub host: String,
    /// Stop it (and its containers) on drop: false for the shared engine.
    owned: bool,
}

/// The engine shared by every test of this run (`$TESTENV_STATE`, else a per-checkout dir in /tmp).
pub fn shared() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let state = std::env::var_os("TESTENV_STATE")
            .map(PathBuf::from)
            .unwrap_or_else(|| short_state("shared"));
        Engine::up(state, false)
    })
}

/// A short state path: unix socket paths under the exec-root must stay under 108 bytes.
fn short_state(name: &str) -> PathBuf {
    let tag = repo()
        .display()
        .to_string()
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    PathBuf::from(format!("/tmp/vhostd-test-{tag:08x}-{name}"))
}

impl Engine {
    /// A private engine for one test (for stopping and restarting dockerd); removed on drop.
    pub fn private(name: &str) -> Engine {
        Engine::up(short_state(name), true)
    }

    /// A private engine that also listens on `tcp://127.0.0.1:PORT`; `host` is the TCP one.
    pub fn private_tcp(name: &str) -> Engine {
        let port = super::free_port();
        let mut e = Engine::up_with(short_state(name), true, Some(port));
        e.host = format!("tcp://127.0.0.1:{port}");
        e
    }

    fn up(state: PathBuf, owned: bool) -> Engine {
        Engine::up_with(state, owned, None)
    }

    fn up_with(state: PathBuf, owned: bool, tcp_port: Option<u16>) -> Engine {
        let mut cmd = Command::new(repo().join("scripts/testenv/up.sh"));
        if let Some(p) = tcp_port {
            cmd.env("DOCKER_TCP_PORT", p.to_string());
        }
        let out = cmd
            .arg("--docker-only")
            .arg(&state)
            .output()
            .expect("run scripts/testenv/up.sh");
        assert!(
            out.status.success(),
            "scripts/testenv/up.sh --docker-only {} failed:\n{}",
            state.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let host = format!("unix://{}/docker.sock", state.display());
        Engine { state, host, owned }
    }

    /// Runs the docker CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(args)
            .output()
            .expect("docker CLI")
    }

    /// Runs the docker CLI and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Imports `local/nginx:host` (this machine's nginx binary, see scripts/testenv/nginx-image.sh).
    pub fn nginx_image(&self) -> &'static str {
        let out = Command::new(repo().join("scripts/testenv/nginx-image.sh"))
            .arg(&self.state)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nginx-image.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        "local/nginx:host"
    }

    /// Starts a container from `args` (after `docker run -d --name NAME`); removed when the guard drops.
    pub fn run(&self, name: &str, args: &[&str]) -> Container<'_> {
        let _ = self.docker(&["rm", "-f", name]);
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(args);
        self.ok(&all);
        Container {
            engine: self,
            name: name.into(),
        }
    }

    /// dockerd's pid.
    pub fn daemon_pid(&self) -> Option<u32> {
        let p: u32 = std::fs::read_to_string(self.state.join("run/dockerd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        running(p).then_some(p)
    }

    /// Stops dockerd (by its pid file) and waits until it is gone.
    pub fn stop_daemon(&self) {
        let pid = self.daemon_pid().expect("dockerd is running");
        stop_pid(pid);
        wait_for(Duration::from_secs(30), "dockerd to exit", || {
            (!running(pid)).then_some(())
        });
    }

    /// Starts dockerd again on the same state (up.sh is idempotent).
    pub fn restart_daemon(&self) {
        let out = Command::new(repo().join("scripts/testenv/up.sh"))
            .arg("--docker-only")
            .arg(&self.state)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "restarting dockerd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts a busybox httpd on 127.0.0.1:`port` (host network) that answers its own name,
    /// with `labels`. Removed when the guard drops.
    pub fn web(&self, name: &str, port: u16, labels: &[(&str, &str)]) -> Container<'_> {
        self.web_with(name, port, labels, &[])
    }

    /// A web container answering for `host` (VIRTUAL_HOST + VIRTUAL_PORT) on a fresh port.
    pub fn site(&self, name: &str, host: &str) -> Container<'_> {
        let port = super::free_port();
        self.web(
            name,
            port,
            &[("VIRTUAL_HOST", host), ("VIRTUAL_PORT", &port.to_string())],
        )
    }

    /// Like [`Engine::web`] with extra `docker run` arguments.
    pub fn web_with(
        &self,
        name: &str,
        port: u16,
        labels: &[(&str, &str)],
        extra: &[&str],
    ) -> Container<'_> {
        let _ = self.docker(&["rm", "-f", name]);
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--init".into(),
            "--name".into(),
            name.into(),
            "--network".into(),
            "host".into(),
        ];
        for (k, v) in labels {
            args.push("-l".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(IMAGE.into());
        args.extend(["sh".into(), "-c".into(), format!("mkdir -p /w/sub && echo {name} > /w/index.html && echo {name}-sub > /w/sub/index.html && exec httpd -f -p 127.0.0.1:{port} -h /w")]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&refs);
        Container {
            engine: self,
            name: name.into(),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(repo().join("scripts/testenv/down.sh"))
                .arg("--purge")
                .arg(&self.state)
                .output();
        }
    }
}

/// A test container, removed on drop.
pub struct Container<'a> {
    engine: &'a Engine,
    /// Its name.
    pub name: String,
}

impl Container<'_> {
    /// `docker stop -t 1`.
    pub fn stop(&self) {
        self.engine.ok(&["stop", "-t", "1", &self.name]);
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.engine.docker(&["rm", "-f", &self.name]);
    }
}
