//! The status snapshot the controller publishes for `/status`, `/readyz` and `vhostd status`,
//! and its rendering for people ([`table`]): pure, `now` and colour are arguments.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::acme::CertStatus;

/// What `/status` answers (certificates are added live by the admin server).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    /// True once a config has been made live (or found already live).
    pub ready: bool,
    /// True while the Docker event stream is connected.
    pub docker_connected: bool,
    /// Running containers known.
    pub containers: usize,
    /// Every site with its upstreams.
    pub sites: Vec<SiteStatus>,
    /// Containers left out or unreachable, with the key and the reason.
    pub problems: Vec<ProblemStatus>,
    /// Names that get no certificate, and why.
    pub skipped_certificates: Vec<String>,
    /// Unix time of the last successful apply (write+validate+reload, or verified unchanged).
    pub last_applied: Option<i64>,
    /// The last render/validate/reload error (nginx's own message), cleared by the next success.
    pub last_error: Option<String>,
    /// Ids of the containers left out of the live config because nginx rejects the config
    /// they give (`vhostd render` leaves them out too, to print what the daemon applies).
    #[serde(default)]
    pub quarantined: Vec<String>,
    /// Hosts left out of the live config because nginx rejects their snippet files.
    #[serde(default)]
    pub quarantined_hosts: Vec<String>,
    /// Certificates (filled by the admin server from the certificate task).
    #[serde(default)]
    pub certificates: Vec<CertStatus>,
}

/// One site in the status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteStatus {
    /// Host name.
    pub host: String,
    /// Served over HTTPS (certificate installed).
    pub https: bool,
    /// `path → servers` lines.
    pub locations: Vec<LocationStatus>,
}

/// One location in the status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocationStatus {
    /// Path prefix.
    pub path: String,
    /// Upstream servers (`ip:port`).
    pub servers: Vec<String>,
    /// Containers behind it.
    pub containers: Vec<String>,
}

/// One problem in the status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProblemStatus {
    /// Container name.
    pub container: String,
    /// Label/env key.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

/// ANSI colours for a terminal; nothing when piped.
#[derive(Debug, Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn red(self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    fn yellow(self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn green(self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn bold(self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn wrap(self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

/// `2026-12-02 10:00:05 UTC (in 30 days)`: whole seconds, and how far away it is.
pub fn when(t: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    let Some(t) = t else {
        return "-".into();
    };
    let t = t.to_offset(time::UtcOffset::UTC);
    let date = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    format!("{date} ({})", relative(t - now))
}

