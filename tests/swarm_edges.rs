//! Several Swarm nodes sharing certificates (issue #10): three dockerds in network namespaces
//! this test creates (10.202.0.1–3, scripts/testenv/swarm-edges.sh), joined into one Swarm (a and
//! b managers, c a worker); nginx in the namespaces of a and b, a vhostd for each (on its node's
//! engine, sharing the Swarm store); Pebble in the root namespace validates HTTP-01 at the node
//! that did NOT order (challtestsrv points the name there). One order per name, both nodes serve
//! HTTPS with the same certificate (curl inside each namespace); `kill -9` of the ordering vhostd
//! mid-order → exactly one more order, from the other node, after the lock expires.

mod support;
mod swarm_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::nginx::Nginx;
use support::pebble::{Pebble, PebbleOpts};
use support::vhostd::Vhostd;
use support::{free_port, repo, scratch, wait_for};
use swarm_support::ONE_SWARM;

const T: Duration = Duration::from_secs(90);
const LOCK_TIME: &str = "10s";
const HTTP: u16 = 8080;
const HTTPS: u16 = 8443;

/// The three namespaces and their dockerds; torn down on drop.
struct Edges {
    prefix: String,
    states: Vec<PathBuf>,
}

impl Edges {
    fn up() -> Edges {
        let prefix = format!("ve{}", std::process::id() % 100_000);
        let states = ["a", "b", "c"]
            .iter()
            .map(|n| PathBuf::from(format!("/tmp/{prefix}-{n}")))
            .collect();
        let e = Edges { prefix, states };
        let out = e.script("up");
        assert!(
            out.status.success(),
            "swarm-edges.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let init = e.docker(
            0,
            &[
                "swarm",
                "init",
                "--advertise-addr",
                "10.202.0.1",
                "--listen-addr",
                "10.202.0.1:2377",
            ],
        );
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        for (i, role) in [(1, "manager"), (2, "worker")] {
            let token = e.docker(0, &["swarm", "join-token", "-q", role]);
            let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
            let addr = format!("10.202.0.{}", i + 1);
            let join = e.docker(
                i,
                &[
                    "swarm",
                    "join",
                    "--token",
                    &token,
                    "--advertise-addr",
                    &addr,
                    "--listen-addr",
                    &format!("{addr}:2377"),
                    "10.202.0.1:2377",
                ],
            );
            assert!(
                join.status.success(),
                "{}",
                String::from_utf8_lossy(&join.stderr)
            );
        }
        e
    }

    fn script(&self, cmd: &str) -> Output {
        Command::new(repo().join("scripts/testenv/swarm-edges.sh"))
            .args([cmd, &self.prefix])
            .args(&self.states)
            .output()
            .unwrap()
    }

    fn host(&self, i: usize) -> String {
        format!("unix://{}/docker.sock", self.states[i].display())
    }

    fn ns(&self, i: usize) -> String {
        format!("{}-{}", self.prefix, ["a", "b", "c"][i])
    }

