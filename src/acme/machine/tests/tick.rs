//! The wake-up: what is started, what is logged, when to wake again, and a restart.

use super::*;
use crate::acme::status::Phase;

fn tick(c: Cert, ari: bool) -> (Cert, Vec<Action>) {
    apply(c, Event::Tick { ari }, NOW)
}

#[test]
fn nothing_installed_is_ordered_at_once_and_only_once() {
    let (c, actions) = tick(cert(CertState::default()), true);
    assert_eq!(
        actions,
        vec![Action::StartOrder {
            replaces: None,
            installed_serial: None
        }]
    );
    assert_eq!(c.running, Some(Job::Order));
    let (_, actions) = tick(c, true);
    assert_eq!(actions, vec![], "the order is running: nothing more");
}

#[test]
fn a_valid_certificate_wakes_at_its_renewal_and_logs_it_once() {
    let c = installed(CertState::default(), info(10, 90));
    let at = NOW + TimeDuration::days(50);
    let (c, actions) = tick(c, false);
    assert_eq!(
        actions,
        vec![
            Action::LogRenewalScheduled {
                at,
                not_after: Some(NOW + TimeDuration::days(80))
            },
            Action::WakeAt(at)
        ]
    );
    assert_eq!(c.running, None);
    let (c, actions) = tick(c, false);
    assert_eq!(actions, vec![Action::WakeAt(at)], "logged once");
    assert_eq!(status_phase(&c), Phase::Valid);
}

#[test]
fn a_due_ari_poll_is_started_and_the_renewal_still_wakes() {
    let c = installed(CertState::default(), info(10, 90));
    let at = NOW + TimeDuration::days(50);
    let (c, actions) = tick(c, true);
    assert_eq!(
        &actions[1..],
        [
            Action::StartAri {
                cert_id: "id1".into()
            },
            Action::WakeAt(at)
        ]
    );
    assert_eq!(c.running, Some(Job::Ari));
    let (_, actions) = tick(c, true);
    assert_eq!(actions, vec![], "the poll is out");
}

#[test]
fn a_certificate_from_another_directory_is_ordered_at_once_and_logged() {
    let st = CertState {
        directory: Some("https://staging/dir".into()),
        issued_cert_id: Some("id1".into()),
        ..CertState::default()
    };
    let (c, actions) = tick(installed(st, info(10, 90)), true);
    assert_eq!(
        actions,
        vec![
            Action::LogCaChanged {
                issued_by: Some("https://staging/dir".into())
            },
            Action::StartOrder {
                replaces: None,
                installed_serial: Some("01".into())
            }
        ],
        "another CA's id is never sent as `replaces`"
    );
    assert_eq!(c.running, Some(Job::Order));
}

#[test]
fn a_due_renewal_replaces_our_own_certificate_only_when_the_ca_has_ari() {
    let ours = CertState {
        issued_cert_id: Some("id1".into()),
        directory: Some(DIR.into()),
        ..CertState::default()
    };
    let due = installed(ours.clone(), info(61, 90));
    let (_, actions) = tick(due.clone(), true);
    assert_eq!(
        actions,
        vec![Action::StartOrder {
            replaces: Some("id1".into()),
            installed_serial: Some("01".into())
        }]
    );
    let (_, actions) = tick(due, false);
    assert_eq!(
        actions,
        vec![Action::StartOrder {
            replaces: None,
            installed_serial: Some("01".into())
        }]
    );
    let theirs = installed(CertState::default(), info(61, 90));
    let (_, actions) = tick(theirs, true);
    assert_eq!(
        actions,
        vec![Action::StartOrder {
            replaces: None,
            installed_serial: Some("01".into())
        }],
        "a certificate we did not issue is not `replaced`"
    );
}

#[test]
fn a_backoff_waits_even_when_forced() {
    let until = NOW + TimeDuration::minutes(10);
    let c = Cert {
        forced: true,
        ..cert(CertState {
            failures: 2,
            next_attempt: Some(until),
            ..CertState::default()
        })
    };
    let (c, actions) = tick(c, true);
    assert_eq!(actions, vec![Action::WakeAt(until)]);
    assert_eq!((c.running, status_phase(&c)), (None, Phase::Backoff));
    let (c, actions) = apply(c, Event::Tick { ari: true }, until);
    assert_eq!(c.running, Some(Job::Order), "{actions:?}");
}

