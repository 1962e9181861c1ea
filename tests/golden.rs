//! Golden files for the pure core: container facts exactly as the real engine's `docker inspect`
//! gives them (tests/golden/inspect.json, captured from dockerd 20.10 / API 1.41) → the nginx
//! config text. Each case `tests/golden/*.case` is a header, a `----` line, and the expected text.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the expected parts (review the diff!).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bollard::models::ContainerInspectResponse;
use vhostd::facts::ContainerFacts;
use vhostd::host::HostName;
use vhostd::render::{self, CertFiles, RenderSettings, Renderer};
use vhostd::sites::{self, NginxReach};

fn inventory() -> Vec<ContainerFacts> {
    let raw = std::fs::read_to_string(dir().join("inspect.json")).unwrap();
    let list: Vec<ContainerInspectResponse> = serde_json::from_str(&raw).unwrap();
    list.into_iter()
        .map(|c| ContainerFacts::from_inspect(c).unwrap())
        .collect()
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A case header: `mode:` local|container, `containers:` names, `certs:` hosts with a certificate,
/// `https_port:` (default 443).
struct Case {
    reach_from_labelled_nginx: bool,
    containers: Vec<String>,
    certs: Vec<String>,
    https_port: u16,
}

fn parse_header(h: &str) -> Case {
    let mut c = Case {
        reach_from_labelled_nginx: false,
        containers: vec![],
        certs: vec![],
        https_port: 443,
    };
    for line in h
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (k, v) = line.split_once(':').unwrap();
        let words = || v.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        match k.trim() {
            "mode" => c.reach_from_labelled_nginx = v.trim() == "container",
            "containers" => c.containers = words(),
            "certs" => c.certs = words(),
            "https_port" => c.https_port = v.trim().parse().unwrap(),
            other => panic!("unknown header key {other}"),
        }
    }
    c
}

fn render_case(case: &Case, all: &[ContainerFacts]) -> (String, Vec<sites::Problem>) {
    let chosen: Vec<&ContainerFacts> = all
        .iter()
        .filter(|c| case.containers.contains(&c.name))
        .collect();
    assert_eq!(
        chosen.len(),
        case.containers.len(),
        "every container of the case is in inspect.json"
    );
    let reach = if case.reach_from_labelled_nginx {
        sites::reach_of(Some(
            sites::find_nginx(all, None).expect("a labelled nginx in inspect.json"),
        ))
    } else {
        NginxReach::Host
    };
    let s = sites::build(chosen, &reach, &Default::default());
    let certs: BTreeMap<HostName, CertFiles> = case
        .certs
        .iter()
        .map(|h| {
            let live = PathBuf::from("/etc/letsencrypt/live").join(h);
            (
                HostName::parse(h).unwrap(),
                CertFiles {
                    fullchain: live.join("fullchain.pem"),
                    privkey: live.join("privkey.pem"),
                },
            )
        })
        .collect();
    let settings = RenderSettings {
        http_port: 80,
        https_port: case.https_port,
        webroot: "/var/www".into(),
    };
    let text = Renderer::embedded()
        .render(&render::context(&s, &certs, &settings))
        .unwrap();
    (text, s.problems)
}

