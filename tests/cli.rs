//! The command line is a contract (DESIGN.md, the README's command-line table): every flag of
//! the README's table is in `--help` of every subcommand with its env var, every flag in
//! `--help` is in the table (so the two can't drift), and a flag's env var really sets it.

use std::collections::BTreeSet;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_vhostd");

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "vhostd {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The README's "Command line" table: its subcommands (`vhostd X` rows) and global flags
/// (cells that start with `--`; `vhostd status --json` style cells are a subcommand's own).
fn readme_table() -> (BTreeSet<String>, BTreeSet<String>) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Command line")
        .nth(1)
        .expect("README has a ## Command line section");
    let section = section.split("\n## ").next().unwrap();
    let (mut subs, mut flags) = (BTreeSet::new(), BTreeSet::new());
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap();
        for item in first.split('`').skip(1).step_by(2) {
            if let Some(sub) = item.strip_prefix("vhostd ") {
                subs.insert(sub.split_whitespace().next().unwrap().to_string());
            } else if item.starts_with("--") {
                flags.insert(item.to_string());
            }
        }
    }
    (subs, flags)
}

/// The long flags `--help` lists (without --help and --version).
fn help_flags(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split([' ', ',', '=']).find(|w| w.starts_with("--")))
        .filter(|f| *f != "--help" && *f != "--version")
        .map(str::to_string)
        .collect()
}

fn env_of(flag: &str) -> String {
    match flag {
        "--docker-host" => "DOCKER_HOST".into(),
        f => format!("VHOSTD_{}", f[2..].replace('-', "_").to_uppercase()),
    }
}

#[test]
fn every_subcommand_and_flag_of_the_readme_table_is_in_help() {
    let (subs, flags) = readme_table();
    // The table itself can't shrink unnoticed: these are named by the issues.
    for must in [
        "--docker-host",
        "--conf-file",
        "--key-type",
        "--acme-concurrency",
        "--no-acme",
        "--self-check-addr",
        "--default-host",
        "--http2",
        "--ipv6",
        "--trust-downstream-proxy",
    ] {
        assert!(
            flags.contains(must),
            "README's command-line table lacks {must}"
        );
    }
    let top = help(&["--help"]);
    for sub in &subs {
        assert!(
            top.contains(&format!("  {sub} ")),
            "subcommand {sub} missing:\n{top}"
        );
    }
    // Every subcommand takes the same flags, so `render` runs with `run`'s command line.
    for sub in ["run", "render"] {
        let text = help(&[sub, "--help"]);
        let listed = help_flags(&text);
        for flag in &flags {
            assert!(
                listed.contains(flag),
                "vhostd {sub}: {flag} missing from --help"
            );
            let env = env_of(flag);
            assert!(
                text.contains(&format!("[env: {env}=")),
                "vhostd {sub}: {env} missing"
            );
        }
        let undocumented: Vec<_> = listed.difference(&flags).collect();
        assert!(
            undocumented.is_empty(),
            "vhostd {sub}: flags in --help but not in the README's table: {undocumented:?}"
        );
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
    // A bad value in each env var: the error names the flag (or its env var) and the value.
    for (env, value, flag) in [
        ("VHOSTD_DEBOUNCE", "soon", "--debounce"),
        ("VHOSTD_KEY_TYPE", "rsa-512", "--key-type"),
        ("VHOSTD_ACME_CONCURRENCY", "many", "--acme-concurrency"),
        ("VHOSTD_NO_ACME", "perhaps", "--no-acme"),
        ("VHOSTD_SELF_CHECK_ADDR", "nowhere", "--self-check-addr"),
        ("VHOSTD_DEFAULT_HOST", "bad host!", "--default-host"),
        ("VHOSTD_HTTP2", "sometimes", "--http2"),
        ("VHOSTD_IPV6", "sometimes", "--ipv6"),
        (
            "VHOSTD_TRUST_DOWNSTREAM_PROXY",
            "sometimes",
            "--trust-downstream-proxy",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["render"])
            .env(env, value)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{env}={value} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            (err.contains(flag) || err.contains(env)) && err.contains(value),
            "{env}={value}: {err}"
        );
    }
}
