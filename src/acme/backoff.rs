//! Pure retry timing after a failed order: Let's Encrypt's recommended 1 min → 10 min → 100 min →
//! 1 day cap, the CA's own `Retry-After` when it gave one, and a gentler schedule for local
//! self-check failures (they cost the CA nothing). No clocks are read here: `now` is an argument.

use std::time::Duration;

use time::{OffsetDateTime, PrimitiveDateTime};

/// Longest wait between two attempts for one certificate.
pub const CAP: Duration = Duration::from_secs(24 * 3600);

/// Longest wait between two self-checks (no CA involved, so retry sooner).
pub const SELF_CHECK_CAP: Duration = Duration::from_secs(10 * 60);

/// The steps of the ladder, in minutes: 1, 10, 100, then a day for every further failure.
const STEPS_MIN: [u64; 4] = [1, 10, 100, 24 * 60];

/// Wait after the `failures`-th consecutive failed order (1-based): 1 min → 10 min → 100 min → 1 day.
pub fn delay(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => Duration::from_secs(60 * STEPS_MIN[(n as usize - 1).min(STEPS_MIN.len() - 1)]),
    }
}

/// Wait after the `failures`-th consecutive failed self-check: 1 min, then 10 min from the second on.
pub fn self_check_delay(failures: u32) -> Duration {
    delay(failures).min(SELF_CHECK_CAP)
}

/// Next attempt after a failure: the backoff step, or the CA's `retry_after` when that is later.
pub fn next_attempt(
    now: OffsetDateTime,
    failures: u32,
    retry_after: Option<OffsetDateTime>,
) -> OffsetDateTime {
    let step = now + delay(failures);
    match retry_after {
        Some(at) if at > step => at,
        _ => step,
    }
}

/// Reads Let's Encrypt's "retry after 2026-01-01 00:18:15 UTC" from a problem detail.
pub fn parse_retry_after(detail: &str) -> Option<OffsetDateTime> {
    let lower = detail.to_ascii_lowercase();
    let start = lower.find("retry after ")? + "retry after ".len();
    let rest = detail.get(start..)?;
    let mut parts = rest.split_whitespace();
    let (date, clock) = (
        parts.next()?,
        parts.next()?.trim_end_matches([',', '.', ':']),
    );
    let zone = parts
        .next()
        .unwrap_or("UTC")
        .trim_end_matches([',', '.', ':']);
    if !zone.eq_ignore_ascii_case("UTC") {
        return None;
    }
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    PrimitiveDateTime::parse(&format!("{date} {clock}"), format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn steps_are_one_ten_hundred_minutes_then_a_day() {
        let mins = |n| delay(n).as_secs() / 60;
        assert_eq!(
            [mins(0), mins(1), mins(2), mins(3), mins(4), mins(50)],
            [0, 1, 10, 100, 1440, 1440]
        );
        assert_eq!(self_check_delay(1), Duration::from_secs(60));
        assert_eq!(self_check_delay(7), SELF_CHECK_CAP);
    }

    #[test]
    fn retry_after_wins_only_when_later() {
        let now = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(next_attempt(now, 1, None), datetime!(2026-01-01 00:01 UTC));
        assert_eq!(
            next_attempt(now, 1, Some(datetime!(2026-01-01 03:00 UTC))),
            datetime!(2026-01-01 03:00 UTC)
        );
        assert_eq!(
            next_attempt(now, 2, Some(datetime!(2026-01-01 00:05 UTC))),
            datetime!(2026-01-01 00:10 UTC)
        );
    }

    #[test]
    fn parses_lets_encrypt_rate_limit_detail() {
        let detail = "too many certificates (5) already issued for this exact set of identifiers in the \
                      last 168h0m0s, retry after 2026-01-01 00:18:15 UTC: see https://letsencrypt.org/docs/rate-limits/";
        assert_eq!(
            parse_retry_after(detail),
            Some(datetime!(2026-01-01 00:18:15 UTC))
        );
        assert_eq!(
            parse_retry_after("Retry after 2026-02-30 00:00:00 UTC"),
            None
        );
        assert_eq!(parse_retry_after("no hint here"), None);
        assert_eq!(parse_retry_after("retry after tomorrow"), None);
    }
}
