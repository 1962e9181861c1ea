//! Golden files for the pure core: container facts exactly as the real engine's `docker inspect`
//! gives them (tests/golden/inspect.json, captured from dockerd 20.10 / API 1.41) → the nginx
//! config text, through the same `desired::compute` the daemon runs, with real certificate
//! files on disk. Each case `tests/golden/*.case` is a header, a `----` line, and the expected
//! text. `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the expected parts (review the
//! diff!); any other value compares.

mod support;

use std::path::{Path, PathBuf};

use bollard::models::ContainerInspectResponse;
use vhostd::certfacts::CertFacts;
use vhostd::desired;
use vhostd::facts::ContainerFacts;
use vhostd::host::HostName;
use vhostd::nginx_version::NginxVersion;
use vhostd::render::{RenderSettings, Renderer};
use vhostd::sites::{self, NginxReach, Problem};
use vhostd::snippets::Snippets;

/// Where the golden texts say certificates live; each run puts real files in a temp dir and
/// writes this prefix in its place.
const CERTS_DIR: &str = "/etc/letsencrypt";

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

/// A case header: `mode:` local|container, `containers:` names, `certs:` certificates on disk
/// (`HOST`, or `DIR=SAN,SAN` for `live/DIR/` holding those names), `https_port:` (443),
/// `default_host:`, `http2:` (true), `ipv6:` (false), `trust_downstream:` (true),
/// `nginx_version:` (unknown).
#[derive(Clone)]
struct Case {
    reach_from_labelled_nginx: bool,
    containers: Vec<String>,
    certs: Vec<String>,
    https_port: u16,
    default_host: Option<HostName>,
    http2: bool,
    ipv6: bool,
    trust_downstream: bool,
    nginx_version: Option<NginxVersion>,
}

impl Case {
    fn new(containers: &[&str]) -> Case {
        Case {
            reach_from_labelled_nginx: false,
            containers: containers.iter().map(|s| s.to_string()).collect(),
            certs: vec![],
            https_port: 443,
            default_host: None,
            http2: true,
            ipv6: false,
            trust_downstream: true,
            nginx_version: None,
        }
    }
}

fn parse_header(h: &str) -> Case {
    let mut c = Case::new(&[]);
    for line in h
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (k, v) = line.split_once(':').unwrap();
        let v = v.trim();
        let words = || v.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        match k.trim() {
            "mode" => c.reach_from_labelled_nginx = v == "container",
            "containers" => c.containers = words(),
            "certs" => c.certs = words(),
            "https_port" => c.https_port = v.parse().unwrap(),
            "default_host" => c.default_host = Some(HostName::parse(v).unwrap()),
            "http2" => c.http2 = v.parse().unwrap(),
            "ipv6" => c.ipv6 = v.parse().unwrap(),
            "trust_downstream" => c.trust_downstream = v.parse().unwrap(),
            "nginx_version" => {
                c.nginx_version = Some(NginxVersion::parse(&format!("nginx/{v}")).unwrap())
            }
            other => panic!("unknown header key {other}"),
        }
    }
    c
}

/// Real self-signed certificate files under `certs_dir/live/` for the case's `certs:`.
fn install_certs(case: &Case, certs_dir: &Path) {
    for entry in &case.certs {
        let (dir, sans) = match entry.split_once('=') {
            Some((d, s)) => (d.to_string(), s.split(',').map(str::to_string).collect()),
            None => (entry.clone(), vec![entry.clone()]),
        };
        support::self_signed(certs_dir, &dir, &sans);
    }
}

/// The case rendered by the daemon's own `desired::compute`, with the certificates at
/// `certs_dir` (real files): the text, and the problems found.
fn render_case(case: &Case, all: &[ContainerFacts], certs_dir: &Path) -> (String, Vec<Problem>) {
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
    let settings = RenderSettings {
        http_port: 80,
        https_port: case.https_port,
        webroot: "/var/www".into(),
        default_host: case.default_host.clone(),
        http2: case.http2,
        ipv6: case.ipv6,
        trust_downstream_proxy: case.trust_downstream,
        nginx_version: case.nginx_version,
    };
    let d = desired::compute(
        chosen,
        &reach,
        &Default::default(),
        &Renderer::embedded(),
        &settings,
        &CertFacts::load(certs_dir),
        &Snippets::empty(
            Path::new("/etc/nginx/vhost.d"),
            Path::new("/etc/nginx/htpasswd"),
        ),
    );
    (d.text.unwrap(), d.sites.problems)
}

