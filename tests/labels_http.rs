//! nginx-proxy parity of routing and TLS knobs, through the real `vhostd run`, a real nginx and
//! the private dockerd: `--default-host`, HTTP/2 negotiated by ALPN on the wire, `CERT_NAME`,
//! `--trust-downstream-proxy` (headers echoed by a CGI upstream), `NETWORK_ACCESS=internal`
//! from loopback, and `VIRTUAL_HOST_MULTIPORTS` with two ports in one container.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::docker::{self, Container, Engine};
use support::nginx::Nginx;
use support::vhostd::Vhostd;
use support::{free_port, http_get, scratch, wait_for, wait_http};

const T: Duration = Duration::from_secs(20);

fn setup(name: &str, extra: &[&str]) -> (std::path::PathBuf, Nginx, Vhostd) {
    let dir = scratch(name);
    let nginx = Nginx::start(&dir);
    let mut args = vec!["--no-acme"];
    args.extend_from_slice(extra);
    let v = Vhostd::start(&dir, &docker::shared().host, &nginx, &args);
    v.wait_ready();
    (dir, nginx, v)
}

/// A self-signed pair for `sans` at `certs/live/DIR/`, as a user would put it; returns the cert file.
fn user_cert(certs_dir: &Path, dir: &str, sans: &[&str]) -> std::path::PathBuf {
    let live = certs_dir.join("live").join(dir);
    std::fs::create_dir_all(&live).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
            .self_signed(&key)
            .unwrap();
    std::fs::write(live.join("fullchain.pem"), cert.pem()).unwrap();
    std::fs::write(live.join("privkey.pem"), key.serialize_pem()).unwrap();
    live.join("fullchain.pem")
}

/// `curl` over HTTPS to `host` on nginx's HTTPS port, trusting `ca`: (HTTP version, body).
fn curl_https(port: u16, host: &str, ca: &Path, extra: &[&str]) -> Option<(String, String)> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
        .args(extra)
        .args(["-w", "\n%{http_version}"])
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("curl is installed (scripts/testenv/up.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, version) = text.rsplit_once('\n')?;
    (out.status.success()).then(|| (version.to_string(), body.to_string()))
}

/// A busybox httpd whose `/cgi-bin/echo` prints the X-Forwarded-* headers it received.
fn echo_headers<'a>(
    e: &'a Engine,
    name: &str,
    port: u16,
    labels: &[(&str, &str)],
) -> Container<'a> {
    let mut args: Vec<String> = vec!["--network".into(), "host".into()];
    for (k, v) in labels {
        args.extend(["-l".into(), format!("{k}={v}")]);
    }
    args.extend([
        docker::IMAGE.into(),
        "sh".into(),
        "-c".into(),
        format!(
            "mkdir -p /w/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"xff=$HTTP_X_FORWARDED_FOR proto=$HTTP_X_FORWARDED_PROTO host=$HTTP_X_FORWARDED_HOST\"\\n' > /w/cgi-bin/echo && chmod +x /w/cgi-bin/echo && echo {name} > /w/index.html && exec httpd -f -p 127.0.0.1:{port} -h /w"
        ),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    e.run(name, &refs)
}

/// GET `path` with extra request header lines, raw HTTP/1.0: the body.
fn get_with_headers(port: u16, host: &str, path: &str, headers: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{headers}\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn default_host_answers_unknown_hosts_as_it_would_and_keeps_real_challenges() {
    let e = docker::shared();
    let deflt = "deflt.labels.test";
    let (dir, ngx, _v) = setup("default_host", &["--default-host", deflt]);
    let unknown = "nobody-knows.labels.test";
    wait_http(ngx.http_port, unknown, 503, None, T); // no container for the default host yet
    let other = e.site("lbl-dh-other", "other.labels.test");
    let d = e.site("lbl-dh-deflt", deflt);
    wait_http(ngx.http_port, unknown, 200, Some("lbl-dh-deflt"), T);
    wait_http(
        ngx.http_port,
        "other.labels.test",
        200,
        Some("lbl-dh-other"),
        T,
    );
    // A real host's challenge path is its own, never the default host's.
    let ch = dir.join("www/other.labels.test/.well-known/acme-challenge");
    std::fs::create_dir_all(&ch).unwrap();
    std::fs::write(ch.join("tok"), "other-token").unwrap();
    support::make_traversable(&dir.join("www"));
    let a = http_get(
        ngx.http_port,
        "other.labels.test",
        "/.well-known/acme-challenge/tok",
    );
    assert_eq!((a.status, a.body.as_str()), (200, "other-token"));
    // The default host gone: 503 as before.
    d.stop();
    wait_http(ngx.http_port, unknown, 503, None, T);
    // With a certificate the default host redirects to HTTPS, and so does an unknown host.
    user_cert(&dir.join("certs"), deflt, &[deflt]);
    let _d = e.site("lbl-dh-deflt2", deflt);
    let a = wait_http(ngx.http_port, unknown, 301, None, T);
    assert!(
        a.headers
            .contains(&format!("https://{unknown}:{}/", ngx.https_port)),
        "{a:?}"
    );
    drop(other);
}

#[test]
fn https_negotiates_http2_by_alpn_and_cert_name_serves_the_named_certificate() {
    let e = docker::shared();
    let (dir, ngx, v) = setup("http2_alpn", &[]);
    let host = "h2.labels-wild.test";
    // A wildcard certificate the user manages, served by name.
    let ca = user_cert(
        &dir.join("certs"),
        "labels-wild.test",
        &["*.labels-wild.test"],
    );
    let port = free_port();
    let _c = e.web(
        "lbl-h2",
        port,
        &[
            ("VIRTUAL_HOST", host),
            ("VIRTUAL_PORT", &port.to_string()),
            ("CERT_NAME", "labels-wild.test"),
            ("HTTPS_METHOD", "noredirect"),
        ],
    );
    let (version, body) = wait_for(T, "HTTPS with the named certificate", || {
        curl_https(ngx.https_port, host, &ca, &["--http2"])
    });
    assert_eq!((version.as_str(), body.trim()), ("2", "lbl-h2"));
    // ALPN on the wire, as openssl sees it.
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-alpn",
            "h2,http/1.1",
            "-servername",
            host,
            "-connect",
        ])
        .arg(format!("127.0.0.1:{}", ngx.https_port))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ALPN protocol: h2"), "{text}");
    // A CERT_NAME with no certificate: reported with container and key, host served over HTTP.
    let p2 = free_port();
    let _m = e.web(
        "lbl-h2-missing",
        p2,
        &[
            ("VIRTUAL_HOST", "missing.labels-wild.test"),
            ("VIRTUAL_PORT", &p2.to_string()),
            ("CERT_NAME", "no-such-cert"),
        ],
    );
    wait_http(
        ngx.http_port,
        "missing.labels-wild.test",
        200,
        Some("lbl-h2-missing"),
        T,
    );
    wait_for(T, "a CERT_NAME problem in status", || {
        let s = v.status().to_string();
        (s.contains("lbl-h2-missing") && s.contains("CERT_NAME") && s.contains("no-such-cert"))
            .then_some(())
    });
    assert!(
        !std::fs::read_to_string(ngx.conf_file())
            .unwrap()
            .contains("no-such-cert")
    );
}

