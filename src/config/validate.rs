//! Validation of the `run` flags beyond what clap checks: each helper adds its problems to one
//! list so that [`Settings::from_opts`](super::Settings::from_opts) reports every error at once.

use std::time::Duration;

use super::{LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING, NginxMode, Opts};

/// Every path flag must be safe to quote in nginx text.
pub(super) fn check_paths(opts: &Opts, errs: &mut Vec<String>) {
    for (flag, path) in [
        ("--conf-file", &opts.conf_file),
        ("--webroot", &opts.webroot),
        ("--certs-dir", &opts.certs_dir),
        ("--vhost-dir", &opts.vhost_dir),
        ("--htpasswd-dir", &opts.htpasswd_dir),
    ] {
        if let Err(e) = check_path(path) {
            errs.push(format!("{flag} {}: {e}", path.display()));
        }
    }
}

/// The Docker address, ports, intervals, ACME and admin flags.
pub(super) fn check_values(opts: &Opts, errs: &mut Vec<String>) {
    if !(opts.docker_host.starts_with("unix://")
        || opts.docker_host.starts_with("tcp://")
        || opts.docker_host.starts_with("http://"))
    {
        errs.push(format!(
            "--docker-host {:?}: use unix:///path/docker.sock or tcp://host:port",
            opts.docker_host
        ));
    }
    if opts.http_port == 0 || opts.https_port == 0 || opts.http_port == opts.https_port {
        errs.push("--http-port and --https-port must be distinct ports 1-65535".into());
    }
    if opts.debounce > opts.debounce_max {
        errs.push("--debounce must not exceed --debounce-max".into());
    }
    if opts.resync_interval < Duration::from_secs(1) {
        errs.push("--resync-interval must be at least 1s".into());
    }
    if opts.acme_concurrency == 0 {
        errs.push("--acme-concurrency must be at least 1".into());
    }
    if opts.acme_eab_kid.is_some() != opts.acme_eab_hmac_key.is_some() {
        errs.push("--acme-eab-kid and --acme-eab-hmac-key go together".into());
    }
    if !opts.admin_addr.ip().is_loopback() && opts.admin_token_file.is_none() {
        errs.push(format!(
            "--admin-addr {} is not loopback: set --admin-token-file so that renew requests need a token",
            opts.admin_addr
        ));
    }
}

/// How nginx is reached: a local command or a container (found by label when unnamed).
pub(super) fn nginx_mode(opts: &Opts, errs: &mut Vec<String>) -> NginxMode {
    match (&opts.nginx_cmd, &opts.nginx_container) {
        (Some(_), Some(_)) => {
            errs.push("--nginx-cmd and --nginx-container exclude each other".into());
            NginxMode::Container(None)
        }
        (Some(cmd), None) => {
            let argv: Vec<String> = cmd.split_whitespace().map(str::to_owned).collect();
            if argv.is_empty() {
                errs.push("--nginx-cmd is empty".into());
            }
            NginxMode::Local(argv)
        }
        (None, name) => NginxMode::Container(name.clone()),
    }
}

/// The ACME directory: the flag, then `ACME_CA_URI`, then Let's Encrypt (staging or production).
pub(super) fn acme_directory(
    opts: &Opts,
    ca_uri_env: Option<String>,
    errs: &mut Vec<String>,
) -> String {
    let dir = match (&opts.acme_directory, ca_uri_env, opts.acme_staging) {
        (Some(d), _, _) => d.clone(),
        (None, Some(d), _) if !d.is_empty() => d,
        (None, _, true) => LETSENCRYPT_STAGING.to_string(),
        _ => LETSENCRYPT_PRODUCTION.to_string(),
    };
    if !dir.starts_with("https://") && !dir.starts_with("http://") {
        errs.push(format!("--acme-directory {dir:?} is not an http(s) URL"));
    }
    dir
}

/// The validated `--default-host`, if set (a wildcard is refused).
pub(super) fn default_host(opts: &Opts, errs: &mut Vec<String>) -> Option<crate::host::HostName> {
    match opts.default_host.as_deref() {
        None | Some("") => None,
        Some(h) => match crate::host::HostName::parse(h) {
            Ok(h) if !h.is_wildcard() => Some(h),
            Ok(_) => {
                errs.push(format!(
                    "--default-host {h:?}: a wildcard can't be the default host"
                ));
                None
            }
            Err(e) => {
                errs.push(format!("--default-host: {e}"));
                None
            }
        },
    }
}

/// Paths land in nginx text inside double quotes: refuse what could break out of them.
fn check_path(p: &std::path::Path) -> Result<(), &'static str> {
    let s = p.to_str().ok_or("not UTF-8")?;
    if s.is_empty() {
        return Err("empty");
    }
    if s.chars()
        .any(|c| c.is_control() || matches!(c, '"' | '\\' | '$' | ';' | '{' | '}'))
    {
        return Err("contains a quote, backslash, $, ;, brace or control character");
    }
    Ok(())
}
