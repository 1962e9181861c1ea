//! Helpers of the Swarm test binaries (`tests/swarm.rs`, `tests/swarm_nodes.rs`): a private
//! dockerd made a single-node Swarm, two dockerds in network namespaces joined into one Swarm,
//! and waits on what nginx answers. Only one Swarm runs at a time (gossip port 7946).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use crate::support::docker::{Engine, IMAGE};
use crate::support::nginx::Nginx;
use crate::support::vhostd::Vhostd;
use crate::support::{self, free_port, http_get, wait_for};

/// Deadline of every wait.
pub const T: Duration = Duration::from_secs(30);

/// Only one Swarm at a time in this network namespace.
pub static ONE_SWARM: Mutex<()> = Mutex::new(());

/// A private dockerd; `init` makes it a single-node Swarm manager. Leaves the Swarm on drop
/// (before the engine itself is stopped and purged).
pub struct Node {
    /// The engine.
    pub engine: Engine,
}

impl Node {
    /// A private dockerd named `name` (not yet in a Swarm).
    pub fn new(name: &str) -> Node {
        Node {
            engine: Engine::private(name),
        }
    }

    /// `swarm init` on 127.0.0.1.
    pub fn init(&self) {
        remove_stale_vxlans();
        let listen = format!("127.0.0.1:{}", free_port());
        self.engine.ok(&[
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--listen-addr",
            &listen,
        ]);
    }

    /// `swarm leave --force`.
    pub fn leave(&self) {
        self.engine.ok(&["swarm", "leave", "--force"]);
    }

    /// `docker service create` of a busybox httpd answering its own name on 127.0.0.1:`port`
    /// (host network), with `args` (labels, env) before the image.
    pub fn web(&self, name: &str, port: u16, args: &[&str]) {
        let mut all = vec![
            "service",
            "create",
            "-d",
            "--init",
            "--name",
            name,
            "--network",
            "host",
        ];
        all.extend_from_slice(args);
        let cmd = format!(
            "mkdir -p /w && echo {name} > /w/index.html && exec httpd -f -p 127.0.0.1:{port} -h /w"
        );
        all.extend_from_slice(&[IMAGE, "sh", "-c", &cmd]);
        self.engine.ok(&all);
    }
}

/// Deletes vxlan links an engine of an earlier run left in this network namespace when it died
/// mid-setup. A live engine moves its vxlan into the overlay's own namespace at once, so one left
/// here is stale — and it makes every overlay task fail ("error creating vxlan interface: file
/// exists"). Only one Swarm runs at a time here ([`ONE_SWARM`], and the suite's lock).
fn remove_stale_vxlans() {
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show", "type", "vxlan"])
        .output()
        .expect("ip (iproute2) runs");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split(": ").nth(1).filter(|n| n.starts_with("vx-")) else {
            continue;
        };
        eprintln!("removing stale vxlan link {name} left by an earlier engine");
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", name])
            .status();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.engine.docker(&["swarm", "leave", "--force"]);
    }
}

/// nginx and `vhostd run` (no ACME) against `node`, ready.
pub fn daemon(dir: &std::path::Path, node: &Node, extra: &[&str]) -> (Nginx, Vhostd) {
    let ngx = Nginx::start(dir);
    let mut args = vec!["--no-acme"];
    args.extend_from_slice(extra);
    let v = Vhostd::start(dir, &node.engine.host, &ngx, &args);
    v.wait_ready();
    (ngx, v)
}

/// Bodies answered for `host` until every one of `want` was seen.
pub fn wait_all_bodies(port: u16, host: &str, want: &[&str]) {
    let mut seen = BTreeSet::new();
    wait_for(
        T,
        &format!("{host} to be served by each of {want:?}"),
        || {
            let a = http_get(port, host, "/");
            if a.status == 200 {
                seen.insert(a.body.trim().to_string());
            }
            want.iter().all(|w| seen.contains(*w)).then_some(())
        },
    );
}

/// Waits until 20 requests in a row for `host` are answered by `only`.
pub fn wait_only_body(port: u16, host: &str, only: &str) {
    let mut streak = 0;
    wait_for(T, &format!("{host} to be served by {only} only"), || {
        let a = http_get(port, host, "/");
        streak = if a.status == 200 && a.body.trim() == only {
            streak + 1
        } else {
            0
        };
        (streak >= 20).then_some(())
    });
}

/// The tasks' addresses on `net` of service `svc`, from `docker inspect` of its task containers.
pub fn task_ips(e: &Engine, svc: &str, net: &str) -> BTreeSet<String> {
    let ids = e.ok(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={svc}"),
    ]);
    ids.lines()
        .map(|id| {
            e.ok(&[
                "inspect",
                "-f",
                &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
                id,
            ])
        })
        .collect()
}

/// A self-signed certificate and its key, as PEM (stands in for an issued one).
pub fn bundle(name: &str) -> vhostd::swarm::store::Bundle {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    vhostd::swarm::store::Bundle {
        fullchain: ck.cert.pem(),
        privkey: ck.signing_key.serialize_pem(),
    }
}

/// Two dockerds in network namespaces this test creates (10.201.0.1 and .2 exist only there),
/// joined into one Swarm: `a` the manager, `b` a worker. Removed on drop.
pub struct TwoNodes {
    prefix: String,
    /// The manager's state directory.
    pub a: std::path::PathBuf,
    /// The worker's state directory.
    pub b: std::path::PathBuf,
}

impl TwoNodes {
    /// Creates the namespaces, starts both dockerds, makes the Swarm.
    pub fn up() -> TwoNodes {
        let prefix = format!("vh{}", std::process::id() % 100_000);
        let n = TwoNodes {
            a: format!("/tmp/{prefix}-a").into(),
            b: format!("/tmp/{prefix}-b").into(),
            prefix,
        };
        let out = n.script("up");
        assert!(
            out.status.success(),
            "swarm-nodes.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let manager = n.docker(
            &n.a,
            &[
                "swarm",
                "init",
                "--advertise-addr",
                "10.201.0.1",
                "--listen-addr",
                "10.201.0.1:2377",
            ],
        );
        assert!(
            manager.status.success(),
            "{}",
            String::from_utf8_lossy(&manager.stderr)
        );
        let token = n.docker(&n.a, &["swarm", "join-token", "-q", "worker"]);
        let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
        let join = n.docker(
            &n.b,
            &[
                "swarm",
                "join",
                "--token",
                &token,
                "--advertise-addr",
                "10.201.0.2",
                "--listen-addr",
                "10.201.0.2:2377",
                "10.201.0.1:2377",
            ],
        );
        assert!(
            join.status.success(),
            "{}",
            String::from_utf8_lossy(&join.stderr)
        );
        n
    }

    fn script(&self, cmd: &str) -> std::process::Output {
        std::process::Command::new(support::repo().join("scripts/testenv/swarm-nodes.sh"))
            .args([cmd, &self.prefix])
            .arg(&self.a)
            .arg(&self.b)
            .output()
            .unwrap()
    }

    /// The Docker host of a node's state directory.
    pub fn host(state: &std::path::Path) -> String {
        format!("unix://{}/docker.sock", state.display())
    }

    /// The docker CLI against one node.
    pub fn docker(&self, state: &std::path::Path, args: &[&str]) -> std::process::Output {
        std::process::Command::new("docker")
            .env("DOCKER_HOST", Self::host(state))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for TwoNodes {
    fn drop(&mut self) {
        let _ = self.docker(&self.b, &["swarm", "leave", "--force"]);
        let _ = self.docker(&self.a, &["swarm", "leave", "--force"]);
        let _ = self.script("down");
    }
}
