//! Unit tests of [`config`](super).

use super::*;

fn opts(args: &[&str]) -> Opts {
    let mut argv = vec!["vhostd", "run"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Run(o) => o,
        _ => unreachable!(),
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
    assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
    assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
    assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert!(parse_duration("5 weeks").is_err());
    assert!(parse_duration("5 parsecs").is_err());
    assert!(parse_duration("soon").is_err());
}

#[test]
fn reports_every_error_at_once() {
    let o = opts(&[
        "--conf-file",
        "/x\"y",
        "--http-port",
        "8080",
        "--https-port",
        "8080",
        "--nginx-cmd",
        "nginx",
        "--nginx-container",
        "n",
    ]);
    let e = Settings::from_opts(o, None).unwrap_err();
    assert_eq!(e.0.len(), 3, "{e}");
}

#[test]
fn a_non_loopback_admin_address_needs_a_token() {
    let e = Settings::from_opts(opts(&["--admin-addr", "0.0.0.0:9180"]), None).unwrap_err();
    let text = e.to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("--admin-token-file"), "{text}");
    let ok = opts(&["--admin-addr", "0.0.0.0:9180", "--admin-token-file", "/t"]);
    assert!(Settings::from_opts(ok, None).is_ok());
    assert!(Settings::from_opts(opts(&["--admin-addr", "[::1]:9180"]), None).is_ok());
}

#[test]
fn directory_precedence() {
    let s = Settings::from_opts(opts(&["--acme-staging"]), None).unwrap();
    assert_eq!(s.acme_directory, LETSENCRYPT_STAGING);
    let s = Settings::from_opts(opts(&[]), Some("https://ca/dir".into())).unwrap();
    assert_eq!(s.acme_directory, "https://ca/dir");
    let s = Settings::from_opts(
        opts(&["--acme-directory", "https://x/dir"]),
        Some("https://ca/dir".into()),
    )
    .unwrap();
    assert_eq!(s.acme_directory, "https://x/dir");
    assert_eq!(s.nginx, NginxMode::Container(None));
}
