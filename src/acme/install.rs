//! Installs a certificate's files as one unit, certbot-style: the new set is written into a fresh
//! `archive/KEY/N/` directory (each file fsync'd, then the directory), and `live/KEY` is a
//! symlink to it, swapped by one `rename`. A reader (nginx, `vhostd render`) resolving
//! `live/KEY/fullchain.pem` sees the old set or the new set, never a mix; a crash leaves at worst
//! an unreferenced `archive/KEY/.tmp-*` directory, removed by the next install.
//!
//! Blocking: call it from `spawn_blocking`. Decides nothing about what to install.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

/// One file of a set: its name in the directory, its bytes, its mode.
pub struct SetFile<'a> {
    /// File name (`fullchain.pem`, ...).
    pub name: &'a str,
    /// Content.
    pub bytes: &'a [u8],
    /// Permission bits (0600 for the key).
    pub mode: u32,
}

/// Writes `files` as generation N of `archive_dir` and points the `live` symlink at it.
/// A real directory found at `live` (an install from before this layout) is moved into the
/// archive first. Returns the new generation's directory.
pub fn install_set(live: &Path, archive_dir: &Path, files: &[SetFile<'_>]) -> io::Result<PathBuf> {
    fs::create_dir_all(archive_dir)?;
    let live_parent = live.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(live_parent)?;
    let name = live
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} has no file name", live.display())))?
        .to_string_lossy()
        .into_owned();
    let n = next_generation(archive_dir)?;
    let tmp = archive_dir.join(format!(".tmp-{n}"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp)?;
    for f in files {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(f.mode)
            .open(tmp.join(f.name))?;
        out.write_all(f.bytes)?;
        out.sync_all()?;
    }
    File::open(&tmp)?.sync_all()?;
    let generation = archive_dir.join(n.to_string());
    fs::rename(&tmp, &generation)?;
    File::open(archive_dir)?.sync_all()?;
    if fs::symlink_metadata(live).is_ok_and(|m| m.is_dir()) {
        // One-time move from a plain `live/KEY/` directory: for this instant `live/KEY` is
        // absent (never a mix), then the symlink takes its place.
        fs::rename(live, archive_dir.join(format!("{}-plain", n)))?;
    }
    let target = relative_target(live_parent, &generation);
    let link = live_parent.join(format!(".{name}.tmp"));
    let _ = fs::remove_file(&link);
    symlink(&target, &link)?;
    fs::rename(&link, live)?;
    File::open(live_parent)?.sync_all()?;
    prune(archive_dir, n);
    Ok(generation)
}

/// The next unused generation number under `archive_dir`.
fn next_generation(archive_dir: &Path) -> io::Result<u64> {
    let mut max = 0;
    for entry in fs::read_dir(archive_dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let digits = name.trim_start_matches(".tmp-");
        let digits = digits.split('-').next().unwrap_or("");
        if let Ok(n) = digits.parse::<u64>() {
            max = max.max(n);
        }
    }
    Ok(max + 1)
}

/// `../archive/KEY/N` when live and archive share `CERTS_DIR` (so the link survives a bind
/// mount at another path); the absolute path otherwise.
fn relative_target(live_parent: &Path, generation: &Path) -> PathBuf {
    let certs_dir = live_parent.parent().unwrap_or(Path::new("/"));
    match generation.strip_prefix(certs_dir) {
        Ok(rest) => Path::new("..").join(rest),
        Err(_) => generation.to_path_buf(),
    }
}

/// Removes every generation but `current` and the one before it (nginx workers that have not
/// reloaded yet may still be told the old paths), and leftovers of interrupted installs.
fn prune(archive_dir: &Path, current: u64) {
    let Ok(entries) = fs::read_dir(archive_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let keep = name
            .parse::<u64>()
            .is_ok_and(|n| n == current || n + 1 == current);
        if !keep {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn set<'a>(tag: &'a str) -> Vec<SetFile<'a>> {
        vec![
            SetFile {
                name: "privkey.pem",
                bytes: tag.as_bytes(),
                mode: 0o600,
            },
            SetFile {
                name: "fullchain.pem",
                bytes: tag.as_bytes(),
                mode: 0o644,
            },
        ]
    }

    #[test]
    fn a_set_replaces_the_old_one_through_one_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live/a.example.com");
        let archive = dir.path().join("archive/a.example.com");
        // A plain directory from before: moved aside, then replaced by the link.
        fs::create_dir_all(&live).unwrap();
        fs::write(live.join("fullchain.pem"), "old").unwrap();
        install_set(&live, &archive, &set("one")).unwrap();
        assert!(fs::symlink_metadata(&live).unwrap().is_symlink());
        assert_eq!(
            fs::read_link(&live).unwrap(),
            Path::new("../archive/a.example.com/1")
        );
        assert_eq!(
            fs::read_to_string(live.join("fullchain.pem")).unwrap(),
            "one"
        );
        let key_mode = fs::metadata(live.join("privkey.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        for tag in ["two", "three"] {
            install_set(&live, &archive, &set(tag)).unwrap();
        }
        assert_eq!(
            fs::read_to_string(live.join("privkey.pem")).unwrap(),
            "three"
        );
        let mut left: Vec<String> = fs::read_dir(&archive)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["2", "3"],
            "older generations and the plain dir pruned"
        );
    }

    #[test]
    fn an_interrupted_install_is_never_referenced() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live/a.example.com");
        let archive = dir.path().join("archive/a.example.com");
        install_set(&live, &archive, &set("one")).unwrap();
        // A crash while writing generation 2: half a directory, never linked.
        fs::create_dir_all(archive.join(".tmp-2")).unwrap();
        fs::write(archive.join(".tmp-2/privkey.pem"), "half").unwrap();
        assert_eq!(fs::read_to_string(live.join("privkey.pem")).unwrap(), "one");
        install_set(&live, &archive, &set("two")).unwrap();
        assert_eq!(
            fs::read_to_string(live.join("fullchain.pem")).unwrap(),
            "two"
        );
        assert!(!archive.join(".tmp-2").exists());
    }
}
