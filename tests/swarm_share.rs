//! Two edge nodes sharing certificates through the Swarm store (issue #10, items 2–3), on a
//! single-node Swarm: two `vhostd` + two nginx processes against one manager, a real Pebble
//! whose HTTP-01 validation reaches the node that did NOT order (through a relay on loopback
//! that this test points at that node's nginx). One order per name; both nodes serve the same
//! certificate; killing the ordering vhostd mid-order (kill -9) leads to exactly one more order,
//! from the other node, once the lock expires.

mod support;
mod swarm_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::nginx::Nginx;
use support::pebble::{Pebble, PebbleOpts};
use support::vhostd::Vhostd;
use support::{free_port, http_get, scratch, wait_for};
use swarm_support::{Node, ONE_SWARM};

/// Deadline of every wait (a lock expiry plus an order fit well inside).
const T: Duration = Duration::from_secs(60);
/// The order lock's lifetime in this test.
const LOCK_TIME: &str = "10s";

/// Where Pebble's HTTP-01 connections go: `None` holds them, `Some(port)` relays to that nginx.
type Target = Arc<Mutex<Option<u16>>>;

/// A TCP relay on 127.0.0.1 (Pebble's `httpPort`) to the nginx the test chooses.
fn relay(target: Target) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let target = target.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let port = loop {
                    if let Some(p) = *target.lock().unwrap() {
                        break p;
                    }
                    if start.elapsed() > Duration::from_secs(20) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                };
                let Ok(up) = TcpStream::connect(("127.0.0.1", port)) else {
                    return;
                };
                let (mut c2, mut u2) = (conn.try_clone().unwrap(), up.try_clone().unwrap());
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut u2);
                    let _ = u2.shutdown(std::net::Shutdown::Write);
                });
                let (mut c, mut u) = (conn, up);
                let _ = std::io::copy(&mut u, &mut c);
                let _ = c.flush();
                let _ = t.join();
                let _ = c.read(&mut [0u8; 0]);
            });
        }
    });
    port
}

/// One edge node: its nginx and vhostd, files under `dir`.
struct Edge {
    nginx: Nginx,
    vhostd: Vhostd,
}

fn edge(dir: &Path, node: &Node, pebble: &Pebble, secret: &Path) -> Edge {
    std::fs::create_dir_all(dir).unwrap();
    let nginx = Nginx::start(dir);
    let args = [
        "--acme-directory",
        &pebble.directory_url,
        "--acme-ca-bundle",
        pebble.listener_ca.to_str().unwrap(),
        "--swarm-secret-file",
        secret.to_str().unwrap(),
        "--swarm-lock-time",
        LOCK_TIME,
    ];
    let vhostd = Vhostd::start(dir, &node.engine.host, &nginx, &args);
    vhostd.wait_ready();
    Edge { nginx, vhostd }
}

/// True when `v`'s log has a line with `action` about `domain`.
fn logged(v: &Vhostd, action: &str, domain: &str) -> bool {
    v.log_text().lines().any(|l| {
        l.contains(&format!("action=\"{action}\"")) && l.contains(&format!("domain={domain}"))
    })
}

