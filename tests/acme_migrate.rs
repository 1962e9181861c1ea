//! Issue 6 item 7: switching from acme-companion costs zero orders. A certificate is issued by a
//! real Pebble, laid out as acme-companion writes it (`HOST.crt` / `HOST.key` symlinks into
//! `HOST/`), and a fresh vhostd started with `--nginx-proxy-certs`: no new order, HTTPS serves
//! that very certificate, and it is renewed into `live/` at its own renewal time while the
//! read-only directory stays untouched. A pair that doesn't match is named in the log and its
//! host is ordered as before.

mod support;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::docker::Engine;
use support::nginx::Nginx;
use support::pebble::{Pebble, PebbleOpts};
use support::vhostd::Vhostd;
use support::{free_port, scratch, wait_for};

const T: Duration = Duration::from_secs(60);

/// The serial of the certificate nginx serves for `host` (upper-case hex, as openssl prints it).
fn served_serial(https_port: u16, host: &str) -> Option<String> {
    let sh = format!(
        "openssl s_client -connect 127.0.0.1:{https_port} -servername {host} </dev/null 2>/dev/null | openssl x509 -noout -serial"
    );
    let out = Command::new("sh").arg("-c").arg(sh).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("serial="))
        .map(|s| s.trim_start_matches('0').to_lowercase())
}

fn cert_status(v: &Vhostd, key: &str) -> serde_json::Value {
    v.status()["certificates"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["key"] == key).cloned())
        .unwrap_or_default()
}

