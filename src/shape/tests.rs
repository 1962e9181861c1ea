//! Unit tests of config shapes: what may skip `nginx -t` and what may not.

use super::*;

fn site(host: &str, port: u16, hash: &str) -> String {
    format!(
        "upstream {host}-{hash} {{\n    server 127.0.0.1:{port};\n    keepalive 2;\n}}\n\
         # {host} (containers: c-{port})\nserver {{\n    listen 80;\n    server_name {host};\n    \
         location ^~ /.well-known/acme-challenge/ {{ root \"/var/www/{host}\"; }}\n    \
         location / {{ proxy_pass http://{host}-{hash}; }}\n}}\n"
    )
}

fn head() -> String {
    "map $http_upgrade $c { default upgrade; '' \"\"; }\nserver { listen 80 default_server; server_name _; return 503; }\n".into()
}

fn none(_: &Path) -> Option<Stamp> {
    None
}

#[test]
fn another_site_of_a_validated_shape_needs_no_check() {
    let two = format!(
        "{}{}{}",
        head(),
        site("a.test", 8001, "aa"),
        site("b.test", 8002, "bb")
    );
    let r = Reference::new(Shape::of(&two), &[], none);
    let three = format!("{two}{}", site("c.test", 8003, "cc"));
    assert!(r.allows(&Shape::of(&three), none));
    let moved = format!(
        "{}{}{}",
        head(),
        site("a.test", 9001, "aa"),
        site("b.test", 8002, "bb")
    );
    assert!(r.allows(&Shape::of(&moved), none));
}

#[test]
fn anything_else_needs_a_check() {
    let one = format!("{}{}", head(), site("a.test", 8001, "aa"));
    let r = Reference::new(Shape::of(&one), &[], none);
    // A shape seen once is not known to be repeatable.
    let two = format!("{one}{}", site("b.test", 8002, "bb"));
    assert!(!r.allows(&Shape::of(&two), none));
    let r2 = Reference::new(Shape::of(&two), &[], none);
    for bad in [
        two.replace("keepalive 2", "keepalive 2 x"),
        two.replace("proxy_pass http://b.test-bb", "proxy_pass http://b.test"),
        two.replace("127.0.0.1:8002", "127.0.0.1:0"),
        two.replace("127.0.0.1:8002", "localhost:8002"),
        two.replace("server_name b.test", "server_name *.b.test"),
        two.replace("b.test", "a-much-longer-name.test"),
        two.replace("upstream b.test-bb", "upstream a.test-aa"),
        two.replace("root \"/var/www/b.test\"", "root \"/var/www/b.test\" x"),
        format!(
            "{}{}",
            site("a.test", 8001, "aa"),
            site("b.test", 8002, "bb")
        ),
        format!("{two}include /etc/nginx/x.conf;\n"),
    ] {
        assert!(!r2.allows(&Shape::of(&bad), none), "allowed: {bad}");
    }
}

#[test]
fn a_named_file_must_be_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("a.pem");
    std::fs::write(&cert, "x").unwrap();
    let text = format!("{}ssl_certificate \"{}\";\n", head(), cert.display());
    let r = Reference::new(Shape::of(&text), &[], stamp);
    assert!(r.allows(&Shape::of(&text), stamp));
    std::fs::write(&cert, "yy").unwrap();
    assert!(!r.allows(&Shape::of(&text), stamp));
    let relative = format!("{}include snippets/x.conf;\n", head());
    let r = Reference::new(Shape::of(&relative), &[], stamp);
    assert!(!r.allows(&Shape::of(&relative), stamp));
}
