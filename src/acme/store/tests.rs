//! Unit tests of [`store`](super).

use super::*;
use std::os::unix::fs::PermissionsExt;
use time::macros::datetime;

#[test]
fn state_round_trips_and_old_files_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let key = HostName::parse("a.example.com").unwrap();
    assert_eq!(store.load_state(&key).unwrap(), CertState::default());
    let state = CertState {
        names: vec!["a.example.com".into()],
        failures: 2,
        next_attempt: Some(datetime!(2026-01-01 00:10 UTC)),
        last_error: Some("boom".into()),
        ari: Some(AriState {
            cert_id: "aki.serial".into(),
            window: AriWindow {
                start: datetime!(2026-02-01 0:00 UTC),
                end: datetime!(2026-02-02 0:00 UTC),
                explanation_url: None,
            },
            selected: datetime!(2026-02-01 12:00 UTC),
            next_poll: datetime!(2026-01-01 12:00 UTC),
        }),
        ..CertState::default()
    };
    let path = store.save_state(&key, &state).unwrap();
    assert_eq!(store.load_state(&key).unwrap(), state);
    let json = fs::read_to_string(&path).unwrap();
    assert!(
        json.contains("\"next_attempt\": \"2026-01-01T00:10:00Z\""),
        "{json}"
    );
    fs::write(&path, r#"{"failures": 3}"#).unwrap();
    assert_eq!(
        store.load_state(&key).unwrap().failures,
        3,
        "missing fields default"
    );
    fs::write(&path, "{not json").unwrap();
    assert_eq!(store.load_state(&key).unwrap(), CertState::default());
    let aside: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "a corrupt file is moved aside, not lost");
}

/// Issue 7 item 8: a state file that exists but cannot be read is an error, not a reset.
#[test]
fn unreadable_state_is_an_error_not_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let key = HostName::parse("a.example.com").unwrap();
    let path = store.state_path(&key);
    fs::create_dir_all(path.join("in-the-way")).unwrap(); // read() fails with EISDIR
    assert!(store.load_state(&key).is_err());
    assert!(
        path.join("in-the-way").is_dir(),
        "nothing moved or replaced"
    );
}

/// Issue 7 item 8: an account file that does not parse is moved aside (and the caller
/// told), never silently replaced by a new registration.
#[test]
fn a_corrupt_account_file_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let path = store.account_path("https://ca/dir", None);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "{\"credentials\": tru").unwrap();
    let Loaded::Corrupt { moved_to } = store.load_account("https://ca/dir", None).unwrap() else {
        panic!("corrupt account file not reported");
    };
    assert_eq!(
        fs::read_to_string(moved_to).unwrap(),
        "{\"credentials\": tru"
    );
    assert!(matches!(
        store.load_account("https://ca/dir", None).unwrap(),
        Loaded::Missing
    ));
    fs::create_dir_all(&path).unwrap();
    assert!(
        store.load_account("https://ca/dir", None).is_err(),
        "unreadable"
    );
}

/// Issue 7 item 9: state directories 0700 (tightened when an older run made them 0755),
/// state and account files 0600.
#[test]
fn state_dirs_are_0700_and_files_0600() {
    use std::os::unix::fs::DirBuilderExt;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir.path().join("vhostd/certs"))
        .unwrap();
    let key = HostName::parse("a.example.com").unwrap();
    let state = store.save_state(&key, &CertState::default()).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for d in ["vhostd", "vhostd/accounts", "vhostd/certs"] {
        assert_eq!(mode(&dir.path().join(d)), 0o700, "{d}");
    }
    assert_eq!(mode(&state), 0o600);
    let creds: AccountCredentials = serde_json::from_str(
        r#"{"id":"https://ca/acct/1","key_pkcs8":"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgH1t0eQ1a9O6n1q1ZlGqY8vX2m7aCkqRbq9c5mJk5Q2uhRANCAAQ6m4hL8r0vV8tC8S8oM9q3m5f1q8w5f1y0v8q5m1x2s3b4n5m6q7w8e9r0t1y2u3i4o5p6a7s8d9f0g1h2j3k4","directory":"https://ca/dir"}"#,
    )
    .unwrap_or_else(|e| panic!("credentials shape: {e}"));
    let acct = store.save_account("https://ca/dir", None, &creds).unwrap();
    assert_eq!(mode(&acct), 0o600);
}

#[test]
fn challenge_files_stay_inside_the_webroot() {
    let dir = tempfile::tempdir().unwrap();
    let name = HostName::parse("a.example.com").unwrap();
    let p = write_challenge(dir.path(), &name, "tok-EN_1", "body").unwrap();
    assert!(p.ends_with("a.example.com/.well-known/acme-challenge/tok-EN_1"));
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o644
    );
    for bad in ["../x", "a/b", "", "a.b"] {
        assert!(
            write_challenge(dir.path(), &name, bad, "x").is_err(),
            "{bad}"
        );
    }
}

#[test]
fn accounts_are_per_directory_and_contact() {
    let store = Store::new(Path::new("/c"));
    let a = store.account_path("https://ca/dir", Some("mailto:a@x"));
    assert_eq!(a, store.account_path("https://ca/dir", Some("mailto:a@x")));
    assert_ne!(a, store.account_path("https://ca/dir", None));
    assert_ne!(
        a,
        store.account_path("https://other/dir", Some("mailto:a@x"))
    );
    assert!(a.starts_with("/c/vhostd/accounts"));
}
