//! The command line is a contract (DESIGN.md): every subcommand and flag, each with its env var,
//! is in `--help`, and a flag's env var really sets it.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_vhostd");

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "vhostd {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_subcommand_and_flag_of_the_contract_is_in_help() {
    let top = help(&["--help"]);
    for sub in ["run", "render", "status", "renew", "health"] {
        assert!(
            top.contains(&format!("  {sub} ")),
            "subcommand {sub} missing:\n{top}"
        );
    }
    let flags = [
        ("--docker-host", "DOCKER_HOST"),
        ("--conf-file", "VHOSTD_CONF_FILE"),
        ("--webroot", "VHOSTD_WEBROOT"),
        ("--certs-dir", "VHOSTD_CERTS_DIR"),
        ("--template-dir", "VHOSTD_TEMPLATE_DIR"),
        ("--nginx-container", "VHOSTD_NGINX_CONTAINER"),
        ("--nginx-cmd", "VHOSTD_NGINX_CMD"),
        ("--http-port", "VHOSTD_HTTP_PORT"),
        ("--https-port", "VHOSTD_HTTPS_PORT"),
        ("--acme-directory", "VHOSTD_ACME_DIRECTORY"),
        ("--acme-staging", "VHOSTD_ACME_STAGING"),
        ("--acme-email", "VHOSTD_ACME_EMAIL"),
        ("--acme-ca-bundle", "VHOSTD_ACME_CA_BUNDLE"),
        ("--acme-eab-kid", "VHOSTD_ACME_EAB_KID"),
        ("--acme-eab-hmac-key", "VHOSTD_ACME_EAB_HMAC_KEY"),
        ("--acme-profile", "VHOSTD_ACME_PROFILE"),
        ("--admin-addr", "VHOSTD_ADMIN_ADDR"),
        ("--log-format", "VHOSTD_LOG_FORMAT"),
        ("--debounce", "VHOSTD_DEBOUNCE"),
        ("--debounce-max", "VHOSTD_DEBOUNCE_MAX"),
        ("--resync-interval", "VHOSTD_RESYNC_INTERVAL"),
        ("--swarm", "VHOSTD_SWARM"),
    ];
    // Every subcommand takes the same flags, so `render` runs with `run`'s command line.
    for sub in ["run", "render"] {
        let text = help(&[sub, "--help"]);
        for (flag, env) in flags {
            assert!(
                text.contains(&format!("{flag} <")) || text.contains(&format!("{flag}\n")),
                "vhostd {sub}: {flag} missing"
            );
            assert!(
                text.contains(&format!("[env: {env}=")),
                "vhostd {sub}: {env} missing"
            );
        }
    }
}

#[test]
fn env_vars_set_flags_and_bad_values_are_named() {
    // An unreachable admin address from the env: `health` asks it and fails, naming it.
    let out = Command::new(BIN)
        .arg("health")
        .env("VHOSTD_ADMIN_ADDR", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    // A bad value: the error names the flag or its env var.
    let out = Command::new(BIN)
        .args(["render"])
        .env("VHOSTD_DEBOUNCE", "soon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--debounce") && err.contains("soon"), "{err}");
}
