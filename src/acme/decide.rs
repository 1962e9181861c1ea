//! Pure: given what is installed and what we remember, what to do now for one certificate
//! (order, poll ARI, or wait until when) and what its status is. The state machine calls this on
//! every wake-up and the status is built from it; restarts therefore never change a decision
//! (everything it reads is on disk).

use time::OffsetDateTime;

use super::certinfo::CertInfo;
use super::schedule::renewal_time;
use super::status::Phase;
use super::store::CertState;
use crate::host::HostName;

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Start an order now.
    pub order_now: bool,
    /// Ask the CA for the ARI window now.
    pub ari_now: bool,
    /// Wake up again at this moment (None: nothing scheduled).
    pub wake: Option<OffsetDateTime>,
    /// When the installed certificate will be renewed.
    pub next_renewal: Option<OffsetDateTime>,
    /// Where the certificate stands.
    pub phase: Phase,
}

/// Decides for one certificate (see module docs). `forced` is an admin's "renew now": it skips
/// the renewal time, never the backoff nor the self-check.
pub fn decide(
    installed: Option<&CertInfo>,
    names: &[HostName],
    state: &CertState,
    forced: bool,
    ari_enabled: bool,
    now: OffsetDateTime,
) -> Decision {
    let current = installed.filter(|c| c.covers_exactly(names.iter().map(HostName::as_str)));
    let ari = current.and_then(|c| {
        state
            .ari
            .as_ref()
            .filter(|a| c.ari_id.as_deref() == Some(a.cert_id.as_str()))
    });
    let next_renewal = current.map(|c| renewal_time(&c.validity, ari.map(|a| a.selected), now));
    let mut d = Decision {
        order_now: false,
        ari_now: false,
        wake: None,
        next_renewal,
        phase: Phase::Pending,
    };
    if let Some(at) = state.next_attempt.filter(|at| *at > now) {
        d.wake = Some(at);
        d.phase = if state.self_check_failures > 0 {
            Phase::SelfCheckFailed
        } else {
            Phase::Backoff
        };
        return d;
    }
    if forced {
        d.order_now = true;
        return d;
    }
    let (Some(cert), Some(renew)) = (current, next_renewal) else {
        d.order_now = true;
        return d;
    };
    if renew <= now {
        d.order_now = true;
        return d;
    }
    d.phase = Phase::Valid;
    d.wake = Some(renew);
    if ari_enabled && cert.ari_id.is_some() {
        let poll_at = match (ari, state.ari_retry_at) {
            (_, Some(retry)) if retry > now => retry,
            (Some(a), _) => a.next_poll,
            (None, _) => now,
        };
        d.ari_now = poll_at <= now;
        d.wake = Some(if d.ari_now { renew } else { renew.min(poll_at) });
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::schedule::{AriWindow, Validity};
    use crate::acme::store::AriState;
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 00:00 UTC);

    fn names() -> Vec<HostName> {
        vec![
            HostName::parse("a.example.com").unwrap(),
            HostName::parse("b.example.com").unwrap(),
        ]
    }

    fn cert(issued_days_ago: i64, life_days: i64) -> CertInfo {
        let nb = NOW - Duration::days(issued_days_ago);
        CertInfo {
            validity: Validity {
                not_before: nb,
                not_after: nb + Duration::days(life_days),
            },
            sans: vec!["b.example.com".into(), "a.example.com".into()],
            serial: "01".into(),
            issuer: "CA".into(),
            ari_id: Some("aki.01".into()),
        }
    }

    #[test]
    fn nothing_installed_orders_now_unless_backing_off() {
        let d = decide(None, &names(), &CertState::default(), false, true, NOW);
        assert!(d.order_now && d.phase == "pending");
        let st = CertState {
            failures: 2,
            next_attempt: Some(NOW + Duration::minutes(10)),
            ..Default::default()
        };
        let d = decide(None, &names(), &st, false, true, NOW);
        assert_eq!(
            (d.order_now, d.phase, d.wake),
            (false, Phase::Backoff, Some(NOW + Duration::minutes(10)))
        );
        let st = CertState {
            self_check_failures: 1,
            next_attempt: Some(NOW + Duration::minutes(1)),
            ..Default::default()
        };
        assert_eq!(
            decide(None, &names(), &st, false, true, NOW).phase,
            "self-check failed"
        );
        assert!(
            !decide(None, &names(), &st, true, true, NOW).order_now,
            "renew-now never skips the backoff"
        );
        let later = NOW + Duration::minutes(2);
        assert!(decide(None, &names(), &st, true, true, later).order_now);
    }

    #[test]
    fn valid_cert_is_not_ordered_again_until_due() {
        let c = cert(10, 90);
        let d = decide(Some(&c), &names(), &CertState::default(), false, false, NOW);
        assert_eq!(
            (d.order_now, d.ari_now, d.phase),
            (false, false, Phase::Valid)
        );
        assert_eq!(d.wake, Some(NOW + Duration::days(50)));
        let d = decide(
            Some(&cert(61, 90)),
            &names(),
            &CertState::default(),
            false,
            false,
            NOW,
        );
        assert!(d.order_now, "past 2/3 of its life");
        let fewer = &names()[..1];
        assert!(
            decide(Some(&c), fewer, &CertState::default(), false, false, NOW).order_now,
            "name set changed"
        );
    }

    #[test]
    fn ari_is_polled_then_its_pick_is_used() {
        let c = cert(10, 90);
        let d = decide(Some(&c), &names(), &CertState::default(), false, true, NOW);
        assert!(d.ari_now && !d.order_now);
        let window = AriWindow {
            start: NOW + Duration::days(5),
            end: NOW + Duration::days(6),
            explanation_url: None,
        };
        let ari = AriState {
            cert_id: "aki.01".into(),
            window,
            selected: NOW + Duration::days(5),
            next_poll: NOW + Duration::hours(6),
        };
        let st = CertState {
            ari: Some(ari.clone()),
            ..Default::default()
        };
        let d = decide(Some(&c), &names(), &st, false, true, NOW);
        assert_eq!(
            (d.ari_now, d.next_renewal, d.wake),
            (
                false,
                Some(NOW + Duration::days(5)),
                Some(NOW + Duration::hours(6))
            )
        );
        let stale = CertState {
            ari: Some(AriState {
                cert_id: "aki.other".into(),
                ..ari
            }),
            ..Default::default()
        };
        let d = decide(Some(&c), &names(), &stale, false, true, NOW);
        assert!(d.ari_now, "a window for another certificate is ignored");
        assert_eq!(d.next_renewal, Some(NOW + Duration::days(50)));
        let failed = CertState {
            ari_retry_at: Some(NOW + Duration::hours(6)),
            ..Default::default()
        };
        assert!(
            !decide(Some(&c), &names(), &failed, false, true, NOW).ari_now,
            "ARI errors wait"
        );
    }
}