#[test]
fn http2_false_speaks_http_1_1() {
    let e = docker::shared();
    let (dir, ngx, _v) = setup("http2_off", &["--http2=false"]);
    let host = "h1.labels.test";
    let ca = user_cert(&dir.join("certs"), host, &[host]);
    let _c = e.site("lbl-h1", host);
    let (version, _) = wait_for(T, "HTTPS", || {
        curl_https(ngx.https_port, host, &ca, &["--http2"])
    });
    assert_eq!(version, "1.1");
}

#[test]
fn trust_downstream_proxy_passes_x_forwarded_on_or_overwrites_it() {
    let e = docker::shared();
    let forged = "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: front.example\r\n";
    for (trust, flag, want) in [
        (
            true,
            "--trust-downstream-proxy=true",
            "xff=203.0.113.7, 127.0.0.1 proto=https host=front.example",
        ),
        (
            false,
            "--trust-downstream-proxy=false",
            "xff=127.0.0.1 proto=http host=trust.labels.test",
        ),
    ] {
        let (_dir, ngx, _v) = setup(&format!("trust_{trust}"), &[flag]);
        let port = free_port();
        let _c = echo_headers(
            e,
            "lbl-trust",
            port,
            &[
                ("VIRTUAL_HOST", "trust.labels.test"),
                ("VIRTUAL_PORT", &port.to_string()),
            ],
        );
        wait_http(
            ngx.http_port,
            "trust.labels.test",
            200,
            Some("lbl-trust"),
            T,
        );
        // Old nginx workers may still take a connection or two right after the reload.
        let body = wait_for(T, "the CGI echo through nginx", || {
            let b = get_with_headers(ngx.http_port, "trust.labels.test", "/cgi-bin/echo", forged);
            b.starts_with("xff=").then_some(b)
        });
        assert_eq!(body, want, "{flag}");
    }
}

#[test]
fn network_internal_lets_loopback_in_and_denies_the_rest() {
    let e = docker::shared();
    let (_dir, ngx, _v) = setup("internal", &[]);
    let port = free_port();
    let _c = e.web(
        "lbl-internal",
        port,
        &[
            ("VIRTUAL_HOST", "internal.labels.test"),
            ("VIRTUAL_PORT", &port.to_string()),
            ("NETWORK_ACCESS", "internal"),
        ],
    );
    // Every request here comes from 127.0.0.1, which is internal: it gets through.
    wait_http(
        ngx.http_port,
        "internal.labels.test",
        200,
        Some("lbl-internal"),
        T,
    );
    let conf = std::fs::read_to_string(ngx.conf_file()).unwrap();
    assert!(
        conf.contains("allow 127.0.0.0/8;") && conf.contains("deny all;"),
        "{conf}"
    );
}

#[test]
fn multiports_routes_hosts_and_paths_to_several_ports_of_one_container() {
    let e = docker::shared();
    let (_dir, ngx, _v) = setup("multiports", &[]);
    let (pa, pb) = (free_port(), free_port());
    let doc = format!(
        "mp.labels.test:\n  /:\n    port: {pa}\n  /b/:\n    port: \"{pb}\"\n    dest: /\nmp2.labels.test:\n  /:\n    port: {pb}\n"
    );
    let label = format!("VIRTUAL_HOST_MULTIPORTS={doc}");
    let _c = e.run(
        "lbl-multi",
        &[
            "--network", "host", "-l", &label, "-l", "VIRTUAL_HOST=ignored.labels.test",
            docker::IMAGE, "sh", "-c",
            &format!("mkdir -p /a /b && echo port-a > /a/index.html && echo port-b > /b/index.html && httpd -p 127.0.0.1:{pa} -h /a && exec httpd -f -p 127.0.0.1:{pb} -h /b"),
        ],
    );
    wait_http(ngx.http_port, "mp.labels.test", 200, Some("port-a"), T);
    wait_http(ngx.http_port, "mp2.labels.test", 200, Some("port-b"), T);
    let a = http_get(ngx.http_port, "mp.labels.test", "/b/");
    assert_eq!((a.status, a.body.trim()), (200, "port-b"));
    assert_eq!(
        http_get(ngx.http_port, "ignored.labels.test", "/").status,
        503
    );
}
