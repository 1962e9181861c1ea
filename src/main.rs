//! vhostd's entry point: parse flags, set up logging, run the chosen subcommand.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;
use vhostd::config::{Cli, Command, LogFormat, Opts, Settings};
use vhostd::{admin, app};

/// How long `status` and `health` wait for the daemon.
const QUICK: Duration = Duration::from_secs(10);
/// How long `renew` waits: a whole order (self-check, validation, finalize) at a busy CA.
const RENEW: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.command.opts().log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vhostd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vhostd: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("VHOSTD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().flatten_event(true).init(),
        LogFormat::Text => b.init(),
    }
}

fn settings(opts: &Opts) -> anyhow::Result<Settings> {
    Ok(Settings::from_opts(
        opts.clone(),
        std::env::var("ACME_CA_URI").ok(),
    )?)
}

async fn dispatch(cmd: Command) -> anyhow::Result<ExitCode> {
    match &cmd {
        Command::Run(o) => {
            let s = settings(o)?;
            let (tx, rx) = watch::channel(false);
            let mut term =
                signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
            let mut int =
                signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = term.recv() => tracing::info!(action = "signal", signal = "TERM", "shutting down"),
                    _ = int.recv() => tracing::info!(action = "signal", signal = "INT", "shutting down"),
                }
                let _ = tx.send(true);
            });
            app::run(s, rx).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Render(o) => {
            print!("{}", app::render_once(&settings(o)?).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json, opts } => {
            let (code, body) =
                admin::request(opts.admin_addr, "GET", "/status", None, QUICK).await?;
            if *json {
                println!("{}", body.trim_end());
            } else {
                print_status(&body)?;
            }
            Ok(if code == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Renew {
            domain,
            force,
            opts,
        } => {
            let token = match &opts.admin_token_file {
                Some(path) => Some(admin::read_token(path).await.map_err(anyhow::Error::msg)?),
                None => None,
            };
            let path = if *force {
                format!("/renew/{domain}?force=true")
            } else {
                format!("/renew/{domain}")
            };
            let (code, body) =
                admin::request(opts.admin_addr, "POST", &path, token.as_deref(), RENEW).await?;
            print!("{body}");
            Ok(if code == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Health(o) => {
            let (code, body) = admin::request(o.admin_addr, "GET", "/healthz", None, QUICK).await?;
            print!("{body}");
            Ok(if code == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Prints `/status` as a table: sites and upstreams, certificates, problems.
fn print_status(body: &str) -> anyhow::Result<()> {
    let st: vhostd::status::Status =
        serde_json::from_str(body).context("the daemon's /status answer is not JSON")?;
    println!(
        "ready: {}   docker: {}   containers: {}",
        st.ready,
        if st.docker_connected {
            "connected"
        } else {
            "DISCONNECTED"
        },
        st.containers
    );
    if let Some(e) = &st.last_error {
        println!("last error: {e}");
    }
    println!("\n{:<40} {:<6} {:<16} UPSTREAMS", "SITE", "HTTPS", "PATH");
    for s in &st.sites {
        for l in &s.locations {
            let servers = if l.servers.is_empty() {
                "(none: 503)".to_string()
            } else {
                l.servers.join(" ")
            };
            println!(
                "{:<40} {:<6} {:<16} {}",
                s.host,
                if s.https { "yes" } else { "no" },
                l.path,
                servers
            );
        }
    }
    if !st.certificates.is_empty() {
        println!("\nCERTIFICATES");
        for c in &st.certificates {
            let f = |k: &str| match c.get(k) {
                None | Some(serde_json::Value::Null) => "-".to_string(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            };
            let names = c
                .get("names")
                .and_then(|n| n.as_array())
                .map(|n| {
                    n.iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            println!(
                "{:<40} state={} not_after={} next_renewal={} last_error={}\n{:<40} names={} issuer={} profile={}",
                f("key"),
                f("state"),
                f("not_after"),
                f("next_renewal"),
                f("last_error"),
                "",
                names,
                f("issuer"),
                f("profile"),
            );
        }
    }
    for p in &st.problems {
        println!(
            "PROBLEM container={} key={}: {}",
            p.container, p.key, p.problem
        );
    }
    for s in &st.skipped_certificates {
        println!("NO CERTIFICATE {s}");
    }
    Ok(())
}
