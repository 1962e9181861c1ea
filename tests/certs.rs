//! Certificates end to end: the real `vhostd run` binary, a private dockerd, a real nginx and a
//! real Pebble (with pebble-challtestsrv as DNS). HTTPS is checked with curl and openssl against
//! Pebble's own root, as a user would.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::docker::Engine;
use support::nginx::Nginx;
use support::pebble::{Pebble, PebbleOpts};
use support::vhostd::Vhostd;
use support::{free_port, http_get, scratch, wait_for, wait_http};

const T: Duration = Duration::from_secs(60);

/// One test's world: its own dockerd (so no other test's hosts get orders), nginx and Pebble.
struct Env {
    dir: PathBuf,
    engine: Engine,
    nginx: Nginx,
    pebble: Pebble,
}

impl Env {
    fn start(name: &str, opts: PebbleOpts) -> Env {
        let dir = scratch(name);
        let nginx = Nginx::start(&dir);
        let pebble = Pebble::start(&dir, nginx.http_port, opts);
        Env {
            engine: Engine::private(name),
            dir,
            nginx,
            pebble,
        }
    }

    fn vhostd(&self, extra: &[&str]) -> Vhostd {
        let mut args = vec![
            "--acme-directory",
            &self.pebble.directory_url,
            "--acme-ca-bundle",
            self.pebble.listener_ca.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let v = Vhostd::start(&self.dir, &self.engine.host, &self.nginx, &args);
        v.wait_ready();
        v
    }

    /// `curl https://HOST:PORT/` trusting only Pebble's current root.
    fn https(&self, host: &str) -> Option<String> {
        let root = self.pebble.root_file();
        let port = self.nginx.https_port;
        let out = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "5",
                "--resolve",
                &format!("{host}:{port}:127.0.0.1"),
                "--cacert",
            ])
            .arg(&root)
            .arg(format!("https://{host}:{port}/"))
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The certificate nginx serves for `host`: (serial, sorted SAN DNS names).
    fn served_cert(&self, host: &str) -> Option<(String, Vec<String>)> {
        let sh = format!(
            "openssl s_client -connect 127.0.0.1:{} -servername {host} </dev/null 2>/tmp/s_client.err | openssl x509 -noout -serial -ext subjectAltName",
            self.nginx.https_port
        );
        let out = Command::new("sh").arg("-c").arg(sh).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !text.contains("serial=") {
            eprintln!(
                "s_client for {host}: {}",
                std::fs::read_to_string("/tmp/s_client.err").unwrap_or_default()
            );
        }
        let serial = text
            .lines()
            .find_map(|l| l.strip_prefix("serial="))?
            .to_string();
        let mut sans: Vec<String> = text
            .split([',', '\n'])
            .filter_map(|p| p.trim().strip_prefix("DNS:"))
            .map(str::to_string)
            .collect();
        sans.sort();
        Some((serial, sans))
    }
}

/// Waits until the certificate `key` is in `state` in `/status`; returns its status.
fn wait_state(v: &Vhostd, key: &str, state: &str) -> serde_json::Value {
    wait_for(T, &format!("{key} in state {state:?}"), || {
        Some(cert_status(v, key)).filter(|s| s["state"] == state)
    })
}

fn cert_status(v: &Vhostd, key: &str) -> serde_json::Value {
    v.status()["certificates"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["key"] == key).cloned())
        .unwrap_or_default()
}

