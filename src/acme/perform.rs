//! The manager's I/O for each [`Action`] the machine returns: spawn a job, write the state file,
//! answer waiters, log, tell the controller. Nothing here decides; it does what it is told.

use super::jobs::{poll_ari, run_order};
use super::machine::{Action, Cert};
use super::manager::{Fed, Held, Manager};
use super::status::fmt_time;
use super::wanted::prepare_webroot;
use crate::host::HostName;

impl Manager {
    /// Performs one action for `key`'s certificate (`held`: what the event carried besides).
    pub(super) async fn perform(
        &mut self,
        key: &HostName,
        action: Action,
        held: &mut Held,
        fed: &mut Fed,
    ) {
        match action {
            Action::Save => self.save(key).await,
            Action::AnnounceIssued => self.announce_issued(key),
            Action::ReportFailure => self.report_failure(key, held.err.take()),
            Action::ReadState => fed.read_state = true,
            Action::PrepareWebroot => {
                if let Some(e) = self.entries.get(key) {
                    let webroot = self.ctx.settings.webroot.clone();
                    prepare_webroot(webroot, e.cert.spec.clone()).await;
                }
            }
            Action::Forget => {
                self.entries.remove(key);
            }
            Action::Answer { answer, force } => self.answer(key, answer, force, held.reply.take()),
            Action::StartOrder {
                replaces,
                installed_serial,
            } => self.start_order(key, replaces, installed_serial),
            Action::StartAri { cert_id } => self.start_ari(key, cert_id),
            Action::WakeAt(at) => fed.wake = Some(fed.wake.map_or(at, |w| w.min(at))),
            Action::DisableAri => {
                self.ari_enabled = false;
                tracing::info!(action = "ari_unsupported", directory = %self.ctx.settings.directory,
                    "the CA offers no renewal information (ARI); renewing by certificate lifetime");
            }
            log @ (Action::LogAriWindow(_)
            | Action::LogStateUnreadable(_)
            | Action::LogUnwanted
            | Action::LogCaChanged { .. }
            | Action::LogRenewalScheduled { .. }) => {
                if let Some(c) = self.entries.get(key).map(|e| &e.cert) {
                    log_action(key, c, log);
                }
            }
        }
    }

    fn start_order(
        &mut self,
        key: &HostName,
        replaces: Option<String>,
        installed_serial: Option<String>,
    ) {
        let Some(e) = self.entries.get(key) else {
            return;
        };
        let fut = run_order(
            self.ctx.clone(),
            e.cert.spec.clone(),
            replaces,
            installed_serial,
        );
        let id = self.jobs.spawn(fut).id();
        self.job_keys.insert(id, key.clone());
    }

    fn start_ari(&mut self, key: &HostName, cert_id: String) {
        let Some(e) = self.entries.get(key) else {
            return;
        };
        let fut = poll_ari(self.ctx.clone(), e.cert.spec.clone(), cert_id);
        let id = self.jobs.spawn(fut).id();
        self.job_keys.insert(id, key.clone());
    }
}

/// Writes the log line of a logging action (other actions are not passed here).
fn log_action(key: &HostName, c: &Cert, action: Action) {
    let container = &c.spec.container;
    match action {
        Action::LogAriWindow(picked) => {
            if let Some(w) = c.state.ari.as_ref().map(|a| &a.window) {
                tracing::info!(domain = %key, action = "ari_window", start = %fmt_time(Some(w.start)), end = %fmt_time(Some(w.end)),
                    picked = %fmt_time(Some(picked)), explanation = w.explanation_url.as_deref().unwrap_or("-"),
                    "CA suggested a renewal window");
            }
        }
        Action::LogStateUnreadable(error) => {
            tracing::error!(domain = %key, %container, action = "state_unreadable", %error,
                "cannot read the certificate's state file; nothing is ordered until it reads (retrying)");
        }
        Action::LogUnwanted => {
            tracing::info!(domain = %key, %container, action = "cert_unwanted",
                "no longer wanted: renewal stops, files kept");
        }
        Action::LogCaChanged { issued_by } => {
            tracing::info!(domain = %key, %container, action = "ca_changed",
                issued_by = %issued_by.as_deref().unwrap_or("-"), directory = %c.directory,
                "certificate is from another ACME directory; ordering from the current one");
        }
        Action::LogRenewalScheduled { at, not_after } => {
            tracing::info!(domain = %key, %container, action = "renewal_scheduled",
                at = %fmt_time(Some(at)), not_after = %fmt_time(not_after),
                "certificate valid; renewal scheduled");
        }
        _ => {}
    }
}
