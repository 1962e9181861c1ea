//! The status snapshot the controller publishes for `/status`, `/readyz` and `vhostd status`.

use serde::{Deserialize, Serialize};

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
    pub certificates: Vec<serde_json::Value>,
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
