//! The core against the real thing: a private dockerd, a real nginx and the real `vhostd run`
//! binary (local nginx mode). Every assertion is an HTTP request through nginx or a file on disk.

mod support;

use std::time::Duration;

use support::docker::{self, Engine};
use support::nginx::Nginx;
use support::vhostd::{self, Vhostd, setup};
use support::{free_port, http_get, http_get_with, scratch, wait_for, wait_http};

const T: Duration = Duration::from_secs(20);

/// `dir/templates/` holding a copy of the embedded templates, for `--template-dir`.
fn copy_templates(dir: &std::path::Path) -> std::path::PathBuf {
    let tdir = dir.join("templates");
    std::fs::create_dir_all(&tdir).unwrap();
    for f in ["nginx.conf.tera", "location.tera"] {
        std::fs::copy(support::repo().join("templates").join(f), tdir.join(f)).unwrap();
    }
    tdir
}

/// nginx and `vhostd run --template-dir TDIR` on `e`, ready.
fn with_templates(dir: &std::path::Path, e: &Engine, tdir: &std::path::Path) -> (Nginx, Vhostd) {
    let ngx = Nginx::start(dir);
    let v = Vhostd::start(
        dir,
        &e.host,
        &ngx,
        &["--no-acme", "--template-dir", tdir.to_str().unwrap()],
    );
    v.wait_ready();
    (ngx, v)
}

#[test]
fn started_container_serves_and_stopped_one_answers_503() {
    let e = docker::shared();
    let (_dir, ngx, _v) = setup("start_stop", &[]);
    let host = "start-stop.core.test";
    wait_http(ngx.http_port, host, 503, None, T); // unknown host → default server
    let port = free_port();
    let c = e.web(
        "core-start-stop",
        port,
        &[("VIRTUAL_HOST", host), ("VIRTUAL_PORT", &port.to_string())],
    );
    wait_http(ngx.http_port, host, 200, Some("core-start-stop"), T);
    c.stop();
    wait_http(ngx.http_port, host, 503, None, T);
}

#[test]
fn two_hosts_and_a_load_balanced_pair() {
    let e = docker::shared();
    let (_dir, ngx, _v) = setup("two_hosts", &[]);
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let _a = e.web(
        "core-lb-a",
        p1,
        &[
            ("VIRTUAL_HOST", "lb.core.test, other.core.test"),
            ("VIRTUAL_PORT", &p1.to_string()),
        ],
    );
    let _b = e.web(
        "core-lb-b",
        p2,
        &[
            ("VIRTUAL_HOST", "lb.core.test"),
            ("VIRTUAL_PORT", &p2.to_string()),
        ],
    );
    let _c = e.web(
        "core-solo",
        p3,
        &[
            ("VIRTUAL_HOST", "solo.core.test"),
            ("VIRTUAL_PORT", &p3.to_string()),
        ],
    );
    wait_http(ngx.http_port, "solo.core.test", 200, Some("core-solo"), T);
    wait_http(ngx.http_port, "other.core.test", 200, Some("core-lb-a"), T);
    // Both backends answer for lb.core.test (round robin).
    let mut seen = std::collections::BTreeSet::new();
    wait_for(T, "both load-balanced containers to answer", || {
        let a = http_get(ngx.http_port, "lb.core.test", "/");
        if a.status == 200 {
            seen.insert(a.body.trim().to_string());
        }
        (seen.len() == 2).then_some(())
    });
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["core-lb-a", "core-lb-b"]
    );
}

#[test]
fn virtual_path_and_dest() {
    let e = docker::shared();
    let (_dir, ngx, _v) = setup("virtual_path", &[]);
    let (p1, p2) = (free_port(), free_port());
    let host = "path.core.test";
    let _root = e.web(
        "core-path-root",
        p1,
        &[("VIRTUAL_HOST", host), ("VIRTUAL_PORT", &p1.to_string())],
    );
    let _api = e.web(
        "core-path-api",
        p2,
        &[
            ("VIRTUAL_HOST", host),
            ("VIRTUAL_PORT", &p2.to_string()),
            ("VIRTUAL_PATH", "/api/"),
            ("VIRTUAL_DEST", "/"),
        ],
    );
    let _sub = e.web(
        "core-path-sub",
        free_port(),
        &[
            ("VIRTUAL_HOST", host),
            ("VIRTUAL_PORT", &p2.to_string()),
            ("VIRTUAL_PATH", "/sub/"),
        ],
    );
    wait_for(T, "/api/ routed to the api container", || {
        (http_get(ngx.http_port, host, "/api/").body.trim() == "core-path-api").then_some(())
    });
    // (waits, not single shots: right after a reload nginx's old worker may answer once more)
    wait_for(T, "/ routed to the root container", || {
        (http_get(ngx.http_port, host, "/").body.trim() == "core-path-root").then_some(())
    });
    wait_for(T, "VIRTUAL_DEST=/ stripping the prefix", || {
        (http_get(ngx.http_port, host, "/api/sub/").body.trim() == "core-path-api-sub")
            .then_some(())
    });
    // Without VIRTUAL_DEST the path goes upstream unchanged: /sub/ on the api container's port.
    wait_for(T, "/sub/ passed unchanged", || {
        (http_get(ngx.http_port, host, "/sub/").body.trim() == "core-path-api-sub").then_some(())
    });
}

