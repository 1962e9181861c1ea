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
    cap_malloc_arenas();
    trim_heap_every_second();
    let cli = Cli::parse();
    init_tracing(cli.command.opts().log_format);
    // Sized by tokio's default (one worker per core, or TOKIO_WORKER_THREADS).
    let rt = match tokio::runtime::Builder::new_multi_thread()
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
            run_daemon(o).await?;
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
            Ok(exit_for(code))
        }
        Command::Renew {
            domain,
            force,
            opts,
        } => renew(domain, *force, opts).await,
        Command::Health(o) => {
            let (code, body) = admin::request(o.admin_addr, "GET", "/healthz", None, QUICK).await?;
            print!("{body}");
            Ok(exit_for(code))
        }
    }
}

/// Success only for an HTTP 200 from the admin endpoint.
fn exit_for(code: u16) -> ExitCode {
    if code == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `vhostd run`: the daemon until SIGTERM or SIGINT.
async fn run_daemon(o: &Opts) -> anyhow::Result<()> {
    let s = settings(o)?;
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!(action = "signal", signal = "TERM", "shutting down"),
            _ = int.recv() => tracing::info!(action = "signal", signal = "INT", "shutting down"),
        }
        let _ = tx.send(true);
    });
    app::run(s, rx).await?;
    Ok(())
}

/// `vhostd renew DOMAIN`: asks the running daemon to order now (with its admin token if set).
async fn renew(domain: &str, force: bool, opts: &Opts) -> anyhow::Result<ExitCode> {
    let token = match &opts.admin_token_file {
        Some(path) => Some(admin::read_token(path).await.map_err(anyhow::Error::msg)?),
        None => None,
    };
    let path = if force {
        format!("/renew/{domain}?force=true")
    } else {
        format!("/renew/{domain}")
    };
    let (code, body) =
        admin::request(opts.admin_addr, "POST", &path, token.as_deref(), RENEW).await?;
    print!("{body}");
    Ok(exit_for(code))
}

/// Prints `/status` as a table for people (colour only on a terminal, and not under NO_COLOR).
fn print_status(body: &str) -> anyhow::Result<()> {
    let st: vhostd::status::Status =
        serde_json::from_str(body).context("the daemon's /status answer is not JSON")?;
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let now = time::OffsetDateTime::now_utc();
    print!("{}", vhostd::status::table(&st, now, colour));
    Ok(())
}

/// glibc gives every thread that allocates an arena of its own (up to 8 per core) and each keeps
/// its peak; with the blocking pool reading files and parsing configs that multiplied the idle
/// RSS by the config's size (`scripts/bench`, 100 containers: 19.3 MB by default, 17.5 MB with two
/// arenas). Two are plenty for a daemon that mostly waits; `MALLOC_ARENA_MAX`, when set, wins.
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only tunes the allocator; called first in main, before other threads.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Hands freed heap pages back to the system once a second. A reconcile of 1,000 containers
/// allocates tens of MB for a moment (render context, config text, its parse for the shape
/// check); glibc keeps such a peak mapped unless told, and the idle RSS followed the largest
/// reconcile ever run. A trim of a heap that did not grow costs microseconds.
fn trim_heap_every_second() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let _ = std::thread::Builder::new()
        .name("heap-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                // SAFETY: malloc_trim only releases free memory; it takes the arenas' own locks.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        });
}
