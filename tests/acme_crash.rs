//! Issue 7 item 2, the crash test: the real `vhostd run` binary is killed with SIGKILL at random
//! moments while it issues certificates for several containers (real dockerd, nginx, Pebble) and
//! restarted each time. Meanwhile a reader watches `live/`: no certificate directory is ever seen
//! half-written or mixed. At the end every name is served, and every certificate Pebble issued is
//! the one installed (none thrown away). Orders per name are printed.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::Rng;
use support::docker::Engine;
use support::nginx::Nginx;
use support::pebble::{Pebble, PebbleOpts};
use support::vhostd::Vhostd;
use support::{free_port, scratch, wait_for};
use vhostd::acme::certinfo::{CertInfo, key_mismatch};

const NAMES: usize = 8;
const KILLS: usize = 12;

/// What is wrong with one `live/KEY` as a reader resolving it once sees it, if anything.
fn torn(live: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(live).ok()?;
    let read = |f: &str| std::fs::read(dir.join(f));
    let files = ["fullchain.pem", "privkey.pem", "cert.pem", "chain.pem"].map(read);
    if !dir.exists() {
        return None; // a pruned old generation: the reader raced a later install, not a mix
    }
    let [Ok(full), Ok(key), Ok(cert), Ok(chain)] = files else {
        return Some(format!(
            "{}: a file is missing in {}",
            live.display(),
            dir.display()
        ));
    };
    if key_mismatch(&full, &String::from_utf8_lossy(&key)) {
        return Some(format!("{}: key does not match fullchain", live.display()));
    }
    let joined = [cert.as_slice(), chain.as_slice()].concat();
    if joined != full {
        return Some(format!("{}: cert + chain != fullchain", live.display()));
    }
    None
}

/// Watches every `live/*` until `stop`; returns every torn view seen.
fn watch_live(certs: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Ok(entries) = std::fs::read_dir(certs.join("live")) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with('.') {
                        continue;
                    }
                    seen.extend(torn(&e.path()));
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        seen
    })
}

fn strip(serial: &str) -> String {
    serial.trim_start_matches('0').to_lowercase()
}

#[test]
fn kill_9_during_issuance_never_tears_live_and_wastes_no_certificate() {
    let dir = scratch("acme_crash");
    let nginx = Nginx::start(&dir);
    let pebble = Pebble::start(&dir, nginx.http_port, PebbleOpts::default());
    let engine = Engine::private("acme_crash");
    let hosts: Vec<String> = (0..NAMES).map(|i| format!("crash{i}.certs.test")).collect();
    let _apps: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let p = free_port();
            engine.web(
                &format!("crash-{i}"),
                p,
                &[("VIRTUAL_HOST", h), ("VIRTUAL_PORT", &p.to_string())],
            )
        })
        .collect();
    let extra = [
        "--acme-directory",
        &pebble.directory_url,
        "--acme-ca-bundle",
        pebble.listener_ca.to_str().unwrap(),
        "--acme-concurrency",
        "2",
    ];
    let certs = dir.join("certs");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_live(certs.clone(), stop.clone());
    let mut rng = rand::rng();
    let mut logs = Vec::new();
    for _ in 0..KILLS {
        let v = Vhostd::start(&dir, &engine.host, &nginx, &extra);
        logs.push(v.log.clone());
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
        drop(v); // SIGKILL, then wait
    }
    let v = Vhostd::start(&dir, &engine.host, &nginx, &extra);
    logs.push(v.log.clone());
    wait_for(
        Duration::from_secs(120),
        "every certificate valid after the kills",
        || {
            let st = v.status();
            let certs = st["certificates"].as_array()?;
            (certs.len() == NAMES && certs.iter().all(|c| c["state"] == "valid")).then_some(())
        },
    );
    stop.store(true, Ordering::Relaxed);
    let torn_views = watcher.join().unwrap();
    assert!(
        torn_views.is_empty(),
        "half-written live/ seen: {torn_views:#?}"
    );

    let live: BTreeSet<String> = hosts
        .iter()
        .map(|h| {
            let pem = std::fs::read(certs.join("live").join(h).join("cert.pem")).unwrap();
            strip(&CertInfo::from_pem(&pem).unwrap().serial)
        })
        .collect();
    let issued: Vec<String> = pebble
        .log()
        .lines()
        .filter_map(|l| l.split("Issued certificate serial ").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .map(strip)
        .collect();
    let mut orders: BTreeMap<String, usize> = BTreeMap::new();
    let mut resumed = 0;
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for l in text.lines() {
            if l.contains("order_created") {
                let d = l
                    .split("domain=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next());
                *orders
                    .entry(d.unwrap_or("?").trim_matches('"').to_string())
                    .or_default() += 1;
            }
            resumed +=
                usize::from(l.contains("action=\"order_resumed\"") || l.contains("order_resumed"));
        }
    }
    println!(
        "kills: {KILLS}; names: {NAMES}; Pebble orders: {}; certificates issued: {}; orders resumed: {resumed}; orders per name: {orders:?}",
        pebble.order_count(),
        issued.len()
    );
    let thrown_away: Vec<&String> = issued.iter().filter(|s| !live.contains(*s)).collect();
    assert!(
        thrown_away.is_empty(),
        "certificates issued but not installed: {thrown_away:?}"
    );
    assert_eq!(issued.len(), NAMES, "one certificate per name: {issued:?}");
}
