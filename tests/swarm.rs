//! Swarm services routed like containers, against the real thing: a private dockerd made a
//! single-node Swarm (`swarm init --advertise-addr 127.0.0.1`), services on the host network
//! bound to 127.0.0.1 ports, a real nginx and the real `vhostd run`. Overlay addresses are only
//! checked in the rendered text, never requested. Each test leaves its Swarm and stops its
//! dockerd; the tests run one after the other (one Swarm per network namespace: port 7946).

mod support;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::docker::{Engine, IMAGE};
use support::nginx::Nginx;
use support::vhostd::Vhostd;
use support::{free_port, http_get, scratch, wait_for, wait_http};

const T: Duration = Duration::from_secs(30);

/// Only one Swarm at a time in this network namespace.
static ONE_SWARM: Mutex<()> = Mutex::new(());

/// A private dockerd; `init` makes it a single-node Swarm manager. Leaves the Swarm on drop
/// (before the engine itself is stopped and purged).
struct Node {
    engine: Engine,
}

impl Node {
    fn new(name: &str) -> Node {
        Node {
            engine: Engine::private(name),
        }
    }

    fn init(&self) {
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

    fn leave(&self) {
        self.engine.ok(&["swarm", "leave", "--force"]);
    }

    /// `docker service create` of a busybox httpd answering its own name on 127.0.0.1:`port`
    /// (host network), with `args` (labels, env) before the image.
    fn web(&self, name: &str, port: u16, args: &[&str]) {
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

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.engine.docker(&["swarm", "leave", "--force"]);
    }
}

/// nginx and `vhostd run` (no ACME) against `node`, ready.
fn daemon(dir: &std::path::Path, node: &Node, extra: &[&str]) -> (Nginx, Vhostd) {
    let ngx = Nginx::start(dir);
    let mut args = vec!["--no-acme"];
    args.extend_from_slice(extra);
    let v = Vhostd::start(dir, &node.engine.host, &ngx, &args);
    v.wait_ready();
    (ngx, v)
}

/// Bodies answered for `host` until every one of `want` was seen.
fn wait_all_bodies(port: u16, host: &str, want: &[&str]) {
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
fn wait_only_body(port: u16, host: &str, only: &str) {
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

#[test]
fn services_are_routed_balanced_updated_and_removed() {
    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::new("swarm-life");
    node.init();
    let dir = scratch("swarm_life");
    let (ngx, v) = daemon(&dir, &node, &[]);
    let (pa, pb) = (free_port(), free_port());
    let start = Instant::now();
    node.web(
        "svc-a",
        pa,
        &[
            "--label",
            "VIRTUAL_HOST=one.swarm.test",
            "--label",
            &format!("VIRTUAL_PORT={pa}"),
        ],
    );
    wait_http(ngx.http_port, "one.swarm.test", 200, Some("svc-a"), T);
    println!(
        "docker service create → 200 through nginx: {:?}",
        start.elapsed()
    );

    // A second service on the same host name: both serve it (container-spec label + env this time).
    node.web(
        "svc-b",
        pb,
        &[
            "--container-label",
            "VIRTUAL_HOST=one.swarm.test",
            "--env",
            &format!("VIRTUAL_PORT={pb}"),
        ],
    );
    wait_all_bodies(ngx.http_port, "one.swarm.test", &["svc-a", "svc-b"]);
    // Routed once each, as their services: svc-b's task container (which carries VIRTUAL_HOST
    // itself) is not routed a second time as a container.
    let st = v.status();
    let site = st["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["host"] == "one.swarm.test")
        .cloned()
        .unwrap();
    assert_eq!(
        site["locations"][0]["containers"],
        serde_json::json!(["svc-a.1", "svc-b.1"]),
        "{site}"
    );

    // Labels updated (no task restart): svc-a moves to another name.
    node.engine.ok(&[
        "service",
        "update",
        "-d",
        "--label-add",
        "VIRTUAL_HOST=two.swarm.test",
        "svc-a",
    ]);
    wait_http(ngx.http_port, "two.swarm.test", 200, Some("svc-a"), T);
    wait_only_body(ngx.http_port, "one.swarm.test", "svc-b");

    node.engine.ok(&["service", "rm", "svc-b"]);
    wait_http(ngx.http_port, "one.swarm.test", 503, None, T);
    assert_eq!(http_get(ngx.http_port, "two.swarm.test", "/").status, 200);
    node.engine.ok(&["service", "rm", "svc-a"]);
    wait_http(ngx.http_port, "two.swarm.test", 503, None, T);
    let log = v.log_text();
    assert!(log.contains("action=\"swarm_manager\""), "{log}");
    node.leave();
}

#[test]
fn a_service_with_a_hostile_label_is_refused_naming_it_and_others_serve() {
    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::new("swarm-evil");
    node.init();
    let dir = scratch("swarm_evil");
    let (ngx, v) = daemon(&dir, &node, &[]);
    let (pe, pg) = (free_port(), free_port());
    node.web(
        "svc-evil",
        pe,
        &[
            "--label",
            "VIRTUAL_HOST=evil.swarm.test;include /etc/passwd",
            "--label",
            &format!("VIRTUAL_PORT={pe}"),
        ],
    );
    node.web(
        "svc-good",
        pg,
        &[
            "--env",
            "VIRTUAL_HOST=good.swarm.test",
            "--env",
            &format!("VIRTUAL_PORT={pg}"),
        ],
    );
    wait_http(ngx.http_port, "good.swarm.test", 200, Some("svc-good"), T);
    let problem = wait_for(T, "the hostile service in /status problems", || {
        let st = v.status();
        st["problems"]
            .as_array()?
            .iter()
            .find(|p| p["container"] == "svc-evil")
            .cloned()
    });
    assert_eq!(problem["key"], "VIRTUAL_HOST", "{problem}");
    let conf = std::fs::read_to_string(ngx.conf_file()).unwrap();
    assert!(
        !conf.contains("evil.swarm.test") && !conf.contains("passwd"),
        "{conf}"
    );
    assert_eq!(http_get(ngx.http_port, "evil.swarm.test", "/").status, 503);
    let log = v.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("container=svc-evil") && l.contains("key=VIRTUAL_HOST")),
        "{log}"
    );
    node.leave();
}

#[test]
fn auto_notices_a_swarm_joined_and_left_while_running() {
    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::new("swarm-auto");
    let dir = scratch("swarm_auto");
    let (ngx, v) = daemon(&dir, &node, &[]);
    node.init();
    let p = free_port();
    node.web(
        "svc-late",
        p,
        &[
            "--label",
            "VIRTUAL_HOST=late.swarm.test",
            "--label",
            &format!("VIRTUAL_PORT={p}"),
        ],
    );
    wait_http(ngx.http_port, "late.swarm.test", 200, Some("svc-late"), T);
    node.leave();
    wait_http(ngx.http_port, "late.swarm.test", 503, None, T);
    assert!(v.log_text().contains("action=\"swarm_manager\""));
}

#[test]
fn swarm_off_ignores_services() {
    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::new("swarm-off");
    node.init();
    let dir = scratch("swarm_off");
    let (ngx, v) = daemon(&dir, &node, &["--swarm", "off"]);
    let (ps, pc) = (free_port(), free_port());
    node.web(
        "svc-ignored",
        ps,
        &[
            "--label",
            "VIRTUAL_HOST=ignored.swarm.test",
            "--label",
            &format!("VIRTUAL_PORT={ps}"),
        ],
    );
    // A container is still routed, so the daemon is demonstrably following Docker.
    let _c = node.engine.web(
        "plain",
        pc,
        &[
            ("VIRTUAL_HOST", "plain.swarm.test"),
            ("VIRTUAL_PORT", &pc.to_string()),
        ],
    );
    wait_http(ngx.http_port, "plain.swarm.test", 200, Some("plain"), T);
    wait_for(T, "the ignored service's task to serve directly", || {
        (http_get(ps, "x", "/").status == 200).then_some(())
    });
    assert_eq!(
        http_get(ngx.http_port, "ignored.swarm.test", "/").status,
        503
    );
    assert!(!v.log_text().contains("swarm_manager"));
    node.leave();
}

/// The tasks' addresses on `net` of service `svc`, from `docker inspect` of its task containers.
fn task_ips(e: &Engine, svc: &str, net: &str) -> BTreeSet<String> {
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

#[test]
fn overlay_services_render_their_vip_or_task_addresses() {
    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::new("swarm-overlay");
    node.init();
    node.engine
        .ok(&["network", "create", "-d", "overlay", "swarm-front"]);
    let dir = scratch("swarm_overlay");
    let (ngx, v) = daemon(&dir, &node, &[]);
    let svc = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "service",
            "create",
            "-d",
            "--init",
            "--name",
            name,
            "--network",
            "swarm-front",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "httpd", "-f", "-p", "8080"]);
        node.engine.ok(&args);
    };
    svc(
        "ov-vip",
        &[
            "--replicas",
            "2",
            "--label",
            "VIRTUAL_HOST=vip.swarm.test",
            "--label",
            "VIRTUAL_PORT=8080",
        ],
    );
    svc(
        "ov-dnsrr",
        &[
            "--replicas",
            "2",
            "--endpoint-mode",
            "dnsrr",
            "--env",
            "VIRTUAL_HOST=dnsrr.swarm.test",
            "--env",
            "VIRTUAL_PORT=8080",
        ],
    );
    let vip = node.engine.ok(&[
        "service",
        "inspect",
        "-f",
        "{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}",
        "ov-vip",
    ]);
    let vip = vip.split('/').next().unwrap().to_string();
    assert!(!vip.is_empty());
    let conf_has = |what: &str, needles: &[String]| {
        wait_for(T, what, || {
            let conf = std::fs::read_to_string(ngx.conf_file()).ok()?;
            needles
                .iter()
                .all(|n| conf.contains(n.as_str()))
                .then_some(conf)
        })
    };
    conf_has("the VIP in the config", &[format!("server {vip}:8080;")]);
    let ips = wait_for(T, "two dnsrr tasks with addresses", || {
        let ips = task_ips(&node.engine, "ov-dnsrr", "swarm-front");
        (ips.len() == 2 && ips.iter().all(|i| !i.is_empty())).then_some(ips)
    });
    let servers: Vec<String> = ips.iter().map(|i| format!("server {i}:8080;")).collect();
    conf_has("each dnsrr task address in the config", &servers);
    // A new task (no service event carries it) is picked up by the task poll.
    let start = Instant::now();
    node.engine.ok(&["service", "scale", "-d", "ov-dnsrr=3"]);
    let ips = wait_for(T, "three dnsrr tasks with addresses", || {
        let ips = task_ips(&node.engine, "ov-dnsrr", "swarm-front");
        (ips.len() == 3 && ips.iter().all(|i| !i.is_empty())).then_some(ips)
    });
    let addressed = start.elapsed();
    let servers: Vec<String> = ips.iter().map(|i| format!("server {i}:8080;")).collect();
    let conf = conf_has("the third dnsrr task in the config", &servers);
    // `vhostd render` computes the same from one read.
    let mut args = vec!["render".to_string()];
    args.extend(support::vhostd::base_args(
        &dir,
        &node.engine.host,
        &ngx,
        v.admin_port,
    ));
    args.push("--no-acme".into());
    let out = std::process::Command::new(support::vhostd::bin())
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        conf,
        "render == the daemon's file"
    );
    println!(
        "dnsrr scale 2 → 3: the new task has an address after {addressed:?}, is in the config after {:?}",
        start.elapsed()
    );
    assert_eq!(
        conf.matches(&format!("server {vip}:8080;")).count(),
        1,
        "the VIP once, not per task"
    );
    node.leave();
}

