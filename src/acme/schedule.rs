//! Pure: when to renew a certificate. From its own notBefore/notAfter (renew when 1/3 of the
//! lifetime remains, 1/2 under 10 days), or from the CA's ARI window (RFC 9773) when it offers
//! one, never from a fixed day count. No clocks are read here: `now` and randomness are arguments.

use std::time::Duration as StdDuration;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// How often ARI is re-polled at most apart (Let's Encrypt: "at least twice a day").
pub const ARI_MAX_POLL: StdDuration = StdDuration::from_secs(12 * 3600);
/// Shortest ARI re-poll, whatever `Retry-After` says.
pub const ARI_MIN_POLL: StdDuration = StdDuration::from_secs(60);
/// Re-poll delay after a failed ARI fetch (the lifetime rule keeps applying meanwhile).
pub const ARI_ERROR_POLL: StdDuration = StdDuration::from_secs(6 * 3600);

/// The validity period of an installed certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The certificate's notBefore.
    pub not_before: OffsetDateTime,
    /// The certificate's notAfter.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// notAfter − notBefore.
    pub fn lifetime(&self) -> Duration {
        self.not_after - self.not_before
    }
}

/// An ARI suggested renewal window, as the CA sent it (validated: start < end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AriWindow {
    /// Window start.
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// Window end.
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
    /// The CA's explanation page, shown in status and logs.
    pub explanation_url: Option<String>,
}

/// Renewal moment by lifetime alone: when 1/3 of it remains (1/2 for lifetimes under 10 days).
pub fn lifetime_renewal(v: &Validity) -> OffsetDateTime {
    let life = v.lifetime();
    let remaining = if life < Duration::days(10) {
        life / 2
    } else {
        life / 3
    };
    v.not_after - remaining
}

/// Parses a renewalInfo response body; an inverted or empty window is refused (treated as no ARI).
pub fn parse_renewal_info(body: &[u8]) -> Result<AriWindow, String> {
    let info: instant_acme::RenewalInfo =
        serde_json::from_slice(body).map_err(|e| format!("unreadable renewalInfo: {e}"))?;
    window_from(
        info.suggested_window.start,
        info.suggested_window.end,
        info.explanation_url,
    )
}

/// Validates a window the client library already decoded.
pub fn window_from(
    start: OffsetDateTime,
    end: OffsetDateTime,
    explanation_url: Option<String>,
) -> Result<AriWindow, String> {
    if end <= start {
        return Err(format!(
            "renewalInfo window ends ({end}) before it starts ({start})"
        ));
    }
    Ok(AriWindow {
        start,
        end,
        explanation_url,
    })
}

/// A moment in `w` at `unit` ∈ [0, 1) of its length (the caller draws `unit` uniformly at random).
pub fn pick_in_window(w: &AriWindow, unit: f64) -> OffsetDateTime {
    w.start + (w.end - w.start) * unit.clamp(0.0, 1.0)
}

/// When to renew: the ARI choice when there is one, else the lifetime rule; never later than the
/// emergency point (1/20 of the lifetime left); a moment in the past means now.
pub fn renewal_time(
    v: &Validity,
    ari_choice: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> OffsetDateTime {
    let emergency = v.not_after - v.lifetime() / 20;
    let at = ari_choice
        .unwrap_or_else(|| lifetime_renewal(v))
        .min(emergency);
    at.max(now)
}

/// Next ARI poll after a successful fetch: the server's `Retry-After`, kept within 1 min .. 12 h.
pub fn next_ari_poll(now: OffsetDateTime, retry_after: StdDuration) -> OffsetDateTime {
    now + retry_after.clamp(ARI_MIN_POLL, ARI_MAX_POLL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn v(life: Duration) -> Validity {
        Validity {
            not_before: T0,
            not_after: T0 + life,
        }
    }

    #[test]
    fn lifetime_rule_for_real_profiles() {
        // (lifetime, renewal after notBefore)
        let cases = [
            (Duration::hours(160), Duration::hours(80)), // shortlived: half
            (Duration::days(45), Duration::days(30)),    // tlsserver
            (Duration::days(64), Duration::days(64) * 2 / 3), // classic from 2027
            (Duration::days(90), Duration::days(60)),    // classic today
            (Duration::days(10), Duration::days(10) * 2 / 3), // boundary: not "under 10 days"
            (Duration::seconds(90), Duration::seconds(45)), // Pebble short certs
        ];
        for (life, after) in cases {
            assert_eq!(lifetime_renewal(&v(life)), T0 + after, "lifetime {life}");
            assert_eq!(renewal_time(&v(life), None, T0), T0 + after);
        }
    }

    #[test]
    fn ari_window_in_future_is_used_and_past_means_now() {
        let body =
            br#"{"suggestedWindow":{"start":"2026-02-20T00:00:00Z","end":"2026-02-22T00:00:00Z"},
                        "explanationURL":"https://ca.example/why"}"#;
        let w = parse_renewal_info(body).unwrap();
        assert_eq!(w.explanation_url.as_deref(), Some("https://ca.example/why"));
        assert_eq!(pick_in_window(&w, 0.5), datetime!(2026-02-21 00:00 UTC));
        let cert = v(Duration::days(90));
        assert_eq!(
            renewal_time(&cert, Some(pick_in_window(&w, 0.5)), T0),
            datetime!(2026-02-21 00:00 UTC)
        );
        // A window already over (e.g. revocation): renew at once.
        let past = parse_renewal_info(
            br#"{"suggestedWindow":{"start":"2025-12-01T00:00:00Z","end":"2025-12-02T00:00:00Z"}}"#,
        )
        .unwrap();
        let now = T0 + Duration::days(1);
        assert_eq!(
            renewal_time(&cert, Some(pick_in_window(&past, 0.9)), now),
            now
        );
    }

    #[test]
    fn ari_never_beats_the_emergency_point() {
        let cert = v(Duration::days(90));
        let late = T0 + Duration::days(89);
        assert_eq!(
            renewal_time(&cert, Some(late), T0),
            T0 + Duration::days(90) - Duration::days(90) / 20
        );
    }

    #[test]
    fn malformed_ari_is_refused() {
        for bad in [
            &br#"{"suggestedWindow":{"start":"2026-02-22T00:00:00Z","end":"2026-02-20T00:00:00Z"}}"#[..],
            br#"{"suggestedWindow":{"start":"2026-02-22T00:00:00Z","end":"2026-02-22T00:00:00Z"}}"#,
            br#"{"suggestedWindow":{"start":"yesterday","end":"2026-02-20T00:00:00Z"}}"#,
            br#"{"suggestedWindow":{"start":"2026-02-22T00:00:00Z"}}"#,
            br#"<html>503</html>"#,
        ] {
            assert!(parse_renewal_info(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn ari_polls_twice_a_day_at_least() {
        assert_eq!(
            next_ari_poll(T0, StdDuration::from_secs(86_400 * 3)),
            T0 + Duration::hours(12)
        );
        assert_eq!(
            next_ari_poll(T0, StdDuration::ZERO),
            T0 + Duration::minutes(1)
        );
        assert_eq!(
            next_ari_poll(T0, StdDuration::from_secs(21_600)),
            T0 + Duration::hours(6)
        );
    }
}
