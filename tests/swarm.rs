//! Swarm services routed like containers, against the real thing: a private dockerd made a
//! single-node Swarm (`swarm init --advertise-addr 127.0.0.1`), services on the host network
//! bound to 127.0.0.1 ports, a real nginx and the real `vhostd run`. Overlay addresses are only
//! checked in the rendered text, never requested. Each test leaves its Swarm and stops its
//! dockerd; the tests run one after the other (one Swarm per network namespace: port 7946).

mod support;
mod swarm_support;

use std::time::Instant;

use support::docker::IMAGE;
use support::vhostd::Vhostd;
use support::{free_port, http_get, scratch, wait_for, wait_http};
use swarm_support::{Node, ONE_SWARM, T, daemon, task_ips, wait_all_bodies, wait_only_body};

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
    // The scale event names no task: the task list (one call) finds the new one.
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
    let out = support::vhostd::render(&dir, &node.engine.host, &ngx, v.admin_port, &[]);
    assert_eq!(
        String::from_utf8_lossy(&out),
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
    let args = support::vhostd::container_args(&dir, &node.engine.host, &conf_d, http, https);
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