    fn docker(&self, i: usize, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", self.host(i))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Edges {
    fn drop(&mut self) {
        for i in [2, 1, 0] {
            let _ = self.docker(i, &["swarm", "leave", "--force"]);
        }
        let _ = self.script("down");
    }
}

/// One edge node: nginx in namespace `i`, vhostd on node `i`'s engine.
struct Edge {
    ip: String,
    ns: String,
    nginx: Nginx,
    vhostd: Vhostd,
}

fn edge(dir: &Path, edges: &Edges, i: usize, pebble: &Pebble, secret: &Path) -> Edge {
    std::fs::create_dir_all(dir).unwrap();
    let ns = edges.ns(i);
    let ip = format!("10.202.0.{}", i + 1);
    let nginx = Nginx::start_in(dir, Some(&ns), HTTP, HTTPS);
    let check = format!("{ip}:{HTTP}");
    let args = [
        "--acme-directory",
        &pebble.directory_url,
        "--acme-ca-bundle",
        pebble.listener_ca.to_str().unwrap(),
        "--swarm-secret-file",
        secret.to_str().unwrap(),
        "--swarm-lock-time",
        LOCK_TIME,
        "--self-check-addr",
        &check,
    ];
    let vhostd = Vhostd::start(dir, &edges.host(i), &nginx, &args);
    vhostd.wait_ready();
    Edge {
        ip,
        ns,
        nginx,
        vhostd,
    }
}

fn logged(v: &Vhostd, action: &str, domain: &str) -> bool {
    v.log_text().lines().any(|l| {
        l.contains(&format!("action=\"{action}\"")) && l.contains(&format!("domain={domain}"))
    })
}

/// curl inside the node's namespace; `https` trusts only Pebble's root. The body on success.
fn curl(e: &Edge, root: Option<&Path>, host: &str) -> Option<String> {
    let (scheme, port) = if root.is_some() {
        ("https", HTTPS)
    } else {
        ("http", HTTP)
    };
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{}", e.ns))
        .args(["curl", "-sf", "--max-time", "5", "--resolve"])
        .arg(format!("{host}:{port}:{}", e.ip));
    if let Some(r) = root {
        c.arg("--cacert").arg(r);
    }
    let out = c
        .arg(format!("{scheme}://{host}:{port}/"))
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A global host-network busybox httpd answering its name on every node.
fn web(edges: &Edges, name: &str, host: &str) {
    let port = free_port();
    let cmd =
        format!("mkdir -p /w && echo {name} > /w/index.html && exec httpd -f -p {port} -h /w");
    let out = edges.docker(
        0,
        &[
            "service",
            "create",
            "-d",
            "--init",
            "--mode",
            "global",
            "--name",
            name,
            "--network",
            "host",
            "--label",
            &format!("VIRTUAL_HOST={host}"),
            "--label",
            &format!("VIRTUAL_PORT={port}"),
            support::docker::IMAGE,
            "sh",
            "-c",
            &cmd,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Which edge takes the order lock for `host`, once one has.
fn orderer(nodes: &[&Edge; 2], host: &str) -> usize {
    wait_for(T, &format!("a node to take the lock for {host}"), || {
        (0..2).find(|&i| logged(&nodes[i].vhostd, "lock_taken", host))
    })
}

fn live_chain(e: &Edge, host: &str) -> Option<String> {
    std::fs::read_to_string(
        e.vhostd
            .certs_dir
            .join("live")
            .join(host)
            .join("fullchain.pem"),
    )
    .ok()
}

#[test]
fn three_nodes_one_order_per_name_every_edge_serves_and_a_dead_orderer_is_replaced() {
    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let edges = Edges::up();
    let dir = scratch("swarm_edges");
    let secret = dir.join("vhostd_store_key");
    std::fs::write(&secret, "a store secret shared by every edge node").unwrap();
    let pebble = Pebble::start(&dir, HTTP, PebbleOpts::default());
    let root = pebble.root_file();
    let a = edge(&dir.join("a"), &edges, 0, &pebble, &secret);
    let b = edge(&dir.join("b"), &edges, 1, &pebble, &secret);
    let nodes = [&a, &b];

    let host = "one.edges.test";
    let created = Instant::now();
    web(&edges, "edge-one", host);
    let first = orderer(&nodes, host);
    let other = 1 - first;
    pebble.add_a(host, &nodes[other].ip);
    for e in nodes {
        wait_for(T, "HTTP 200 on every node", || curl(e, None, host));
    }
    let http_every_node = created.elapsed();
    for e in nodes {
        wait_for(T, "HTTPS with Pebble's certificate on every node", || {
            curl(e, Some(&root), host)
        });
    }
    let cert_every_node = created.elapsed();
    assert_eq!(pebble.order_count(), 1, "exactly one order for {host}");
    assert!(logged(&nodes[other].vhostd, "token_from_store", host));
    assert!(!logged(&nodes[other].vhostd, "order_created", host));
    let access = std::fs::read_to_string(nodes[other].nginx.dir.join("access.log")).unwrap();
    assert!(
        access.contains("/.well-known/acme-challenge/") && access.contains("Pebble"),
        "{access}"
    );
    let chains = nodes.map(|e| live_chain(e, host));
    assert!(
        chains[0].is_some() && chains[0] == chains[1],
        "the same certificate on both nodes"
    );
    println!(
        "figures (3 nodes, 2 edges): orders for {host}: {}; service create -> HTTP 200 on every edge: {:.2?}; \
         -> HTTPS with the shared certificate on every edge: {:.2?}",
        pebble.order_count(),
        http_every_node,
        cert_every_node
    );

    // The orderer dies mid-order (its validation goes nowhere: the name points at no node yet).
    let host2 = "two.edges.test";
    pebble.add_a(host2, "10.202.0.99");
    web(&edges, "edge-two", host2);
    let dying = orderer(&nodes, host2);
    let survivor = 1 - dying;
    wait_for(T, "the orderer's token in the store", || {
        logged(&nodes[dying].vhostd, "token_shared", host2).then_some(())
    });
    let orders_before = pebble.order_count();
    let killed = Instant::now();
    nodes[dying].vhostd.kill9();
    wait_for(T, "the survivor waiting", || {
        logged(&nodes[survivor].vhostd, "lock_wait", host2).then_some(())
    });
    pebble.add_a(host2, &nodes[survivor].ip);
    wait_for(T, "HTTPS for the second name on the survivor", || {
        curl(nodes[survivor], Some(&root), host2)
    });
    let took_over = killed.elapsed();
    assert!(logged(&nodes[survivor].vhostd, "lock_expired", host2));
    assert_eq!(orders_before, 2);
    assert_eq!(
        pebble.order_count(),
        3,
        "exactly one more order, from the survivor"
    );
    println!(
        "figures: kill -9 of the orderer -> the other edge serves HTTPS: {took_over:.2?} (lock {LOCK_TIME})"
    );
}
