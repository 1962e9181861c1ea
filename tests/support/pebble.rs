//! A real Pebble ACME server (+ pebble-challtestsrv as its DNS, answering 127.0.0.1 for every
//! name) per test, on free loopback ports. Its listener certificate is made here with rcgen. The
//! HTTP-01 validation goes to `http_port` (a real nginx of the test). Stopped by PID on drop.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use super::{free_port, stop_pid, wait_for};

/// A running Pebble and its DNS server.
pub struct Pebble {
    /// Working directory (config, listener PKI, logs).
    pub dir: PathBuf,
    /// The ACME directory URL.
    pub directory_url: String,
    /// The CA that signed Pebble's listener certificate (trust this for the directory's TLS).
    pub listener_ca: PathBuf,
    /// Management port (`/roots/0`).
    pub mgmt_port: u16,
    /// Pebble's issuing root, fetched after start.
    pub root_pem: String,
    children: Vec<Child>,
    /// Pebble's own process (restartable), apart from challtestsrv.
    ca: Option<Child>,
    config_path: PathBuf,
    dns_port: u16,
    acme_port: u16,
    /// challtestsrv's management port (`/add-a`).
    chall_mgmt: u16,
    nonce_reject: u8,
}

/// Options for [`Pebble::start`].
#[derive(Debug, Clone, Default)]
pub struct PebbleOpts {
    /// `certificateValidityPeriod` in seconds (Pebble's default is 5 years).
    pub validity_secs: Option<u64>,
    /// `PEBBLE_WFE_NONCEREJECT`: percentage of valid nonces rejected as bad (default 0).
    pub nonce_reject: Option<u8>,
}

impl Pebble {
    /// Starts challtestsrv and Pebble under `dir`, validating HTTP-01 on 127.0.0.1:`http_port`.
    pub fn start(dir: &Path, http_port: u16, opts: PebbleOpts) -> Pebble {
        let dir = dir.join("pebble");
        std::fs::create_dir_all(&dir).unwrap();
        let listener_ca = write_listener_pki(&dir);
        let (acme_port, mgmt_port, dns_port, chall_mgmt) =
            (free_port(), free_port(), free_port(), free_port());
        let chall = spawn_logged(
            Command::new("pebble-challtestsrv").args([
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{chall_mgmt}"),
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ]),
            &dir.join("challtestsrv.log"),
        );
        let children = vec![chall];
        wait_tcp(chall_mgmt, "pebble-challtestsrv management port");
        let mut config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": dir.join("listener.pem"), "privateKey": dir.join("listener.key"),
            "httpPort": http_port, "tlsPort": free_port(), "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        if let Some(secs) = opts.validity_secs {
            config["pebble"]["certificateValidityPeriod"] = secs.into();
        }
        let config_path = dir.join("pebble-config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let mut p = Pebble {
            directory_url: format!("https://127.0.0.1:{acme_port}/dir"),
            listener_ca,
            mgmt_port,
            root_pem: String::new(),
            children,
            ca: None,
            config_path,
            dns_port,
            acme_port,
            chall_mgmt,
            nonce_reject: opts.nonce_reject.unwrap_or(0),
            dir,
        };
        p.start_ca();
        p
    }

    /// Starts Pebble itself (again): a fresh CA with a new root and no accounts or orders.
    pub fn start_ca(&mut self) {
        assert!(self.ca.is_none(), "pebble already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("pebble.log"))
            .unwrap();
        let err = log.try_clone().unwrap();
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&self.config_path)
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{}", self.dns_port))
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", self.nonce_reject.to_string())
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("start pebble (is it installed?)");
        self.ca = Some(child);
        wait_tcp(self.acme_port, "pebble ACME port");
        self.root_pem = wait_for(Duration::from_secs(10), "pebble /roots/0", || {
            self.fetch_mgmt("/roots/0")
        });
    }

    /// Stops Pebble (by PID), leaving its DNS server up.
    pub fn stop_ca(&mut self) {
        if let Some(mut c) = self.ca.take() {
            stop_pid(c.id());
            let _ = c.wait();
        }
    }

    /// GET on the management API (trusting the listener CA); None until it answers 200.
    pub fn fetch_mgmt(&self, path: &str) -> Option<String> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5", "--cacert"])
            .arg(&self.listener_ca)
            .arg(format!("https://127.0.0.1:{}{path}", self.mgmt_port))
            .output()
            .expect("curl is installed");
        (out.status.success() && !out.stdout.is_empty())
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Pebble's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }

    /// How many orders Pebble has received (one "Added order" log line each).
    pub fn order_count(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("Added order"))
            .count()
    }

    /// How many certificates Pebble has issued (one log line each).
    pub fn issued_count(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("Issued certificate serial"))
            .count()
    }

    /// Points `host` at `ip` in challtestsrv's DNS (where Pebble validates HTTP-01).
    pub fn add_a(&self, host: &str, ip: &str) {
        // /add-a appends: clear what an earlier call added first.
        let calls = [
            ("clear-a", serde_json::json!({ "host": host })),
            (
                "add-a",
                serde_json::json!({"host": host, "addresses": [ip]}),
            ),
        ];
        for (path, body) in calls {
            let out = Command::new("curl")
                .args(["-sf", "--max-time", "5", "-d", &body.to_string()])
                .arg(format!("http://127.0.0.1:{}/{path}", self.chall_mgmt))
                .output()
                .unwrap();
            assert!(out.status.success(), "challtestsrv /{path} {host} {ip}");
        }
    }

    /// Writes Pebble's root to `dir/root.pem` and returns the path (for `openssl verify`).
    pub fn root_file(&self) -> PathBuf {
        let p = self.dir.join("root.pem");
        std::fs::write(&p, &self.root_pem).unwrap();
        p
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop_ca();
        for c in self.children.iter_mut().rev() {
            stop_pid(c.id());
            let _ = c.wait();
        }
    }
}

/// Starts `cmd` detached (own process group, stdin null, stdout+stderr to `log`).
fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let out = File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?} (is pebble installed?): {e}"))
}

fn wait_tcp(port: u16, what: &str) {
    wait_for(Duration::from_secs(10), what, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
}

/// A throwaway CA and a server certificate for 127.0.0.1/localhost: Pebble's HTTPS listener.
/// Returns the CA file.
fn write_listener_pki(dir: &Path) -> PathBuf {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "vhostd test listener CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "pebble");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let ca_path = dir.join("listener-ca.pem");
    std::fs::write(&ca_path, ca_cert.pem()).unwrap();
    std::fs::write(dir.join("listener.pem"), leaf_cert.pem()).unwrap();
    std::fs::write(dir.join("listener.key"), leaf_key.serialize_pem()).unwrap();
    ca_path
}