/// `curl https://HOST/` through `e`'s nginx, trusting only Pebble's root; the served body.
fn https(e: &Edge, pebble: &Pebble, host: &str) -> Option<String> {
    let port = e.nginx.https_port;
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", "--resolve"])
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(pebble.root_file())
        .arg(format!("https://{host}:{port}/"))
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The fullchain a node has installed for `host`.
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

/// Which of the two nodes took the order lock for `host` (index), once one has.
fn orderer(edges: &[&Edge; 2], host: &str) -> usize {
    wait_for(T, &format!("a node to take the lock for {host}"), || {
        (0..2).find(|&i| logged(&edges[i].vhostd, "lock_taken", host))
    })
}

#[test]
fn edge_nodes_share_one_order_per_name_and_survive_the_orderer_dying() {
    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::new("swarm-share");
    node.init();
    let dir = scratch("swarm_share");
    let secret = dir.join("vhostd_store_key");
    std::fs::write(&secret, "a store secret shared by every edge node").unwrap();
    let target: Target = Arc::new(Mutex::new(None));
    let pebble = Pebble::start(&dir, relay(target.clone()), PebbleOpts::default());
    let a = edge(&dir.join("a"), &node, &pebble, &secret);
    let b = edge(&dir.join("b"), &node, &pebble, &secret);
    let edges = [&a, &b];

    // A service both nodes route; both want its certificate; one orders.
    let host = "one.share.test";
    let created = Instant::now();
    let port = free_port();
    let labels = [
        format!("VIRTUAL_HOST={host}"),
        format!("VIRTUAL_PORT={port}"),
    ];
    node.web(
        "share-one",
        port,
        &["--label", &labels[0], "--label", &labels[1]],
    );
    let first = orderer(&edges, host);
    let other = 1 - first;
    // The CA reaches the node that did not order.
    *target.lock().unwrap() = Some(edges[other].nginx.http_port);
    for e in edges {
        wait_for(T, "HTTP 200 on every node", || {
            (http_get(e.nginx.http_port, host, "/").status == 200).then_some(())
        });
    }
    let http_every_node = created.elapsed();
    wait_for(T, "HTTPS with Pebble's certificate on both nodes", || {
        let both = edges.map(|e| https(e, &pebble, host));
        both.iter().all(Option::is_some).then_some(())
    });
    let cert_every_node = created.elapsed();
    assert_eq!(pebble.order_count(), 1, "exactly one order for {host}");
    assert!(
        logged(&edges[other].vhostd, "token_from_store", host),
        "the non-ordering node answered the challenge from the store"
    );
    let access = std::fs::read_to_string(edges[other].nginx.dir.join("access.log")).unwrap();
    assert!(
        access.contains("/.well-known/acme-challenge/") && access.contains("Pebble"),
        "Pebble validated against the non-ordering node: {access}"
    );
    assert!(!logged(&edges[other].vhostd, "order_created", host));
    let chains = edges.map(|e| live_chain(e, host));
    assert!(
        chains[0].is_some() && chains[0] == chains[1],
        "the same certificate on both nodes"
    );
    println!(
        "figures: orders for {host} across 2 nodes: {}; service create -> HTTP 200 on every node: {:.2?}; \
         -> HTTPS with the shared certificate on every node: {:.2?}",
        pebble.order_count(),
        http_every_node,
        cert_every_node
    );

    // The orderer dies mid-order: its validation is held, then its vhostd is killed -9.
    *target.lock().unwrap() = None;
    let host2 = "two.share.test";
    let port2 = free_port();
    let labels2 = [
        format!("VIRTUAL_HOST={host2}"),
        format!("VIRTUAL_PORT={port2}"),
    ];
    node.web(
        "share-two",
        port2,
        &["--label", &labels2[0], "--label", &labels2[1]],
    );
    let dying = orderer(&edges, host2);
    let survivor = 1 - dying;
    wait_for(T, "the orderer's challenge token in the store", || {
        logged(&edges[dying].vhostd, "token_shared", host2).then_some(())
    });
    let orders_before = pebble.order_count();
    let killed = Instant::now();
    edges[dying].vhostd.kill9();
    wait_for(T, "the survivor waiting for the lock", || {
        logged(&edges[survivor].vhostd, "lock_wait", host2).then_some(())
    });
    // The survivor orders once the lock expires, and answers its own challenge.
    *target.lock().unwrap() = Some(edges[survivor].nginx.http_port);
    wait_for(T, "HTTPS for the second name on the survivor", || {
        https(edges[survivor], &pebble, host2)
    });
    let took_over = killed.elapsed();
    assert!(logged(&edges[survivor].vhostd, "lock_taken", host2));
    assert_eq!(
        pebble.order_count(),
        orders_before + 1,
        "exactly one more order, from the survivor"
    );
    assert_eq!(
        orders_before, 2,
        "the dead node's order was the only other one"
    );
    println!(
        "figures: kill -9 of the orderer -> the other node serves HTTPS: {took_over:.2?} (lock {LOCK_TIME})"
    );
    node.leave();
}
