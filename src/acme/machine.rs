//! Pure: the certificate state machine. A [`Cert`] is everything a decision about one certificate
//! reads (the state file's [`CertState`], the installed certificate, the job out for it, an
//! admin's pending renew-now, a state file that can't be read); [`apply`] takes it, one
//! [`Event`] and the time, and returns the new value and what the manager must do, in order
//! (persist first, then tell anyone). The manager only reads the clock, feeds events, runs jobs
//! and performs the [`Action`]s: it decides nothing itself.
//!
//! - [`tick`]: the wake-up — what to start now (order or ARI poll), when to wake again, what to log;
//! - [`renew`]: an admin's renew-now (join, fresh, backing off, unreadable, or order);
//! - [`outcome`]: a job's end (issued, failed with backoff, ARI window or failure).

mod outcome;
mod renew;
mod tick;

use time::OffsetDateTime;

use super::certinfo::CertInfo;
use super::decide::{Decision, decide};
use super::plan::CertSpec;
use super::store::CertState;
use crate::host::HostName;

pub use outcome::Outcome;
pub use renew::{FRESH_FOR, RenewAnswer};

/// The kind of job out for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// An order (self-check, then ACME).
    Order,
    /// An ARI poll.
    Ari,
}

/// A state file that is not loaded yet or could not be read: nothing is ordered and nothing
/// saved over it until it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The read error (empty before the first read).
    pub error: String,
    /// When to read it again.
    pub retry_at: OffsetDateTime,
}

/// One certificate as the machine sees it (see module docs). Waiters are not here: they are
/// channels, held by the manager.
#[derive(Debug, Clone, PartialEq)]
pub struct Cert {
    /// What is wanted.
    pub spec: CertSpec,
    /// The ACME directory it is ordered from (the configured one).
    pub directory: String,
    /// What we remember (mirrors the state file).
    pub state: CertState,
    /// The installed certificate, if any.
    pub installed: Option<CertInfo>,
    /// In the last wanted set.
    pub wanted: bool,
    /// The job out for it, if any.
    pub running: Option<Job>,
    /// An admin asked to renew now and that order has not ended yet.
    pub forced: bool,
    /// The state file is not loaded yet, or could not be read.
    pub unreadable: Option<Unreadable>,
    /// Last renewal time logged (log only changes).
    pub logged_renewal: Option<OffsetDateTime>,
}

impl Cert {
    /// A newly wanted certificate: its state file is read at the next tick.
    pub fn new(
        spec: CertSpec,
        directory: String,
        installed: Option<CertInfo>,
        now: OffsetDateTime,
    ) -> Self {
        Cert {
            spec,
            directory,
            state: CertState::default(),
            installed,
            wanted: true,
            running: None,
            forced: false,
            unreadable: Some(Unreadable {
                error: String::new(),
                retry_at: now,
            }),
            logged_renewal: None,
        }
    }

    /// The installed certificate, unless another ACME directory issued it (a switch from
    /// staging to production, or to another CA): that one is replaced at once, not at its
    /// renewal time, and its id is never sent as `replaces` to a CA that did not issue it.
    pub fn current(&self) -> Option<&CertInfo> {
        let same_ca = self
            .state
            .directory
            .as_deref()
            .is_none_or(|d| d == self.directory);
        self.installed.as_ref().filter(|_| same_ca)
    }

    /// When the installed certificate (current CA, exactly the wanted names) was issued by
    /// vhostd, if that is less than [`FRESH_FOR`] before `now`.
    pub fn fresh(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let names = self.spec.names.iter().map(HostName::as_str);
        self.current()
            .filter(|c| c.covers_exactly(names))
            .and(self.state.issued_at)
            .filter(|at| now - *at < FRESH_FOR)
    }

    /// What [`decide`] says for this certificate now (`ari`: the CA has ARI, as far as known).
    pub fn decide(&self, ari: bool, now: OffsetDateTime) -> Decision {
        decide(
            self.current(),
            &self.spec.names,
            &self.state,
            self.forced,
            ari,
            now,
        )
    }
}

/// Something that happened to one certificate.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The manager woke up: start what is due. `ari`: the CA has ARI, as far as known.
    Tick {
        /// False once the CA said it has no ARI.
        ari: bool,
    },
    /// The state file was read (its contents) or could not be (the error).
    StateRead(Result<CertState, String>),
    /// The certificate is in the wanted set, with this spec.
    Wanted(CertSpec),
    /// The certificate is no longer in the wanted set.
    Unwanted,
    /// An admin's renew-now (`force`: even a certificate issued within [`FRESH_FOR`]).
    RenewNow {
        /// Skip the freshness check (never the backoff).
        force: bool,
    },
    /// The job out for the certificate ended.
    Finished(Outcome),
}