#[test]
fn certificates_are_issued_served_and_not_reordered_after_restarts() {
    let env = Env::start("certs_issue", PebbleOpts::default());
    let e = &env.engine;
    let (p1, p2) = (free_port(), free_port());
    let a = e.web(
        "certs-a",
        p1,
        &[
            ("VIRTUAL_HOST", "a.certs.test, www.a.certs.test"),
            ("VIRTUAL_PORT", &p1.to_string()),
        ],
    );
    let _b = e.web(
        "certs-b",
        p2,
        &[
            ("VIRTUAL_HOST", "b.certs.test,api.b.certs.test"),
            ("LETSENCRYPT_HOST", "b.certs.test"),
            ("VIRTUAL_PORT", &p2.to_string()),
        ],
    );
    let mut v = env.vhostd(&[]);

    // A SAN certificate for the container's two names, served by nginx, chaining to Pebble's root.
    let body = wait_for(T, "HTTPS for a.certs.test", || env.https("a.certs.test"));
    assert_eq!(body, "certs-a");
    wait_for(T, "HTTPS for www.a.certs.test", || {
        env.https("www.a.certs.test").filter(|b| b == "certs-a")
    });
    let (serial_a, sans) = wait_for(T, "a's certificate served", || {
        env.served_cert("a.certs.test")
    });
    assert_eq!(sans, ["a.certs.test", "www.a.certs.test"]);
    // LETSENCRYPT_HOST as a subset: only b gets a certificate; api.b stays on plain HTTP.
    wait_for(T, "HTTPS for b.certs.test", || env.https("b.certs.test"));
    assert_eq!(
        wait_for(T, "b's certificate served", || env
            .served_cert("b.certs.test"))
        .1,
        ["b.certs.test"]
    );
    assert_eq!(
        http_get(env.nginx.http_port, "api.b.certs.test", "/")
            .body
            .trim(),
        "certs-b"
    );

    // HTTP redirects to HTTPS (301, port included), while the challenge path stays on HTTP.
    let r = wait_for(T, "a 301 to HTTPS", || {
        Some(http_get(env.nginx.http_port, "a.certs.test", "/x?y=1")).filter(|r| r.status == 301)
    });
    assert!(
        r.headers.contains(&format!(
            "Location: https://a.certs.test:{}/x?y=1",
            env.nginx.https_port
        )),
        "{}",
        r.headers
    );
    let probe = v
        .webroot
        .join("a.certs.test/.well-known/acme-challenge/probe-file");
    std::fs::write(&probe, "challenge-ok").unwrap();
    let c = http_get(
        env.nginx.http_port,
        "a.certs.test",
        "/.well-known/acme-challenge/probe-file",
    );
    assert_eq!((c.status, c.body.as_str()), (200, "challenge-ok"));
    std::fs::remove_file(&probe).unwrap();
    let st = cert_status(&v, "a.certs.test");
    assert_eq!(st["state"], "valid", "{st}");
    assert!(
        st["not_after"].is_string() && st["next_renewal"].is_string(),
        "{st}"
    );

    // Five restarts: no new order, the same certificate keeps being served.
    let orders = env.pebble.order_count();
    assert_eq!(orders, 2);
    for _ in 0..5 {
        v.stop();
        v = env.vhostd(&[]);
        wait_for(T, "both certificates known valid after restart", || {
            (cert_status(&v, "a.certs.test")["state"] == "valid"
                && cert_status(&v, "b.certs.test")["state"] == "valid")
                .then_some(())
        });
    }
    assert_eq!(
        env.pebble.order_count(),
        orders,
        "restarts placed new orders"
    );
    assert_eq!(env.served_cert("a.certs.test").unwrap().0, serial_a);

    // Re-creating the container: its host leaves and comes back; still no new order.
    drop(a);
    wait_for(T, "a.certs.test gone", || {
        (http_get(env.nginx.http_port, "a.certs.test", "/").status == 503).then_some(())
    });
    let _a = e.web(
        "certs-a",
        p1,
        &[
            ("VIRTUAL_HOST", "a.certs.test, www.a.certs.test"),
            ("VIRTUAL_PORT", &p1.to_string()),
        ],
    );
    wait_for(T, "a.certs.test back over HTTPS", || {
        env.https("a.certs.test").filter(|b| b == "certs-a")
    });
    assert_eq!(cert_status(&v, "a.certs.test")["state"], "valid");
    assert_eq!(
        env.pebble.order_count(),
        orders,
        "re-creating the container placed an order"
    );
    assert_eq!(
        wait_for(T, "a's certificate", || env.served_cert("a.certs.test")).0,
        serial_a
    );

    // Metrics carry each certificate's expiry and failures, for alerting.
    let m = http_get(v.admin_port, "127.0.0.1", "/metrics").body;
    let not_after = m
        .lines()
        .find_map(|l| {
            l.strip_prefix("vhostd_certificate_not_after_seconds{domain=\"a.certs.test\"} ")
        })
        .expect("not_after metric");
    assert!(
        not_after.trim().parse::<i64>().unwrap() > 1_700_000_000,
        "{m}"
    );
    assert!(
        m.contains("vhostd_certificate_failures{domain=\"b.certs.test\"} 0"),
        "{m}"
    );

    // `vhostd status` shows the certificates; `vhostd renew` renews one now: one new order.
    let admin = format!("127.0.0.1:{}", v.admin_port);
    let out = Command::new(support::vhostd::bin())
        .args(["status", "--admin-addr", &admin])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && table.contains("a.certs.test")
            && table.contains("state=valid")
            && table.contains("names=a.certs.test,www.a.certs.test")
            && table.contains("issuer=Pebble Intermediate"),
        "{table}"
    );
    // For people: whole-second dates with a distance, plain (no colour codes) when piped.
    assert!(
        table.contains(" UTC (in ") && table.contains(" days)"),
        "{table}"
    );
    assert!(
        !table.contains('\x1b'),
        "colour codes in piped output: {table}"
    );
    assert!(
        !table.contains(".0") || !table.contains("Z"),
        "no RFC 3339 fractions: {table}"
    );
    // For scripts: `--json` is the very document GET /status serves.
    let out = Command::new(support::vhostd::bin())
        .args(["status", "--json", "--admin-addr", &admin])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, v.status(), "vhostd status --json == GET /status");
    let out = Command::new(support::vhostd::bin())
        .args(["renew", "a.certs.test", "--admin-addr", &admin])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("less than an hour ago; nothing ordered"),
        "{said}"
    );
    assert_eq!(
        env.pebble.order_count(),
        orders,
        "renew of a fresh certificate ordered"
    );
    let out = Command::new(support::vhostd::bin())
        .args(["renew", "--force", "a.certs.test", "--admin-addr", &admin])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    wait_for(T, "a renewed certificate served", || {
        env.served_cert("a.certs.test")
            .filter(|(s, _)| *s != serial_a)
    });
    assert_eq!(env.pebble.order_count(), orders + 1);

    // A host that goes away: its certificate is no longer managed, its files stay on disk.
    drop(_b);
    wait_for(T, "b's certificate no longer in /status", || {
        cert_status(&v, "b.certs.test").is_null().then_some(())
    });
    assert!(v.log_text().contains("cert_unwanted"));
    let b_live = v.certs_dir.join("live/b.certs.test");
    assert!(b_live.join("fullchain.pem").is_file() && b_live.join("privkey.pem").is_file());
}

