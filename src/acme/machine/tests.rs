//! Unit tests of [`apply`](super::apply) on plain data: job outcomes here, the wake-up in
//! [`tick`], renew-now in [`renew`].

mod renew;
mod tick;

use std::time::Duration;

use time::macros::datetime;
use time::{Duration as TimeDuration, OffsetDateTime};

use super::*;
use crate::acme::schedule::{ARI_ERROR_POLL, AriWindow, Validity};

const NOW: OffsetDateTime = datetime!(2026-03-01 00:00 UTC);
const DIR: &str = "https://ca/dir";

/// The spec of a certificate for `a.test` and `b.test`.
fn spec() -> CertSpec {
    let names: Vec<HostName> = ["a.test", "b.test"]
        .iter()
        .map(|n| HostName::parse(n).unwrap())
        .collect();
    CertSpec {
        key: names[0].clone(),
        names,
        email: None,
        profile: None,
        container: "c".into(),
    }
}

/// A wanted certificate whose state file reads as `state`, with nothing installed.
fn cert(state: CertState) -> Cert {
    Cert {
        state,
        unreadable: None,
        ..Cert::new(spec(), DIR.into(), None, NOW)
    }
}

/// An installed certificate for the spec's names, valid from `issued_days_ago` for `life_days`.
fn info(issued_days_ago: i64, life_days: i64) -> CertInfo {
    let nb = NOW - TimeDuration::days(issued_days_ago);
    CertInfo {
        validity: Validity {
            not_before: nb,
            not_after: nb + TimeDuration::days(life_days),
        },
        sans: vec!["b.test".into(), "a.test".into()],
        serial: "01".into(),
        issuer: "CA".into(),
        ari_id: Some("id1".into()),
    }
}

/// [`cert`] with `info` installed.
fn installed(state: CertState, info: CertInfo) -> Cert {
    Cert {
        installed: Some(info),
        ..cert(state)
    }
}

fn finished(c: Cert, outcome: Outcome) -> (Cert, Vec<Action>) {
    apply(c, Event::Finished(outcome), NOW)
}

fn ca_failure(retry_after: Option<OffsetDateTime>) -> Outcome {
    Outcome::Failed {
        local: false,
        retry_after,
        error: "rate limited".into(),
    }
}

fn window() -> AriWindow {
    AriWindow {
        start: NOW + TimeDuration::days(10),
        end: NOW + TimeDuration::days(12),
        explanation_url: None,
    }
}

#[test]
fn issue_clears_the_backoff_and_is_saved_before_it_is_announced() {
    let backing_off = CertState {
        failures: 3,
        next_attempt: Some(NOW + TimeDuration::hours(1)),
        last_error: Some("x".into()),
        ..CertState::default()
    };
    let c = Cert {
        running: Some(Job::Order),
        forced: true,
        ..cert(backing_off)
    };
    let ev = Outcome::Issued {
        info: info(0, 90),
        profile: None,
    };
    let (c, actions) = finished(c, ev);
    assert_eq!(actions, vec![Action::Save, Action::AnnounceIssued]);
    let st = &c.state;
    assert_eq!(
        (st.failures, st.next_attempt, st.last_error.clone()),
        (0, None, None)
    );
    assert_eq!(st.issued_at, Some(NOW));
    assert_eq!(st.issued_cert_id.as_deref(), Some("id1"));
    assert_eq!(st.directory.as_deref(), Some(DIR));
    assert_eq!(st.names, ["a.test", "b.test"]);
    assert_eq!(c.installed, Some(info(0, 90)));
    assert_eq!((c.running, c.forced), (None, false));
}

#[test]
fn ca_failures_back_off_one_step_further_each_time() {
    let (c, actions) = finished(cert(CertState::default()), ca_failure(None));
    assert_eq!(actions, vec![Action::Save, Action::ReportFailure]);
    assert_eq!(c.state.failures, 1);
    assert_eq!(c.state.next_attempt, Some(NOW + TimeDuration::minutes(1)));
    assert_eq!(c.state.last_error.as_deref(), Some("rate limited"));
    let (c, _) = finished(c, ca_failure(None));
    assert_eq!(c.state.next_attempt, Some(NOW + TimeDuration::minutes(10)));
}

#[test]
fn a_later_retry_after_wins_over_the_backoff_step_an_earlier_one_does_not() {
    let later = NOW + TimeDuration::hours(5);
    let (c, _) = finished(cert(CertState::default()), ca_failure(Some(later)));
    assert_eq!(c.state.next_attempt, Some(later));
    let earlier = NOW + TimeDuration::seconds(5);
    let (c, _) = finished(cert(CertState::default()), ca_failure(Some(earlier)));
    assert_eq!(c.state.next_attempt, Some(NOW + TimeDuration::minutes(1)));
}

