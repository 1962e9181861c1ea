//! Wiring: starts the Docker watcher, template watcher, certificate task, admin server and the
//! controller for `vhostd run`; computes one config for `vhostd render`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify_debouncer_full::notify::RecursiveMode;
use tokio::sync::{Notify, mpsc, watch};

use crate::acme::{self, AcmeSettings, KeyType};
use crate::admin::{self, AdminState};
use crate::config::{KeyTypeArg, NginxMode, Settings};
use crate::controller::{Controller, Inputs};
use crate::desired;
use crate::docker;
use crate::metrics::Metrics;
use crate::nginx::Nginx;
use crate::render::{RenderSettings, Renderer};
use crate::sites::{self, NginxReach};
use crate::status::Status;

/// A startup failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The admin address could not be bound.
    #[error(
        "cannot listen on --admin-addr {addr}: {source} (is another vhostd running? pick another address)"
    )]
    Admin {
        /// The address.
        addr: std::net::SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// Docker could not be reached (render only; the daemon retries instead).
    #[error(transparent)]
    Docker(#[from] docker::DockerError),
    /// The templates could not be loaded or rendered (render only).
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// A start-up check failed (unreadable CA bundle, missing template dir, unwritable conf
    /// dir, nginx command that does not run).
    #[error(transparent)]
    Preflight(#[from] crate::preflight::PreflightError),
    /// The template directory could not be watched.
    #[error("cannot watch --template-dir {dir}: {detail}")]
    Watch {
        /// The directory.
        dir: std::path::PathBuf,
        /// The watcher error.
        detail: String,
    },
}

/// Loads the templates named by the settings (embedded unless `--template-dir`).
pub fn load_renderer(s: &Settings) -> Result<Renderer, crate::render::RenderError> {
    match &s.opts.template_dir {
        Some(dir) => Renderer::from_dir(dir),
        None => Ok(Renderer::embedded()),
    }
}

fn render_settings(s: &Settings) -> RenderSettings {
    RenderSettings {
        http_port: s.opts.http_port,
        https_port: s.opts.https_port,
        webroot: s.opts.webroot.clone(),
    }
}

/// `vhostd render`: the config the current Docker state gives, computed exactly as the daemon does.
pub async fn render_once(s: &Settings) -> Result<String, AppError> {
    let renderer = load_renderer(s)?;
    let docker = docker::connect(&s.opts.docker_host).await?;
    let all = docker::snapshot(&docker, &docker::ApiCounter::default()).await?;
    let reach = match &s.nginx {
        NginxMode::Local(_) => NginxReach::Host,
        NginxMode::Container(name) => sites::reach_of(sites::find_nginx(&all, name.as_deref())),
    };
    let d = desired::compute(
        all.iter().filter(|c| c.running),
        &reach,
        &Default::default(),
        &renderer,
        &render_settings(s),
        &s.opts.certs_dir,
    );
    for p in &d.sites.problems {
        tracing::warn!(container = %p.container, key = %p.key, action = "container_skipped", problem = %p.problem, "container left out or unreachable");
    }
    Ok(d.text?)
}

fn acme_settings(s: &Settings) -> AcmeSettings {
    let o = &s.opts;
    AcmeSettings {
        directory: s.acme_directory.clone(),
        ca_bundle: o.acme_ca_bundle.clone(),
        email: o.acme_email.clone(),
        eab: o.acme_eab_kid.clone().zip(o.acme_eab_hmac_key.clone()),
        profile: o.acme_profile.clone(),
        key_type: match o.key_type {
            KeyTypeArg::EcdsaP256 => KeyType::EcdsaP256,
            KeyTypeArg::EcdsaP384 => KeyType::EcdsaP384,
        },
        certs_dir: o.certs_dir.clone(),
        webroot: o.webroot.clone(),
        self_check: o
            .self_check_addr
            .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], o.http_port))),
        concurrency: o.acme_concurrency,
    }
}

/// `vhostd run`: runs every task until `shutdown` becomes true.
pub async fn run(s: Settings, shutdown: watch::Receiver<bool>) -> Result<(), AppError> {
    let nginx_docker = match &s.nginx {
        NginxMode::Local(argv) => Nginx::local(argv.clone()),
        // The Docker client arrives from the watcher once it connects: startup must not wait
        // for (or fail on) an engine that is down.
        NginxMode::Container(_) => Nginx::container(),
    };
    crate::preflight::check(&s, &nginx_docker).await?;
    let listener = tokio::net::TcpListener::bind(s.opts.admin_addr)
        .await
        .map_err(|source| AppError::Admin {
            addr: s.opts.admin_addr,
            source,
        })?;
    let metrics = Metrics::default();
    let status = Arc::new(RwLock::new(Status::default()));
    let renderer = load_renderer(&s).unwrap_or_else(|e| {
        tracing::error!(action = "templates_rejected", error = %e, "templates failed to load; the live config is kept until they are fixed");
        Renderer::failed(&e)
    });
    let (docker_tx, docker_rx) = mpsc::channel(1024);
    let (tmpl_tx, tmpl_rx) = mpsc::channel(4);
    let (cert_tx, cert_rx) = mpsc::channel(64);
    let resync = Arc::new(Notify::new());
    let _template_watch = match &s.opts.template_dir {
        Some(dir) => Some(watch_templates(dir, tmpl_tx)?),
        None => None,
    };
    let certs =
        (!s.opts.no_acme).then(|| acme::spawn(acme_settings(&s), cert_tx, shutdown.clone()));
    tokio::spawn(docker::watch(
        s.opts.docker_host.clone(),
        docker_tx,
        resync.clone(),
        metrics.docker_api_requests.clone(),
        shutdown.clone(),
    ));
    let alive = Arc::new(AtomicBool::new(true));
    let admin_state = AdminState {
        status: status.clone(),
        alive: alive.clone(),
        registry: Arc::new(metrics.register()),
        metrics: metrics.clone(),
        certs: certs.clone(),
    };
    let admin = tokio::spawn(admin::serve(listener, admin_state, shutdown.clone()));
    tracing::info!(action = "start", admin = %s.opts.admin_addr, docker = %s.opts.docker_host, conf = %s.opts.conf_file.display(), "vhostd running");
    let inputs = Inputs {
        docker: docker_rx,
        templates: tmpl_rx,
        certs: cert_rx,
        resync,
        shutdown,
    };
    Controller::new(s, nginx_docker, renderer, certs, status, metrics)
        .run(inputs)
        .await;
    alive.store(false, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(5), admin).await;
    tracing::info!(action = "stop", "vhostd stopped");
    Ok(())
}

type TemplateWatch = notify_debouncer_full::Debouncer<
    notify_debouncer_full::notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

/// Watches the template directory (not files: editors and ConfigMaps swap files by rename).
fn watch_templates(dir: &std::path::Path, tx: mpsc::Sender<()>) -> Result<TemplateWatch, AppError> {
    let fail = |e: notify_debouncer_full::notify::Error| AppError::Watch {
        dir: dir.into(),
        detail: e.to_string(),
    };
    let mut deb = notify_debouncer_full::new_debouncer(
        Duration::from_millis(200),
        None,
        move |r: notify_debouncer_full::DebounceEventResult| {
            if r.is_ok() {
                let _ = tx.try_send(());
            }
        },
    )
    .map_err(fail)?;
    deb.watch(dir, RecursiveMode::NonRecursive).map_err(fail)?;
    Ok(deb)
}
