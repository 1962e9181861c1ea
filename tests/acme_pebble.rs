//! The certificate task against a real Pebble (with pebble-challtestsrv as DNS) validating
//! HTTP-01 through a real nginx serving the webroot. No part of the CA is faked.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use vhostd::acme::certinfo::CertInfo;
use vhostd::acme::{
    self, AcmeError, AcmeSettings, CertEvent, CertHandle, CertSpec, CertStatus, KeyType,
    RenewOutcome,
};
use vhostd::host::HostName;

use support::nginx::Nginx;
use support::pebble::{Pebble, PebbleOpts};

/// nginx serving the challenge webroot + Pebble validating against it.
struct Env {
    webroot: PathBuf,
    certs: PathBuf,
    nginx: Nginx,
    pebble: Pebble,
}

impl Env {
    fn start(name: &str, opts: PebbleOpts) -> Env {
        let dir = support::scratch(name);
        let webroot = dir.join("www");
        std::fs::create_dir_all(&webroot).unwrap();
        let nginx = Nginx::start(&dir);
        let conf = format!(
            "server {{\n  listen 127.0.0.1:{port};\n  server_name _;\n  \
             location ^~ /.well-known/acme-challenge/ {{ root {www}/$host; try_files $uri =404; }}\n  \
             location / {{ return 404; }}\n}}\n",
            port = nginx.http_port,
            www = webroot.display()
        );
        std::fs::write(nginx.dir.join("conf.d/acme.conf"), conf).unwrap();
        let st = Command::new("nginx")
            .args(nginx.args())
            .args(["-s", "reload"])
            .status()
            .unwrap();
        assert!(st.success(), "nginx reload");
        let ready = webroot.join("ready.test/.well-known/acme-challenge/ready");
        std::fs::create_dir_all(ready.parent().unwrap()).unwrap();
        support::make_traversable(ready.parent().unwrap());
        std::fs::write(&ready, "ok").unwrap();
        support::wait_for(Duration::from_secs(10), "nginx serving the webroot", || {
            (support::http_get(
                nginx.http_port,
                "ready.test",
                "/.well-known/acme-challenge/ready",
            )
            .body
                == "ok")
                .then_some(())
        });
        let pebble = Pebble::start(&dir, nginx.http_port, opts);
        Env {
            certs: dir.join("certs"),
            webroot,
            nginx,
            pebble,
        }
    }

    fn settings(&self) -> AcmeSettings {
        AcmeSettings {
            directory: self.pebble.directory_url.clone(),
            ca_bundle: Some(self.pebble.listener_ca.clone()),
            email: Some("ops@vhostd.test".into()),
            eab: None,
            profile: None,
            key_type: KeyType::EcdsaP256,
            certs_dir: self.certs.clone(),
            webroot: self.webroot.clone(),
            self_check: ([127, 0, 0, 1], self.nginx.http_port).into(),
            concurrency: 4,
            nginx_proxy_certs: None,
        }
    }
}

struct Task {
    handle: CertHandle,
    events: mpsc::Receiver<CertEvent>,
    _stop: watch::Sender<bool>,
}

fn spawn(settings: AcmeSettings) -> Task {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("vhostd=debug")
        .try_init();
    let (tx, events) = mpsc::channel(16);
    let (stop, stop_rx) = watch::channel(false);
    Task {
        handle: acme::spawn(settings, tx, stop_rx),
        events,
        _stop: stop,
    }
}

fn spec(names: &[&str]) -> CertSpec {
    let names: Vec<HostName> = names.iter().map(|n| HostName::parse(n).unwrap()).collect();
    CertSpec {
        key: names[0].clone(),
        names,
        email: None,
        profile: None,
        container: "app".into(),
    }
}