#[test]
fn hostile_labels_leave_good_sites_unchanged() {
    // A private engine: byte-for-byte comparison needs no other test's containers around.
    let e = Engine::private("hostile");
    let dir = scratch("hostile");
    let ngx = Nginx::start(&dir);
    let v = Vhostd::start(&dir, &e.host, &ngx, &["--no-acme"]);
    v.wait_ready();
    let port = free_port();
    let _good = e.web(
        "core-good",
        port,
        &[
            ("VIRTUAL_HOST", "good.core.test"),
            ("VIRTUAL_PORT", &port.to_string()),
        ],
    );
    wait_http(ngx.http_port, "good.core.test", 200, Some("core-good"), T);
    let before = std::fs::read(ngx.conf_file()).unwrap();
    let evil: &[(&str, &[(&str, &str)])] = &[
        ("core-evil-path", &[("VIRTUAL_HOST", "../../etc")]),
        ("core-evil-inject", &[("VIRTUAL_HOST", "a.com;include /x")]),
        (
            "core-evil-newline",
            &[("VIRTUAL_HOST", "ok.core.test\nserver { }")],
        ),
        (
            "core-evil-dollar",
            &[
                ("VIRTUAL_HOST", "evil.core.test"),
                ("VIRTUAL_PATH", "/$host"),
            ],
        ),
        (
            "core-evil-port",
            &[
                ("VIRTUAL_HOST", "evil2.core.test"),
                ("VIRTUAL_PORT", "http"),
            ],
        ),
        (
            // nginx would reject a second challenge location and with it every later change.
            "core-evil-challenge",
            &[
                ("VIRTUAL_HOST", "evil3.core.test"),
                ("VIRTUAL_PATH", "/.well-known/acme-challenge/"),
            ],
        ),
    ];
    let _evil: Vec<_> = evil.iter().map(|(n, l)| e.web(n, free_port(), l)).collect();
    // Wait until vhostd has seen and reported every one of them (naming container and key).
    wait_for(T, "every hostile container reported in /status", || {
        let st = v.status();
        let problems = st["problems"].as_array().cloned().unwrap_or_default();
        evil.iter()
            .all(|(n, _)| problems.iter().any(|p| p["container"] == *n))
            .then_some(())
    });
    let log = v.log_text();
    assert!(
        log.contains("container=core-evil-inject") && log.contains("key=VIRTUAL_HOST"),
        "warning names container and key"
    );
    assert!(log.contains("container=core-evil-port") && log.contains("key=VIRTUAL_PORT"));
    assert_eq!(
        std::fs::read(ngx.conf_file()).unwrap(),
        before,
        "the config is byte-for-byte unchanged"
    );
    assert_eq!(http_get(ngx.http_port, "good.core.test", "/").status, 200);
    // `../../etc` under --webroot (dir/www/HOST) or --certs-dir (dir/certs/live/HOST) would reach
    // dir/etc or dir/../etc: neither was made, and no path in the config climbs out.
    assert!(!dir.join("etc").exists(), "{}", dir.join("etc").display());
    let parent_etc = dir.parent().unwrap().join("etc");
    assert!(!parent_etc.exists(), "{}", parent_etc.display());
    assert!(!String::from_utf8_lossy(&before).contains(".."));
    assert_eq!(
        v.status()["last_error"],
        serde_json::Value::Null,
        "nginx never saw them"
    );
    // Changes keep flowing past them: a good container started afterwards is served.
    let late = free_port();
    let _late = e.web(
        "core-good-late",
        late,
        &[
            ("VIRTUAL_HOST", "late.core.test"),
            ("VIRTUAL_PORT", &late.to_string()),
        ],
    );
    wait_http(
        ngx.http_port,
        "late.core.test",
        200,
        Some("core-good-late"),
        T,
    );
}

