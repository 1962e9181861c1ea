//! Unit tests of [`apply`](super::apply) on plain data.

use std::time::Duration;

use time::macros::datetime;
use time::{Duration as TimeDuration, OffsetDateTime};

use super::*;

const NOW: OffsetDateTime = datetime!(2026-03-01 00:00 UTC);

fn ca_failure(retry_after: Option<OffsetDateTime>) -> Event {
    Event::Failed {
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
    let ev = Event::Issued {
        names: vec!["a.test".into()],
        profile: None,
        cert_id: Some("id1".into()),
        directory: "https://ca/dir".into(),
    };
    let (st, actions) = apply(backing_off, ev, NOW);
    assert_eq!(actions, vec![Action::Save, Action::AnnounceIssued]);
    assert_eq!(
        (st.failures, st.next_attempt, st.last_error),
        (0, None, None)
    );
    assert_eq!(st.issued_at, Some(NOW));
    assert_eq!(st.issued_cert_id.as_deref(), Some("id1"));
    assert_eq!(st.directory.as_deref(), Some("https://ca/dir"));
}

#[test]
fn ca_failures_back_off_one_step_further_each_time() {
    let (st, actions) = apply(CertState::default(), ca_failure(None), NOW);
    assert_eq!(actions, vec![Action::Save, Action::ReportFailure]);
    assert_eq!(st.failures, 1);
    assert_eq!(st.next_attempt, Some(NOW + TimeDuration::minutes(1)));
    assert_eq!(st.last_error.as_deref(), Some("rate limited"));
    let (st, _) = apply(st, ca_failure(None), NOW);
    assert_eq!(st.next_attempt, Some(NOW + TimeDuration::minutes(10)));
}

#[test]
fn a_later_retry_after_wins_over_the_backoff_step_an_earlier_one_does_not() {
    let later = NOW + TimeDuration::hours(5);
    let (st, _) = apply(CertState::default(), ca_failure(Some(later)), NOW);
    assert_eq!(st.next_attempt, Some(later));
    let earlier = NOW + TimeDuration::seconds(5);
    let (st, _) = apply(CertState::default(), ca_failure(Some(earlier)), NOW);
    assert_eq!(st.next_attempt, Some(NOW + TimeDuration::minutes(1)));
}

#[test]
fn self_check_failures_use_their_own_short_ladder_and_keep_the_ca_count() {
    let st = CertState {
        failures: 2,
        ..CertState::default()
    };
    let local = Event::Failed {
        local: true,
        retry_after: None,
        error: "self-check".into(),
    };
    let (st, _) = apply(st, local.clone(), NOW);
    let (st, _) = apply(st, local.clone(), NOW);
    let (st, _) = apply(st, local, NOW);
    assert_eq!((st.failures, st.self_check_failures), (2, 3));
    assert_eq!(st.next_attempt, Some(NOW + TimeDuration::minutes(10)));
    let (st, _) = apply(st, ca_failure(None), NOW);
    assert_eq!((st.failures, st.self_check_failures), (3, 0));
}

#[test]
fn an_ari_window_is_kept_and_its_pick_does_not_move_when_it_is_sent_again() {
    let ev = |unit| Event::AriWindow {
        cert_id: "id1".into(),
        window: window(),
        wait: Duration::from_secs(3600),
        unit,
    };
    let st = CertState {
        ari_retry_at: Some(NOW),
        ..CertState::default()
    };
    let (st, actions) = apply(st, ev(0.5), NOW);
    let picked = NOW + TimeDuration::days(11);
    assert_eq!(actions, vec![Action::LogAriWindow(picked), Action::Save]);
    assert_eq!(st.ari_retry_at, None);
    let ari = st.ari.clone().unwrap();
    assert_eq!(
        (ari.selected, ari.next_poll),
        (picked, NOW + TimeDuration::hours(1))
    );
    let (again, actions) = apply(st, ev(0.9), NOW);
    assert_eq!(
        actions,
        vec![Action::Save],
        "same window: nothing new to log"
    );
    assert_eq!(again.ari.unwrap().selected, picked);
}

#[test]
fn a_failed_ari_poll_is_retried_later_and_keeps_everything_else() {
    let st = CertState {
        failures: 1,
        ..CertState::default()
    };
    let (after, actions) = apply(st.clone(), Event::AriFailed, NOW);
    assert_eq!(actions, vec![Action::Save]);
    assert_eq!(after.ari_retry_at, Some(NOW + ARI_ERROR_POLL));
    assert_eq!(
        CertState {
            ari_retry_at: None,
            ..after
        },
        st
    );
}
