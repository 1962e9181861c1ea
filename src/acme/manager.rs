//! The certificate task: owns the wanted set and every certificate's state, sleeps until the
//! next deadline (renewal, backoff end, ARI poll) or a command, and spawns bounded jobs. All
//! decisions come from [`decide`](super::decide::decide); all state it acts on is on disk, so a
//! restart resumes exactly (no re-order of a valid certificate, no backoff reset).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::{Id, JoinSet};

use super::account::Accounts;
use super::certinfo::CertInfo;
use super::decide::decide;
use super::error::AcmeError;
use super::jobs::{Ctx, JobResult, poll_ari, run_order};
use super::plan::CertSpec;
use super::renew::{RenewOutcome, Waiter};
use super::status::{CertStatus, Phase, fmt_time, status_of};
use super::store::{CertState, Store};
use super::{AcmeSettings, CertEvent};
use crate::host::HostName;

/// Longest sleep between two looks at the schedule (wall clock can jump; tokio time can't see it).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// The manager's "now": the wall clock, but never behind the monotonic time since start. In
/// production that is the wall clock; under tokio's paused time (tests) it moves as tokio's does.
pub(super) struct Clock {
    wall: OffsetDateTime,
    mono: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            wall: OffsetDateTime::now_utc(),
            mono: tokio::time::Instant::now(),
        }
    }

    /// The current moment.
    pub(super) fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc().max(self.wall + self.mono.elapsed())
    }
}

/// Handle to the certificate task. Cheap to clone; the task stops when every clone is dropped
/// or when `shutdown` turns true.
#[derive(Clone)]
pub struct CertHandle {
    tx: mpsc::UnboundedSender<Command>,
    status: Arc<Mutex<Vec<CertStatus>>>,
}

enum Command {
    SetWanted(Vec<CertSpec>),
    RenewNow(String, bool, Waiter),
}

impl CertHandle {
    /// Replaces the wanted set (level-triggered). Certificates not in it stop renewing; their
    /// files stay. Call it only once every name's challenge route is live in nginx.
    pub fn set_wanted(&self, specs: Vec<CertSpec>) {
        let _ = self.tx.send(Command::SetWanted(specs));
    }

    /// Renews the certificate keyed `key` now, idempotently: joins an order already running,
    /// answers [`RenewOutcome::Fresh`] for a certificate issued within [`FRESH_FOR`] (unless
    /// `force`), and never skips a backoff ([`AcmeError::BackingOff`]) or the self-check.
    pub async fn renew_now(&self, key: &str, force: bool) -> Result<RenewOutcome, AcmeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::RenewNow(key.to_string(), force, reply))
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
        clock: Clock::new(),
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

/// The kind of job out for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Job {
    /// An order (self-check, then ACME).
    Order,
    /// An ARI poll.
    Ari,
}

/// One wanted (or just unwanted, job still out) certificate.
pub(super) struct Entry {
    /// What is wanted.
    pub(super) spec: CertSpec,
    /// What we remember (mirrors the state file).
    pub(super) state: CertState,
    /// The installed certificate, if any.
    pub(super) installed: Option<CertInfo>,
    /// In the last `set_wanted`.
    pub(super) wanted: bool,
    /// A job is out for this certificate (`order` or `ari`).
    pub(super) running: Option<Job>,
    /// An admin asked to renew now.
    pub(super) forced: bool,
    /// `renew_now` callers waiting for the next order's outcome, with what each is told on success.
    pub(super) waiters: Vec<(Waiter, RenewOutcome)>,
    /// Last renewal time logged (log only changes).
    pub(super) logged_renewal: Option<OffsetDateTime>,
    /// The state file is not loaded yet, or could not be read (the error, and when to try
    /// again): nothing is ordered and nothing saved over it until it reads.
    pub(super) unreadable: Option<(String, OffsetDateTime)>,
}

impl Entry {
    /// The installed certificate, unless another ACME directory issued it (a switch from
    /// staging to production, or to another CA): that one is replaced at once, not at its
    /// renewal time, and its id is never sent as `replaces` to a CA that did not issue it.
    pub(super) fn current(&self, directory: &str) -> Option<&CertInfo> {
        let same_ca = self
            .state
            .directory
            .as_deref()
            .is_none_or(|d| d == directory);
        self.installed.as_ref().filter(|_| same_ca)
    }
}