/// What the manager does after [`apply`], in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write the state file (fsync'd) before anything else is done.
    Save,
    /// Tell `renew_now` callers and the controller that a certificate is installed.
    AnnounceIssued,
    /// Log the failure and tell `renew_now` callers that the order failed.
    ReportFailure,
    /// Log the CA's new renewal window (in the state) and the moment picked in it.
    LogAriWindow(OffsetDateTime),
    /// Read the state file, feed [`Event::StateRead`], then tick again.
    ReadState,
    /// Log that the state file cannot be read (the error); it is retried.
    LogStateUnreadable(String),
    /// Create the challenge directory of every wanted name.
    PrepareWebroot,
    /// Log that the certificate is no longer wanted (its files stay).
    LogUnwanted,
    /// Drop the certificate from the manager (unwanted, no job out).
    Forget,
    /// Answer a renew-now request.
    Answer {
        /// The answer.
        answer: RenewAnswer,
        /// The request's `force` (logged).
        force: bool,
    },
    /// Log that the installed certificate is from another ACME directory (`issued_by`).
    LogCaChanged {
        /// The directory that issued it.
        issued_by: Option<String>,
    },
    /// Log the (new) renewal time of a valid certificate.
    LogRenewalScheduled {
        /// When it will be renewed.
        at: OffsetDateTime,
        /// The installed certificate's notAfter.
        not_after: Option<OffsetDateTime>,
    },
    /// Spawn an order job.
    StartOrder {
        /// ARI id of the certificate it replaces (`replaces`), when ours and the CA has ARI.
        replaces: Option<String>,
        /// Serial of the installed certificate (a renewal; a resumed order may have it already).
        installed_serial: Option<String>,
    },
    /// Spawn an ARI poll for `cert_id`.
    StartAri {
        /// The installed certificate's ARI id.
        cert_id: String,
    },
    /// Wake up again at this moment at the latest.
    WakeAt(OffsetDateTime),
    /// The CA has no ARI: stop asking (for every certificate) and log it.
    DisableAri,
}

/// Applies one event to a certificate (see module docs).
pub fn apply(cert: Cert, event: Event, now: OffsetDateTime) -> (Cert, Vec<Action>) {
    match event {
        Event::Tick { ari } => tick::tick(cert, ari, now),
        Event::StateRead(read) => state_read(cert, read, now),
        Event::Wanted(spec) => wanted(cert, spec),
        Event::Unwanted => unwanted(cert),
        Event::RenewNow { force } => renew::renew_now(cert, force, now),
        Event::Finished(outcome) => outcome::finished(cert, outcome, now),
    }
}

/// How long an unreadable state file waits before it is read again.
pub const UNREADABLE_RETRY: time::Duration = time::Duration::seconds(30);

/// A read error is retried later, never taken as a fresh start (that would reset the backoff).
fn state_read(
    mut c: Cert,
    read: Result<CertState, String>,
    now: OffsetDateTime,
) -> (Cert, Vec<Action>) {
    match read {
        Ok(state) => {
            c.state = state;
            c.unreadable = None;
            (c, Vec::new())
        }
        Err(error) => {
            c.unreadable = Some(Unreadable {
                error: error.clone(),
                retry_at: now + UNREADABLE_RETRY,
            });
            (c, vec![Action::LogStateUnreadable(error)])
        }
    }
}

/// A changed name set needs its challenge directories before anything is ordered.
fn wanted(mut c: Cert, spec: CertSpec) -> (Cert, Vec<Action>) {
    let actions = if c.spec.names != spec.names {
        vec![Action::PrepareWebroot]
    } else {
        Vec::new()
    };
    c.spec = spec;
    c.wanted = true;
    (c, actions)
}

/// Renewal stops; a running job still reports back before the certificate is dropped.
fn unwanted(mut c: Cert) -> (Cert, Vec<Action>) {
    c.wanted = false;
    let actions = if c.running.is_none() {
        vec![Action::LogUnwanted, Action::Forget]
    } else {
        Vec::new()
    };
    (c, actions)
}

#[cfg(test)]
mod tests;