/// `in 3 days`, `in 5 hours`, `in 2 minutes`, `now`, `4 days ago`.
fn relative(d: time::Duration) -> String {
    let secs = d.whole_seconds();
    let abs = secs.unsigned_abs();
    let (n, unit) = match abs {
        0..60 => return "now".into(),
        60..7200 => (abs / 60, "minute"),
        7200..172_800 => (abs / 3600, "hour"),
        _ => (abs / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if secs > 0 {
        format!("in {n} {unit}{plural}")
    } else {
        format!("{n} {unit}{plural} ago")
    }
}

/// The status as `vhostd status` prints it: health line, sites, certificates, problems.
/// Problems and failing certificates stand out (red) when `colour`.
pub fn table(st: &Status, now: OffsetDateTime, colour: bool) -> String {
    let p = Paint(colour);
    let mut out = health(st, p);
    out += &sites(st, p);
    if !st.certificates.is_empty() {
        out += &format!("\n{}\n", p.bold("CERTIFICATES"));
        for c in &st.certificates {
            out += &certificate(c, now, p);
        }
    }
    out += &problems(st, p);
    out
}

/// The first line (ready, Docker, containers) and the last error, if any.
fn health(st: &Status, p: Paint) -> String {
    let ready = if st.ready {
        p.green("ready")
    } else {
        p.red("NOT READY")
    };
    let docker = if st.docker_connected {
        p.green("connected")
    } else {
        p.red("DISCONNECTED")
    };
    let mut out = format!(
        "{ready}   docker: {docker}   containers: {}\n",
        st.containers
    );
    if let Some(e) = &st.last_error {
        out += &p.red(&format!("last error: {e}"));
        out += "\n";
    }
    out
}

/// The sites table: one line per location, a location with no server in red.
fn sites(st: &Status, p: Paint) -> String {
    let mut out = format!(
        "\n{}\n",
        p.bold(&format!(
            "{:<40} {:<6} {:<16} UPSTREAMS",
            "SITE", "HTTPS", "PATH"
        ))
    );
    for s in &st.sites {
        for l in &s.locations {
            let servers = if l.servers.is_empty() {
                p.red("(none: 503)")
            } else {
                l.servers.join(" ")
            };
            let https = if s.https { "yes" } else { "no" };
            out += &format!("{:<40} {:<6} {:<16} {servers}\n", s.host, https, l.path);
        }
    }
    out
}

/// The problems (red) and the names that get no certificate (yellow).
fn problems(st: &Status, p: Paint) -> String {
    let mut out = String::new();
    if !st.problems.is_empty() {
        out += &format!("\n{}\n", p.red("PROBLEMS"));
    }
    for pr in &st.problems {
        out += &p.red(&format!(
            "container={} key={}: {}",
            pr.container, pr.key, pr.problem
        ));
        out += "\n";
    }
    for s in &st.skipped_certificates {
        out += &p.yellow(&format!("NO CERTIFICATE {s}"));
        out += "\n";
    }
    out
}

/// One certificate: a summary line, its names, and its error (if any) standing out.
fn certificate(c: &CertStatus, now: OffsetDateTime, p: Paint) -> String {
    let failing = c.last_error.is_some() || c.attempts > 0;
    let state = format!("state={}", c.state);
    let state = match c.state.as_str() {
        "valid" if !failing => p.green(&state),
        "valid" | "pending" | "ordering" => p.yellow(&state),
        _ => p.red(&state),
    };
    let mut out = format!(
        "{:<40} {state}  expires {}  renews {}\n",
        c.key,
        when(c.not_after, now),
        when(c.next_renewal, now)
    );
    out += &format!(
        "{:<40} names={} issuer={} profile={}\n",
        "",
        c.names.join(","),
        c.issuer.as_deref().unwrap_or("-"),
        c.profile.as_deref().unwrap_or("-")
    );
    if let Some(e) = &c.last_error {
        let retry = match c.next_attempt {
            Some(_) => format!(
                " (attempts={}, next attempt {})",
                c.attempts,
                when(c.next_attempt, now)
            ),
            None => String::new(),
        };
        out += &format!("{:<40} {}\n", "", p.red(&format!("last error: {e}{retry}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-02 10:00:00.123456789 UTC);

    fn cert(key: &str, state: &str, error: Option<&str>) -> CertStatus {
        CertStatus {
            key: key.into(),
            names: vec![key.into(), format!("www.{key}")],
            container: "c".into(),
            issuer: Some("Pebble Intermediate CA".into()),
            serial: Some("01".into()),
            profile: None,
            not_before: Some(NOW - time::Duration::days(10)),
            not_after: Some(NOW + time::Duration::days(80) + time::Duration::nanoseconds(5)),
            next_renewal: Some(NOW + time::Duration::days(50)),
            ari_explanation: None,
            last_error: error.map(str::to_string),
            attempts: u32::from(error.is_some()),
            next_attempt: error.map(|_| NOW + time::Duration::minutes(10)),
            state: serde_json::from_value(serde_json::Value::from(state)).unwrap(),
        }
    }

    fn status() -> Status {
        Status {
            ready: true,
            docker_connected: true,
            containers: 2,
            certificates: vec![
                cert("a.example.com", "valid", None),
                cert("b.example.com", "backoff", Some("rate limited")),
            ],
            problems: vec![ProblemStatus {
                container: "web".into(),
                key: "VIRTUAL_PORT".into(),
                problem: "not a port".into(),
            }],
            ..Status::default()
        }
    }

    #[test]
    fn dates_are_whole_seconds_with_a_distance() {
        let t = table(&status(), NOW, false);
        assert!(
            t.contains("expires 2027-02-20 10:00:00 UTC (in 80 days)"),
            "{t}"
        );
        assert!(
            t.contains("renews 2027-01-21 10:00:00 UTC (in 50 days)"),
            "{t}"
        );
        assert!(
            t.contains("next attempt 2026-12-02 10:10:00 UTC (in 10 minutes)"),
            "{t}"
        );
        assert!(!t.contains(".123"), "no fractions of a second: {t}");
        assert_eq!(relative(time::Duration::hours(-50)), "2 days ago");
        assert_eq!(relative(time::Duration::hours(3)), "in 3 hours");
        assert_eq!(relative(time::Duration::seconds(61)), "in 1 minute");
    }

    #[test]
    fn colour_only_when_asked_and_failures_stand_out() {
        let plain = table(&status(), NOW, false);
        assert!(!plain.contains('\x1b'), "plain when piped: {plain}");
        assert!(plain.contains("state=valid") && plain.contains("PROBLEMS"));
        let tty = table(&status(), NOW, true);
        assert!(tty.contains("\x1b[1;31mstate=backoff\x1b[0m"), "{tty}");
        assert!(tty.contains("\x1b[1;31mlast error: rate limited"), "{tty}");
        assert!(tty.contains("\x1b[32mstate=valid\x1b[0m"), "{tty}");
        assert!(
            tty.contains("\x1b[1;31mcontainer=web key=VIRTUAL_PORT"),
            "{tty}"
        );
    }

    #[test]
    fn the_json_document_round_trips() {
        let st = status();
        let json = serde_json::to_string(&st).unwrap();
        let back: Status = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}