/// The task's state (see module docs).
pub(super) struct Manager {
    /// Shared with jobs.
    pub(super) ctx: Arc<Ctx>,
    /// Certificates by key.
    pub(super) entries: BTreeMap<HostName, Entry>,
    /// Running jobs.
    pub(super) jobs: JoinSet<JobResult>,
    /// Which certificate each job is for.
    pub(super) job_keys: HashMap<Id, HostName>,
    /// False once the CA said it has no ARI.
    pub(super) ari_enabled: bool,
    /// Time source.
    pub(super) clock: Clock,
    /// To the controller (via [`forward`]).
    pub(super) events: mpsc::UnboundedSender<CertEvent>,
    /// What [`CertHandle::status`] reads.
    pub(super) status: Arc<Mutex<Vec<CertStatus>>>,
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
        let store = self.ctx.store.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.ensure_state_dirs()).await {
            tracing::error!(action = "state_dir_failed", error = %e,
                "cannot create or tighten (0700) vhostd's state directories under --certs-dir");
        }
        while !*shutdown.borrow() {
            let now = self.clock.now();
            self.load_due(now).await;
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
                Wake::Command(Some(c)) => self.command(c).await,
                Wake::Job(Ok((id, result))) => self.finished(id, result).await,
                Wake::Job(Err(e)) => {
                    let failed =
                        AcmeError::Relayed(format!("internal error in certificate job: {e}"));
                    self.finished(e.id(), JobResult::Order(Err(failed))).await;
                }
                Wake::Timer => {}
            }
        }
        tracing::debug!(action = "acme_stopped", "certificate task stopped");
    }

    async fn command(&mut self, c: Command) {
        match c {
            Command::SetWanted(specs) => self.set_wanted(specs).await,
            Command::RenewNow(key, force, reply) => self.renew_now(key, force, reply),
        }
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
            if let Some((_, retry)) = &e.unreadable {
                wake = [wake, Some(*retry)].into_iter().flatten().min();
                continue;
            }
            let directory = &self.ctx.settings.directory;
            let d = decide(
                e.current(directory),
                &e.spec.names,
                &e.state,
                e.forced,
                self.ari_enabled,
                now,
            );
            if d.order_now && e.installed.is_some() && e.current(directory).is_none() {
                tracing::info!(domain = %key, container = %e.spec.container, action = "ca_changed",
                    issued_by = %e.state.directory.as_deref().unwrap_or("-"), directory = %directory,
                    "certificate is from another ACME directory; ordering from the current one");
            }
            if d.phase == Phase::Valid && d.next_renewal != e.logged_renewal {
                e.logged_renewal = d.next_renewal;
                tracing::info!(domain = %key, container = %e.spec.container, action = "renewal_scheduled",
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
        e.running = Some(Job::Order);
        // `replaces` is an ARI field: a CA known to have no ARI is not asked for it.
        let ours = e
            .current(&self.ctx.settings.directory)
            .filter(|_| self.ari_enabled)
            .and_then(|c| c.ari_id.clone())
            .filter(|id| e.state.issued_cert_id.as_ref() == Some(id));
        let serial = e.installed.as_ref().map(|c| c.serial.clone());
        let fut = run_order(self.ctx.clone(), e.spec.clone(), ours, serial);
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
        e.running = Some(Job::Ari);
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
                    e.current(&self.ctx.settings.directory),
                    &e.spec.names,
                    &e.state,
                    e.forced,
                    self.ari_enabled,
                    now,
                );
                let profile = e
                    .spec
                    .profile
                    .as_deref()
                    .or(self.ctx.settings.profile.as_deref());
                let ordering = e.running == Some(Job::Order);
                let mut state = e.state.clone();
                if let Some((error, _)) = &e.unreadable {
                    state.last_error =
                        Some(format!("cannot read its state file: {error}; retrying"));
                }
                let mut st = status_of(
                    key,
                    &e.spec,
                    e.installed.as_ref(),
                    &state,
                    &d,
                    profile,
                    ordering,
                );
                if e.unreadable.is_some() {
                    st.state = Phase::StateUnreadable;
                }
                st
            })
            .collect();
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = list;
    }
}