#[test]
fn an_unwanted_certificate_starts_nothing() {
    let c = Cert {
        wanted: false,
        ..cert(CertState::default())
    };
    assert_eq!(tick(c, true).1, vec![]);
}

#[test]
fn the_state_file_is_read_first_and_an_unreadable_one_is_retried_never_reset() {
    let c = Cert::new(spec(), DIR.into(), None, NOW);
    let (c, actions) = tick(c, true);
    assert_eq!(
        actions,
        vec![Action::ReadState],
        "nothing ordered before it reads"
    );
    let (c, actions) = apply(c, Event::StateRead(Err("denied".into())), NOW);
    assert_eq!(actions, vec![Action::LogStateUnreadable("denied".into())]);
    let retry = NOW + UNREADABLE_RETRY;
    let (c, actions) = tick(c, true);
    assert_eq!(actions, vec![Action::WakeAt(retry)]);
    assert_eq!(status_phase(&c), Phase::StateUnreadable);
    let (c, actions) = apply(c, Event::RenewNow { force: true }, NOW);
    assert_eq!(
        actions,
        vec![Action::Answer {
            answer: RenewAnswer::StateUnreadable {
                error: "denied".into()
            },
            force: true
        }]
    );
    let (c, actions) = apply(c, Event::Tick { ari: true }, retry);
    assert_eq!(actions, vec![Action::ReadState]);
    let backoff = CertState {
        failures: 3,
        next_attempt: Some(NOW + TimeDuration::hours(2)),
        ..CertState::default()
    };
    let (c, actions) = apply(c, Event::StateRead(Ok(backoff.clone())), retry);
    assert_eq!(
        (actions, &c.state, &c.unreadable),
        (vec![], &backoff, &None)
    );
    let (_, actions) = apply(c, Event::Tick { ari: true }, retry);
    assert_eq!(
        actions,
        vec![Action::WakeAt(NOW + TimeDuration::hours(2))],
        "its backoff holds"
    );
}

/// After a restart, a certificate whose order was in flight at the crash is ordered again at
/// once (the order job then resumes the persisted pending order), unless it was backing off.
#[test]
fn an_order_in_flight_at_a_crash_is_ordered_again_after_the_restart() {
    let first_order = Cert::new(spec(), DIR.into(), None, NOW);
    let (c, _) = tick(first_order, true);
    let (c, _) = apply(c, Event::StateRead(Ok(CertState::default())), NOW);
    let (c, actions) = tick(c, true);
    assert_eq!(
        actions,
        vec![Action::StartOrder {
            replaces: None,
            installed_serial: None
        }]
    );
    assert_eq!(c.running, Some(Job::Order));

    let ours = CertState {
        issued_cert_id: Some("id1".into()),
        directory: Some(DIR.into()),
        issued_at: Some(NOW - TimeDuration::days(61)),
        ..CertState::default()
    };
    let renewal = Cert::new(spec(), DIR.into(), Some(info(61, 90)), NOW);
    let (c, _) = tick(renewal, true);
    let (c, _) = apply(c, Event::StateRead(Ok(ours)), NOW);
    let (_, actions) = tick(c, true);
    assert_eq!(
        actions,
        vec![Action::StartOrder {
            replaces: Some("id1".into()),
            installed_serial: Some("01".into())
        }],
        "the installed serial lets the job tell a delivered order from an open one"
    );

    let failed = CertState {
        failures: 1,
        next_attempt: Some(NOW + TimeDuration::minutes(1)),
        ..CertState::default()
    };
    let (c, _) = tick(Cert::new(spec(), DIR.into(), None, NOW), true);
    let (c, _) = apply(c, Event::StateRead(Ok(failed)), NOW);
    let (c, actions) = tick(c, true);
    assert_eq!(
        actions,
        vec![Action::WakeAt(NOW + TimeDuration::minutes(1))]
    );
    assert_eq!(c.running, None, "a restart never resets a backoff");
}

fn status_phase(c: &Cert) -> Phase {
    crate::acme::status::status_of(c, None, true, NOW).state
}