#[test]
fn a_ca_down_at_start_does_not_keep_vhostd_from_serving() {
    let mut env = Env::start("certs_ca_down_at_start", PebbleOpts::default());
    env.pebble.stop_ca();
    let _c = env.engine.site("certs-early", "early.certs.test");
    let v = env.vhostd(&[]);
    wait_http(
        env.nginx.http_port,
        "early.certs.test",
        200,
        Some("certs-early"),
        T,
    );
    let st = wait_state(&v, "early.certs.test", "backoff");
    assert_eq!(st["attempts"], 1, "{st}");
    assert_eq!(http_get(v.admin_port, "127.0.0.1", "/healthz").status, 200);
}

#[test]
fn short_lived_certificates_renew_with_no_failed_request() {
    let env = Env::start(
        "certs_renew",
        PebbleOpts {
            validity_secs: Some(40),
            ..Default::default()
        },
    );
    let e = &env.engine;
    let _c = e.site("certs-renew", "renew.certs.test");
    let _v = env.vhostd(&[]);
    wait_for(T, "HTTPS for renew.certs.test", || {
        env.https("renew.certs.test")
    });
    // Right after a reload nginx's old worker may still take a connection for a moment (it has
    // no HTTPS block for this new host yet): start counting once the certificate is served stably.
    let mut streak = 0;
    let first = wait_for(T, "the first certificate served stably", || {
        let served = env
            .served_cert("renew.certs.test")
            .filter(|_| env.https("renew.certs.test").is_some());
        streak = if served.is_some() { streak + 1 } else { 0 };
        served.filter(|_| streak >= 5).map(|(serial, _)| serial)
    });
    // Keep requesting over HTTPS until nginx serves a new serial; every request must succeed.
    let end = Instant::now() + Duration::from_secs(60);
    let mut requests = 0;
    loop {
        assert_eq!(
            env.https("renew.certs.test").as_deref(),
            Some("certs-renew"),
            "request {requests} failed during renewal"
        );
        requests += 1;
        let (serial, _) = env
            .served_cert("renew.certs.test")
            .expect("a certificate is served");
        if serial != first {
            break;
        }
        assert!(
            Instant::now() < end,
            "no renewal within 60 s of a 40 s certificate"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(requests > 5);
}

#[test]
fn ca_outage_keeps_https_serving_records_backoff_and_recovers() {
    // 50 % of nonces rejected: the client must retry badNonce and still converge.
    let mut env = Env::start(
        "certs_outage",
        PebbleOpts {
            nonce_reject: Some(50),
            ..Default::default()
        },
    );
    let e = &env.engine;
    let (p1, p2) = (free_port(), free_port());
    let _a = e.web(
        "certs-up",
        p1,
        &[
            ("VIRTUAL_HOST", "up.certs.test"),
            ("VIRTUAL_PORT", &p1.to_string()),
        ],
    );
    let mut v = env.vhostd(&[]);
    wait_for(T, "HTTPS for up.certs.test despite rejected nonces", || {
        env.https("up.certs.test")
    });

    env.pebble.stop_ca();
    let _b = e.web(
        "certs-late",
        p2,
        &[
            ("VIRTUAL_HOST", "late.certs.test"),
            ("VIRTUAL_PORT", &p2.to_string()),
        ],
    );
    let st = wait_state(&v, "late.certs.test", "backoff");
    assert!(
        st["last_error"].as_str().is_some_and(|e| !e.is_empty()) && st["next_attempt"].is_string(),
        "{st}"
    );
    let state_file = std::fs::read_to_string(v.certs_dir.join("vhostd/certs/late.certs.test.json"))
        .expect("backoff persisted on disk");
    assert!(state_file.contains("\"failures\": 1"), "{state_file}");
    let m = http_get(v.admin_port, "127.0.0.1", "/metrics").body;
    assert!(
        m.contains("vhostd_certificate_failures{domain=\"late.certs.test\"} 1"),
        "{m}"
    );
    // Neither a restart nor a re-created container resets the backoff: no attempt before
    // the recorded moment (an attempt now would fail and count a second failure).
    v.stop();
    v = env.vhostd(&[]);
    drop(_b);
    let _b = e.web(
        "certs-late",
        p2,
        &[
            ("VIRTUAL_HOST", "late.certs.test"),
            ("VIRTUAL_PORT", &p2.to_string()),
        ],
    );
    wait_http(
        env.nginx.http_port,
        "late.certs.test",
        200,
        Some("certs-late"),
        T,
    );
    let after = wait_state(&v, "late.certs.test", "backoff");
    assert_eq!(after["attempts"], 1, "{after}");
    assert_eq!(after["next_attempt"], st["next_attempt"], "{after}");
    // The existing certificate keeps serving, and the new host is served over HTTP meanwhile.
    assert_eq!(env.https("up.certs.test").as_deref(), Some("certs-up"));
    wait_http(
        env.nginx.http_port,
        "late.certs.test",
        200,
        Some("certs-late"),
        T,
    );

    // The CA comes back (a fresh Pebble: new root, no accounts): vhostd recovers on its own.
    env.pebble.start_ca();
    wait_for(
        Duration::from_secs(150),
        "HTTPS for late.certs.test after the CA returned",
        || env.https("late.certs.test"),
    );
}

fn broken_challenge_templates(dir: &Path) -> PathBuf {
    let t = dir.join("templates");
    std::fs::create_dir_all(&t).unwrap();
    let main = std::fs::read_to_string(support::repo().join("templates/nginx.conf.tera")).unwrap();
    assert!(main.contains("try_files $uri =404;"));
    std::fs::write(
        t.join("nginx.conf.tera"),
        main.replace("try_files $uri =404;", "return 404;"),
    )
    .unwrap();
    t
}

#[test]
fn failing_self_check_places_no_order() {
    let env = Env::start("certs_selfcheck", PebbleOpts::default());
    let tdir = broken_challenge_templates(&env.dir);
    let e = &env.engine;
    let _c = e.site("certs-selfcheck", "selfcheck.certs.test");
    let v = env.vhostd(&["--template-dir", tdir.to_str().unwrap()]);
    let st = wait_state(&v, "selfcheck.certs.test", "self-check failed");
    assert!(
        st["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("selfcheck.certs.test"),
        "{st}"
    );
    assert_eq!(
        env.pebble.order_count(),
        0,
        "an order was placed although the self-check failed"
    );
    assert!(v.log_text().contains("selfcheck.certs.test"));
}

#[test]
fn the_self_check_goes_where_self_check_addr_says() {
    let env = Env::start("certs_selfcheck_addr", PebbleOpts::default());
    let _c = env.engine.site("certs-probe-addr", "probe.certs.test");
    // Nothing listens there: the route through nginx is fine, the probe address is not.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let v = env.vhostd(&["--self-check-addr", &nowhere]);
    let st = wait_state(&v, "probe.certs.test", "self-check failed");
    assert!(
        st["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains(&nowhere),
        "{st}"
    );
    assert_eq!(env.pebble.order_count(), 0);
}

/// Issue 7 item 1: non-GET admin requests need the token of `--admin-token-file` (compared
/// exactly), `vhostd renew` sends it from the same file, and a non-loopback `--admin-addr`
/// without a token is refused at start with one line.
#[test]
fn admin_token_guards_renew_and_non_loopback_needs_one() {
    let env = Env::start("certs_admin_token", PebbleOpts::default());
    let port = free_port();
    let out = Command::new(support::vhostd::bin())
        .args(["run", "--admin-addr", &format!("0.0.0.0:{port}")])
        .args(["--certs-dir", env.dir.join("refused").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without a token: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    assert!(
        err.contains("--admin-addr 0.0.0.0") && err.contains("--admin-token-file"),
        "{err}"
    );

    let token_file = env.dir.join("admin.token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let p = free_port();
    let _app = env.engine.web(
        "token-app",
        p,
        &[
            ("VIRTUAL_HOST", "token.certs.test"),
            ("VIRTUAL_PORT", &p.to_string()),
        ],
    );
    let v = env.vhostd(&["--admin-token-file", token_file.to_str().unwrap()]);
    wait_state(&v, "token.certs.test", "valid");
    let admin = format!("127.0.0.1:{}", v.admin_port);
    let post = |auth: Option<&str>| {
        let mut c = Command::new("curl");
        c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"]);
        if let Some(a) = auth {
            c.args(["-H", a]);
        }
        let out = c
            .arg(format!("http://{admin}/renew/token.certs.test"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(post(None), "401");
    assert_eq!(post(Some("Authorization: Bearer s3cret-tokem")), "401");
    assert_eq!(post(Some("Authorization: Bearer s3cret-token")), "200");
    assert_eq!(
        http_get(v.admin_port, "127.0.0.1", "/status").status,
        200,
        "GET needs no token"
    );
    let renew = |with_token: bool| {
        let mut c = Command::new(support::vhostd::bin());
        c.args(["renew", "token.certs.test", "--admin-addr", &admin]);
        if with_token {
            c.args(["--admin-token-file", token_file.to_str().unwrap()]);
        }
        c.output().unwrap()
    };
    let out = renew(false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--admin-token-file"));
    let out = renew(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        env.pebble.order_count(),
        1,
        "a fresh certificate: no second order"
    );
    assert!(v.log_text().contains("admin_unauthorized"));
}