#[test]
fn golden_cases() {
    let all = inventory();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "golden cases present");
    let mut failed = Vec::new();
    for path in cases {
        let text = std::fs::read_to_string(&path).unwrap();
        let (header, expected) = text.split_once("\n----\n").expect("a ---- separator line");
        let (got, _) = render_case(&parse_header(header), &all);
        if update {
            std::fs::write(&path, format!("{header}\n----\n{got}")).unwrap();
        } else if got != expected {
            failed.push(format!(
                "{}:\n--- expected\n{expected}\n--- got\n{got}",
                path.display()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 to rewrite):\n{}",
        failed.join("\n")
    );
}

const GOOD: &[&str] = &["app1", "app2", "api", "grpc", "envlabel", "wild"];
const EVIL: &[(&str, &str)] = &[
    ("evil1", "VIRTUAL_HOST"),
    ("evil2", "VIRTUAL_HOST"),
    ("evil3", "VIRTUAL_HOST"),
    ("evil4", "VIRTUAL_PATH"),
    ("evil5", "VIRTUAL_HOST"),
    ("evil6", "VIRTUAL_PORT"),
    ("evil7", "HSTS"),
    ("evil8", "VIRTUAL_PATH"),
    ("evil9", "VIRTUAL_PROTO"),
    ("evil10", "HTTPS_METHOD"),
    ("evil11", "VIRTUAL_DEST"),
    ("evil12", "VIRTUAL_HOST"),
    ("evil13", "VIRTUAL_NETWORK"),
    ("evil14", "VIRTUAL_HOST"),
];

#[test]
fn hostile_containers_leave_the_others_byte_for_byte_unchanged() {
    let all = inventory();
    let case = |names: Vec<String>| Case {
        reach_from_labelled_nginx: false,
        containers: names,
        certs: vec!["app.example.com".into()],
        https_port: 443,
    };
    let good: Vec<String> = GOOD.iter().map(|s| s.to_string()).collect();
    let (clean, problems) = render_case(&case(good.clone()), &all);
    assert!(problems.is_empty());
    let mut with_evil = good;
    with_evil.extend(EVIL.iter().map(|(n, _)| n.to_string()));
    let (mixed, problems) = render_case(&case(with_evil), &all);
    assert_eq!(
        clean, mixed,
        "hostile containers changed the others' config"
    );
    for (name, key) in EVIL {
        assert!(
            problems
                .iter()
                .any(|p| p.container == *name && p.key == *key),
            "{name}: no problem reported for {key}: {problems:?}"
        );
        assert!(!mixed.contains(name), "{name} left a trace in the config");
    }
    for needle in [
        "include /x",
        "../",
        "return 200 $host",
        "add_header X y",
        "99999",
        "include /etc/passwd",
        "return 200",
        "net\"x",
        "bad..name",
    ] {
        assert!(
            !mixed.contains(needle),
            "injected text {needle:?} reached the config"
        );
    }
}

#[test]
fn healthy_upstreams_are_never_empty_blocks() {
    let all = inventory();
    let (text, _) = render_case(
        &Case {
            reach_from_labelled_nginx: true,
            containers: vec!["proxy".into(), "backonly".into()],
            certs: vec![],
            https_port: 443,
        },
        &all,
    );
    assert!(
        !text.contains("{\n}"),
        "an empty block was rendered:\n{text}"
    );
    assert!(text.contains("server_name backonly.example.com"));
    assert!(text.contains("return 503"));
}

/// Every golden output is a config the real nginx accepts (`nginx -t`), so the templates can
/// never hand nginx something it rejects.
#[test]
fn golden_outputs_pass_nginx_t() {
    let tmp = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["example.com".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(tmp.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(tmp.path().join("key.pem"), key.serialize_pem()).unwrap();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    cases.sort();
    for path in cases {
        let text = std::fs::read_to_string(&path).unwrap();
        let (_, expected) = text.split_once("\n----\n").unwrap();
        let mut conf = String::new();
        for line in expected.lines() {
            let l = if line.contains("ssl_certificate_key") {
                format!(
                    "    ssl_certificate_key \"{}/key.pem\";",
                    tmp.path().display()
                )
            } else if line.contains("ssl_certificate ") {
                format!("    ssl_certificate \"{}/cert.pem\";", tmp.path().display())
            } else {
                line.to_string()
            };
            conf.push_str(&l);
            conf.push('\n');
        }
        let p = tmp.path();
        std::fs::write(p.join("vhostd.conf"), conf).unwrap();
        std::fs::write(
            p.join("nginx.conf"),
            format!("pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n client_body_temp_path {d}/b;\n proxy_temp_path {d}/p;\n fastcgi_temp_path {d}/f;\n uwsgi_temp_path {d}/u;\n scgi_temp_path {d}/s;\n include {d}/vhostd.conf;\n}}\n", d = p.display()),
        )
        .unwrap();
        let out = std::process::Command::new("nginx")
            .args(["-t", "-q", "-e"])
            .arg(p.join("error.log"))
            .arg("-p")
            .arg(p)
            .arg("-c")
            .arg(p.join("nginx.conf"))
            .output()
            .expect("nginx is installed (scripts/test installs it)");
        assert!(
            out.status.success(),
            "{}: nginx -t rejected the golden output: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
