//! `cargo bench --bench render`: time to build sites and render the config for 1,000 and 10,000
//! hosts (one container each, two of every ten load-balanced pairs), pure core only. Prints figures.

use std::collections::BTreeMap;
use std::time::Instant;

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
}
