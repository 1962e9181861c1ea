//! The shipped deployment, run for real: the repo's `Dockerfile` built by the legacy builder from
//! local images (scripts/images.sh: debootstrap → `docker import`, nothing pulled), and the repo's
//! `docker-compose.yml` started by docker-compose with `docker-compose.test.yml` (host network on
//! 127.0.0.1, private ports, Pebble as the CA, the test's own dockerd). vhostd in its container
//! finds the nginx container by its label, validates with `nginx -t` through the Docker socket
//! (exec), reloads it (SIGHUP), and the example app answers over HTTP and HTTPS with a certificate
//! from Pebble. Everything is taken down with `docker-compose down -v`.

#[path = "compose/api_recorder.rs"]
mod api_recorder;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use api_recorder::ApiRecorder;
use support::docker::{Engine, shared};
use support::pebble::{Pebble, PebbleOpts};
use support::{free_port, repo, scratch, wait_for, wait_http};

/// Generous: a cold image build and a first certificate order are in here.
const T: Duration = Duration::from_secs(90);
/// The example app's host name, as docker-compose.yml labels it.
const APP_HOST: &str = "whoami.example.com";
/// What the override's app answers.
const APP_BODY: &str = "hello from the compose app";
/// Every Docker API call vhostd makes, as the README's docker-socket-proxy table lists them.
const DOCUMENTED_ENDPOINTS: [&str; 10] = [
    "GET /containers/json",
    "GET /containers/{id}/archive",
    "GET /containers/{id}/json",
    "GET /events",
    "GET /exec/{id}/json",
    "GET /info",
    "GET /version",
    "POST /containers/{id}/exec",
    "POST /containers/{id}/kill",
    "POST /exec/{id}/start",
];

/// A compose project of the test, taken down (containers and volumes) when dropped.
struct Stack<'a> {
    engine: &'a Engine,
    project: String,
    file: PathBuf,
    env: Vec<(String, String)>,
    up: bool,
}

impl Stack<'_> {
    /// Runs `docker-compose -p PROJECT -f FILE ARGS` against the test's engine.
    fn compose(&self, file: &Path, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .current_dir(repo())
            .env("DOCKER_HOST", &self.engine.host)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(file)
            .args(args)
            .output()
            .expect("docker-compose is installed (scripts/testenv/up.sh installs it)")
    }

    /// Like [`Stack::compose`] on the merged file; asserts success and returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.compose(&self.file, args);
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The id of the project's container for `service`.
    fn container(&self, service: &str) -> String {
        let id = self.ok(&["ps", "-q", service]).trim().to_string();
        assert!(!id.is_empty(), "no container for service {service}");
        id
    }

    /// `docker-compose down -v`: containers, and the named volumes.
    fn down(&mut self) -> Output {
        self.up = false;
        self.compose(&self.file, &["down", "-v", "--remove-orphans", "-t", "2"])
    }
}

impl Drop for Stack<'_> {
    fn drop(&mut self) {
        if self.up {
            let _ = self.down();
        }
    }
}

