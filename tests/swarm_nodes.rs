//! The Swarm beyond one node's routing: the shared certificate store on Swarm configs, and a
//! worker node (two dockerds in network namespaces this test creates, joined into one Swarm).

mod support;
mod swarm_support;

use std::time::{Duration, Instant};

use support::nginx::Nginx;
use support::vhostd::Vhostd;
use support::{scratch, wait_for};
use swarm_support::{Node, ONE_SWARM, T, TwoNodes, bundle};

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
