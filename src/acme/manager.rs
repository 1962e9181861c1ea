//! The certificate task: the loop and I/O around the pure state machine. It owns every
//! certificate's [`Cert`] value, reads the clock, feeds each wake-up, command and job result to
//! [`apply`](super::machine::apply) and performs the actions it returns (spawn a job, save the
//! state file, answer waiters, log, tell the controller, publish the status). It decides nothing
//! itself; all state decisions read is on disk, so a restart resumes exactly (no re-order of a
//! valid certificate, no backoff reset).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::{Id, JoinSet};

use super::account::Accounts;
use super::error::AcmeError;
use super::jobs::{Ctx, JobResult};
use super::machine::{Cert, Event, apply};
use super::plan::CertSpec;
use super::renew::{RenewOutcome, Waiter};
use super::status::{CertStatus, status_of};
use super::store::Store;
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
        order_rate: Default::default(),
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

/// One wanted (or just unwanted, job still out) certificate: the machine's value, and the
/// channels the machine never sees.
pub(super) struct Entry {
    /// Everything decisions read (see [`Cert`]).
    pub(super) cert: Cert,
    /// `renew_now` callers waiting for the next order's outcome, with what each is told on success.
    pub(super) waiters: Vec<(Waiter, RenewOutcome)>,
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

/// What the manager holds for one event besides the event itself: things the pure machine never
/// sees (an order's error, to hand to waiters; a renew-now caller's reply channel).
#[derive(Default)]
pub(super) struct Held {
    /// The failed order's error (the first waiter gets it as is).
    pub(super) err: Option<AcmeError>,
    /// The renew-now caller, and the key as it asked for it (answers name it so).
    pub(super) reply: Option<(Waiter, String)>,
}

/// What performing one event's actions left for the loop.
#[derive(Default)]
pub(super) struct Fed {
    /// The earliest wake-up asked for.
    pub(super) wake: Option<OffsetDateTime>,
    /// The state file must be read (then the certificate ticks again).
    pub(super) read_state: bool,
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
            let sleep = self.step(now).await.map_or(MAX_SLEEP, |at| {
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
            Command::RenewNow(key, force, reply) => self.renew_now(key, force, reply).await,
        }
    }

    /// Ticks every certificate (starting what is due); returns the earliest wake-up asked for.
    /// Publishes the status.
    async fn step(&mut self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut wake: Option<OffsetDateTime> = None;
        let keys: Vec<HostName> = self.entries.keys().cloned().collect();
        for key in keys {
            let tick = Event::Tick {
                ari: self.ari_enabled,
            };
            let mut fed = self.feed(&key, tick.clone(), now, Held::default()).await;
            if fed.read_state {
                let read = self.read_state(&key).await;
                self.feed(&key, Event::StateRead(read), now, Held::default())
                    .await;
                fed = self.feed(&key, tick, now, Held::default()).await;
            }
            wake = [wake, fed.wake].into_iter().flatten().min();
        }
        self.publish(now);
        wake
    }

    /// Feeds one event to `key`'s certificate and performs the actions the machine returns.
    pub(super) async fn feed(
        &mut self,
        key: &HostName,
        event: Event,
        now: OffsetDateTime,
        mut held: Held,
    ) -> Fed {
        let mut fed = Fed::default();
        let Some(mut e) = self.entries.remove(key) else {
            return fed;
        };
        let (cert, actions) = apply(e.cert, event, now);
        e.cert = cert;
        self.entries.insert(key.clone(), e);
        for action in actions {
            self.perform(key, action, &mut held, &mut fed).await;
        }
        fed
    }

    fn publish(&self, now: OffsetDateTime) {
        let profile = self.ctx.settings.profile.as_deref();
        let list = self
            .entries
            .values()
            .filter(|e| e.cert.wanted)
            .map(|e| status_of(&e.cert, profile, self.ari_enabled, now))
            .collect();
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = list;
    }
}
