//! Command line and settings: clap parses raw values (each flag with its env var), then
//! [`Settings::from_opts`] validates them all at once into typed values.
//!
//! This module reads no files and starts nothing; it only turns strings into settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Let's Encrypt's production directory, the default CA.
pub const LETSENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`--acme-staging`).
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// vhostd: Docker labels → nginx virtual hosts with Let's Encrypt certificates.
#[derive(Debug, Parser)]
#[command(name = "vhostd", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; each takes the same flags so `render` can reuse `run`'s command line.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: follow Docker, render, validate and reload nginx, manage certificates.
    Run(Opts),
    /// Print the config the current Docker state gives; change nothing.
    Render(Opts),
    /// Show sites, upstreams and certificates of a running daemon (asks --admin-addr).
    Status {
        /// Print the daemon's /status document as JSON (for scripts) instead of the table.
        #[arg(long, env = "VHOSTD_STATUS_JSON", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
        json: bool,
        /// Shared flags.
        #[command(flatten)]
        opts: Opts,
    },
    /// Ask a running daemon to renew DOMAIN's certificate now (idempotent: an order already
    /// running is joined, a certificate issued within the hour is kept, a backoff is honoured).
    Renew {
        /// The certificate's domain (its first name).
        domain: String,
        /// Order even when the certificate was issued within the last hour (still one order at
        /// a time per certificate, and never during a backoff).
        #[arg(long, env = "VHOSTD_RENEW_FORCE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
        force: bool,
        /// Shared flags.
        #[command(flatten)]
        opts: Opts,
    },
    /// Exit 0 when a running daemon is healthy (for Docker HEALTHCHECK).
    Health(Opts),
}