#[test]
fn broken_templates_keep_the_last_good_config() {
    // A private engine: no other test's containers may change the config under the assertions.
    let e = &Engine::private("templates");
    let dir = scratch("broken_template");
    let tdir = copy_templates(&dir);
    let (ngx, v) = with_templates(&dir, e, &tdir);
    let _a = e.site("core-tmpl-a", "tmpl.core.test");
    wait_http(ngx.http_port, "tmpl.core.test", 200, Some("core-tmpl-a"), T);
    let good = std::fs::read(ngx.conf_file()).unwrap();

    let main = std::fs::read_to_string(tdir.join("nginx.conf.tera")).unwrap();

    // 1. A template Tera can't parse: the previous templates stay loaded (a new container is
    //    still served with them) and the error stays reported while the broken file is there.
    std::fs::write(tdir.join("nginx.conf.tera"), "{% for x in %}").unwrap();
    wait_for(T, "template error in /status", || {
        v.status()["last_error"]
            .as_str()
            .filter(|e| e.contains("template"))
            .map(str::to_owned)
    });
    assert_eq!(std::fs::read(ngx.conf_file()).unwrap(), good);
    let _c = e.site("core-tmpl-c", "tmpl0.core.test");
    wait_http(ngx.http_port, "tmpl0.core.test", 200, None, T);
    assert!(
        v.status()["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("template")),
        "error still reported"
    );
    let good = std::fs::read(ngx.conf_file()).unwrap();

    // 2. A template nginx rejects: nginx -t fails, the previous file goes back, nothing reloads.
    std::fs::write(
        tdir.join("nginx.conf.tera"),
        format!("{main}\nthis_is_not_a_directive on;\n"),
    )
    .unwrap();
    wait_for(T, "nginx's rejection in /status", || {
        v.status()["last_error"]
            .as_str()
            .filter(|e| e.contains("this_is_not_a_directive"))
            .map(str::to_owned)
    });
    assert_eq!(std::fs::read(ngx.conf_file()).unwrap(), good);
    assert_eq!(http_get(ngx.http_port, "tmpl.core.test", "/").status, 200);

    // 3. Fixed again: back to normal.
    std::fs::write(tdir.join("nginx.conf.tera"), &main).unwrap();
    wait_for(T, "the template error cleared", || {
        v.status()["last_error"].is_null().then_some(())
    });
    let _b = e.site("core-tmpl-b", "tmpl2.core.test");
    wait_http(
        ngx.http_port,
        "tmpl2.core.test",
        200,
        Some("core-tmpl-b"),
        T,
    );
}

#[test]
fn a_container_nginx_rejects_is_left_out_and_the_others_keep_updating() {
    let e = &Engine::private("quarantine");
    let dir = scratch("quarantine");
    let tdir = copy_templates(&dir);
    // A site-specific directive nginx does not know: what no label validation can foresee
    // (as a future nginx, a module or a custom template might refuse one site).
    let main = std::fs::read_to_string(support::repo().join("templates/nginx.conf.tera")).unwrap();
    let hook = "    server_name {{ site.host }};\n";
    assert!(main.contains(hook));
    std::fs::write(
        tdir.join("nginx.conf.tera"),
        main.replacen(
            hook,
            &format!("{hook}{{% if site.host == \"bad.core.test\" %}}    no_such_directive on;\n{{% endif %}}"),
            1,
        ),
    )
    .unwrap();
    let (ngx, v) = with_templates(&dir, e, &tdir);
    let _a = e.site("core-q-a", "qa.core.test");
    wait_http(ngx.http_port, "qa.core.test", 200, Some("core-q-a"), T);
    // Two at once: the bad one and a good one. nginx rejects the pair; the good one goes live.
    let (_bad, _b) = (
        e.site("core-q-bad", "bad.core.test"),
        e.site("core-q-b", "qb.core.test"),
    );
    wait_http(ngx.http_port, "qb.core.test", 200, Some("core-q-b"), T);
    let st = wait_for(T, "the rejected container named in /status", || {
        let st = v.status();
        st["problems"]
            .as_array()?
            .iter()
            .any(|p| p["container"] == "core-q-bad" && p["key"] == "nginx")
            .then_some(st)
    });
    assert!(
        st["problems"].to_string().contains("no_such_directive"),
        "nginx's own message is kept: {st}"
    );
    assert_eq!(http_get(ngx.http_port, "bad.core.test", "/").status, 503);
    assert!(
        !std::fs::read_to_string(ngx.conf_file())
            .unwrap()
            .contains("bad.core.test")
    );
    assert!(v.log_text().contains("container_quarantined"));
    // Later changes are not blocked by it.
    let _c = e.site("core-q-c", "qc.core.test");
    wait_http(ngx.http_port, "qc.core.test", 200, Some("core-q-c"), T);
    assert_eq!(v.status()["last_error"], serde_json::Value::Null);
    // `vhostd render` with the daemon's flags prints what the daemon applied: the quarantined
    // container left out too (it asks the daemon at --admin-addr).
    let tdir_arg = ["--template-dir", tdir.to_str().unwrap()];
    let live = std::fs::read(ngx.conf_file()).unwrap();
    assert_eq!(
        String::from_utf8(vhostd::render(&dir, &e.host, &ngx, v.admin_port, &tdir_arg)).unwrap(),
        String::from_utf8(live).unwrap()
    );
}

#[test]
fn a_broken_template_is_acted_on_once() {
    let e = &Engine::private("template_once");
    let dir = scratch("template_once");
    let tdir = copy_templates(&dir);
    let (ngx, v) = with_templates(&dir, e, &tdir);
    let _a = e.site("core-once-a", "once.core.test");
    wait_http(ngx.http_port, "once.core.test", 200, Some("core-once-a"), T);
    let main = std::fs::read_to_string(tdir.join("nginx.conf.tera")).unwrap();
    let reconciles = |v: &Vhostd| metric(v, "vhostd_reconciles_total");
    // A template Tera can't parse, left in place: one rejection, then quiet.
    std::fs::write(tdir.join("nginx.conf.tera"), "{% for x in %}").unwrap();
    wait_for(T, "the template error in /status", || {
        v.status()["last_error"]
            .as_str()?
            .contains("template")
            .then_some(())
    });
    let before = reconciles(&v);
    // Nothing changes from here on: whatever vhostd does now, it does without a trigger.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(v.log_text().matches("templates_rejected").count(), 1);
    assert_eq!(
        reconciles(&v),
        before,
        "no reconcile that no change triggered"
    );
    // A template nginx rejects, left in place: one nginx verdict, no retry loop of `nginx -t`.
    std::fs::write(
        tdir.join("nginx.conf.tera"),
        format!("{main}\nnot_a_directive_once on;\n"),
    )
    .unwrap();
    wait_for(T, "nginx's rejection in /status", || {
        v.status()["last_error"]
            .as_str()?
            .contains("not_a_directive_once")
            .then_some(())
    });
    let before = reconciles(&v);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(v.log_text().matches("nginx_rejected").count(), 1);
    assert_eq!(
        reconciles(&v),
        before,
        "no nginx -t that no change triggered"
    );
    assert_eq!(v.log_text().matches("templates_rejected").count(), 1);
    assert_eq!(http_get(ngx.http_port, "once.core.test", "/").status, 200);
}

#[test]
fn a_tcp_docker_host_is_followed_and_rendered() {
    let e = Engine::private_tcp("tcp");
    assert!(e.host.starts_with("tcp://127.0.0.1:"));
    let dir = scratch("tcp_docker_host");
    let ngx = Nginx::start(&dir);
    let v = Vhostd::start(&dir, &e.host, &ngx, &["--no-acme"]);
    v.wait_ready();
    let _a = e.site("core-tcp", "tcp.core.test");
    wait_http(ngx.http_port, "tcp.core.test", 200, Some("core-tcp"), T);
    assert_eq!(
        vhostd::render(&dir, &e.host, &ngx, v.admin_port, &[]),
        std::fs::read(ngx.conf_file()).unwrap(),
        "render over tcp:// equals the live config"
    );
}

/// Removes the test's Docker networks when it ends (pass or fail), after its containers.
struct Networks<'a>(&'a Engine, Vec<&'static str>);

impl Drop for Networks<'_> {
    fn drop(&mut self) {
        for n in &self.1 {
            let _ = self.0.docker(&["network", "rm", n]);
        }
    }
}