#[test]
fn self_check_failures_use_their_own_short_ladder_and_keep_the_ca_count() {
    let c = cert(CertState {
        failures: 2,
        ..CertState::default()
    });
    let local = Outcome::Failed {
        local: true,
        retry_after: None,
        error: "self-check".into(),
    };
    let (c, _) = finished(c, local.clone());
    let (c, _) = finished(c, local.clone());
    let (c, _) = finished(c, local);
    assert_eq!((c.state.failures, c.state.self_check_failures), (2, 3));
    assert_eq!(c.state.next_attempt, Some(NOW + TimeDuration::minutes(10)));
    let (c, _) = finished(c, ca_failure(None));
    assert_eq!((c.state.failures, c.state.self_check_failures), (3, 0));
}

#[test]
fn an_ari_window_is_kept_and_its_pick_does_not_move_when_it_is_sent_again() {
    let ev = |unit| Outcome::AriWindow {
        window: window(),
        wait: Duration::from_secs(3600),
        unit,
    };
    let st = CertState {
        ari_retry_at: Some(NOW),
        ..CertState::default()
    };
    let (c, actions) = finished(installed(st, info(0, 90)), ev(0.5));
    let picked = NOW + TimeDuration::days(11);
    assert_eq!(actions, vec![Action::LogAriWindow(picked), Action::Save]);
    assert_eq!(c.state.ari_retry_at, None);
    let ari = c.state.ari.clone().unwrap();
    assert_eq!(ari.cert_id, "id1", "the installed certificate's id");
    assert_eq!(
        (ari.selected, ari.next_poll),
        (picked, NOW + TimeDuration::hours(1))
    );
    let (again, actions) = finished(c, ev(0.9));
    assert_eq!(
        actions,
        vec![Action::Save],
        "same window: nothing new to log"
    );
    assert_eq!(again.state.ari.unwrap().selected, picked);
    let (none, actions) = finished(cert(CertState::default()), ev(0.5));
    assert_eq!(
        (actions, none.state.ari),
        (vec![], None),
        "nothing installed: nothing kept"
    );
}

#[test]
fn a_failed_ari_poll_is_retried_later_and_keeps_everything_else() {
    let st = CertState {
        failures: 1,
        ..CertState::default()
    };
    let (after, actions) = finished(cert(st.clone()), Outcome::AriFailed);
    assert_eq!(actions, vec![Action::Save]);
    assert_eq!(after.state.ari_retry_at, Some(NOW + ARI_ERROR_POLL));
    assert_eq!(
        CertState {
            ari_retry_at: None,
            ..after.state
        },
        st
    );
}

#[test]
fn every_job_end_clears_running() {
    let ends = [
        Outcome::Issued {
            info: info(0, 90),
            profile: None,
        },
        ca_failure(None),
        Outcome::AriWindow {
            window: window(),
            wait: Duration::from_secs(60),
            unit: 0.1,
        },
        Outcome::AriFailed,
        Outcome::AriUnsupported,
    ];
    for (end, job) in ends
        .into_iter()
        .zip([Job::Order, Job::Order, Job::Ari, Job::Ari, Job::Ari])
    {
        let c = Cert {
            running: Some(job),
            ..installed(CertState::default(), info(10, 90))
        };
        let (c, actions) = finished(c, end.clone());
        assert_eq!(c.running, None, "{end:?}");
        assert!(!actions.contains(&Action::Forget), "still wanted: {end:?}");
    }
    let c = Cert {
        running: Some(Job::Ari),
        ..cert(CertState::default())
    };
    let (_, actions) = finished(c, Outcome::AriUnsupported);
    assert_eq!(actions, vec![Action::DisableAri]);
}

#[test]
fn an_unwanted_certificate_is_dropped_once_its_job_has_reported() {
    let c = Cert {
        running: Some(Job::Order),
        ..cert(CertState::default())
    };
    let (c, actions) = apply(c, Event::Unwanted, NOW);
    assert_eq!(actions, vec![], "its job is still out");
    assert!(!c.wanted);
    let (_, actions) = finished(c, ca_failure(None));
    assert_eq!(
        actions,
        vec![Action::Save, Action::ReportFailure, Action::Forget]
    );
    let (_, actions) = apply(cert(CertState::default()), Event::Unwanted, NOW);
    assert_eq!(actions, vec![Action::LogUnwanted, Action::Forget]);
}

#[test]
fn an_unreadable_state_file_is_never_written_over() {
    let c = Cert {
        running: Some(Job::Ari),
        unreadable: Some(Unreadable {
            error: "denied".into(),
            retry_at: NOW,
        }),
        ..installed(CertState::default(), info(10, 90))
    };
    let (_, actions) = finished(c, Outcome::AriFailed);
    assert_eq!(actions, vec![]);
}

#[test]
fn a_changed_name_set_prepares_the_webroot_first() {
    let (c, actions) = apply(cert(CertState::default()), Event::Wanted(spec()), NOW);
    assert_eq!(actions, vec![], "same names");
    let mut fewer = spec();
    fewer.names.truncate(1);
    let (c, actions) = apply(c, Event::Wanted(fewer.clone()), NOW);
    assert_eq!(actions, vec![Action::PrepareWebroot]);
    assert_eq!(c.spec, fewer);
}
