//! Renew-now: idempotent, never past a backoff, fresh certificates kept unless forced.

use super::*;

fn renew(c: Cert, force: bool) -> (Cert, RenewAnswer) {
    let (c, mut actions) = apply(c, Event::RenewNow { force }, NOW);
    assert_eq!(actions.len(), 1, "{actions:?}");
    match actions.pop() {
        Some(Action::Answer { answer, force: f }) if f == force => (c, answer),
        other => panic!("not an answer: {other:?}"),
    }
}

/// A valid certificate vhostd issued `ago` before now.
fn issued(ago: TimeDuration) -> Cert {
    let st = CertState {
        issued_at: Some(NOW - ago),
        directory: Some(DIR.into()),
        issued_cert_id: Some("id1".into()),
        ..CertState::default()
    };
    installed(st, info(0, 90))
}

#[test]
fn a_second_request_joins_the_running_order_and_starts_nothing() {
    let c = Cert {
        running: Some(Job::Order),
        ..issued(TimeDuration::days(60))
    };
    let (c, answer) = renew(c, false);
    assert_eq!(answer, RenewAnswer::Join);
    let (c, answer) = renew(c, true);
    assert_eq!(answer, RenewAnswer::Join, "forced too");
    let (_, actions) = apply(c, Event::Tick { ari: true }, NOW);
    assert_eq!(actions, vec![], "no second order");
}

#[test]
fn a_request_orders_once_and_later_requests_join_it() {
    let (c, answer) = renew(issued(TimeDuration::days(2)), false);
    assert_eq!((answer, c.forced), (RenewAnswer::Order, true));
    let (c, answer) = renew(c, true);
    assert_eq!(answer, RenewAnswer::Join, "requested, not started yet");
    let (c, actions) = apply(c, Event::Tick { ari: true }, NOW);
    assert_eq!(
        actions,
        vec![Action::StartOrder {
            replaces: Some("id1".into()),
            installed_serial: Some("01".into())
        }],
        "forced: ordered although not due"
    );
    let (c, answer) = renew(c, false);
    assert_eq!(answer, RenewAnswer::Join);
    let (c, _) = apply(
        c,
        Event::Finished(Outcome::Issued {
            info: info(0, 90),
            profile: None,
        }),
        NOW,
    );
    assert!(!c.forced && c.running.is_none());
    let (_, answer) = renew(c, false);
    assert_eq!(answer, RenewAnswer::Fresh { issued_at: NOW });
}

#[test]
fn a_fresh_certificate_is_kept_unless_forced() {
    let issued_at = NOW - TimeDuration::minutes(59);
    let (c, answer) = renew(issued(TimeDuration::minutes(59)), false);
    assert_eq!(answer, RenewAnswer::Fresh { issued_at });
    assert!(!c.forced, "nothing ordered");
    let (c, answer) = renew(c, true);
    assert_eq!((answer, c.forced), (RenewAnswer::Order, true));
    let (_, answer) = renew(issued(TimeDuration::minutes(61)), false);
    assert_eq!(answer, RenewAnswer::Order, "older than FRESH_FOR");
    let mut other_names = issued(TimeDuration::minutes(1));
    other_names.spec.names.truncate(1);
    let (_, answer) = renew(other_names, false);
    assert_eq!(answer, RenewAnswer::Order, "not the wanted names");
}

#[test]
fn force_never_bypasses_a_backoff() {
    let until = NOW + TimeDuration::minutes(10);
    let c = cert(CertState {
        failures: 1,
        next_attempt: Some(until),
        last_error: Some("rate limited".into()),
        ..CertState::default()
    });
    for force in [false, true] {
        let (c, answer) = renew(c.clone(), force);
        assert_eq!(
            answer,
            RenewAnswer::BackingOff {
                until,
                last_error: Some("rate limited".into())
            }
        );
        assert!(!c.forced);
    }
}

#[test]
fn a_failed_forced_order_ends_the_request_and_backs_off() {
    let (c, _) = renew(issued(TimeDuration::days(2)), true);
    let (c, _) = apply(c, Event::Tick { ari: true }, NOW);
    let (c, actions) = apply(
        c,
        Event::Finished(Outcome::Failed {
            local: false,
            retry_after: None,
            error: "boom".into(),
        }),
        NOW,
    );
    assert_eq!(actions, vec![Action::Save, Action::ReportFailure]);
    assert!(!c.forced && c.running.is_none());
    let (_, answer) = renew(c, true);
    assert!(
        matches!(answer, RenewAnswer::BackingOff { .. }),
        "{answer:?}"
    );
}

#[test]
fn an_ari_poll_is_not_joined_and_an_unwanted_certificate_is_refused() {
    let c = Cert {
        running: Some(Job::Ari),
        ..issued(TimeDuration::days(2))
    };
    let (c, answer) = renew(c, false);
    assert_eq!((answer, c.forced), (RenewAnswer::Order, true));
    let (_, actions) = apply(c, Event::Tick { ari: true }, NOW);
    assert_eq!(actions, vec![], "ordered once the poll is back");
    let unwanted = Cert {
        wanted: false,
        ..cert(CertState::default())
    };
    assert_eq!(renew(unwanted, true).1, RenewAnswer::NotWanted);
}
