//! Property test (proptest) of label validation end to end: random label sets — unicode,
//! control and invisible characters, `;{}$"'\#`, newlines, `..`, huge values, numbers in every
//! spelling, MULTIPORTS documents — in the real engine's inspect shape (a `docker inspect` of
//! tests/golden/inspect.json with its labels and env replaced), through `desired::compute` and
//! the real `nginx -t`. Properties: every accepted container renders a config nginx accepts;
//! every refused one is reported with one of its keys; no value leaves its slot.
//! `VHOSTD_PROPTEST_CASES=N` runs N cases (default 48).

mod support;

use std::collections::BTreeMap;

use bollard::models::ContainerInspectResponse;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use vhostd::certfacts::CertFacts;
use vhostd::desired;
use vhostd::facts::ContainerFacts;
use vhostd::render::{RenderSettings, Renderer};
use vhostd::sites::NginxReach;
use vhostd::snippets::Snippets;

const KEYS: &[&str] = &[
    "VIRTUAL_PORT",
    "VIRTUAL_PROTO",
    "VIRTUAL_PATH",
    "VIRTUAL_DEST",
    "VIRTUAL_ROOT",
    "HTTPS_METHOD",
    "HSTS",
    "LETSENCRYPT_EMAIL",
    "ACME_PROFILE",
    "CERT_NAME",
    "SSL_POLICY",
    "NETWORK_ACCESS",
    "VIRTUAL_NETWORK",
];

/// Keys a conflict with another container or an unreachable network is reported under.
const SHARED_KEYS: &[&str] = &[
    "VIRTUAL_PROTO",
    "VIRTUAL_DEST",
    "VIRTUAL_ROOT",
    "NETWORK_ACCESS",
    "VIRTUAL_NETWORK",
];

/// Every directive the templates write: any other first word on a line is injected text.
const DIRECTIVES: &[&str] = &[
    "map",
    "default",
    "''",
    "upstream",
    "server",
    "keepalive",
    "listen",
    "server_name",
    "server_tokens",
    "location",
    "return",
    "ssl_reject_handshake",
    "root",
    "default_type",
    "try_files",
    "proxy_pass",
    "proxy_http_version",
    "proxy_set_header",
    "grpc_pass",
    "grpc_set_header",
    "uwsgi_pass",
    "uwsgi_param",
    "fastcgi_pass",
    "fastcgi_keep_conn",
    "fastcgi_param",
    "allow",
    "deny",
    "ssl_certificate",
    "ssl_certificate_key",
    "ssl_protocols",
    "ssl_ciphers",
    "ssl_prefer_server_ciphers",
    "ssl_session_cache",
    "add_header",
    "http2",
    "server_names_hash_bucket_size",
    "}",
];

fn hostile_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(";".to_string()),
        Just("{".into()),
        Just("}".into()),
        Just("$host".into()),
        Just("\"".into()),
        Just("'".into()),
        Just("\\".into()),
        Just("#".into()),
        Just("\n".into()),
        Just("\r\n".into()),
        Just("\t".into()),
        Just("..".into()),
        Just("../".into()),
        Just(" ".into()),
        Just("\u{200b}".into()),
        Just("\u{feff}".into()),
        Just("\u{202e}".into()),
        Just("\u{a0}".into()),
        Just("ü".into()),
        Just("ａ".into()),
        Just("。".into()),
        Just("\u{0}".into()),
        Just("\u{7f}".into()),
        Just("include /etc/passwd;".into()),
        Just("return 200 x;".into()),
        Just("x".repeat(5000)),
        Just("/".into()),
        Just(".".into()),
        Just(",".into()),
        "[a-z0-9]{1,12}",
        "\\PC{1,6}",
    ]
}

fn number() -> impl Strategy<Value = String> {
    let odd = [
        "+80", "080", "80\n", " 81 ", "0x50", "８０", "1e3", "-1", "0", "65536", "8_0", "٨٠", "80 ",
    ];
    prop_oneof![
        6 => (1u32..70000).prop_map(|n| n.to_string()),
        1 => proptest::sample::select(odd.to_vec()).prop_map(String::from),
    ]
}

/// A value for `key`: mostly plausible, often hostile, sometimes a mix of both.
fn value(key: &'static str) -> BoxedStrategy<String> {
    let plausible: BoxedStrategy<String> = match key {
        "VIRTUAL_PORT" => number().boxed(),
        "VIRTUAL_PROTO" => prop_oneof![
            Just("http"),
            Just("https"),
            Just("grpc"),
            Just("uwsgi"),
            Just("fastcgi"),
            Just("ftp")
        ]
        .prop_map(String::from)
        .boxed(),
        "VIRTUAL_PATH" | "VIRTUAL_DEST" | "VIRTUAL_ROOT" => "(/[a-z0-9._~-]{0,8}){1,3}/?".boxed(),
        "HTTPS_METHOD" => prop_oneof![
            Just("redirect"),
            Just("noredirect"),
            Just("nohttp"),
            Just("nohttps")
        ]
        .prop_map(String::from)
        .boxed(),
        "HSTS" => prop_oneof![
            Just("off".to_string()),
            "max-age=[0-9]{1,8}(; includeSubDomains)?"
        ]
        .boxed(),
        "SSL_POLICY" => prop_oneof![
            Just("Mozilla-Modern"),
            Just("Mozilla-Old"),
            Just("AWS-FS-1-2-Res-2020-10"),
            Just("Mozilla-Nope")
        ]
        .prop_map(String::from)
        .boxed(),
        "NETWORK_ACCESS" => prop_oneof![Just("internal"), Just("external"), Just("everyone")]
            .prop_map(String::from)
            .boxed(),
        "LETSENCRYPT_EMAIL" => "[a-z]{1,8}@[a-z]{1,8}\\.test".boxed(),
        _ => "[a-z0-9.-]{1,20}".boxed(),
    };
    prop_oneof![
        8 => plausible.clone(),
        1 => hostile_piece(),
        1 => (plausible, hostile_piece(), any::<bool>()).prop_map(|(p, h, front)| if front { h + &p } else { p + &h }),
    ]
    .boxed()
}

