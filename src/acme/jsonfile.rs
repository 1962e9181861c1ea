//! Reading vhostd's own JSON state files so that "missing", "unreadable" and "corrupt" stay
//! apart: a missing file is a fresh start; an unreadable one (permissions, I/O) is an error for
//! the caller to report and retry — never a silent reset; a corrupt one is moved aside (kept for
//! a human, logged) before anything may replace it. Blocking: call from `spawn_blocking` or at
//! startup.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// What [`load`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded<T> {
    /// No file: start afresh.
    Missing,
    /// The file parsed.
    Found(T),
    /// The file did not parse; it was renamed to `moved_to` (and logged).
    Corrupt {
        /// Where the bad file now is.
        moved_to: PathBuf,
    },
}

impl<T> Loaded<T> {
    /// The value, when one was found.
    pub fn found(self) -> Option<T> {
        match self {
            Loaded::Found(v) => Some(v),
            _ => None,
        }
    }
}

/// Loads `path` (see module docs). `Err` only when the file exists but cannot be read, or a
/// corrupt file cannot be moved aside.
pub fn load<T: DeserializeOwned>(path: &Path) -> io::Result<Loaded<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(e),
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Ok(Loaded::Found(v)),
        Err(parse) => {
            let moved_to = aside(path);
            fs::rename(path, &moved_to)?;
            tracing::error!(action = "state_file_corrupt", path = %path.display(), moved_to = %moved_to.display(),
                error = %parse, "state file does not parse; moved aside (kept for inspection)");
            Ok(Loaded::Corrupt { moved_to })
        }
    }
}

/// `FILE.corrupt-UNIXTIME` (a number suffix when that exists too).
fn aside(path: &Path) -> PathBuf {
    let secs = time::OffsetDateTime::now_utc().unix_timestamp();
    let base = format!("{}.corrupt-{secs}", path.display());
    (0..)
        .map(|i| {
            PathBuf::from(if i == 0 {
                base.clone()
            } else {
                format!("{base}.{i}")
            })
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| PathBuf::from(base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn missing_unreadable_and_corrupt_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        assert_eq!(load::<u32>(&p).unwrap(), Loaded::Missing);
        fs::write(&p, "7").unwrap();
        assert_eq!(load::<u32>(&p).unwrap(), Loaded::Found(7));
        fs::write(&p, "{not json").unwrap();
        let Loaded::Corrupt { moved_to } = load::<u32>(&p).unwrap() else {
            panic!("corrupt")
        };
        assert!(!p.exists(), "moved aside");
        assert_eq!(fs::read_to_string(&moved_to).unwrap(), "{not json");
        // A directory in the file's place reads as an I/O error, like EACCES or EIO would.
        fs::create_dir(&p).unwrap();
        assert!(load::<u32>(&p).is_err());
        fs::remove_dir(&p).unwrap();
        fs::write(&p, "7").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o000)).unwrap();
        if fs::read(&p).is_err() {
            // (root reads anything: this half only bites as a normal user)
            assert!(
                load::<u32>(&p).is_err(),
                "unreadable is an error, not Missing"
            );
        }
    }
}
