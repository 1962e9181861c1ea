//! What happens when a job ends, the manager's side: the job's result becomes an
//! [`Outcome`] for the machine (which moves the state on: see
//! [`machine::outcome`](super::machine)), and these are the I/O actions that follow: the state
//! file is written first, then `renew_now` callers and the controller are told. No network here.

use rand::Rng;
use tokio::task::Id;

use super::CertEvent;
use super::error::AcmeError;
use super::jobs::JobResult;
use super::machine::{Event, Outcome};
use super::manager::{Held, Manager};
use super::status::fmt_time;
use crate::host::HostName;

impl Manager {
    /// Feeds a finished job's result to its certificate's machine.
    pub(super) async fn finished(&mut self, id: Id, result: JobResult) {
        let Some(key) = self.job_keys.remove(&id) else {
            return;
        };
        let Some(e) = self.entries.get(&key) else {
            return;
        };
        let now = self.clock.now();
        let mut held = Held::default();
        let outcome = match result {
            JobResult::Order(Ok(info)) => {
                tracing::info!(domain = %key, container = %e.cert.spec.container, action = "issued", serial = %info.serial,
                    issuer = %info.issuer, not_after = %fmt_time(Some(info.validity.not_after)), "certificate installed");
                let profile = e.cert.spec.profile.clone();
                Outcome::Issued {
                    info,
                    profile: profile.or_else(|| self.ctx.settings.profile.clone()),
                }
            }
            JobResult::Order(Err(err)) => {
                let failed = Outcome::Failed {
                    local: err.is_local(),
                    retry_after: err.retry_after(),
                    error: err.to_string(),
                };
                held.err = Some(err);
                failed
            }
            JobResult::Ari(Ok((window, wait))) => Outcome::AriWindow {
                window,
                wait,
                unit: rand::rng().random::<f64>(),
            },
            JobResult::Ari(Err(msg)) => {
                tracing::debug!(domain = %key, action = "ari_failed", error = %msg, "ARI poll failed; lifetime rule applies");
                Outcome::AriFailed
            }
            JobResult::AriUnsupported => Outcome::AriUnsupported,
        };
        self.feed(&key, Event::Finished(outcome), now, held).await;
    }