fn host_value(i: usize) -> BoxedStrategy<String> {
    let marker = format!("mk{i}x");
    let name = "[a-z0-9-]{1,10}".prop_map(move |s| format!("{marker}{s}.prop.test"));
    prop_oneof![
        4 => name.clone(),
        2 => (name.clone(), hostile_piece()).prop_map(|(n, h)| n + &h),
        1 => (name.clone(), name).prop_map(|(a, b)| format!("{a}, {b}")),
    ]
    .boxed()
}

fn multiports(i: usize) -> BoxedStrategy<String> {
    (
        host_value(i),
        value("VIRTUAL_PATH"),
        number(),
        value("VIRTUAL_DEST"),
    )
        .prop_map(|(h, p, port, d)| {
            format!("{h:?}:\n  {p:?}:\n    port: {port:?}\n    dest: {d:?}\n")
        })
        .boxed()
}

/// One container: (labels, env) — each key goes to a label or an env var.
fn container(i: usize) -> BoxedStrategy<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let keys: Vec<BoxedStrategy<Option<(String, String, bool)>>> = KEYS
        .iter()
        .map(|k| {
            proptest::option::weighted(0.15, (value(k), any::<bool>()))
                .prop_map(move |o| o.map(|(v, env)| (k.to_string(), v, env)))
                .boxed()
        })
        .collect();
    let hostish = prop_oneof![
        5 => host_value(i).prop_map(|h| ("VIRTUAL_HOST".to_string(), h)),
        1 => multiports(i).prop_map(|m| ("VIRTUAL_HOST_MULTIPORTS".to_string(), m)),
    ];
    (hostish, keys, any::<bool>())
        .prop_map(|((hk, hv), keys, env_host)| {
            let (mut labels, mut env) = (BTreeMap::new(), BTreeMap::new());
            if env_host {
                env.insert(hk, hv)
            } else {
                labels.insert(hk, hv)
            };
            for (k, v, in_env) in keys.into_iter().flatten() {
                if in_env {
                    env.insert(k, v)
                } else {
                    labels.insert(k, v)
                };
            }
            (labels, env)
        })
        .boxed()
}

/// The engine's inspect shape: app1 of inspect.json with this id, name, labels and env.
fn inspect(
    i: usize,
    labels: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
) -> ContainerFacts {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/inspect.json"
    ))
    .unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_str(&raw).unwrap();
    let mut c = all.into_iter().find(|c| c["Name"] == "/app1").unwrap();
    c["Id"] = format!("{i:064x}").into();
    c["Name"] = format!("/prop{i}").into();
    c["Config"]["Labels"] = serde_json::to_value(labels).unwrap();
    let mut e = vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    e.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    c["Config"]["Env"] = serde_json::to_value(e).unwrap();
    let c: ContainerInspectResponse = serde_json::from_value(c).unwrap();
    ContainerFacts::from_inspect(c).unwrap()
}

/// Every line is one directive the templates write (quoted text removed), never two.
fn check_lines(text: &str) -> Result<(), String> {
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let unquoted: String = line.split('"').step_by(2).collect();
        let first = unquoted.split_whitespace().next().unwrap_or("");
        if !DIRECTIVES.contains(&first) {
            return Err(format!("unknown directive line {line:?}"));
        }
        if unquoted.matches(';').count() > 1 || (unquoted.contains(';') && unquoted.contains('{')) {
            return Err(format!("more than one directive on {line:?}"));
        }
    }
    Ok(())
}

/// Global flags drawn per case: `--ipv6`, `--trust-downstream-proxy`, `--http2`, and whether
/// the first container's first name is `--default-host`.
type Flags = (bool, bool, bool, bool);

fn settings(
    (ipv6, trust, http2, _): Flags,
    default_host: Option<vhostd::host::HostName>,
) -> RenderSettings {
    RenderSettings {
        http_port: 80,
        https_port: 443,
        webroot: "/var/www".into(),
        default_host,
        http2,
        ipv6,
        trust_downstream_proxy: trust,
        nginx_version: Some(support::nginx::version()),
    }
}

type Sets = Vec<(BTreeMap<String, String>, BTreeMap<String, String>)>;

