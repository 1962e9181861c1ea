//! The certificate task: owns the wanted set and every certificate's state, sleeps until the
//! next deadline (renewal, backoff end, ARI poll) or a command, and spawns bounded jobs. All
//! decisions come from [`decide`](super::decide::decide); all state it acts on is on disk, so a
//! restart resumes exactly (no re-order of a valid certificate, no backoff reset).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::{Id, JoinSet};

use super::account::Accounts;
use super::certinfo::CertInfo;
use super::decide::{Decision, decide};
use super::error::AcmeError;
use super::jobs::{Ctx, JobResult, poll_ari, run_order};
use super::plan::CertSpec;
use super::schedule::{ARI_ERROR_POLL, AriWindow, next_ari_poll, pick_in_window};
use super::status::CertStatus;
use super::store::{AriState, CertState, Store};
use super::{AcmeSettings, CertEvent, backoff};
use crate::host::HostName;

/// Longest sleep between two looks at the schedule (wall clock can jump; tokio time can't see it).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// Handle to the certificate task. Cheap to clone; the task stops when every clone is dropped
/// or when `shutdown` turns true.
#[derive(Clone)]
pub struct CertHandle {
    tx: mpsc::UnboundedSender<Command>,
    status: Arc<Mutex<Vec<CertStatus>>>,
}

enum Command {
    SetWanted(Vec<CertSpec>),
    RenewNow(String, oneshot::Sender<Result<(), AcmeError>>),
}

impl CertHandle {
    /// Replaces the wanted set (level-triggered). Certificates not in it stop renewing; their
    /// files stay. Call it only once every name's challenge route is live in nginx.
    pub fn set_wanted(&self, specs: Vec<CertSpec>) {
        let _ = self.tx.send(Command::SetWanted(specs));
    }

