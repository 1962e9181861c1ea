//! Unit tests of label parsing: defaults, every key named, hostile and ambiguous values.

use super::*;

fn facts(labels: &[(&str, &str)], env: &[(&str, &str)]) -> ContainerFacts {
    ContainerFacts {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        network_mode: "bridge".into(),
        ..ContainerFacts::labelled("abc", "web", labels)
    }
}

#[test]
fn label_wins_over_env_and_defaults_apply() {
    let c = facts(
        &[("VIRTUAL_HOST", " a.com, ,B.com,a.com ")],
        &[("VIRTUAL_HOST", "env.com"), ("VIRTUAL_PORT", "8080")],
    );
    let r = parse(&c).unwrap().unwrap();
    assert_eq!(
        r.hosts.iter().map(HostName::as_str).collect::<Vec<_>>(),
        ["a.com", "b.com"]
    );
    assert_eq!(r.routes[0].port, 8080);
    assert_eq!(r.proto, Proto::Http);
    assert_eq!(r.routes[0].path, UrlPath::root());
    assert_eq!(r.https_method, HttpsMethod::Redirect);
    assert_eq!(r.hsts, Hsts(Some(DEFAULT_HSTS.into())));
}

#[test]
fn single_exposed_port_is_the_default() {
    let mut c = facts(&[("VIRTUAL_HOST", "a.com")], &[]);
    c.exposed_ports = vec!["3000/tcp".into()];
    assert_eq!(parse(&c).unwrap().unwrap().routes[0].port, 3000);
    c.exposed_ports = vec!["3000/tcp".into(), "4000/tcp".into()];
    assert_eq!(parse(&c).unwrap().unwrap().routes[0].port, 80);
}

#[test]
fn no_virtual_host_is_not_an_error() {
    assert_eq!(parse(&facts(&[], &[])).unwrap(), None);
}

#[test]
fn every_bad_key_is_named() {
    let c = facts(
        &[
            ("VIRTUAL_HOST", "a.com"),
            ("VIRTUAL_PORT", "0"),
            ("VIRTUAL_PROTO", "ftp"),
            ("VIRTUAL_PATH", "/a;b"),
            ("HTTPS_METHOD", "sometimes"),
            ("HSTS", "max-age=1\nX: y"),
            ("LETSENCRYPT_HOST", "b.com"),
        ],
        &[],
    );
    let keys: Vec<_> = parse(&c).unwrap_err().into_iter().map(|e| e.key).collect();
    assert_eq!(
        keys,
        [
            "VIRTUAL_PORT",
            "VIRTUAL_PATH",
            "VIRTUAL_PROTO",
            "HTTPS_METHOD",
            "HSTS",
            "LETSENCRYPT_HOST"
        ]
    );
}

#[test]
fn hostile_values_are_refused() {
    for (k, v) in [
        ("VIRTUAL_HOST", "../../etc"),
        ("VIRTUAL_HOST", "a.com;include /x"),
        ("VIRTUAL_HOST", "a.com\nb.com"),
        ("VIRTUAL_HOST", "$host"),
        ("VIRTUAL_PATH", "/../x"),
        ("VIRTUAL_PATH", "/x { }"),
        ("VIRTUAL_DEST", "/$1"),
        ("VIRTUAL_PATH", "/a\"b"),
        ("VIRTUAL_PATH", "/.well-known/acme-challenge/"),
        ("VIRTUAL_PATH", "/.well-known/acme-challenge/x"),
        ("VIRTUAL_NETWORK", "n;x"),
        ("LETSENCRYPT_EMAIL", "a@b.c\nx"),
    ] {
        let mut labels = vec![("VIRTUAL_HOST", "ok.com")];
        labels.retain(|(lk, _)| *lk != k);
        labels.push((k, v));
        let e = parse(&facts(&labels, &[])).unwrap_err();
        assert_eq!(e[0].key, k, "{k}={v:?}");
    }
}

fn one(k: &str, v: &str) -> Result<Option<Routes>, Vec<LabelError>> {
    let mut labels = vec![("VIRTUAL_HOST", "ok.com")];
    labels.retain(|(lk, _)| *lk != k);
    labels.push((k, v));
    parse(&facts(&labels, &[]))
}