fn one_case(sets: &Sets, flags: Flags, scratch: &std::path::Path) -> Result<(), TestCaseError> {
    let facts: Vec<ContainerFacts> = sets
        .iter()
        .enumerate()
        .map(|(i, (l, e))| inspect(i, l, e))
        .collect();
    let certs = scratch.join("certs");
    let default_host = flags
        .3
        .then(|| vhostd::labels::parse(&facts[0]).ok().flatten())
        .flatten()
        .map(|r| r.hosts[0].clone());
    let d = desired::compute(
        &facts,
        &NginxReach::Host,
        &Default::default(),
        &Renderer::embedded(),
        &settings(flags, default_host),
        &CertFacts::load(&certs),
        &Snippets::empty(&scratch.join("vhost.d"), &scratch.join("htpasswd")),
    );
    let text = d.text.map_err(|e| TestCaseError::fail(e.to_string()))?;
    let accepted: Vec<&str> = d.sites.routes.iter().map(|(n, _)| n.as_str()).collect();
    for (name, routes) in &d.sites.routes {
        let i: usize = name["prop".len()..].parse().unwrap();
        let (labels, env) = &sets[i];
        let raw = |k: &str| {
            labels
                .get(k)
                .or_else(|| env.get(k))
                .filter(|v| !v.is_empty())
        };
        for r in &routes.routes {
            // A value lands unchanged in its own slot: `location PATH {`, `proxy_pass …DEST;`.
            let loc = format!("    location {} {{", r.path);
            prop_assert!(text.contains(&loc), "{name}: {loc:?} missing");
            if !labels.contains_key("VIRTUAL_HOST_MULTIPORTS")
                && !env.contains_key("VIRTUAL_HOST_MULTIPORTS")
            {
                prop_assert_eq!(
                    raw("VIRTUAL_PATH").map(String::as_str).unwrap_or("/"),
                    r.path.as_str()
                );
                prop_assert_eq!(
                    raw("VIRTUAL_DEST").map(String::as_str),
                    r.dest.as_ref().map(|d| d.as_str())
                );
            }
            if let Some(dest) = &r.dest
                && matches!(
                    routes.proto,
                    vhostd::labels::Proto::Http | vhostd::labels::Proto::Https
                )
            {
                let line = text
                    .lines()
                    .find(|l| l.contains("proxy_pass") && l.ends_with(&format!("{dest};")));
                prop_assert!(
                    line.is_some(),
                    "{name}: dest {dest} not at the end of a proxy_pass"
                );
            }
            let server_name = format!("    server_name {};", r.host);
            prop_assert!(
                text.contains(&server_name),
                "{name}: {server_name:?} missing"
            );
        }
    }
    for (i, (labels, env)) in sets.iter().enumerate() {
        let name = format!("prop{i}");
        let marker = format!("mk{i}x");
        if accepted.contains(&name.as_str()) {
            continue;
        }
        let problems: Vec<_> = d
            .sites
            .problems
            .iter()
            .filter(|p| p.container == name)
            .collect();
        prop_assert!(
            !problems.is_empty(),
            "{name} left out without a problem: {labels:?} {env:?}"
        );
        for p in &problems {
            let set = labels.contains_key(&p.key)
                || env.contains_key(&p.key)
                || SHARED_KEYS.contains(&p.key.as_str());
            prop_assert!(
                set,
                "{name}: problem names {} which it does not set: {p:?}",
                p.key
            );
        }
        prop_assert!(
            !text.contains(&name),
            "refused {name} left a trace in the config"
        );
        prop_assert!(
            !text.contains(&marker),
            "a name of refused {name} reached the config"
        );
    }
    check_lines(&text).map_err(TestCaseError::fail)?;
    support::nginx::check(scratch, &text)
        .map_err(|e| TestCaseError::fail(format!("nginx -t: {e}\n{text}")))?;
    Ok(())
}

#[test]
fn random_label_sets_render_configs_nginx_accepts_and_refusals_name_their_key() {
    let cases = std::env::var("VHOSTD_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let scratch = tempfile::tempdir().unwrap();
    let strategy = (
        (1usize..=4).prop_flat_map(|n| (0..n).map(container).collect::<Vec<_>>()),
        any::<Flags>(),
    );
    let accepted = std::cell::Cell::new(0usize);
    let refused = std::cell::Cell::new(0usize);
    runner
        .run(&strategy, |(sets, flags)| {
            let r = one_case(&sets, flags, scratch.path());
            // Counted for the summary line only.
            let facts: Vec<ContainerFacts> = sets
                .iter()
                .enumerate()
                .map(|(i, (l, e))| inspect(i, l, e))
                .collect();
            for f in &facts {
                match vhostd::labels::parse(f) {
                    Ok(Some(_)) => accepted.set(accepted.get() + 1),
                    _ => refused.set(refused.get() + 1),
                }
            }
            r
        })
        .unwrap();
    let (accepted, refused) = (accepted.get(), refused.get());
    println!("{cases} cases: {accepted} containers accepted, {refused} refused");
    assert!(
        accepted > 0 && refused > 0,
        "the generator covers both outcomes"
    );
}