/// Waits (bounded) until the status of `key` satisfies `pred`; panics with the last status.
async fn wait_status(
    h: &CertHandle,
    key: &str,
    limit: Duration,
    pred: impl Fn(&CertStatus) -> bool,
) -> CertStatus {
    let end = tokio::time::Instant::now() + limit;
    loop {
        let st = h.status().into_iter().find(|s| s.key == key);
        if let Some(s) = st.as_ref().filter(|s| pred(s)) {
            return s.clone();
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out after {limit:?} waiting on {key}; last status: {st:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn next_event(rx: &mut mpsc::Receiver<CertEvent>) -> CertEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a CertEvent within 10 s")
        .expect("channel open")
}

/// Watches Pebble's order count for `window` and fails the moment it moves past `n`: "no new
/// order" holds over a whole window (the manager decides on every wake-up), not at one instant.
async fn orders_stay(pebble: &support::pebble::Pebble, n: usize, window: Duration, why: &str) {
    let end = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < end {
        assert_eq!(pebble.order_count(), n, "{why}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn serial_on_disk(certs: &Path, key: &str) -> String {
    let paths = acme::live_paths(certs, &HostName::parse(key).unwrap());
    CertInfo::from_pem(&std::fs::read(paths.cert).unwrap())
        .unwrap()
        .serial
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_san_certificate_then_restart_does_not_order_again() {
    let env = Env::start("acme_issue_restart", PebbleOpts::default());
    let key = "app.vhostd.test";
    let wanted = spec(&[key, "www.app.vhostd.test"]);
    let mut t = spawn(env.settings());
    t.handle.set_wanted(vec![wanted.clone()]);

    let st = wait_status(&t.handle, key, Duration::from_secs(60), |s| {
        s.state == "valid"
    })
    .await;
    assert_eq!(
        next_event(&mut t.events).await,
        CertEvent::Installed {
            key: wanted.key.clone()
        }
    );
    let live = acme::live_paths(&env.certs, &wanted.key);
    assert!(live.is_installed());
    let info = CertInfo::from_pem(&std::fs::read(&live.fullchain).unwrap()).unwrap();
    assert_eq!(info.sans, [key, "www.app.vhostd.test"]);
    assert!(
        info.issuer.contains("Pebble Intermediate"),
        "issuer {}",
        info.issuer
    );
    assert_eq!(st.serial.as_deref(), Some(info.serial.as_str()));
    assert_eq!(mode(&live.privkey), 0o600, "private key must be 0600");
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(env.pebble.root_file())
        .arg("-untrusted")
        .arg(&live.chain)
        .arg(&live.cert)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "chain must verify to Pebble's root: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let accounts: Vec<_> = std::fs::read_dir(env.certs.join("vhostd/accounts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(accounts.len(), 1);
    assert_eq!(
        mode(&accounts[0]),
        0o600,
        "account credentials must be 0600"
    );
    let left = std::fs::read_dir(env.webroot.join(key).join(".well-known/acme-challenge"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "token and probe files are removed");
    assert_eq!(env.pebble.order_count(), 1);

    // "Restart": a new task over the same directories. The certificate is valid and not due.
    drop(t);
    let t = spawn(env.settings());
    t.handle.set_wanted(vec![wanted.clone()]);
    let st = wait_status(&t.handle, key, Duration::from_secs(5), |_| true).await;
    assert_eq!(st.state, "valid", "{st:#?}");
    assert_eq!(st.serial.as_deref(), Some(info.serial.as_str()));
    assert!(
        st.next_renewal.unwrap() > OffsetDateTime::now_utc() + time::Duration::days(365),
        "5-year Pebble cert: {st:#?}"
    );
    orders_stay(
        &env.pebble,
        1,
        Duration::from_secs(3),
        "no second order after a restart",
    )
    .await;
    // ... nor after another restart (the state written by the first restart is as good).
    drop(t);
    let mut t = spawn(env.settings());
    t.handle.set_wanted(vec![wanted.clone()]);
    wait_status(&t.handle, key, Duration::from_secs(5), |s| {
        s.state == "valid"
    })
    .await;
    orders_stay(
        &env.pebble,
        1,
        Duration::from_secs(3),
        "no order after a second restart",
    )
    .await;
    assert!(t.events.try_recv().is_err(), "no event: nothing changed");
    assert_eq!(serial_on_disk(&env.certs, key), info.serial);

    // An admin's renew-now orders at once, with the stored account (no new registration).
    // Renew-now of a certificate issued within the hour: answered with what is there.
    let fresh = t.handle.renew_now(key, false).await.expect("renew now");
    assert!(matches!(fresh, RenewOutcome::Fresh { .. }), "{fresh:?}");
    assert_eq!(
        env.pebble.order_count(),
        1,
        "a fresh certificate is not re-ordered"
    );
    let forced = t.handle.renew_now(key, true).await.expect("renew --force");
    assert_eq!(forced, RenewOutcome::Issued);
    assert_eq!(
        next_event(&mut t.events).await,
        CertEvent::Installed {
            key: wanted.key.clone()
        }
    );
    assert_ne!(serial_on_disk(&env.certs, key), info.serial);
    assert_eq!(env.pebble.order_count(), 2);
    let registrations = env
        .pebble
        .log()
        .lines()
        .filter(|l| l.contains("accounts in memory"))
        .count();
    assert_eq!(registrations, 1, "the account is reused across restarts");
    assert!(matches!(
        t.handle.renew_now("other.vhostd.test", true).await,
        Err(AcmeError::NotWanted { .. })
    ));

    // Another ACME directory (as when moving from staging to production): the valid
    // certificate from the old one is replaced at once, not at its renewal time.
    drop(t);
    let serial_before = serial_on_disk(&env.certs, key);
    let mut settings = env.settings();
    settings.directory = settings.directory.replace("127.0.0.1", "localhost");
    let mut t = spawn(settings.clone());
    t.handle.set_wanted(vec![wanted.clone()]);
    assert_eq!(
        next_event(&mut t.events).await,
        CertEvent::Installed {
            key: wanted.key.clone()
        }
    );
    assert_ne!(serial_on_disk(&env.certs, key), serial_before);
    assert_eq!(env.pebble.order_count(), 3);
    let state =
        std::fs::read_to_string(env.certs.join("vhostd/certs/app.vhostd.test.json")).unwrap();
    assert!(
        state.contains(&format!("\"directory\": \"{}\"", settings.directory)),
        "the issuing directory is remembered: {state}"
    );
    // ... and once it is from the current directory, a restart orders nothing.
    drop(t);
    let t = spawn(settings.clone());
    t.handle.set_wanted(vec![wanted.clone()]);
    wait_status(&t.handle, key, Duration::from_secs(5), |s| {
        s.state == "valid"
    })
    .await;
    orders_stay(
        &env.pebble,
        3,
        Duration::from_secs(3),
        "no order after the switch settled",
    )
    .await;

    // A pair torn by a crash between the key and the certificate writes is not "installed":
    // the next start orders a matching pair instead of leaving nginx a key that does not fit.
    drop(t);
    let live = acme::live_paths(&env.certs, &wanted.key);
    let stray = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&live.privkey, stray.serialize_pem()).unwrap();
    let mut t = spawn(settings);
    t.handle.set_wanted(vec![wanted.clone()]);
    assert_eq!(
        next_event(&mut t.events).await,
        CertEvent::Installed {
            key: wanted.key.clone()
        }
    );
    assert_eq!(env.pebble.order_count(), 4);
    let key_now = std::fs::read_to_string(&live.privkey).unwrap();
    assert_ne!(key_now, stray.serialize_pem());
    assert!(!acme::certinfo::key_mismatch(
        &std::fs::read(&live.fullchain).unwrap(),
        &key_now
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_self_check_places_no_order() {
    let env = Env::start("acme_self_check", PebbleOpts::default());
    let key = "broken.vhostd.test";
    let mut settings = env.settings();
    settings.self_check = ([127, 0, 0, 1], support::free_port()).into(); // nothing listens there
    let t = spawn(settings);
    t.handle.set_wanted(vec![spec(&[key])]);
    let st = wait_status(&t.handle, key, Duration::from_secs(20), |s| {
        s.state == "self-check failed"
    })
    .await;
    let err = st.last_error.clone().unwrap_or_default();
    assert!(
        err.contains("self-check for broken.vhostd.test failed") && err.contains("refused"),
        "{err}"
    );
    assert_eq!(st.attempts, 0, "a self-check failure is not a CA failure");
    assert!(st.next_attempt.is_some());
    assert_eq!(
        env.pebble.order_count(),
        0,
        "no order while the self-check fails"
    );
    assert!(!acme::live_paths(&env.certs, &HostName::parse(key).unwrap()).is_installed());
    let state =
        std::fs::read_to_string(env.certs.join("vhostd/certs/broken.vhostd.test.json")).unwrap();
    assert!(
        state.contains("\"self_check_failures\": 1"),
        "persisted: {state}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_certificate_is_renewed_before_expiry() {
    let env = Env::start(
        "acme_short_lived",
        PebbleOpts {
            validity_secs: Some(40),
            ..Default::default()
        },
    );
    let key = "short.vhostd.test";
    let mut t = spawn(env.settings());
    t.handle.set_wanted(vec![spec(&[key])]);
    let first = wait_status(&t.handle, key, Duration::from_secs(60), |s| {
        s.state == "valid"
    })
    .await;
    assert_eq!(
        next_event(&mut t.events).await,
        CertEvent::Installed {
            key: HostName::parse(key).unwrap()
        }
    );
    let (nb, na) = (first.not_before.unwrap(), first.not_after.unwrap());
    assert!(
        na - nb <= time::Duration::seconds(41),
        "Pebble issued a short certificate: {first:#?}"
    );
    assert_eq!(
        first.next_renewal,
        Some(nb + (na - nb) / 2),
        "half the lifetime for short certificates"
    );
    let renewed = wait_status(&t.handle, key, Duration::from_secs(60), |s| {
        s.serial != first.serial && s.state == "valid"
    })
    .await;
    let now = OffsetDateTime::now_utc();
    assert!(
        now < na,
        "renewed before the first certificate expired ({now} vs {na})"
    );
    assert!(renewed.not_after.unwrap() > na);
    assert_eq!(
        next_event(&mut t.events).await,
        CertEvent::Installed {
            key: HostName::parse(key).unwrap()
        }
    );
    assert_eq!(serial_on_disk(&env.certs, key), renewed.serial.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_ca_backs_off_and_keeps_running() {
    let env = Env::start("acme_ca_down", PebbleOpts::default());
    let key = "down.vhostd.test";
    let mut settings = env.settings();
    settings.directory = format!("https://127.0.0.1:{}/dir", support::free_port());
    let t = spawn(settings);
    t.handle.set_wanted(vec![spec(&[key])]);
    let st = wait_status(&t.handle, key, Duration::from_secs(20), |s| {
        s.state == "backoff"
    })
    .await;
    assert_eq!(st.attempts, 1);
    assert!(
        st.last_error
            .as_deref()
            .unwrap_or("")
            .contains("ACME account"),
        "{st:#?}"
    );
    let wait = st.next_attempt.unwrap() - OffsetDateTime::now_utc();
    assert!(
        wait > time::Duration::seconds(30) && wait <= time::Duration::seconds(60),
        "first backoff step is 1 min: {wait}"
    );
    // The task is alive and answers; renew-now (even forced) never bypasses the backoff.
    for force in [false, true] {
        let e = t.handle.renew_now(key, force).await.unwrap_err();
        assert!(matches!(e, AcmeError::BackingOff { .. }), "{e}");
        assert!(
            e.to_string().contains("ACME account"),
            "names the last error: {e}"
        );
    }
    let st = wait_status(&t.handle, key, Duration::from_secs(5), |_| true).await;
    assert_eq!((st.state.as_str(), st.attempts), ("backoff", 1), "{st:#?}");
}

/// Issue 7 item 1: a burst of renew-now places at most one order per certificate; `force` orders
/// a fresh certificate, but concurrent forced requests still share one order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_now_is_idempotent_and_force_is_one_order_at_a_time() {
    let env = Env::start("acme_renew_idem", PebbleOpts::default());
    let key = "idem.vhostd.test";
    let mut t = spawn(env.settings());
    t.handle.set_wanted(vec![spec(&[key])]);
    wait_status(&t.handle, key, Duration::from_secs(60), |s| {
        s.state == "valid"
    })
    .await;
    next_event(&mut t.events).await;
    assert_eq!(env.pebble.order_count(), 1);

    let burst: Vec<_> = (0..11)
        .map(|_| {
            let h = t.handle.clone();
            tokio::spawn(async move { h.renew_now(key, false).await })
        })
        .collect();
    for b in burst {
        let r = b.await.unwrap().expect("answered");
        assert!(matches!(r, RenewOutcome::Fresh { .. }), "{r:?}");
    }
    orders_stay(
        &env.pebble,
        1,
        Duration::from_secs(2),
        "11 renew-now placed an order",
    )
    .await;

    let forced: Vec<_> = (0..5)
        .map(|_| {
            let h = t.handle.clone();
            tokio::spawn(async move { h.renew_now(key, true).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for f in forced {
        outcomes.push(f.await.unwrap().expect("forced renew"));
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == RenewOutcome::Issued)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RenewOutcome::Issued | RenewOutcome::Joined))
    );
    assert_eq!(
        env.pebble.order_count(),
        2,
        "five concurrent --force: one order"
    );
    assert_eq!(env.pebble.issued_count(), 2);
}