/// A self-signed certificate and its key, as PEM (stands in for an issued one).
fn bundle(name: &str) -> vhostd::swarm::store::Bundle {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    vhostd::swarm::store::Bundle {
        fullchain: ck.cert.pem(),
        privkey: ck.signing_key.serialize_pem(),
    }
}

#[test]
fn the_certificate_store_in_swarm_configs_locks_expires_and_seals() {
    use vhostd::host::HostName;
    use vhostd::swarm::store::configs::SwarmConfigs;
    use vhostd::swarm::store::seal::SealKey;
    use vhostd::swarm::store::{CertStore, LockOutcome, install};

    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::new("swarm-store");
    node.init();
    let dir = scratch("swarm_store");
    let secret = b"a store secret of enough length";
    let lock_time = Duration::from_secs(3);
    let store = |holder: &str, secret: &[u8]| {
        let seal = SealKey::from_secret(secret).unwrap();
        SwarmConfigs::new(&node.engine.host, seal, holder.into(), lock_time)
    };
    let (a, b) = (store("node-a", secret), store("node-b", secret));
    let key = HostName::parse("shared.swarm.test").unwrap();
    let now = time::OffsetDateTime::now_utc;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Both nodes race for the lock: exactly one wins, the other learns who holds it.
        let (ra, rb) = tokio::join!(a.try_lock(&key, now()), b.try_lock(&key, now()));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let (winner, loser, token, held) = match (&ra, &rb) {
            (LockOutcome::Acquired(t), LockOutcome::Held(h)) => (&a, &b, t.clone(), h.clone()),
            (LockOutcome::Held(h), LockOutcome::Acquired(t)) => (&b, &a, t.clone(), h.clone()),
            other => panic!("exactly one node must take the lock: {other:?}"),
        };
        let winner_name = if std::ptr::eq(winner, &a) {
            "node-a"
        } else {
            "node-b"
        };
        assert_eq!(held.holder, winner_name);
        // The winner saves; the loser reads the same certificate and key back.
        let issued = bundle("shared.swarm.test");
        winner.save(&key, &issued, now()).await.unwrap();
        let got = loser.load(&key).await.unwrap().expect("stored certificate");
        assert_eq!(got.bundle, issued);
        winner.unlock(&token).await.unwrap();
        // A renewal replaces the version: one certificate config per name stays.
        let renewed = bundle("shared.swarm.test");
        winner.save(&key, &renewed, now()).await.unwrap();
        assert_eq!(loser.load(&key).await.unwrap().unwrap().bundle, renewed);
        // The loser writes certbot's layout for its own nginx.
        let certs = dir.join("certs-b");
        assert!(install(&certs, &key, &renewed).await.unwrap());
        assert!(!install(&certs, &key, &renewed).await.unwrap(), "unchanged");
        let live = certs.join("live/shared.swarm.test");
        assert_eq!(
            std::fs::read_to_string(live.join("privkey.pem")).unwrap(),
            renewed.privkey
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(live.join("privkey.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A node with another secret cannot read the key, and says why.
        let stranger = store("node-c", b"some other secret, also long");
        let e = stranger.load(&key).await.unwrap_err().to_string();
        assert!(e.contains("same store secret"), "{e}");
        // A holder that dies keeps the lock only until it expires; then another node takes it.
        assert!(matches!(
            a.try_lock(&key, now()).await.unwrap(),
            LockOutcome::Acquired(_)
        ));
        assert!(matches!(
            b.try_lock(&key, now()).await.unwrap(),
            LockOutcome::Held(_)
        ));
        let taken = wait_for_async(&b, &key, Duration::from_secs(20)).await;
        assert!(
            taken >= lock_time.saturating_sub(Duration::from_millis(100)),
            "{taken:?}"
        );
    });
    // What the Swarm holds never contains a private key in clear.
    let ids = node.engine.ok(&["config", "ls", "-q"]);
    assert_eq!(
        ids.lines().count(),
        2,
        "one lock, one certificate version: {ids}"
    );
    for id in ids.lines() {
        let data = node
            .engine
            .ok(&["config", "inspect", "-f", "{{json .Spec.Data}}", id]);
        let raw = String::from_utf8(
            base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                data.trim_matches('"'),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(!raw.contains("PRIVATE KEY"), "{raw}");
    }
    node.leave();
}

/// Retries `store.try_lock` until it is acquired; returns how long that took.
async fn wait_for_async(
    store: &vhostd::swarm::store::configs::SwarmConfigs,
    key: &vhostd::host::HostName,
    limit: Duration,
) -> Duration {
    use vhostd::swarm::store::{CertStore, LockOutcome};
    let start = Instant::now();
    loop {
        let now = time::OffsetDateTime::now_utc();
        if let LockOutcome::Acquired(_) = store.try_lock(key, now).await.unwrap() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "the expired lock was never taken over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn nginx_as_a_swarm_service_is_found_validated_and_reloaded() {
    // The stack file's shape: nginx is itself a service (host network, label vhostd.nginx on
    // its task container); vhostd runs in container mode and reloads that task's nginx.
    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::new("swarm-edge");
    node.init();
    let image = node.engine.nginx_image();
    let dir = scratch("swarm_edge");
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    let d = dir.display().to_string();
    node.engine.ok(&[
        "service",
        "create",
        "-d",
        "--name",
        "edge-nginx",
        "--network",
        "host",
        "--container-label",
        "vhostd.nginx=true",
        "--mount",
        &format!("type=bind,src={d},dst={d}"),
        "--mount",
        &format!("type=bind,src={},dst=/etc/nginx/conf.d", conf_d.display()),
        image,
    ]);
    let (http, https) = (free_port(), free_port());
    let s = |x: &str| x.to_string();
    let args = vec![
        s("--docker-host"),
        node.engine.host.clone(),
        s("--conf-file"),
        conf_d.join("vhostd.conf").display().to_string(),
        s("--webroot"),
        dir.join("www").display().to_string(),
        s("--certs-dir"),
        dir.join("certs").display().to_string(),
        s("--http-port"),
        http.to_string(),
        s("--https-port"),
        https.to_string(),
        s("--no-acme"),
    ];
    let v = Vhostd::start_with(&dir, &args);
    let p = free_port();
    node.web(
        "svc-behind-edge",
        p,
        &[
            "--label",
            "VIRTUAL_HOST=edge.swarm.test",
            "--label",
            &format!("VIRTUAL_PORT={p}"),
        ],
    );
    wait_http(http, "edge.swarm.test", 200, Some("svc-behind-edge"), T);
    node.engine.ok(&["service", "rm", "svc-behind-edge"]);
    wait_http(http, "edge.swarm.test", 503, None, T);
    let log = v.log_text();
    assert!(log.contains("action=\"reload\""), "{log}");
    node.engine.ok(&["service", "rm", "edge-nginx"]);
    node.leave();
}

#[test]
fn swarm_on_outside_a_swarm_says_so_and_serves_containers() {
    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::new("swarm-on");
    let dir = scratch("swarm_on");
    let (ngx, v) = daemon(&dir, &node, &["--swarm", "on"]);
    let p = free_port();
    let _c = node.engine.web(
        "plain-on",
        p,
        &[
            ("VIRTUAL_HOST", "plain-on.swarm.test"),
            ("VIRTUAL_PORT", &p.to_string()),
        ],
    );
    wait_http(
        ngx.http_port,
        "plain-on.swarm.test",
        200,
        Some("plain-on"),
        T,
    );
    let line = wait_for(T, "the swarm_inactive error", || {
        v.log_text()
            .lines()
            .find(|l| l.contains("action=\"swarm_inactive\""))
            .map(str::to_owned)
    });
    assert!(
        line.contains("ERROR") && line.contains("--swarm on"),
        "{line}"
    );
}

/// Two dockerds in network namespaces this test creates (10.201.0.1 and .2 exist only there),
/// joined into one Swarm: `a` the manager, `b` a worker. Removed on drop.
struct TwoNodes {
    prefix: String,
    a: std::path::PathBuf,
    b: std::path::PathBuf,
}

impl TwoNodes {
    fn up() -> TwoNodes {
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

    fn host(state: &std::path::Path) -> String {
        format!("unix://{}/docker.sock", state.display())
    }

    fn docker(&self, state: &std::path::Path, args: &[&str]) -> std::process::Output {
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

#[test]
fn a_worker_node_is_told_to_place_vhostd_on_managers() {
    let _one = ONE_SWARM.lock().unwrap_or_else(|e| e.into_inner());
    let nodes = TwoNodes::up();
    let dir = scratch("swarm_worker");
    let ngx = Nginx::start(&dir);
    let v = Vhostd::start(&dir, &TwoNodes::host(&nodes.b), &ngx, &["--no-acme"]);
    v.wait_ready();
    let line = wait_for(T, "the swarm_worker error", || {
        v.log_text()
            .lines()
            .find(|l| l.contains("action=\"swarm_worker\""))
            .map(str::to_owned)
    });
    assert!(
        line.contains("ERROR") && line.contains("node.role == manager"),
        "{line}"
    );
    // The same daemon on the manager reads services.
    let dir2 = scratch("swarm_worker_manager");
    let ngx2 = Nginx::start(&dir2);
    let v2 = Vhostd::start(&dir2, &TwoNodes::host(&nodes.a), &ngx2, &["--no-acme"]);
    wait_for(T, "the manager's swarm_manager line", || {
        v2.log_text()
            .contains("action=\"swarm_manager\"")
            .then_some(())
    });
}
