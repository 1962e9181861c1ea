//! Issue 7, nginx side, against the real dockerd, nginx and `vhostd run`: a killed vhostd
//! never leaves a config nginx rejects on the live path; Docker's return is noticed at once;
//! start-up refuses what can't work; `/readyz` tells the truth about the last apply.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::docker::{self, Engine};
use support::nginx::Nginx;
use support::vhostd::{self, Vhostd};
use support::{free_port, http_get, scratch, wait_for, wait_http};

const T: Duration = Duration::from_secs(20);

/// `nginx -t` of what this nginx would load now (its main config, which includes the live file).
fn live_config_passes(ngx: &Nginx) -> Result<(), String> {
    let out = Command::new("nginx")
        .args(ngx.args())
        .args(["-t", "-q"])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Templates in which every site named `bad*` carries a directive nginx does not know.
fn rejecting_templates(dir: &std::path::Path) -> std::path::PathBuf {
    let tdir = dir.join("templates");
    std::fs::create_dir_all(&tdir).unwrap();
    let main = std::fs::read_to_string(support::repo().join("templates/nginx.conf.tera")).unwrap();
    let hook = "    server_name {{ site.host }};\n";
    assert!(main.contains(hook));
    let bad =
        format!("{hook}{{% if \"bad\" in site.host %}}    no_such_directive on;\n{{% endif %}}");
    std::fs::write(tdir.join("nginx.conf.tera"), main.replacen(hook, &bad, 1)).unwrap();
    std::fs::copy(
        support::repo().join("templates/location.tera"),
        tdir.join("location.tera"),
    )
    .unwrap();
    tdir
}

#[test]
fn a_vhostd_killed_during_applies_never_leaves_a_config_nginx_rejects_live() {
    let e = Engine::private("crash-apply");
    let dir = scratch("crash_apply");
    let tdir = rejecting_templates(&dir);
    let ngx = Nginx::start(&dir);
    let args = ["--no-acme", "--template-dir", tdir.to_str().unwrap()];
    // Churn in the background: good and rejected containers come and go, so applies, rejected
    // candidates and isolation checks run all the time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (host, stop) = (e.host.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let name = if i.is_multiple_of(3) {
                    format!("bad{i}")
                } else {
                    format!("good{i}")
                };
                let port = free_port().to_string();
                let _ = Command::new("docker")
                    .env("DOCKER_HOST", &host)
                    .args(["run", "-d", "--init", "--network", "host", "--name", &name])
                    .args(["-l", &format!("VIRTUAL_HOST={name}.crash.test")])
                    .args([
                        "-l",
                        &format!("VIRTUAL_PORT={port}"),
                        docker::IMAGE,
                        "sleep",
                        "600",
                    ])
                    .output();
                if i > 4 {
                    let old = if (i - 4).is_multiple_of(3) {
                        format!("bad{}", i - 4)
                    } else {
                        format!("good{}", i - 4)
                    };
                    let _ = Command::new("docker")
                        .env("DOCKER_HOST", &host)
                        .args(["rm", "-f", &old])
                        .output();
                }
            }
        })
    };
    let mut kills = 0;
    let mut seed = std::process::id() as u64;
    for _ in 0..12 {
        let v = Vhostd::start(&dir, &e.host, &ngx, &args);
        wait_for(T, "vhostd to apply once", || {
            v.log_text().contains("action=\"reload\"").then_some(())
        });
        // A random moment among the applies that follow.
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(20 + (seed >> 33) % 400));
        drop(v); // SIGKILL
        kills += 1;
        live_config_passes(&ngx).unwrap_or_else(|err| {
            panic!("after kill {kills}, the live config fails nginx -t: {err}")
        });
        assert!(
            !std::fs::read_to_string(ngx.conf_file())
                .unwrap()
                .contains("no_such_directive"),
            "after kill {kills}, a rejected candidate is on the live path"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
    eprintln!("crash test: {kills} kills during churn, the live config passed nginx -t each time");
    // And the last restart still serves the good containers.
    let v = Vhostd::start(&dir, &e.host, &ngx, &args);
    v.wait_ready();
    live_config_passes(&ngx).unwrap();
}

/// Seconds from `since` until `host` answers 200 through `ngx` (panics after `limit`).
fn served_after(ngx: &Nginx, host: &str, since: Instant, limit: Duration) -> f64 {
    wait_http(ngx.http_port, host, 200, None, limit);
    since.elapsed().as_secs_f64()
}