/// `docker-compose config` merges docker-compose.yml with the override; compose v1 refuses
/// `ports` on a `network_mode: host` service and an override cannot delete a list, so nginx's
/// published ports (meaningless on the host network) are dropped from the merged text here.
fn without_ports(merged: &str) -> String {
    let mut out = Vec::new();
    let mut skip_deeper_than: Option<usize> = None;
    for line in merged.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(d) = skip_deeper_than {
            // pyyaml writes list items at the key's own indent ("    ports:\n    - ...").
            if indent > d || (indent == d && line.trim_start().starts_with("- ")) {
                continue;
            }
            skip_deeper_than = None;
        }
        if line.trim() == "ports:" {
            skip_deeper_than = Some(indent);
            continue;
        }
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// Builds the images (cached by content) and returns the vhostd image's tag.
fn build_images(engine: &Engine) -> String {
    let out = Command::new(repo().join("scripts/images.sh"))
        .arg("--vhostd")
        .arg(support::vhostd::bin())
        .arg(&engine.state)
        .output()
        .expect("run scripts/images.sh");
    assert!(
        out.status.success(),
        "scripts/images.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `curl` over HTTPS to the app through nginx, trusting only Pebble's root; the body on success.
fn https_get(port: u16, root: &Path) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--resolve"])
        .arg(format!("{APP_HOST}:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(root)
        .arg(format!("https://{APP_HOST}:{port}/"))
        .output()
        .expect("curl is installed");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn compose_stack_serves_the_app_over_http_then_https_from_pebble() {
    let started = Instant::now();
    let engine = shared();
    let image = build_images(engine);
    let built = started.elapsed();
    let dir = scratch("compose_stack");
    let (http, https, admin, app) = (free_port(), free_port(), free_port(), free_port());
    let pebble = Pebble::start(&dir, http, PebbleOpts::default());
    let root = pebble.root_file();
    // vhostd reaches dockerd through a recording pass-through, where a socket proxy would sit.
    let recorder = ApiRecorder::start(
        &dir.join("docker-api.sock"),
        &engine.state.join("docker.sock"),
    );
    let sock = recorder.socket.clone();
    let var = |k: &str, v: String| (k.to_string(), v);
    let mut stack = Stack {
        engine,
        project: format!("vhostdcompose{}", std::process::id()),
        file: dir.join("docker-compose.merged.yml"),
        env: vec![
            var("VHOSTD_TEST_IMAGE", image.clone()),
            var("VHOSTD_TEST_HTTP_PORT", http.to_string()),
            var("VHOSTD_TEST_HTTPS_PORT", https.to_string()),
            var("VHOSTD_TEST_ADMIN_PORT", admin.to_string()),
            var("VHOSTD_TEST_APP_PORT", app.to_string()),
            var("VHOSTD_TEST_ACME_DIRECTORY", pebble.directory_url.clone()),
            var(
                "VHOSTD_TEST_ACME_CA",
                pebble.listener_ca.display().to_string(),
            ),
            var("VHOSTD_TEST_DOCKER_SOCK", sock.display().to_string()),
        ],
        up: false,
    };
    let merged = stack.compose(
        &repo().join("docker-compose.yml"),
        &["-f", "docker-compose.test.yml", "config"],
    );
    assert!(
        merged.status.success(),
        "docker-compose config: {}",
        String::from_utf8_lossy(&merged.stderr)
    );
    std::fs::write(
        &stack.file,
        without_ports(&String::from_utf8_lossy(&merged.stdout)),
    )
    .unwrap();
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    stack.up = true;
    stack.ok(&["up", "-d", "--no-build"]);
    let up_at = started.elapsed();

    // HTTP through nginx to the app: vhostd found the nginx container and the app by their labels.
    wait_http(http, APP_HOST, 200, Some(APP_BODY), T);
    let http_at = started.elapsed();
    // HTTPS with a certificate Pebble issued over HTTP-01 (curl trusts only Pebble's root).
    let body = wait_for(T, "HTTPS from the app with Pebble's certificate", || {
        https_get(https, &root)
    });
    assert!(body.contains(APP_BODY), "HTTPS answer: {body}");
    let https_at = started.elapsed();
    assert!(pebble.issued_count() >= 1, "Pebble issued the certificate");

    // Validation and reload went through the Docker socket to the nginx container.
    let nginx = stack.container("nginx");
    let events = engine.ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &until_now(),
        "--filter",
        &format!("container={nginx}"),
        "--format",
        "{{.Action}} signal={{index .Actor.Attributes \"signal\"}}",
    ]);
    assert!(
        events
            .lines()
            .any(|l| l.starts_with("exec_start: nginx -t")),
        "nginx -t ran in the nginx container by exec: {events}"
    );
    assert!(
        events.lines().any(|l| l == "kill signal=1"),
        "nginx was reloaded with SIGHUP through Docker: {events}"
    );
    let conf = engine.ok(&["exec", &nginx, "cat", "/etc/nginx/conf.d/vhostd.conf"]);
    assert!(
        conf.contains(APP_HOST),
        "the rendered config is in nginx's conf.d"
    );

    // The image's HEALTHCHECK (`vhostd health`) passes in the running container.
    let vhostd = stack.container("vhostd");
    wait_for(T, "the vhostd container to be healthy", || {
        let s = engine.ok(&["inspect", "-f", "{{.State.Health.Status}}", &vhostd]);
        (s == "healthy").then_some(())
    });
    assert_eq!(
        recorder.endpoints(),
        DOCUMENTED_ENDPOINTS,
        "the Docker API calls vhostd made: keep README's \"Behind a docker-socket-proxy\" table true"
    );
    let logs = stack.ok(&["logs", "--no-color", "vhostd"]);
    assert!(
        logs.contains("action=\"reload\" sites=1"),
        "vhostd logged its reload of the app's site: {logs}"
    );
    check_image(engine, &image);

    let checked_at = started.elapsed();
    let down = stack.down();
    let down_took = started.elapsed() - checked_at;
    assert!(
        down.status.success(),
        "docker-compose down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    let label = format!("label=com.docker.compose.project={}", stack.project);
    assert_eq!(
        engine.ok(&["ps", "-aq", "--filter", &label]),
        "",
        "containers left"
    );
    assert_eq!(
        engine.ok(&["volume", "ls", "-q", "--filter", &label]),
        "",
        "volumes left"
    );
    eprintln!(
        "compose test: images {built:?}, up -d done {up_at:?}, HTTP {http_at:?}, HTTPS {https_at:?}, \
         healthy and checked {checked_at:?} (from the start); down -v took {down_took:?}"
    );
}

/// Now, in seconds since the epoch, as `docker events --until` wants it.
fn until_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .saturating_add(1)
        .to_string()
}

/// The image is its base plus two layers (the binary, the CA bundle) with vhostd's entry point and
/// health check; prints its size and layers (figures, not assertions).
fn check_image(engine: &Engine, image: &str) {
    let inspect = |what: &str, img: &str| engine.ok(&["image", "inspect", "-f", what, img]);
    let key = inspect("{{index .Config.Labels \"vhostd.image-key\"}}", image);
    let base = format!("local/debian-base:bookworm-{key}");
    let layers = |img: &str| inspect("{{range .RootFS.Layers}}{{println .}}{{end}}", img);
    let (ours, theirs) = (layers(image), layers(&base));
    assert!(ours.starts_with(&theirs), "{image} is built on {base}");
    assert_eq!(
        ours.lines().count(),
        theirs.lines().count() + 2,
        "{image} adds two layers to its base: the binary and the CA bundle"
    );
    assert_eq!(
        inspect(
            "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Healthcheck.Test}}",
            image
        ),
        r#"["vhostd"] ["run"] ["CMD","vhostd","health"]"#
    );
    let size = engine.ok(&["image", "inspect", "-f", "{{.Size}}", image]);
    let layers = engine.ok(&["history", "--format", "{{.Size}} {{.CreatedBy}}", image]);
    eprintln!("image {image}: {size} bytes\n{layers}");
}