    /// Tells `renew_now` callers and the controller (the state is on disk already).
    pub(super) fn announce_issued(&mut self, key: &HostName) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        for (w, outcome) in e.waiters.drain(..) {
            let _ = w.send(Ok(outcome));
        }
        let _ = self.events.send(CertEvent::Installed { key: key.clone() });
    }

    /// Logs the failure and tells `renew_now` callers (the backoff is on disk already).
    pub(super) fn report_failure(&mut self, key: &HostName, err: Option<AcmeError>) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        let st = &e.cert.state;
        let text = st.last_error.clone().unwrap_or_default();
        let local = err.as_ref().is_some_and(AcmeError::is_local);
        tracing::warn!(domain = %key, container = %e.cert.spec.container,
            action = if local { "self_check_failed" } else { "order_failed" },
            attempts = st.failures, retry_at = %fmt_time(st.next_attempt), error = %text, "no certificate this time");
        let mut first = err;
        for (w, _) in e.waiters.drain(..) {
            let _ = w.send(Err(first
                .take()
                .unwrap_or_else(|| AcmeError::Relayed(text.clone()))));
        }
    }

    /// Writes `key`'s state (fsync'd, off the async threads) and waits for it: callers tell
    /// anyone about an outcome only once it is on disk.
    pub(super) async fn save(&self, key: &HostName) {
        let Some(e) = self.entries.get(key) else {
            return;
        };
        let (store, k, state) = (self.ctx.store.clone(), key.clone(), e.cert.state.clone());
        let done = tokio::task::spawn_blocking(move || store.save_state(&k, &state))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(err) = done {
            tracing::error!(domain = %key, action = "state_write_failed", error = %err,
                "cannot persist certificate state; backoff may not survive a restart");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::{mpsc, watch};

    use crate::acme::store::Store;
    use crate::acme::{AcmeSettings, CertHandle, CertSpec, CertStatus, KeyType, spawn};
    use crate::host::HostName;

    /// Waits (10 s of real time at most) until a status matches, in 1 ms steps: under paused
    /// time tokio moves its clock on while a job's real I/O runs, so the bound is real time.
    async fn status_when(h: &CertHandle, pred: impl Fn(&CertStatus) -> bool) -> CertStatus {
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < end {
            if let Some(s) = h.status().into_iter().find(|s| pred(s)) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("status never matched: {:#?}", h.status());
    }

    fn settings(dir: &std::path::Path) -> AcmeSettings {
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        AcmeSettings {
            directory: "https://127.0.0.1:9/dir".into(),
            ca_bundle: None,
            email: None,
            eab: None,
            profile: None,
            key_type: KeyType::EcdsaP256,
            certs_dir: dir.join("certs"),
            webroot: dir.join("www"),
            self_check: dead,
            concurrency: 1,
            nginx_proxy_certs: None,
        }
    }

    /// Issue 7 item 8: a state file that can't be read is reported and retried; nothing is
    /// attempted (which would reset its backoff) until it reads, and then its backoff holds.
    #[tokio::test(start_paused = true)]
    async fn unreadable_state_is_reported_and_retried_never_reset() {
        let dir = tempfile::tempdir().unwrap();
        let name = HostName::parse("a.example.com").unwrap();
        let state_file = dir.path().join("certs/vhostd/certs/a.example.com.json");
        std::fs::create_dir_all(state_file.join("in-the-way")).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let (_stop, stop_rx) = watch::channel(false);
        let h = spawn(settings(dir.path()), tx, stop_rx);
        h.set_wanted(vec![CertSpec {
            key: name.clone(),
            names: vec![name.clone()],
            email: None,
            profile: None,
            container: "c".into(),
        }]);
        let st = status_when(&h, |s| s.state == "state unreadable").await;
        assert!(
            st.last_error
                .unwrap()
                .contains("cannot read its state file"),
            "reported"
        );
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(
            rx.try_recv().is_err(),
            "no attempt while the state is unreadable"
        );
        assert!(
            state_file.join("in-the-way").is_dir(),
            "nothing written over it"
        );
        let e = h.renew_now("a.example.com", true).await.unwrap_err();
        assert!(e.to_string().contains("state file cannot be read"), "{e}");

        std::fs::remove_dir_all(&state_file).unwrap();
        let until = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
        let state = crate::acme::store::CertState {
            failures: 3,
            next_attempt: Some(until),
            last_error: Some("rate limited".into()),
            ..Default::default()
        };
        Store::new(&dir.path().join("certs"))
            .save_state(&name, &state)
            .unwrap();
        tokio::time::sleep(Duration::from_secs(31)).await;
        let st = status_when(&h, |s| s.state == "backoff").await;
        assert_eq!(
            (st.attempts, st.next_attempt),
            (3, Some(until)),
            "backoff kept"
        );
        assert!(
            rx.try_recv().is_err(),
            "still no attempt: the backoff holds"
        );
    }

    /// Paused time: a failing self-check is retried after 1 min, then 10 min; state is on disk.
    #[tokio::test(start_paused = true)]
    async fn self_check_failures_back_off_in_paused_time() {
        let dir = tempfile::tempdir().unwrap();
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let settings = AcmeSettings {
            directory: "https://127.0.0.1:9/dir".into(),
            ca_bundle: None,
            email: None,
            eab: None,
            profile: None,
            key_type: KeyType::EcdsaP256,
            certs_dir: dir.path().join("certs"),
            webroot: dir.path().join("www"),
            self_check: dead,
            concurrency: 1,
            nginx_proxy_certs: None,
        };
        let (tx, _rx) = mpsc::channel(8);
        let (_stop, stop_rx) = watch::channel(false);
        let h = spawn(settings, tx, stop_rx);
        let name = HostName::parse("a.example.com").unwrap();
        let spec = CertSpec {
            key: name.clone(),
            names: vec![name.clone()],
            email: None,
            profile: None,
            container: "c".into(),
        };
        h.set_wanted(vec![spec]);

        let first = status_when(&h, |s| s.state == "self-check failed").await;
        let challenge_dir = dir
            .path()
            .join("www/a.example.com/.well-known/acme-challenge");
        assert!(
            challenge_dir.is_dir(),
            "set_wanted creates the challenge directory"
        );
        assert_eq!(first.attempts, 0);
        tokio::time::sleep(Duration::from_secs(50)).await;
        let now = status_when(&h, |_| true).await;
        assert_eq!(
            now.next_attempt, first.next_attempt,
            "no retry before the minute is up"
        );
        let later = status_when(&h, |s| s.next_attempt > first.next_attempt).await;
        let step = later.next_attempt.unwrap() - first.next_attempt.unwrap();
        assert!(
            step >= time::Duration::minutes(10),
            "second step is 10 min: {step}"
        );
        let state = Store::new(&dir.path().join("certs"))
            .load_state(&name)
            .unwrap();
        assert_eq!((state.self_check_failures, state.failures), (2, 0));
    }
}
