//! Wiring: starts the Docker watcher, template watcher, certificate task, admin server and the
//! controller for `vhostd run`; computes one config for `vhostd render`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

use crate::acme::{self, AcmeSettings, KeyType};
use crate::admin::{self, AdminState};
use crate::certfacts::CertFacts;
use crate::config::{KeyTypeArg, NginxMode, Settings};
use crate::controller::{Controller, Inputs, dirwatch};
use crate::desired;
use crate::docker;
use crate::host::HostName;
use crate::metrics::Metrics;
use crate::nginx::Nginx;
use crate::render::Renderer;
use crate::sites::{self, NginxReach};
use crate::snippets::Snippets;
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
    /// The Swarm's services could not be read (render only; the daemon retries instead).
    #[error("{0}")]
    Swarm(String),
    /// The templates could not be loaded or rendered (render only).
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// The admin token file could not be read (or is empty).
    #[error("{0}")]
    Token(String),
    /// A start-up check failed (unreadable CA bundle, missing template dir, unwritable conf
    /// dir, nginx command that does not run).
    #[error(transparent)]
    Preflight(#[from] crate::preflight::PreflightError),
    /// The Swarm store key secret exists but cannot be used.
    #[error("{0}; fix or remove the secret, or set --swarm-secret-file")]
    SwarmStore(String),
}

/// Loads the templates named by the settings (embedded unless `--template-dir`, whose files
/// are read on the blocking pool).
pub async fn load_renderer(s: &Settings) -> Result<Renderer, crate::render::RenderError> {
    let Some(dir) = s.opts.template_dir.clone() else {
        return Ok(Renderer::embedded());
    };
    let path = dir.clone();
    tokio::task::spawn_blocking(move || Renderer::from_dir(&dir))
        .await
        .unwrap_or_else(|e| {
            Err(crate::render::RenderError::Read {
                path,
                source: std::io::Error::other(e),
            })
        })
}

/// `vhostd render`: the config the current Docker state gives, computed exactly as the daemon
/// does — including leaving out the containers a running daemon (at `--admin-addr`) has
/// quarantined because nginx rejects them, so the output is what that daemon applies.
pub async fn render_once(s: &Settings) -> Result<String, AppError> {
    let renderer = load_renderer(s).await?;
    let dir = s.opts.certs_dir.clone();
    let installed = tokio::task::spawn_blocking(move || CertFacts::load(&dir))
        .await
        .unwrap_or_else(|_| CertFacts::empty(&s.opts.certs_dir));
    let docker = docker::connect(&s.opts.docker_host).await?;
    let all = docker::snapshot(&docker, &docker::ApiCounter::default()).await?;
    let all = crate::swarm::with_services(s.opts.swarm, &s.opts.docker_host, all)
        .await
        .map_err(AppError::Swarm)?;
    let reach = match &s.nginx {
        NginxMode::Local(_) => NginxReach::Host,
        NginxMode::Container(name) => sites::reach_of(sites::find_nginx(&all, name.as_deref())),
    };
    let version = match &s.nginx {
        NginxMode::Local(argv) => crate::nginx_version::probe_local(argv).await,
        NginxMode::Container(name) => match sites::find_nginx(&all, name.as_deref()) {
            Some(c) => crate::nginx_version::probe_container(&docker, &c.id).await,
            None => None,
        },
    };
    let (left_out, hosts_out) = daemon_quarantine(s).await;
    let (v, h) = (s.opts.vhost_dir.clone(), s.opts.htpasswd_dir.clone());
    let mut snippets = tokio::task::spawn_blocking(move || Snippets::load(&v, &h))
        .await
        .unwrap_or_else(|_| Snippets::empty(&s.opts.vhost_dir, &s.opts.htpasswd_dir));
    for host in hosts_out.iter().filter_map(|h| HostName::parse(h).ok()) {
        snippets.reject(&host, "the running daemon's nginx rejects its snippets");
    }
    let d = desired::compute(
        all.iter()
            .filter(|c| c.running && !left_out.contains(&c.id)),
        &reach,
        &Default::default(),
        &renderer,
        &crate::render::RenderSettings::new(s, version),
        &installed,
        &snippets,
    );
    for p in &d.sites.problems {
        tracing::warn!(container = %p.container, key = %p.key, action = "container_skipped", problem = %p.problem, "container left out or unreachable");
    }
    Ok(d.text?)
}

/// The ids of the containers and the hosts the daemon at `--admin-addr` leaves out because
/// nginx rejects them; none when no daemon answers there (then nothing is left out).
async fn daemon_quarantine(s: &Settings) -> (BTreeSet<String>, Vec<String>) {
    let addr = s.opts.admin_addr;
    let answer = admin::request(addr, "GET", "/status", None, Duration::from_secs(3)).await;
    let status = match answer {
        Ok((200, body)) => serde_json::from_str::<Status>(&body).ok(),
        _ => None,
    };
    let Some(status) = status else {
        tracing::info!(action = "render_alone", admin = %addr, "no running daemon answers at --admin-addr: nothing is left out as quarantined");
        return Default::default();
    };
    for id in &status.quarantined {
        tracing::info!(container = %id, action = "container_quarantined", "left out: the running daemon's nginx rejects it");
    }
    for host in &status.quarantined_hosts {
        tracing::info!(host = %host, action = "host_quarantined", "left out: the running daemon's nginx rejects its snippets");
    }
    (
        status.quarantined.into_iter().collect(),
        status.quarantined_hosts,
    )
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
        nginx_proxy_certs: o.nginx_proxy_certs.clone(),
    }
}