/// Config only (no request is sent to a bridge address): real bridge networks, an nginx
/// container on two of them, and `vhostd render` in container mode picks each upstream address
/// as the engine reports it.
#[test]
fn upstreams_on_bridge_networks_are_the_ones_shared_with_nginx() {
    let e = &Engine::private("bridges");
    let nets = Networks(e, vec!["vt-back", "vt-front", "vt-other"]);
    for n in &nets.1 {
        e.ok(&["network", "create", "--internal", n]);
    }
    let run = |name: &str, net: &str, labels: &[(&str, &str)]| {
        let mut args = vec!["--network", net];
        let kv: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for l in &kv {
            args.extend(["-l", l.as_str()]);
        }
        args.extend([docker::IMAGE, "sleep", "300"]);
        e.run(name, &args)
    };
    let connect = |net: &str, name: &str| {
        e.ok(&["network", "connect", net, name]);
    };
    let ip = |name: &str, net: &str| {
        e.ok(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
            name,
        ])
    };
    let nginx = run("bridge-nginx", "vt-front", &[("vhostd.nginx", "true")]);
    connect("vt-back", &nginx.name);
    // On both of nginx's networks: the first by name (vt-back) is chosen.
    let both = run(
        "bridge-both",
        "vt-front",
        &[("VIRTUAL_HOST", "both.net.test")],
    );
    connect("vt-back", &both.name);
    // VIRTUAL_NETWORK picks the other one.
    let chosen = run(
        "bridge-chosen",
        "vt-front",
        &[
            ("VIRTUAL_HOST", "chosen.net.test"),
            ("VIRTUAL_NETWORK", "vt-front"),
        ],
    );
    connect("vt-back", &chosen.name);
    // Shares no network with nginx: the host is there, its upstream answers 503.
    let _lonely = run(
        "bridge-lonely",
        "vt-other",
        &[("VIRTUAL_HOST", "lonely.net.test")],
    );

    let dir = scratch("bridges");
    let s = |x: &str| x.to_string();
    let out = std::process::Command::new(vhostd::bin())
        .args([
            s("render"),
            s("--docker-host"),
            e.host.clone(),
            s("--webroot"),
            dir.join("www").display().to_string(),
            s("--certs-dir"),
            dir.join("certs").display().to_string(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let upstream = |host: &str| {
        let start = text
            .find(&format!("upstream {host}-"))
            .unwrap_or_else(|| panic!("no upstream for {host}:\n{text}"));
        let block = &text[start..];
        block[..block.find('}').unwrap()].to_string()
    };
    assert!(
        upstream("both.net.test").contains(&format!("server {}:80;", ip("bridge-both", "vt-back"))),
        "{text}"
    );
    assert!(
        upstream("chosen.net.test")
            .contains(&format!("server {}:80;", ip("bridge-chosen", "vt-front"))),
        "{text}"
    );
    assert!(!text.contains("upstream lonely.net.test-"), "{text}");
    assert!(text.contains("server_name lonely.net.test;"), "{text}");
    assert!(
        log.contains("bridge-lonely") && log.contains("VIRTUAL_NETWORK"),
        "the unreachable container is named: {log}"
    );
    drop((both, chosen, nginx));
}

#[test]
fn render_prints_what_the_daemon_writes() {
    let e = docker::shared();
    let (dir, ngx, v) = setup("render_cmd", &[]);
    let _a = e.site("core-render", "render.core.test");
    wait_http(ngx.http_port, "render.core.test", 200, None, T);
    // Same flags as the daemon; the inventory is shared by parallel tests, so retry until stable.
    wait_for(T, "`vhostd render` to equal the live config", || {
        (vhostd::render(&dir, &e.host, &ngx, v.admin_port, &[])
            == std::fs::read(ngx.conf_file()).unwrap())
        .then_some(())
    });
}

#[test]
fn dockerd_restart_keeps_config_then_follows_events_again() {
    let e = Engine::private("restart");
    let dir = scratch("dockerd_restart");
    let ngx = Nginx::start(&dir);
    let v = Vhostd::start(&dir, &e.host, &ngx, &["--no-acme"]);
    v.wait_ready();
    let _a = e.site("restart-a", "a.restart.test");
    wait_http(ngx.http_port, "a.restart.test", 200, Some("restart-a"), T);
    let before = std::fs::read(ngx.conf_file()).unwrap();

    e.stop_daemon();
    wait_for(T, "vhostd to notice Docker is gone", || {
        (v.status()["docker_connected"] == false).then_some(())
    });
    // Several reconnect attempts with Docker down: the live config is untouched.
    wait_for(
        Duration::from_secs(30),
        "reconnect attempts while Docker is down",
        || (v.log_text().matches("docker_reconnect").count() >= 3).then_some(()),
    );
    assert_eq!(
        std::fs::read(ngx.conf_file()).unwrap(),
        before,
        "config unchanged while Docker is down"
    );

    e.restart_daemon();
    wait_for(T, "vhostd to reconnect", || {
        (v.status()["docker_connected"] == true).then_some(())
    });
    let _b = e.site("restart-b", "b.restart.test");
    wait_http(ngx.http_port, "b.restart.test", 200, Some("restart-b"), T);
}

#[test]
fn admin_endpoints_answer() {
    let (_dir, _ngx, v) = setup("admin", &[]);
    assert_eq!(http_get(v.admin_port, "127.0.0.1", "/healthz").status, 200);
    assert_eq!(http_get(v.admin_port, "127.0.0.1", "/readyz").status, 200);
    let m = http_get(v.admin_port, "127.0.0.1", "/metrics");
    assert!(
        m.body.contains("vhostd_docker_api_requests_total")
            && m.body.contains("vhostd_reconciles_total"),
        "{}",
        m.body
    );
    let out = std::process::Command::new(vhostd::bin())
        .args([
            "health",
            "--admin-addr",
            &format!("127.0.0.1:{}", v.admin_port),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn nginx_in_a_container_is_validated_by_exec_and_reloaded_by_sighup() {
    let e = &Engine::private("container-mode");
    let image = e.nginx_image();
    let dir = scratch("container_mode");
    let conf_d = dir.join("conf.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    let tdir = copy_templates(&dir);
    let (http, https) = (free_port(), free_port());
    let d = dir.display().to_string();
    let _ngx = e.run(
        "core-nginx",
        &[
            "--network",
            "host",
            "-l",
            "vhostd.nginx=true",
            "-v",
            &format!("{d}:{d}"),
            "-v",
            &format!("{}:/etc/nginx/conf.d", conf_d.display()),
            image,
        ],
    );
    let mut args = vhostd::container_args(&dir, &e.host, &conf_d, http, https);
    args.extend(["--template-dir".to_string(), tdir.display().to_string()]);
    let v = Vhostd::start_with(&dir, &args);
    v.wait_ready();
    let _a = e.site("core-cm-a", "cm.core.test");
    wait_http(http, "cm.core.test", 200, Some("core-cm-a"), T);
    // nginx -t runs inside the container: its rejection comes back and nothing is reloaded.
    let good = std::fs::read(conf_d.join("vhostd.conf")).unwrap();
    let main = std::fs::read_to_string(tdir.join("nginx.conf.tera")).unwrap();
    std::fs::write(
        tdir.join("nginx.conf.tera"),
        format!("{main}\nnot_a_directive_in_container on;\n"),
    )
    .unwrap();
    wait_for(T, "the container's nginx -t rejection in /status", || {
        v.status()["last_error"]
            .as_str()
            .filter(|e| e.contains("not_a_directive_in_container"))
            .map(str::to_owned)
    });
    assert_eq!(std::fs::read(conf_d.join("vhostd.conf")).unwrap(), good);
    assert_eq!(http_get(http, "cm.core.test", "/").status, 200);
}

fn metric(v: &Vhostd, name: &str) -> f64 {
    let m = http_get(v.admin_port, "127.0.0.1", "/metrics").body;
    m.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| rest.trim().parse::<f64>().ok())
        .sum()
}

#[test]
fn a_burst_of_starts_gives_a_handful_of_reloads_and_json_logs() {
    let e = Engine::private("burst");
    let dir = scratch("burst");
    let ngx = Nginx::start(&dir);
    let v = Vhostd::start(&dir, &e.host, &ngx, &["--no-acme", "--log-format", "json"]);
    v.wait_ready();
    let reloads = "vhostd_nginx_reloads_total{result=\"ok\"}";
    let api = "vhostd_docker_api_requests_total";
    let before = metric(&v, reloads);
    let (api_before, events_before) = (metric(&v, api), metric(&v, "vhostd_docker_events_total"));
    let ports: Vec<u16> = (0..10).map(|_| free_port()).collect();
    std::thread::scope(|s| {
        for (i, p) in ports.iter().enumerate() {
            let e = &e;
            s.spawn(move || {
                std::mem::forget(e.web(
                    &format!("burst-{i}"),
                    *p,
                    &[
                        ("VIRTUAL_HOST", &format!("b{i}.burst.test")),
                        ("VIRTUAL_PORT", &p.to_string()),
                    ],
                ))
            });
        }
    });
    for i in 0..10 {
        wait_http(ngx.http_port, &format!("b{i}.burst.test"), 200, None, T);
    }
    let events = metric(&v, "vhostd_docker_events_total");
    let n = metric(&v, reloads) - before;
    let (api_used, events_seen) = (metric(&v, api) - api_before, events - events_before);
    assert!(
        api_used <= events_seen,
        "{api_used} Docker API requests for {events_seen} events: at most one inspect per event, never a re-list"
    );
    assert!(
        events >= 10.0,
        "at least one event per container ({events})"
    );
    // What holds on any machine: every host served (above), at least one reload, and never
    // more reloads than events (how many bursts coalesce depends on the machine's speed).
    assert!(
        n >= 1.0 && n <= events_seen,
        "10 container starts ({events_seen} events) gave {n} reloads: at most one per event"
    );
    // JSON logs: one object per line with the structured fields.
    let log = v.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("\"reload\""))
        .expect("a reload decision logged");
    let j: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(j["action"], "reload");
    assert!(j["level"].is_string() && j["timestamp"].is_string());
}

#[test]
fn docker_down_at_start_leaves_the_live_config_alone() {
    let dir = scratch("docker_down_at_start");
    let ngx = Nginx::start(&dir);
    let live = "# a config that was live before vhostd started\nserver { listen 127.0.0.1:1; }\n";
    std::fs::write(ngx.conf_file(), live).unwrap();
    let missing = format!("unix://{}/no-docker.sock", dir.display());
    let v = Vhostd::start(&dir, &missing, &ngx, &["--no-acme"]);
    wait_for(T, "several reconnect attempts", || {
        (v.log_text().matches("docker_reconnect").count() >= 3).then_some(())
    });
    assert_eq!(
        std::fs::read_to_string(ngx.conf_file()).unwrap(),
        live,
        "never an empty render while Docker is unreachable"
    );
    assert_eq!(
        http_get(v.admin_port, "127.0.0.1", "/healthz").status,
        200,
        "alive"
    );
    assert_eq!(
        http_get(v.admin_port, "127.0.0.1", "/readyz").status,
        503,
        "not ready: no config made live"
    );
    assert_eq!(v.status()["docker_connected"], false);
    v.stop();

    // Container mode (nginx reached through Docker): starting does not need Docker either.
    let s = |x: &str| x.to_string();
    let args = vec![
        s("--docker-host"),
        missing,
        s("--conf-file"),
        ngx.conf_file().display().to_string(),
        s("--webroot"),
        dir.join("www").display().to_string(),
        s("--certs-dir"),
        dir.join("certs").display().to_string(),
        s("--no-acme"),
    ];
    let v = Vhostd::start_with(&dir, &args);
    wait_for(T, "container mode: several reconnect attempts", || {
        (v.log_text().matches("docker_reconnect").count() >= 3).then_some(())
    });
    assert_eq!(
        http_get(v.admin_port, "127.0.0.1", "/healthz").status,
        200,
        "container mode keeps running while Docker is down: {}",
        v.log_text()
    );
    assert_eq!(std::fs::read_to_string(ngx.conf_file()).unwrap(), live);
}

/// A container that, on SIGTERM, keeps listening but answers "draining" for 4 s before exiting
/// (as an app finishing in-flight work would). PID 1 is the shell, so the trap receives the signal;
/// it waits on a background `sleep`, so the trap runs at once, not after the current sleep.
fn graceful<'a>(
    e: &'a Engine,
    name: &str,
    port: u16,
    host: &str,
) -> support::docker::Container<'a> {
    let script = format!(
        "mkdir -p /w && echo {name} > /w/index.html && httpd -p 127.0.0.1:{port} -h /w && \
         trap 'echo draining > /w/index.html; sleep 4; exit 0' TERM && while :; do sleep 1 & wait; done"
    );
    let port_s = port.to_string();
    e.run(
        name,
        &[
            "--network",
            "host",
            "-l",
            &format!("VIRTUAL_HOST={host}"),
            "-l",
            &format!("VIRTUAL_PORT={port_s}"),
            docker::IMAGE,
            "sh",
            "-c",
            &script,
        ],
    )
}

#[test]
fn a_stopping_container_gets_no_new_requests_while_another_serves() {
    let e = Engine::private("drain");
    let dir = scratch("drain");
    let ngx = Nginx::start(&dir);
    let v = Vhostd::start(&dir, &e.host, &ngx, &["--no-acme"]);
    v.wait_ready();
    let host = "drain.core.test";
    let (pa, pb) = (free_port(), free_port());
    let _a = graceful(&e, "drain-a", pa, host);
    let _b = graceful(&e, "drain-b", pb, host);
    let mut seen = std::collections::BTreeSet::new();
    wait_for(T, "both containers in rotation", || {
        seen.insert(http_get(ngx.http_port, host, "/").body.trim().to_string());
        (seen.contains("drain-a") && seen.contains("drain-b")).then_some(())
    });
    // Stop A (it answers "draining" at once and exits ~4 s later). Docker announces the stop
    // only after the signal, so A may answer in the moment before vhostd hears of it; once
    // vhostd's drain is live (its reload done, every nginx worker from before it gone), no request
    // may reach A again.
    let workers_before = ngx.workers();
    std::thread::scope(|s| {
        let stopper = s.spawn(|| e.ok(&["stop", "-t", "20", "drain-a"]));
        let mut drained = false;
        while !stopper.is_finished() {
            drained = drained || drain_live(&v, &ngx, &workers_before);
            let a = http_get(ngx.http_port, host, "/");
            assert_eq!(a.status, 200, "{a:?}");
            assert!(
                !drained || a.body.trim() != "draining",
                "a request reached the stopping container after its drain went live: {a:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(drained, "the drain went live while the container shut down");
    });
    assert!(v.log_text().contains("action=\"drain\""));
    // The last container of a host is not drained: it serves through its own shutdown.
    std::thread::scope(|s| {
        let stopper = s.spawn(|| e.ok(&["stop", "-t", "20", "drain-b"]));
        wait_for(T, "B answering while it shuts down", || {
            (http_get(ngx.http_port, host, "/").body.trim() == "draining").then_some(())
        });
        stopper.join().unwrap();
    });
    wait_http(ngx.http_port, host, 503, None, T);
}

/// Waits until `host`'s answer headers contain (or, `present` false, lack) `needle`.
fn wait_header(port: u16, host: &str, needle: &str, present: bool) {
    wait_for(
        T,
        &format!("{host}: header {needle:?} present={present}"),
        || {
            let a = http_get(port, host, "/");
            (a.status == 200 && a.headers.contains(needle) == present).then_some(())
        },
    );
}

#[test]
fn vhost_snippets_and_basic_auth_go_live_and_a_broken_one_takes_only_its_host_out() {
    let e = &Engine::private("snippets");
    let dir = scratch("snippets");
    let vdir = dir.join("vhost.d");
    std::fs::create_dir_all(&vdir).unwrap();
    // Missing at start: the same as empty, watched once it appears.
    let hdir = dir.join("htpasswd");
    let ngx = Nginx::start(&dir);
    let (vs, hs) = (vdir.to_str().unwrap(), hdir.to_str().unwrap());
    let flags = ["--vhost-dir", vs, "--htpasswd-dir", hs];
    let mut args = vec!["--no-acme"];
    args.extend(flags);
    let v = Vhostd::start(&dir, &e.host, &ngx, &args);
    v.wait_ready();
    let (host, other, port) = ("snip.core.test", "other.core.test", ngx.http_port);
    let _a = e.site("core-snip-a", host);
    let _o = e.site("core-snip-o", other);
    wait_http(port, host, 200, Some("core-snip-a"), T);
    wait_http(port, other, 200, Some("core-snip-o"), T);

    // 1. `HOST`: in that host's server block; edited, it is live again (same rendered bytes).
    std::fs::write(vdir.join(host), "add_header X-Snippet server;\n").unwrap();
    wait_header(port, host, "X-Snippet: server", true);
    assert!(!http_get(port, other, "/").headers.contains("X-Snippet"));
    let conf = std::fs::read(ngx.conf_file()).unwrap();
    std::fs::write(vdir.join(host), "add_header X-Snippet edited;\n").unwrap();
    wait_header(port, host, "X-Snippet: edited", true);
    assert_eq!(
        std::fs::read(ngx.conf_file()).unwrap(),
        conf,
        "nginx reloaded, bytes the same"
    );
    // 2. `default`: for the hosts without a file of their own.
    std::fs::write(vdir.join("default"), "add_header X-Default yes;\n").unwrap();
    wait_header(port, other, "X-Default: yes", true);
    assert!(!http_get(port, host, "/").headers.contains("X-Default"));
    std::fs::remove_file(vdir.join("default")).unwrap();
    wait_header(port, other, "X-Default", false);
    // 3. `HOST_location`: in each of its proxied locations.
    let loc = vdir.join(format!("{host}_location"));
    std::fs::write(&loc, "add_header X-Location yes;\n").unwrap();
    wait_header(port, host, "X-Location: yes", true);
    std::fs::remove_file(&loc).unwrap();
    wait_header(port, host, "X-Location", false);

    // 4. Basic auth: the htpasswd dir appears, a file `HOST` puts the host behind auth_basic.
    let workers = ngx.workers();
    std::fs::create_dir_all(&hdir).unwrap();
    std::fs::write(hdir.join(host), "user:{PLAIN}secret\n").unwrap();
    wait_http(port, host, 401, None, T);
    // Until the old workers exit they still take connections with the config before it.
    ngx.wait_workers_replaced(&workers);
    let auth = "Authorization: Basic dXNlcjpzZWNyZXQ=\r\n"; // user:secret
    let a = http_get_with(port, host, "/", auth);
    assert_eq!((a.status, a.body.trim()), (200, "core-snip-a"));
    assert_eq!(http_get_with(port, host, "/", "X-No: auth\r\n").status, 401);
    // The ACME challenge path stays open; other hosts are not affected.
    let challenge = dir
        .join("www")
        .join(host)
        .join(".well-known/acme-challenge");
    std::fs::create_dir_all(&challenge).unwrap();
    support::make_traversable(&challenge);
    std::fs::write(challenge.join("tok"), "proof").unwrap();
    let a = http_get(port, host, "/.well-known/acme-challenge/tok");
    assert_eq!((a.status, a.body.as_str()), (200, "proof"));
    assert_eq!(http_get(port, other, "/").status, 200);
    std::fs::remove_file(hdir.join(host)).unwrap();
    wait_http(port, host, 200, Some("core-snip-a"), T);

    // 5. A snippet nginx rejects: only its host goes out (the default server answers it).
    std::fs::write(vdir.join(host), "this_is_not_a_directive on;\n").unwrap();
    let st = wait_for(T, "the host named in /status with nginx's message", || {
        let st = v.status();
        st["problems"]
            .as_array()?
            .iter()
            .any(|p| {
                p["key"] == "vhost.d"
                    && p["problem"].to_string().contains("this_is_not_a_directive")
            })
            .then_some(st)
    });
    assert_eq!(st["quarantined_hosts"], serde_json::json!([host]));
    wait_http(port, host, 503, None, T);
    assert_eq!(http_get(port, other, "/").status, 200);
    assert!(v.log_text().contains("host_quarantined"));
    // Every other host keeps updating meanwhile.
    let _n = e.site("core-snip-new", "new.core.test");
    wait_http(port, "new.core.test", 200, Some("core-snip-new"), T);
    assert_eq!(http_get(port, host, "/").status, 503);
    let live = String::from_utf8(std::fs::read(ngx.conf_file()).unwrap()).unwrap();
    assert!(!live.contains(&format!("server_name {host};")));
    let rendered = vhostd::render(&dir, &e.host, &ngx, v.admin_port, &flags);
    assert_eq!(
        String::from_utf8(rendered).unwrap(),
        live,
        "render leaves the host out too"
    );

    // 6. Fixed: back within seconds, with its snippet.
    std::fs::write(vdir.join(host), "add_header X-Snippet fixed;\n").unwrap();
    wait_header(port, host, "X-Snippet: fixed", true);
    assert_eq!(v.status()["quarantined_hosts"], serde_json::json!([]));
}

/// True once vhostd decided a drain and reloaded after it, and every nginx worker from before
/// the stop has exited: the workers left were started by a reload that came after the drain.
fn drain_live(v: &Vhostd, ngx: &Nginx, workers_before: &std::collections::BTreeSet<u32>) -> bool {
    let log = v.log_text();
    let workers = ngx.workers();
    log.find("action=\"drain\"")
        .is_some_and(|i| log[i..].contains("action=\"reload\""))
        && !workers.is_empty()
        && workers.is_disjoint(workers_before)
}

#[test]
fn a_certificate_put_in_live_by_hand_is_picked_up_without_another_event() {
    let e = &Engine::private("handcert");
    let dir = scratch("handcert");
    let ngx = Nginx::start(&dir);
    let v = Vhostd::start(&dir, &e.host, &ngx, &["--no-acme"]);
    v.wait_ready();
    let host = "hand.core.test";
    let _a = e.site("core-hand", host);
    wait_http(ngx.http_port, host, 200, Some("core-hand"), T);
    // The user's own pair, written where vhostd looks (certs/live/HOST/), no Docker event after.
    let live = v.certs_dir.join("live").join(host);
    std::fs::create_dir_all(&live).unwrap();
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={host}")])
        .args(["-addext", &format!("subjectAltName=DNS:{host}")])
        .arg("-keyout")
        .arg(live.join("privkey.pem"))
        .arg("-out")
        .arg(live.join("fullchain.pem"))
        .output()
        .expect("openssl is installed (scripts/testenv/up.sh installs it)");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // Served over HTTPS: HTTP now redirects, and the config names the pair.
    wait_http(ngx.http_port, host, 301, None, T);
    let conf = std::fs::read_to_string(ngx.conf_file()).unwrap();
    assert!(conf.contains(&live.join("fullchain.pem").display().to_string()));
}
