//! `cargo bench --bench render`: time to build sites and render the config for 1,000 and 10,000
//! hosts (one container each, two of every ten load-balanced pairs), pure core only; then a whole
//! reconcile's desired state (sites, certificate plan, reading every installed certificate,
//! render) for 1,000 hosts that all have a certificate on disk. Prints figures.

use std::collections::BTreeMap;
use std::time::Instant;

use vhostd::desired;
use vhostd::facts::ContainerFacts;
use vhostd::render::{self, RenderSettings, Renderer};
use vhostd::sites::{self, NginxReach};

fn containers(n: usize) -> Vec<ContainerFacts> {
    (0..n)
        .map(|i| ContainerFacts {
            id: format!("{i:064x}"),
            name: format!("app-{i}"),
            running: true,
            health: None,
            labels: BTreeMap::from([
                (
                    "VIRTUAL_HOST".to_string(),
                    format!("app-{}.bench.example.com", i - i % 10 / 8),
                ),
                ("VIRTUAL_PORT".to_string(), format!("{}", 10000 + i % 50000)),
            ]),
            env: BTreeMap::new(),
            exposed_ports: vec![],
            network_mode: "host".into(),
            networks: BTreeMap::new(),
        })
        .collect()
}

fn main() {
    let renderer = Renderer::embedded();
    let settings = RenderSettings {
        http_port: 80,
        https_port: 443,
        webroot: "/var/www".into(),
        default_host: None,
        http2: true,
        ipv6: false,
        trust_downstream_proxy: true,
        nginx_version: None,
    };
    for n in [1_000usize, 10_000] {
        let all = containers(n);
        let mut best = f64::MAX;
        let mut bytes = 0;
        let rounds = if n > 5000 { 5 } else { 20 };
        for _ in 0..rounds {
            let t = Instant::now();
            let s = sites::build(&all, &NginxReach::Host, &Default::default());
            let text = renderer
                .render(&render::context(&s, &BTreeMap::new(), &settings))
                .unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            bytes = text.len();
        }
        println!(
            "render {n:>6} containers: best of {rounds}: {:8.2} ms  ({} KiB of config)",
            best * 1000.0,
            bytes / 1024
        );
    }
    // Every host with its certificate in live/: what each reconcile reads and parses.
    let n = 1_000;
    let all = containers(n);
    let certs = tempfile::tempdir().unwrap();
    let mut hosts: Vec<String> = all
        .iter()
        .map(|c| c.labels["VIRTUAL_HOST"].clone())
        .collect();
    hosts.dedup();
    for h in &hosts {
        let live = certs.path().join("live").join(h);
        std::fs::create_dir_all(&live).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![h.clone()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(live.join("fullchain.pem"), cert.pem()).unwrap();
        std::fs::write(live.join("privkey.pem"), key.serialize_pem()).unwrap();
    }
    // Read once, as the daemon does (then refreshed only when a certificate changes).
    let t = Instant::now();
    let installed = vhostd::certfacts::CertFacts::load(certs.path());
    println!(
        "certificate facts read once: {:8.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let mut best = f64::MAX;
    let mut https = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let d = desired::compute(
            &all,
            &NginxReach::Host,
            &Default::default(),
            &renderer,
            &settings,
            &installed,
            &vhostd::snippets::Snippets::empty(certs.path(), certs.path()),
        );
        best = best.min(t.elapsed().as_secs_f64());
        https = d.https.len();
    }
    println!(
        "desired {n:>5} containers, {https} certificates served: best of 20: {:8.2} ms",
        best * 1000.0
    );
}