impl Command {
    /// The shared flags of any subcommand.
    pub fn opts(&self) -> &Opts {
        match self {
            Command::Run(o) | Command::Render(o) | Command::Health(o) => o,
            Command::Status { opts, .. } | Command::Renew { opts, .. } => opts,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Certificate key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyTypeArg {
    /// ECDSA P-256 (default; small and fast).
    EcdsaP256,
    /// ECDSA P-384.
    EcdsaP384,
}

/// Whether Swarm services are read as well as containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SwarmArg {
    /// When the engine is a Swarm manager (checked while running: joining or leaving is noticed).
    Auto,
    /// Always; an engine outside a Swarm, or a worker, is reported as an error.
    On,
    /// Never: task containers are routed as plain containers.
    Off,
}

/// Every global flag; each reads `VHOSTD_<FLAG>` (Docker's own `DOCKER_HOST` for the endpoint).
#[derive(Debug, Clone, Args)]
pub struct Opts {
    /// Docker endpoint: unix:///path or tcp://host:port.
    #[arg(
        long,
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock"
    )]
    pub docker_host: String,
    /// The rendered nginx config (the only file vhostd writes into nginx's config).
    #[arg(
        long,
        env = "VHOSTD_CONF_FILE",
        default_value = "/etc/nginx/conf.d/vhostd.conf"
    )]
    pub conf_file: PathBuf,
    /// Parent of DOMAIN/.well-known/acme-challenge/.
    #[arg(long, env = "VHOSTD_WEBROOT", default_value = "/var/www")]
    pub webroot: PathBuf,
    /// Certificates (live/DOMAIN/) and vhostd's state (vhostd/).
    #[arg(long, env = "VHOSTD_CERTS_DIR", default_value = "/etc/letsencrypt")]
    pub certs_dir: PathBuf,
    /// Directory of templates overriding the embedded ones (watched for changes).
    #[arg(long, env = "VHOSTD_TEMPLATE_DIR")]
    pub template_dir: Option<PathBuf>,
    /// Per-host nginx snippets as nginx sees them, nginx-proxy's names: HOST, HOST_location,
    /// default, default_location (watched; missing = empty).
    #[arg(long, env = "VHOSTD_VHOST_DIR", default_value = "/etc/nginx/vhost.d")]
    pub vhost_dir: PathBuf,
    /// htpasswd files as nginx sees them: a file named HOST puts that host behind basic auth
    /// (watched; missing = empty).
    #[arg(
        long,
        env = "VHOSTD_HTPASSWD_DIR",
        default_value = "/etc/nginx/htpasswd"
    )]
    pub htpasswd_dir: PathBuf,
    /// nginx container name (else the one labelled vhostd.nginx=true).
    #[arg(long, env = "VHOSTD_NGINX_CONTAINER")]
    pub nginx_container: Option<String>,
    /// nginx is a local process: command prefix for `-t` and `-s reload`, e.g. "nginx -p /srv/ngx -c /srv/ngx/nginx.conf".
    #[arg(long, env = "VHOSTD_NGINX_CMD")]
    pub nginx_cmd: Option<String>,
    /// Port nginx listens on for HTTP in the rendered config.
    #[arg(long, env = "VHOSTD_HTTP_PORT", default_value_t = 80)]
    pub http_port: u16,
    /// Port nginx listens on for HTTPS in the rendered config.
    #[arg(long, env = "VHOSTD_HTTPS_PORT", default_value_t = 443)]
    pub https_port: u16,
    /// ACME directory URL (ACME_CA_URI is read too).
    #[arg(long, env = "VHOSTD_ACME_DIRECTORY")]
    pub acme_directory: Option<String>,
    /// Use Let's Encrypt staging.
    #[arg(long, env = "VHOSTD_ACME_STAGING", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub acme_staging: bool,
    /// ACME account contact e-mail.
    #[arg(long, env = "VHOSTD_ACME_EMAIL")]
    pub acme_email: Option<String>,
    /// PEM file trusted for the ACME directory's TLS (Pebble, step-ca).
    #[arg(long, env = "VHOSTD_ACME_CA_BUNDLE")]
    pub acme_ca_bundle: Option<PathBuf>,
    /// External account binding key id.
    #[arg(long, env = "VHOSTD_ACME_EAB_KID")]
    pub acme_eab_kid: Option<String>,
    /// External account binding HMAC key (base64url).
    #[arg(long, env = "VHOSTD_ACME_EAB_HMAC_KEY")]
    pub acme_eab_hmac_key: Option<String>,
    /// ACME profile (classic, tlsserver, shortlived), checked against the directory.
    #[arg(long, env = "VHOSTD_ACME_PROFILE")]
    pub acme_profile: Option<String>,
    /// Certificate key type.
    #[arg(
        long,
        env = "VHOSTD_KEY_TYPE",
        value_enum,
        default_value = "ecdsa-p256"
    )]
    pub key_type: KeyTypeArg,
    /// How many certificate orders may run at once.
    #[arg(long, env = "VHOSTD_ACME_CONCURRENCY", default_value_t = 10)]
    pub acme_concurrency: usize,
    /// Turn certificate management off (HTTP only).
    #[arg(long, env = "VHOSTD_NO_ACME", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub no_acme: bool,
    /// Where the pre-order self-check reaches nginx's HTTP listener (default 127.0.0.1:--http-port;
    /// set it when vhostd does not share nginx's network namespace).
    #[arg(long, env = "VHOSTD_SELF_CHECK_ADDR")]
    pub self_check_addr: Option<SocketAddr>,
    /// Admin HTTP address: /healthz, /readyz, /metrics, /status, /renew.
    #[arg(long, env = "VHOSTD_ADMIN_ADDR", default_value = "127.0.0.1:9180")]
    pub admin_addr: SocketAddr,
    /// nginx-proxy / acme-companion certificate directory (HOST.crt + HOST.key), read-only:
    /// a matching, unexpired pair is served as is and renewed at its own renewal time.
    #[arg(long, env = "VHOSTD_NGINX_PROXY_CERTS")]
    pub nginx_proxy_certs: Option<PathBuf>,
    /// File holding the token that non-GET admin requests (renew) must send; required when
    /// --admin-addr is not loopback. `vhostd renew` reads the same file to send it.
    #[arg(long, env = "VHOSTD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "VHOSTD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Settle time after a Docker event before reconciling (e.g. 100ms, 1s).
    #[arg(long, env = "VHOSTD_DEBOUNCE", default_value = "100ms", value_parser = parse_duration)]
    pub debounce: Duration,
    /// Longest a burst of events may delay a reconcile.
    #[arg(long, env = "VHOSTD_DEBOUNCE_MAX", default_value = "1s", value_parser = parse_duration)]
    pub debounce_max: Duration,
    /// Full Docker resync period, repairing any drift.
    #[arg(long, env = "VHOSTD_RESYNC_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// Unknown hosts over HTTP are answered as this host answers (nginx-proxy's DEFAULT_HOST);
    /// 503 while it has no container.
    #[arg(long, env = "VHOSTD_DEFAULT_HOST")]
    pub default_host: Option<String>,
    /// HTTPS servers speak HTTP/2 (`--http2=false` to turn it off).
    #[arg(long, env = "VHOSTD_HTTP2", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub http2: bool,
    /// Also listen on IPv6 (`[::]:PORT`).
    #[arg(long, env = "VHOSTD_IPV6", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub ipv6: bool,
    /// Pass on X-Forwarded-* headers from a proxy in front (`--trust-downstream-proxy=false`:
    /// overwrite them with what nginx sees).
    #[arg(long, env = "VHOSTD_TRUST_DOWNSTREAM_PROXY", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub trust_downstream_proxy: bool,
    /// Also route Docker Swarm services when the engine is a manager: auto, on, off.
    #[arg(long, env = "VHOSTD_SWARM", value_enum, default_value = "auto")]
    pub swarm: SwarmArg,
    /// Swarm secret sealing the private keys in the shared certificate store; with it (and a
    /// Swarm manager) every edge node shares certificates and only one orders each name.
    #[arg(
        long,
        env = "VHOSTD_SWARM_SECRET_FILE",
        default_value = "/run/secrets/vhostd_store_key"
    )]
    pub swarm_secret_file: PathBuf,
    /// How long a node's order lock holds in the shared store when it never releases it
    /// (longer than an order may take: 10 minutes).
    #[arg(long, env = "VHOSTD_SWARM_LOCK_TIME", default_value = "15m", value_parser = parse_duration)]
    pub swarm_lock_time: Duration,
}