/// Writes `fullchain` and `key` as acme-companion does: `DIR/HOST/{fullchain,key}.pem` and the
/// `DIR/HOST.crt`, `DIR/HOST.key` symlinks nginx-proxy reads.
fn companion_layout(dir: &Path, host: &str, fullchain: &[u8], key: &[u8]) {
    let sub = dir.join(host);
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("fullchain.pem"), fullchain).unwrap();
    std::fs::write(sub.join("key.pem"), key).unwrap();
    symlink(
        format!("./{host}/fullchain.pem"),
        dir.join(format!("{host}.crt")),
    )
    .unwrap();
    symlink(format!("./{host}/key.pem"), dir.join(format!("{host}.key"))).unwrap();
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walk(dir)
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn switching_from_acme_companion_costs_zero_orders() {
    let dir = scratch("acme_migrate");
    let nginx = Nginx::start(&dir);
    let pebble = Pebble::start(
        &dir,
        nginx.http_port,
        PebbleOpts {
            validity_secs: Some(90),
            ..Default::default()
        },
    );
    let engine = Engine::private("acme_migrate");
    let host = "mig.certs.test";
    let p = free_port();
    let _app = engine.web(
        "mig",
        p,
        &[
            ("VIRTUAL_HOST", &format!("{host},www.{host}")),
            ("VIRTUAL_PORT", &p.to_string()),
        ],
    );
    let acme = [
        "--acme-directory",
        &pebble.directory_url,
        "--acme-ca-bundle",
        pebble.listener_ca.to_str().unwrap(),
    ];

    // The acme-companion era: a certificate from Pebble (issued here by a first vhostd in a
    // directory of its own, then laid out as acme-companion writes it).
    let era = dir.join("companion-era");
    std::fs::create_dir_all(&era).unwrap();
    std::fs::create_dir_all(dir.join("vhostd-era")).unwrap();
    let first = Vhostd::start(&era, &engine.host, &nginx, &acme);
    wait_for(T, "the first certificate", || {
        (cert_status(&first, host)["state"] == "valid").then_some(())
    });
    first.stop();
    let live = era.join("certs/live").join(host);
    let proxy_certs = dir.join("nginx-proxy-certs");
    companion_layout(
        &proxy_certs,
        host,
        &std::fs::read(live.join("fullchain.pem")).unwrap(),
        &std::fs::read(live.join("privkey.pem")).unwrap(),
    );
    let serial =
        vhostd::acme::certinfo::CertInfo::from_pem(&std::fs::read(live.join("cert.pem")).unwrap())
            .unwrap()
            .serial;
    // A pair that does not belong together, for another host.
    let bad = "bad.certs.test";
    let own = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![bad.to_string()])
        .unwrap()
        .self_signed(&own)
        .unwrap();
    let stray = rcgen::KeyPair::generate().unwrap();
    companion_layout(
        &proxy_certs,
        bad,
        cert.pem().as_bytes(),
        stray.serialize_pem().as_bytes(),
    );
    let q = free_port();
    let _bad_app = engine.web(
        "bad",
        q,
        &[("VIRTUAL_HOST", bad), ("VIRTUAL_PORT", &q.to_string())],
    );
    let before = snapshot(&proxy_certs);
    let orders = pebble.order_count();
    assert_eq!(orders, 1);

    // The switch: a fresh vhostd (own certs dir) pointed at the acme-companion directory.
    let mut args: Vec<&str> = acme.to_vec();
    let pc = proxy_certs.display().to_string();
    args.extend(["--nginx-proxy-certs", &pc]);
    let v = Vhostd::start(&dir.join("vhostd-era"), &engine.host, &nginx, &args);
    v.wait_ready();
    let st = wait_for(T, "the adopted certificate valid in /status", || {
        Some(cert_status(&v, host)).filter(|s| s["state"] == "valid")
    });
    assert_eq!(st["serial"].as_str(), Some(serial.as_str()), "{st}");
    let ours = format!("vhostd-era/certs/live/{host}/fullchain.pem");
    wait_for(T, "the new vhostd's config live", || {
        std::fs::read_to_string(nginx.conf_file())
            .ok()
            .filter(|c| c.contains(&ours))
    });
    wait_for(T, "the adopted certificate served over HTTPS", || {
        served_serial(nginx.https_port, host).filter(|s| *s == serial)
    });
    assert!(v.log_text().contains("cert_adopted"));
    // The bad pair: named in the log, its host ordered as before.
    wait_for(T, "bad.certs.test ordered and valid", || {
        (cert_status(&v, bad)["state"] == "valid").then_some(())
    });
    let log = v.log_text();
    assert!(
        log.contains("cert_not_adopted")
            && log.contains("bad.certs.test.key")
            && log.contains("does not belong"),
        "{log}"
    );
    assert_eq!(
        pebble.order_count(),
        orders + 1,
        "one order: for the bad pair only"
    );

    // Nothing is ordered for the adopted certificate until its own renewal time ...
    let renew_at = time::OffsetDateTime::parse(
        st["next_renewal"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let wait = renew_at - time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let end = Instant::now() + Duration::try_from(wait).unwrap_or_default();
    // (The bad pair's own 90 s certificate renews meanwhile: Pebble's count must match the
    // orders vhostd logged for it, and none for the adopted one.)
    let created = |v: &Vhostd, h: &str| {
        v.log_text()
            .lines()
            .filter(|l| l.contains("order_created") && l.contains(&format!("\"{h}\"")))
            .count()
    };
    while Instant::now() < end {
        let bad_orders = created(&v, bad);
        assert_eq!(created(&v, host), 0, "ordered before the renewal time");
        let total = pebble.order_count();
        assert!(
            total == orders + bad_orders || total == orders + bad_orders + 1,
            "Pebble saw an order vhostd did not log for {bad}: {total} vs {orders} + {bad_orders}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // ... then vhostd's renewal replaces it in live/, and the read-only directory is untouched.
    wait_for(T, "the renewed certificate served", || {
        served_serial(nginx.https_port, host).filter(|s| *s != serial)
    });
    assert_eq!(
        created(&v, host),
        1,
        "one renewal order for the adopted certificate"
    );
    assert_eq!(
        snapshot(&proxy_certs),
        before,
        "--nginx-proxy-certs is read-only"
    );
}
