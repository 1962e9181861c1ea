//! Pure: nginx-proxy's `VIRTUAL_HOST_MULTIPORTS` — a YAML (or JSON, which is YAML) map
//! host → path → `{port, dest}` — into routes. When present it replaces `VIRTUAL_HOST`,
//! `VIRTUAL_PORT`, `VIRTUAL_PATH` and `VIRTUAL_DEST`. A host with no paths is `/` on the
//! default port; a path with no `port` uses the default port; `dest` is optional.

use serde_yaml_ng::Value;

use super::value::{self, MAX_DOCUMENT};
use super::{LabelError, Route, UrlPath, err, reserved_path};
use crate::host::HostName;

const KEY: &str = "VIRTUAL_HOST_MULTIPORTS";

/// Parses the document into routes in document order; `default_port` fills missing ports.
pub fn parse(raw: &str, default_port: u16) -> Result<Vec<Route>, LabelError> {
    value::base(KEY, raw, MAX_DOCUMENT, true)?;
    let doc: Value = serde_yaml_ng::from_str(raw)
        .map_err(|e| err(KEY, format!("is not valid YAML/JSON: {e}")))?;
    let Value::Mapping(hosts) = doc else {
        return Err(err(KEY, "must be a map of host names to paths"));
    };
    let mut out: Vec<Route> = Vec::new();
    for (host, paths) in &hosts {
        let host = host_name(host)?;
        let paths = match paths {
            Value::Null => Vec::new(),
            Value::Mapping(m) => m.iter().collect(),
            _ => {
                return Err(err(
                    KEY,
                    format!("{host}: must map paths to {{port, dest}} (or be empty)"),
                ));
            }
        };
        if paths.is_empty() {
            push(&mut out, host.clone(), UrlPath::root(), default_port, None)?;
        }
        for (path, props) in paths {
            let path = path_key(&host, path)?;
            let (port, dest) = props_of(&host, &path, props, default_port)?;
            push(&mut out, host.clone(), path, port, dest)?;
        }
    }
    if out.is_empty() {
        return Err(err(KEY, "names no host"));
    }
    Ok(out)
}

fn push(
    out: &mut Vec<Route>,
    host: HostName,
    path: UrlPath,
    port: u16,
    dest: Option<UrlPath>,
) -> Result<(), LabelError> {
    if out.iter().any(|r| r.host == host && r.path == path) {
        return Err(err(KEY, format!("{host}{path} is given twice")));
    }
    out.push(Route {
        host,
        path,
        port,
        dest,
    });
    Ok(())
}

fn host_name(v: &Value) -> Result<HostName, LabelError> {
    let Value::String(s) = v else {
        return Err(err(KEY, format!("host {v:?} is not a string")));
    };
    value::exact(KEY, s)?;
    HostName::parse(s).map_err(|e| err(KEY, e.to_string()))
}

fn path_key(host: &HostName, v: &Value) -> Result<UrlPath, LabelError> {
    let Value::String(s) = v else {
        return Err(err(KEY, format!("{host}: path {v:?} is not a string")));
    };
    value::exact(KEY, s)?;
    let p = UrlPath::parse(s).map_err(|e| err(KEY, format!("{host}: path {e}")))?;
    reserved_path(KEY, p)
}

fn props_of(
    host: &HostName,
    path: &UrlPath,
    v: &Value,
    default_port: u16,
) -> Result<(u16, Option<UrlPath>), LabelError> {
    let m = match v {
        Value::Null => return Ok((default_port, None)),
        Value::Mapping(m) => m,
        _ => {
            return Err(err(
                KEY,
                format!("{host}{path}: must be a map with port and dest"),
            ));
        }
    };
    let mut port = default_port;
    let mut dest = None;
    for (k, v) in m {
        match (k.as_str(), v) {
            (Some("port"), Value::Number(n)) => {
                port = n
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p > 0)
                    .ok_or_else(|| err(KEY, format!("{host}{path}: port {n} is not 1-65535")))?;
            }
            (Some("port"), Value::String(s)) => {
                port = value::port(KEY, s)
                    .map_err(|e| err(KEY, format!("{host}{path}: port {}", e.problem)))?;
            }
            (Some("dest"), Value::String(s)) => {
                value::exact(KEY, s)?;
                if !s.is_empty() {
                    dest = Some(
                        UrlPath::parse(s)
                            .map_err(|e| err(KEY, format!("{host}{path}: dest {e}")))?,
                    );
                }
            }
            (Some(k @ ("port" | "dest")), other) => {
                return Err(err(
                    KEY,
                    format!("{host}{path}: {k} {other:?} has the wrong type"),
                ));
            }
            (k, _) => {
                return Err(err(
                    KEY,
                    format!("{host}{path}: unknown key {k:?} (only port and dest are supported)"),
                ));
            }
        }
    }
    Ok((port, dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(doc: &str) -> Vec<(String, String, u16, Option<String>)> {
        parse(doc, 80)
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.host.to_string(),
                    r.path.to_string(),
                    r.port,
                    r.dest.map(|d| d.to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn nginx_proxy_example_in_yaml_and_json() {
        let yaml = "www.example.org:\nservice1.example.org:\n  \"/\":\n    port: 8080\n  \"/service1\":\n    port: 9000\n    dest: \"/\"\nservice2.example.org:\n  \"/\":\n    port: 9000\n";
        let want = vec![
            ("www.example.org".into(), "/".into(), 80, None),
            ("service1.example.org".into(), "/".into(), 8080, None),
            (
                "service1.example.org".into(),
                "/service1".into(),
                9000,
                Some("/".into()),
            ),
            ("service2.example.org".into(), "/".into(), 9000, None),
        ];
        assert_eq!(routes(yaml), want);
        let json = r#"{"www.example.org": null, "service1.example.org": {"/": {"port": 8080}, "/service1": {"port": "9000", "dest": "/"}}, "service2.example.org": {"/": {"port": 9000}}}"#;
        assert_eq!(routes(json), want);
    }

    #[test]
    fn alias_bombs_are_refused_quickly() {
        let mut doc =
            String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
        for i in 1..12 {
            let p = (b'a' + i - 1) as char;
            let c = (b'a' + i) as char;
            doc.push_str(&format!(
                "{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
            ));
        }
        let t = std::time::Instant::now();
        assert!(parse(&doc, 80).is_err());
        println!("alias bomb refused in {:?}", t.elapsed());
    }

    #[test]
    fn bad_documents_are_refused_with_the_key() {
        for bad in [
            "- a.com",
            "a.com: [1]",
            "a.com:\n  /x:\n    port: 0\n",
            "a.com:\n  /x:\n    port: 70000\n",
            "a.com:\n  /x:\n    port: \"080\"\n",
            "a.com:\n  /x:\n    port: 80.5\n",
            "a.com:\n  /x:\n    proto: https\n",
            "a.com:\n  x:\n    port: 80\n",
            "a.com:\n  /x;y:\n",
            "a.com:\n  /.well-known/acme-challenge/:\n",
            "a.com:\n  /x:\n    dest: /$1\n",
            "\"a.com;x\":\n",
            "a\u{200b}.com:\n",
            "{",
            "",
        ] {
            let e = parse(bad, 80).unwrap_err();
            assert_eq!(e.key, KEY, "{bad:?}");
        }
    }
}