#[test]
fn exact_syntax_for_every_key() {
    for (k, v) in [
        ("VIRTUAL_PORT", "+80"),
        ("VIRTUAL_PORT", "080"),
        ("VIRTUAL_PORT", "80\n"),
        ("VIRTUAL_PORT", " 81 "),
        ("VIRTUAL_HOST", "a.com\n"),
        ("VIRTUAL_PROTO", "http\n"),
        ("VIRTUAL_PROTO", " https"),
        ("VIRTUAL_HOST", "a\u{200b}b.com"),
        ("VIRTUAL_HOST", "ａ.com"),
        ("VIRTUAL_HOST", "a\u{ad}b.com"),
        ("VIRTUAL_HOST", "a.com\u{3002}b"),
        ("HTTPS_METHOD", "redirect "),
        ("HSTS", " max-age=1"),
        ("SSL_POLICY", "Mozilla-Strict"),
        ("SSL_POLICY", "mozilla-modern"),
        ("NETWORK_ACCESS", "private"),
        ("CERT_NAME", "../etc"),
        ("CERT_NAME", "a/b"),
        ("CERT_NAME", ".hidden"),
        ("VIRTUAL_ROOT", "/srv/$x"),
        ("VIRTUAL_NETWORK", "net\t"),
        ("ACME_PROFILE", "x\u{feff}"),
    ] {
        let e = one(k, v).unwrap_err();
        assert_eq!(e[0].key, k, "{k}={v:?} must be refused with its key: {e:?}");
    }
    for (k, len) in [("VIRTUAL_PATH", 5000), ("VIRTUAL_DEST", 5000)] {
        let v = format!("/{}", "a".repeat(len));
        assert_eq!(one(k, &v).unwrap_err()[0].key, k);
    }
    // A long error quotes only the start of the value.
    let e = one("VIRTUAL_PATH", &format!("/{}", "a".repeat(5000))).unwrap_err();
    assert!(e[0].problem.len() < 200, "{}", e[0].problem);
}

#[test]
fn new_keys_are_read() {
    let r = parse(&facts(
        &[
            ("VIRTUAL_HOST", "a.com"),
            ("VIRTUAL_PROTO", "fastcgi"),
            ("CERT_NAME", "wild.a.com"),
            ("SSL_POLICY", "Mozilla-Modern"),
            ("NETWORK_ACCESS", "internal"),
        ],
        &[],
    ))
    .unwrap()
    .unwrap();
    assert_eq!(r.proto, Proto::Fastcgi);
    assert_eq!(r.root, Some(UrlPath::parse(DEFAULT_ROOT).unwrap()));
    assert_eq!(r.cert_name.as_deref(), Some("wild.a.com"));
    assert_eq!(r.ssl_policy, SslPolicy::MozillaModern);
    assert_eq!(r.network_access, NetworkAccess::Internal);
    let r = one("VIRTUAL_ROOT", "/srv/app").unwrap().unwrap();
    assert_eq!(r.root, None, "VIRTUAL_ROOT only matters for fastcgi");
    assert_eq!(
        one("SSL_POLICY", "").unwrap().unwrap().ssl_policy,
        SslPolicy::MozillaIntermediate
    );
}

#[test]
fn multiports_replaces_host_port_path_and_dest() {
    let c = facts(
        &[
            ("VIRTUAL_HOST", "ignored.com"),
            ("VIRTUAL_PORT", "1"),
            ("VIRTUAL_PATH", "/ignored"),
            (
                "VIRTUAL_HOST_MULTIPORTS",
                "b.com:\n  /api:\n    port: 9000\n    dest: /\na.com:\n",
            ),
            ("LETSENCRYPT_HOST", "a.com"),
        ],
        &[],
    );
    let r = parse(&c).unwrap().unwrap();
    assert_eq!(
        r.hosts.iter().map(HostName::as_str).collect::<Vec<_>>(),
        ["b.com", "a.com"]
    );
    assert_eq!(r.routes[0].port, 9000);
    assert_eq!(r.routes[0].path.as_str(), "/api");
    assert_eq!(r.routes[1].port, 80, "no path: / on the default port");
    // Without VIRTUAL_HOST at all, MULTIPORTS alone routes the container.
    let c = facts(&[("VIRTUAL_HOST_MULTIPORTS", "{\"x.com\": null}")], &[]);
    assert_eq!(parse(&c).unwrap().unwrap().hosts.len(), 1);
    let c = facts(&[("VIRTUAL_HOST_MULTIPORTS", "x.com: [")], &[]);
    assert_eq!(parse(&c).unwrap_err()[0].key, "VIRTUAL_HOST_MULTIPORTS");
}