#[test]
fn docker_stopped_or_killed_is_noticed_at_once_when_it_returns() {
    let e = Engine::private("docker-return");
    let dir = scratch("docker_return");
    let ngx = Nginx::start(&dir);
    let v = Vhostd::start(&dir, &e.host, &ngx, &["--no-acme"]);
    v.wait_ready();
    for (round, kill) in [(1, false), (2, true)] {
        let pid = e.daemon_pid().expect("dockerd runs");
        if kill {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            wait_for(T, "dockerd to die", || {
                (!support::running(pid)).then_some(())
            });
        } else {
            e.stop_daemon();
        }
        wait_for(T, "vhostd to notice Docker is gone", || {
            (v.status()["docker_connected"] == false).then_some(())
        });
        // Long enough down for a growing backoff to have grown (5 attempts).
        let seen = v.log_text().matches("docker_reconnect").count();
        wait_for(Duration::from_secs(30), "reconnect attempts", || {
            (v.log_text().matches("docker_reconnect").count() >= seen + 5).then_some(())
        });
        std::thread::sleep(Duration::from_secs(2));
        e.restart_daemon();
        let back = Instant::now();
        wait_for(
            Duration::from_millis(1500),
            "vhostd to reconnect within 1.5 s",
            || (v.status()["docker_connected"] == true).then_some(()),
        );
        let noticed = back.elapsed().as_secs_f64();
        let host = format!("r{round}.return.test");
        let _c = e.site(&format!("return-{round}"), &host);
        let started = Instant::now();
        let served = served_after(&ngx, &host, started, Duration::from_secs(2));
        eprintln!(
            "dockerd {}: reconnected {noticed:.2} s after it returned; a container started then served {served:.2} s after `docker run` returned ({:.2} s after Docker's return)",
            if kill { "killed -9" } else { "stopped" },
            back.elapsed().as_secs_f64()
        );
    }
}

/// `vhostd run` with the base flags plus `extra`: its exit status and stderr, within 10 s.
fn refused(dir: &std::path::Path, ngx: &Nginx, extra: &[&str]) -> String {
    let mut args = vec!["run".to_string()];
    let base = vhostd::base_args(dir, &docker::shared().host, ngx, free_port());
    // The base flags but those `extra` sets (a flag given twice is a usage error).
    for pair in base.chunks(2) {
        if !extra.contains(&pair[0].as_str()) {
            args.extend(pair.iter().cloned());
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = Command::new(vhostd::bin())
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for(Duration::from_secs(10), "vhostd to refuse to start", || {
        child.try_wait().unwrap()
    });
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "vhostd started with {extra:?}");
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("vhostd: "), "one clear line, got: {err}");
    last
}

#[test]
fn start_up_refuses_what_cannot_work_with_one_line() {
    let dir = scratch("preflight");
    let ngx = Nginx::start(&dir);
    let missing = dir.join("missing");
    let m = missing.to_str().unwrap();
    let line = refused(&dir, &ngx, &["--acme-ca-bundle", m]);
    assert!(
        line.contains("--acme-ca-bundle") && line.contains(m),
        "{line}"
    );
    let line = refused(&dir, &ngx, &["--no-acme", "--template-dir", m]);
    assert!(
        line.contains("--template-dir") && line.contains(m),
        "{line}"
    );
    // A conf file under a regular file: its directory can't be created or written (root can
    // write anywhere else).
    let file = dir.join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let conf = file.join("vhostd.conf");
    let line = refused(
        &dir,
        &ngx,
        &["--no-acme", "--conf-file", conf.to_str().unwrap()],
    );
    assert!(line.contains("--conf-file"), "{line}");
    let line = refused(
        &dir,
        &ngx,
        &["--no-acme", "--nginx-cmd", "/nonexistent/nginx"],
    );
    assert!(
        line.contains("--nginx-cmd") && line.contains("/nonexistent/nginx"),
        "{line}"
    );
}

#[test]
fn readyz_is_503_while_the_last_apply_failed_and_a_write_failure_says_so() {
    let e = docker::shared();
    let dir = scratch("readyz_truth");
    let ngx = Nginx::start(&dir);
    let v = Vhostd::start(&dir, &e.host, &ngx, &["--no-acme"]);
    v.wait_ready();
    // The candidate can't be written (a directory sits where it goes).
    let blocker = ngx.dir.join("conf.d/.vhostd.conf.candidate");
    std::fs::create_dir_all(blocker.join("x")).unwrap();
    let _a = e.site("ready-a", "a.ready.test");
    wait_for(T, "/readyz 503 after a failed write", || {
        (http_get(v.admin_port, "127.0.0.1", "/readyz").status == 503).then_some(())
    });
    let err = v.status()["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(err.contains(".vhostd.conf.candidate"), "{err}");
    let log = v.log_text();
    assert!(
        log.contains("config_write_failed"),
        "write failure logged as such"
    );
    assert!(!log.contains("nginx_rejected"), "not as a rejection");
    std::fs::remove_dir_all(&blocker).unwrap();
    // The next change succeeds: ready again, and both sites serve.
    let _b = e.site("ready-b", "b.ready.test");
    wait_http(ngx.http_port, "b.ready.test", 200, Some("ready-b"), T);
    wait_http(ngx.http_port, "a.ready.test", 200, Some("ready-a"), T);
    wait_for(T, "/readyz 200 again", || {
        (http_get(v.admin_port, "127.0.0.1", "/readyz").status == 200).then_some(())
    });
    // nginx gone: the reload fails, readiness says so.
    let pid = ngx.pid().unwrap();
    support::stop_pid(pid);
    let _c = e.site("ready-c", "c.ready.test");
    wait_for(T, "/readyz 503 while nginx can't reload", || {
        (http_get(v.admin_port, "127.0.0.1", "/readyz").status == 503).then_some(())
    });
    assert!(v.log_text().contains("nginx_failed"));
}