/// `vhostd run`: runs every task until `shutdown` becomes true.
pub async fn run(s: Settings, shutdown: watch::Receiver<bool>) -> Result<(), AppError> {
    let token = match &s.opts.admin_token_file {
        Some(path) => Some(admin::read_token(path).await.map_err(AppError::Token)?),
        None => None,
    };
    let nginx = nginx_for(&s);
    crate::preflight::check(&s, &nginx).await?;
    let listener = tokio::net::TcpListener::bind(s.opts.admin_addr)
        .await
        .map_err(|source| AppError::Admin {
            addr: s.opts.admin_addr,
            source,
        })?;
    let metrics = Metrics::default();
    let status = Arc::new(RwLock::new(Status::default()));
    let renderer = load_renderer(&s).await.unwrap_or_else(|e| {
        tracing::error!(action = "templates_rejected", error = %e, "templates failed to load; the live config is kept until they are fixed");
        Renderer::failed(&e)
    });
    let (_watches, files) = watch_files(&s).await;
    let (cert_tx, cert_rx) = mpsc::channel(64);
    start_share(&s, &cert_tx, &shutdown).await?;
    let certs =
        (!s.opts.no_acme).then(|| acme::spawn(acme_settings(&s), cert_tx, shutdown.clone()));
    let resync = Arc::new(Notify::new());
    let docker_rx = watch_docker(&s, &resync, &metrics, &shutdown);
    let alive = Arc::new(AtomicBool::new(true));
    let admin_state = AdminState {
        status: status.clone(),
        alive: alive.clone(),
        registry: Arc::new(metrics.register()),
        metrics: metrics.clone(),
        certs: certs.clone(),
        token,
    };
    let admin = tokio::spawn(admin::serve(listener, admin_state, shutdown.clone()));
    tracing::info!(action = "start", admin = %s.opts.admin_addr, docker = %s.opts.docker_host, conf = %s.opts.conf_file.display(), "vhostd running");
    let inputs = Inputs {
        docker: docker_rx,
        templates: files.templates,
        snippets: files.snippets,
        cert_files: files.cert_files,
        certs: cert_rx,
        resync,
        shutdown,
    };
    Controller::new(s, nginx, renderer, certs, status, metrics)
        .run(inputs)
        .await;
    alive.store(false, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(5), admin).await;
    tracing::info!(action = "stop", "vhostd stopped");
    Ok(())
}

/// How vhostd reaches nginx: the local command, or a container found later.
fn nginx_for(s: &Settings) -> Nginx {
    match &s.nginx {
        NginxMode::Local(argv) => Nginx::local(argv.clone()),
        // The Docker client arrives from the watcher once it connects: startup must not wait
        // for (or fail on) an engine that is down.
        NginxMode::Container(_) => Nginx::container(),
    }
}

/// Starts sharing certificates through the Swarm store when ACME is on and Swarm is not off
/// (the store itself stays off without its key secret).
async fn start_share(
    s: &Settings,
    cert_tx: &mpsc::Sender<acme::CertEvent>,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), AppError> {
    if s.opts.no_acme || s.opts.swarm == crate::config::SwarmArg::Off {
        return Ok(());
    }
    let share = crate::swarm::share::ShareSettings {
        docker_host: s.opts.docker_host.clone(),
        secret_file: s.opts.swarm_secret_file.clone(),
        lock_time: s.opts.swarm_lock_time,
        certs_dir: s.opts.certs_dir.clone(),
        webroot: s.opts.webroot.clone(),
    };
    crate::swarm::share::start(share, cert_tx.clone(), shutdown.clone())
        .await
        .map(drop)
        .map_err(AppError::SwarmStore)
}

/// Follows Docker's containers (and the Swarm's services, unless `--swarm off`); the
/// controller reads the merged updates from the returned channel.
fn watch_docker(
    s: &Settings,
    resync: &Arc<Notify>,
    metrics: &Metrics,
    shutdown: &watch::Receiver<bool>,
) -> mpsc::Receiver<docker::Update> {
    let (docker_tx, docker_rx) = mpsc::channel(1024);
    tokio::spawn(docker::watch(
        s.opts.docker_host.clone(),
        docker_tx,
        resync.clone(),
        metrics.docker_api_requests.clone(),
        shutdown.clone(),
    ));
    crate::swarm::attach(
        s.opts.swarm,
        s.opts.docker_host.clone(),
        docker_rx,
        resync.clone(),
        shutdown.clone(),
    )
}

/// What the directory watches report (one channel per kind of file).
struct FileChanges {
    templates: mpsc::Receiver<()>,
    snippets: mpsc::Receiver<()>,
    cert_files: mpsc::Receiver<()>,
}

/// Watches the template, snippet, htpasswd and `live/` certificate directories; the watches
/// run while the returned handles live.
async fn watch_files(s: &Settings) -> (Vec<dirwatch::DirWatch>, FileChanges) {
    let (tmpl_tx, templates) = mpsc::channel(4);
    let (snip_tx, snippets) = mpsc::channel(4);
    let (cert_tx, cert_files) = mpsc::channel(4);
    let o = &s.opts;
    let mut watches = vec![
        dirwatch::watch_tree(o.certs_dir.join("live"), cert_tx).await,
        dirwatch::watch_dir(o.vhost_dir.clone(), snip_tx.clone()).await,
        dirwatch::watch_dir(o.htpasswd_dir.clone(), snip_tx).await,
    ];
    if let Some(d) = o.template_dir.clone() {
        watches.push(dirwatch::watch_dir(d, tmpl_tx).await);
    }
    let changes = FileChanges {
        templates,
        snippets,
        cert_files,
    };
    (watches, changes)
}