/// Parses `250ms`, `2s`, `5m`, `1h` (any `humantime` spelling without spaces) or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.contains(char::is_whitespace) {
        return Err(format!(
            "{s:?} is not a duration like 100ms, 2s, 5m (no spaces)"
        ));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|e| format!("{s:?} is not a duration like 100ms, 2s, 5m: {e}"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 100ms, 2s, 5m: {e}"))
}

/// How vhostd reaches nginx to validate and reload it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NginxMode {
    /// A local process: argv prefix for `-t` and `-s reload`.
    Local(Vec<String>),
    /// A container: by name, or (None) the one labelled `vhostd.nginx=true`.
    Container(Option<String>),
}

/// Validated settings the daemon runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The raw flags, for the parts used as given.
    pub opts: Opts,
    /// How to validate and reload nginx.
    pub nginx: NginxMode,
    /// The ACME directory URL (after --acme-staging / ACME_CA_URI).
    pub acme_directory: String,
    /// `--default-host`, validated.
    pub default_host: Option<crate::host::HostName>,
}

/// Every problem found in the flags, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid settings:{}", list(.0))]
pub struct SettingsError(pub Vec<String>);

/// One problem stays on one line; several are listed one per line.
fn list(errs: &[String]) -> String {
    match errs {
        [one] => format!(" {one}"),
        many => format!("\n  - {}", many.join("\n  - ")),
    }
}

impl Settings {
    /// Validates `opts` (and `ACME_CA_URI` from `ca_uri_env`), collecting every error at once.
    pub fn from_opts(opts: Opts, ca_uri_env: Option<String>) -> Result<Settings, SettingsError> {
        let mut errs = Vec::new();
        validate::check_paths(&opts, &mut errs);
        validate::check_values(&opts, &mut errs);
        let nginx = validate::nginx_mode(&opts, &mut errs);
        let acme_directory = validate::acme_directory(&opts, ca_uri_env, &mut errs);
        let default_host = validate::default_host(&opts, &mut errs);
        if errs.is_empty() {
            Ok(Settings {
                opts,
                nginx,
                acme_directory,
                default_host,
            })
        } else {
            Err(SettingsError(errs))
        }
    }
}

mod validate;

#[cfg(test)]
mod tests;