    /// Orders the certificate keyed `key` now, skipping backoff and schedule (not the
    /// self-check), and waits for the outcome.
    pub async fn renew_now(&self, key: &str) -> Result<(), AcmeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::RenewNow(key.to_string(), reply))
            .map_err(|_| AcmeError::Stopped)?;
        rx.await.map_err(|_| AcmeError::Stopped)?
    }

    /// Every wanted certificate's status, key order.
    pub fn status(&self) -> Vec<CertStatus> {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Starts the certificate task on the current tokio runtime.
pub fn spawn(
    settings: AcmeSettings,
    events: mpsc::Sender<CertEvent>,
    shutdown: watch::Receiver<bool>,
) -> CertHandle {
    let settings = Arc::new(settings);
    let store = Store::new(&settings.certs_dir);
    let ctx = Arc::new(Ctx {
        accounts: Accounts::new(settings.clone(), store.clone()),
        permits: Semaphore::new(settings.concurrency.max(1)),
        store,
        settings,
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let status = Arc::new(Mutex::new(Vec::new()));
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    tokio::spawn(forward(ev_rx, events));
    let manager = Manager {
        ctx,
        entries: BTreeMap::new(),
        jobs: JoinSet::new(),
        job_keys: HashMap::new(),
        ari_enabled: true,
        events: ev_tx,
        status: status.clone(),
    };
    tokio::spawn(manager.run(rx, shutdown));
    CertHandle { tx, status }
}

/// Passes events on without ever blocking the manager on a slow controller.
async fn forward(mut rx: mpsc::UnboundedReceiver<CertEvent>, tx: mpsc::Sender<CertEvent>) {
    while let Some(ev) = rx.recv().await {
        if tx.send(ev).await.is_err() {
            break;
        }
    }
}

struct Entry {
    spec: CertSpec,
    state: CertState,
    installed: Option<CertInfo>,
    wanted: bool,
    /// A job is out for this certificate (`order` or `ari`).
    running: Option<&'static str>,
    forced: bool,
    waiters: Vec<oneshot::Sender<Result<(), AcmeError>>>,
    logged_renewal: Option<OffsetDateTime>,
}

struct Manager {
    ctx: Arc<Ctx>,
    entries: BTreeMap<HostName, Entry>,
    jobs: JoinSet<JobResult>,
    job_keys: HashMap<Id, HostName>,
    ari_enabled: bool,
    events: mpsc::UnboundedSender<CertEvent>,
    status: Arc<Mutex<Vec<CertStatus>>>,
}

enum Wake {
    Command(Option<Command>),
    Job(Result<(Id, JobResult), tokio::task::JoinError>),
    Timer,
    Shutdown,
}

impl Manager {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        while !*shutdown.borrow() {
            let now = OffsetDateTime::now_utc();
            let sleep = self.step(now).map_or(MAX_SLEEP, |at| {
                Duration::try_from(at - now)
                    .unwrap_or_default()
                    .min(MAX_SLEEP)
            });
            let wake = tokio::select! {
                c = rx.recv() => Wake::Command(c),
                Some(j) = self.jobs.join_next_with_id() => Wake::Job(j),
                _ = tokio::time::sleep(sleep) => Wake::Timer,
                r = shutdown.changed() => if r.is_err() { Wake::Shutdown } else { Wake::Timer },
            };
            match wake {
                Wake::Command(None) | Wake::Shutdown => break,
                Wake::Command(Some(c)) => self.command(c),
                Wake::Job(Ok((id, result))) => self.finished(id, result),
                Wake::Job(Err(e)) => {
                    let failed =
                        AcmeError::Relayed(format!("internal error in certificate job: {e}"));
                    self.finished(e.id(), JobResult::Order(Err(failed)));
                }
                Wake::Timer => {}
            }
        }
        tracing::debug!(action = "acme-stopped", "certificate task stopped");
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::SetWanted(specs) => self.set_wanted(specs),
            Command::RenewNow(key, reply) => {
                let entry = HostName::parse(&key)
                    .ok()
                    .and_then(|k| self.entries.get_mut(&k))
                    .filter(|e| e.wanted);
                match entry {
                    Some(e) => {
                        e.forced = true;
                        e.waiters.push(reply);
                    }
                    None => {
                        let _ = reply.send(Err(AcmeError::NotWanted { domain: key }));
                    }
                }
            }
        }
    }

    fn set_wanted(&mut self, specs: Vec<CertSpec>) {
        for e in self.entries.values_mut() {
            e.wanted = false;
        }
        for spec in specs {
            let key = spec.key.clone();
            let store = &self.ctx.store;
            let e = self.entries.entry(key.clone()).or_insert_with(|| Entry {
                state: store.load_state(&key),
                installed: store.installed(&key),
                spec: spec.clone(),
                wanted: true,
                running: None,
                forced: false,
                waiters: Vec::new(),
                logged_renewal: None,
            });
            e.spec = spec;
            e.wanted = true;
        }
        self.entries.retain(|key, e| {
            if !e.wanted && e.running.is_none() {
                tracing::info!(domain = %key, container = %e.spec.container, action = "cert-unwanted",
                    "no longer wanted: renewal stops, files kept");
            }
            e.wanted || e.running.is_some()
        });
    }

    /// Starts what is due; returns the earliest future deadline. Publishes the status.
    fn step(&mut self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut wake: Option<OffsetDateTime> = None;
        let keys: Vec<HostName> = self.entries.keys().cloned().collect();
        for key in keys {
            let Some(e) = self
                .entries
                .get_mut(&key)
                .filter(|e| e.wanted && e.running.is_none())
            else {
                continue;
            };
            let d = decide(
                e.installed.as_ref(),
                &e.spec.names,
                &e.state,
                e.forced,
                self.ari_enabled,
                now,
            );
            if d.phase == "valid" && d.next_renewal != e.logged_renewal {
                e.logged_renewal = d.next_renewal;
                tracing::info!(domain = %key, container = %e.spec.container, action = "renewal-scheduled",
                    at = %fmt_time(d.next_renewal), not_after = %fmt_time(e.installed.as_ref().map(|c| c.validity.not_after)),
                    "certificate valid; renewal scheduled");
            }
            if d.order_now {
                self.start_order(&key);
            } else if d.ari_now {
                self.start_ari(&key);
            }
            wake = [wake, d.wake].into_iter().flatten().min();
        }
        self.publish(now);
        wake
    }

    fn start_order(&mut self, key: &HostName) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        e.running = Some("order");
        let ours = e
            .installed
            .as_ref()
            .and_then(|c| c.ari_id.clone())
            .filter(|id| e.state.issued_cert_id.as_ref() == Some(id));
        let renewal = e.installed.is_some();
        let fut = run_order(self.ctx.clone(), e.spec.clone(), ours, renewal);
        let id = self.jobs.spawn(fut).id();
        self.job_keys.insert(id, key.clone());
    }

    fn start_ari(&mut self, key: &HostName) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        let Some(cert_id) = e.installed.as_ref().and_then(|c| c.ari_id.clone()) else {
            return;
        };
        e.running = Some("ari");
        let id = self
            .jobs
            .spawn(poll_ari(self.ctx.clone(), e.spec.clone(), cert_id))
            .id();
        self.job_keys.insert(id, key.clone());
    }

    fn publish(&self, now: OffsetDateTime) {
        let list = self
            .entries
            .iter()
            .filter(|(_, e)| e.wanted)
            .map(|(key, e)| {
                let d = decide(
                    e.installed.as_ref(),
                    &e.spec.names,
                    &e.state,
                    e.forced,
                    self.ari_enabled,
                    now,
                );
                status_of(key, e, &d, self.ctx.settings.profile.as_deref())
            })
            .collect();
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = list;
    }
}