/// The case rendered with real certificate files, and the same text with the temp dir written
/// as [`CERTS_DIR`] (what the golden file holds).
fn render_with_certs(
    case: &Case,
    all: &[ContainerFacts],
) -> (String, String, Vec<Problem>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    install_certs(case, &certs);
    let (text, problems) = render_case(case, all, &certs);
    let golden = text.replace(&certs.display().to_string(), CERTS_DIR);
    (text, golden, problems, tmp)
}

fn cases() -> Vec<(PathBuf, Case, String)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 15, "golden cases present");
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let (header, expected) = text.split_once("\n----\n").expect("a ---- separator line");
            (p.clone(), parse_header(header), expected.to_string())
        })
        .collect()
}

#[test]
fn golden_cases() {
    let all = inventory();
    // Only `1` rewrites: `UPDATE_GOLDEN=0` (or any other value) must still compare.
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failed = Vec::new();
    for (path, case, expected) in cases() {
        let (_, got, _, _tmp) = render_with_certs(&case, &all);
        if update {
            let text = std::fs::read_to_string(&path).unwrap();
            let (header, _) = text.split_once("\n----\n").unwrap();
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
/// Hostile containers in inspect.json and the key each must be refused for.
pub const EVIL: &[(&str, &str)] = &[
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
    ("evil15", "VIRTUAL_PORT"),
    ("evil16", "VIRTUAL_PROTO"),
    ("evil17", "VIRTUAL_HOST"),
    ("evil18", "VIRTUAL_PATH"),
    ("evil19", "VIRTUAL_HOST_MULTIPORTS"),
    ("evil20", "SSL_POLICY"),
    ("evil21", "VIRTUAL_ROOT"),
    ("evil22", "CERT_NAME"),
    ("evil23", "NETWORK_ACCESS"),
    ("evil24", "VIRTUAL_PORT"),
    ("evil25", "VIRTUAL_DEST"),
];

#[test]
fn hostile_containers_leave_the_others_byte_for_byte_unchanged() {
    let all = inventory();
    let mut case = Case::new(GOOD);
    case.certs = vec!["app.example.com".into()];
    let (_, clean, problems, _t1) = render_with_certs(&case, &all);
    assert!(problems.is_empty());
    case.containers
        .extend(EVIL.iter().map(|(n, _)| n.to_string()));
    let (_, mixed, problems, _t2) = render_with_certs(&case, &all);
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
        assert!(
            !mixed.contains(&format!("{name}.")),
            "{name} left a trace in the config"
        );
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
        "Bogus",
        "aaaaaaaaaa",
        "bbbbbbbbbb",
        "\u{200b}",
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
    let mut case = Case::new(&["proxy", "backonly"]);
    case.reach_from_labelled_nginx = true;
    let (_, text, _, _t) = render_with_certs(&case, &all);
    assert!(
        !text.contains("{\n}"),
        "an empty block was rendered:\n{text}"
    );
    assert!(text.contains("server_name backonly.example.com"));
    assert!(text.contains("return 503"));
}

/// Every golden case is a config the real nginx accepts (`nginx -t`), with the real certificate
/// files it names, so the templates can never hand nginx something it rejects. The text checked
/// is the golden text itself (only the certificates' directory differs) for every case rendered
/// for an nginx of the installed one's syntax; a case for another version (`http2 on;` from
/// 1.25.1) is checked as rendered for the installed nginx.
#[test]
fn golden_outputs_pass_nginx_t() {
    let all = inventory();
    let installed = support::nginx::version();
    let http2_class =
        |v: Option<NginxVersion>| v.is_some_and(|v| v >= NginxVersion::HTTP2_DIRECTIVE);
    let mut checked_exact = 0;
    for (path, mut case, expected) in cases() {
        let exact = http2_class(case.nginx_version) == http2_class(Some(installed));
        case.nginx_version = Some(installed);
        let (text, golden, _, tmp) = render_with_certs(&case, &all);
        if exact {
            assert_eq!(
                golden,
                expected,
                "{}: the text nginx checks is the golden text",
                path.display()
            );
            checked_exact += 1;
        }
        if let Err(e) = support::nginx::check(tmp.path(), &text) {
            panic!(
                "{}: nginx -t rejected the golden output: {e}",
                path.display()
            );
        }
    }
    assert!(checked_exact >= 14, "most cases are checked byte for byte");
}
