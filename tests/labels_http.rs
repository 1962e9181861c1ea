//! nginx-proxy parity of routing and TLS knobs, through the real `vhostd run`, a real nginx and
//! the private dockerd: `--default-host`, HTTP/2 negotiated by ALPN on the wire, `CERT_NAME`,
//! `--trust-downstream-proxy` (headers echoed by a CGI upstream), `NETWORK_ACCESS=internal`
//! from loopback, `VIRTUAL_HOST_MULTIPORTS` with two ports in one container, `--ipv6` on `[::1]`,
//! and `VIRTUAL_PROTO=fastcgi`/`uwsgi` against minimal FastCGI/uwsgi servers run by the test.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::docker::{self, Container, Engine};
use support::vhostd::setup;
use support::{free_port, http_get, http_get_with, wait_for, wait_http};

const T: Duration = Duration::from_secs(20);

/// A self-signed pair for `sans` at `certs/live/DIR/`, as a user would put it; returns the cert file.
fn user_cert(certs_dir: &Path, dir: &str, sans: &[&str]) -> std::path::PathBuf {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    support::self_signed(certs_dir, dir, &sans)
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
    // ALPN on the wire, as openssl sees it. Retried: an nginx worker of the generation before the
    // reload may still take this connection and know no server for the name yet.
    let text = wait_for(T, "openssl to negotiate ALPN h2", || {
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
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("ALPN protocol: h2").then_some(text)
    });
    assert!(text.contains("ALPN protocol: h2"), "{text}");
    // The default policy (Mozilla-Intermediate) reaches TLS 1.3 (the port's default server must
    // offer it: nginx negotiates the version there).
    assert!(text.contains("New, TLSv1.3"), "{text}");
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

/// `openssl s_client` to `host` on `port` with one protocol flag: the negotiated protocol, if any.
fn tls_handshake(port: u16, host: &str, flag: &str) -> Option<String> {
    let out = Command::new("openssl")
        .args(["s_client", flag, "-servername", host, "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.starts_with("New, "))?;
    let proto = line
        .trim_start_matches("New, ")
        .split(',')
        .next()?
        .to_string();
    (proto != "(NONE)").then_some(proto)
}

#[test]
fn ssl_policy_mozilla_modern_allows_only_tls_1_3_on_the_wire() {
    let e = docker::shared();
    let (dir, ngx, _v) = setup("ssl_policy", &[]);
    let host = "modern.labels.test";
    user_cert(&dir.join("certs"), host, &[host]);
    let port = free_port();
    let _c = e.web(
        "lbl-modern",
        port,
        &[
            ("VIRTUAL_HOST", host),
            ("VIRTUAL_PORT", &port.to_string()),
            ("SSL_POLICY", "Mozilla-Modern"),
        ],
    );
    let proto = wait_for(T, "a TLS 1.3 handshake", || {
        tls_handshake(ngx.https_port, host, "-tls1_3")
    });
    assert_eq!(proto, "TLSv1.3");
    assert_eq!(
        tls_handshake(ngx.https_port, host, "-tls1_2"),
        None,
        "TLS 1.2 must be refused"
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
            let a = http_get_with(ngx.http_port, "trust.labels.test", "/cgi-bin/echo", forged);
            let b = a.body.trim().to_string();
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
    let workers = ngx.workers();
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
    // An old nginx worker (config from before the container) still accepts for a moment.
    ngx.wait_workers_replaced(&workers);
    let a = http_get(ngx.http_port, "mp.labels.test", "/b/");
    assert_eq!((a.status, a.body.trim()), (200, "port-b"));
    assert_eq!(
        http_get(ngx.http_port, "ignored.labels.test", "/").status,
        503
    );
}

#[test]
fn ipv6_listeners_answer_on_the_ipv6_loopback() {
    let e = docker::shared();
    let (_dir, ngx, _v) = setup("ipv6", &["--ipv6"]);
    let _c = e.site("lbl-ipv6", "v6.labels.test");
    wait_http(ngx.http_port, "v6.labels.test", 200, Some("lbl-ipv6"), T);
    wait_for(T, "an answer on [::1]", || {
        let mut s = TcpStream::connect(("::1", ngx.http_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET / HTTP/1.0\r\nHost: v6.labels.test\r\n\r\n").ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        raw.contains("lbl-ipv6").then_some(())
    });
}

/// A one-request-at-a-time upstream on 127.0.0.1 speaking `answer`'s protocol; returns its port.
fn serve(answer: fn(&mut TcpStream) -> Option<()>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                while answer(&mut s).is_some() {}
            });
        }
    });
    port
}

fn read_n(s: &mut TcpStream, n: usize) -> Option<Vec<u8>> {
    let mut b = vec![0; n];
    s.read_exact(&mut b).ok()?;
    Some(b)
}

/// One FastCGI request (records until an empty STDIN): answers with the params it got.
fn fastcgi_answer(s: &mut TcpStream) -> Option<()> {
    let mut params = Vec::new();
    let mut id: [u8; 2];
    loop {
        let h = read_n(s, 8)?;
        let (kind, len, pad) = (
            h[1],
            u16::from_be_bytes([h[4], h[5]]) as usize,
            h[6] as usize,
        );
        id = [h[2], h[3]];
        let body = read_n(s, len + pad)?;
        match kind {
            4 => params.extend_from_slice(&body[..len]),
            5 if len == 0 => break,
            _ => {}
        }
    }
    let mut vars = Vec::new();
    let mut i = 0;
    let size = |i: &mut usize| {
        let b = params[*i];
        if b < 128 {
            *i += 1;
            b as usize
        } else {
            let v = u32::from_be_bytes([b & 0x7f, params[*i + 1], params[*i + 2], params[*i + 3]]);
            *i += 4;
            v as usize
        }
    };
    while i < params.len() {
        let (k, v) = (size(&mut i), size(&mut i));
        let key = String::from_utf8_lossy(&params[i..i + k]).into_owned();
        let val = String::from_utf8_lossy(&params[i + k..i + k + v]).into_owned();
        i += k + v;
        vars.push(format!("{key}={val}"));
    }
    let out = format!("Content-Type: text/plain\r\n\r\nfastcgi {}", vars.join(" "));
    let record = |kind: u8, body: &[u8]| {
        let mut r = vec![1, kind, id[0], id[1]];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(&[0, 0]);
        r.extend_from_slice(body);
        r
    };
    s.write_all(&record(6, out.as_bytes())).ok()?;
    s.write_all(&record(6, b"")).ok()?;
    s.write_all(&record(3, &[0; 8])).ok()?;
    Some(())
}

/// One uwsgi request: answers with its vars as an HTTP response, then closes.
fn uwsgi_answer(s: &mut TcpStream) -> Option<()> {
    let h = read_n(s, 4)?;
    let vars = read_n(s, u16::from_le_bytes([h[1], h[2]]) as usize)?;
    let (mut i, mut out) = (0, Vec::new());
    let next = |i: &mut usize| {
        let n = u16::from_le_bytes([vars[*i], vars[*i + 1]]) as usize;
        let v = String::from_utf8_lossy(&vars[*i + 2..*i + 2 + n]).into_owned();
        *i += 2 + n;
        v
    };
    while i < vars.len() {
        let (k, v) = (next(&mut i), next(&mut i));
        out.push(format!("{k}={v}"));
    }
    let body = format!("uwsgi {}", out.join(" "));
    write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    None
}

#[test]
fn uwsgi_and_fastcgi_upstreams_get_their_parameters() {
    let e = docker::shared();
    let (_dir, ngx, _v) = setup("uwsgi_fastcgi", &[]);
    let (fcgi, uwsgi) = (serve(fastcgi_answer), serve(uwsgi_answer));
    // Containers that only carry the labels; the upstreams are this test's servers on loopback.
    let _php = e.run(
        "lbl-php",
        &[
            "--network",
            "host",
            "-l",
            "VIRTUAL_HOST=php.labels.test",
            "-l",
            "VIRTUAL_PROTO=fastcgi",
            "-l",
            &format!("VIRTUAL_PORT={fcgi}"),
            "-l",
            "VIRTUAL_ROOT=/srv/app/public",
            docker::IMAGE,
            "sleep",
            "3600",
        ],
    );
    let _py = e.run(
        "lbl-uwsgi",
        &[
            "--network",
            "host",
            "-e",
            "VIRTUAL_HOST=uwsgi.labels.test",
            "-e",
            "VIRTUAL_PROTO=uwsgi",
            "-e",
            &format!("VIRTUAL_PORT={uwsgi}"),
            docker::IMAGE,
            "sleep",
            "3600",
        ],
    );
    let a = wait_for(T, "the FastCGI upstream through nginx", || {
        let a = http_get(ngx.http_port, "php.labels.test", "/index.php?x=1");
        a.body.starts_with("fastcgi").then_some(a)
    });
    for want in [
        "SCRIPT_FILENAME=/srv/app/public/index.php",
        "QUERY_STRING=x=1",
        "REQUEST_METHOD=GET",
        "HTTP_HOST=php.labels.test",
    ] {
        assert!(a.body.contains(want), "{want} missing: {}", a.body);
    }
    let a = wait_for(T, "the uwsgi upstream through nginx", || {
        let a = http_get(ngx.http_port, "uwsgi.labels.test", "/hello");
        a.body.starts_with("uwsgi").then_some(a)
    });
    for want in [
        "PATH_INFO=/hello",
        "REQUEST_METHOD=GET",
        "HTTP_HOST=uwsgi.labels.test",
    ] {
        assert!(a.body.contains(want), "{want} missing: {}", a.body);
    }
}
