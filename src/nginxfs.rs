//! The file steps of an apply, off the async worker threads: write a file atomically, rename
//! the validated candidate onto the live path, list the conf directory.

use std::path::Path;

use crate::fsutil;
use crate::nginx::NginxError;
use crate::nginxpaths::candidate_path;

/// A write failure naming the file.
pub fn write_err(path: &Path, source: std::io::Error) -> NginxError {
    NginxError::Write {
        path: path.into(),
        source,
    }
}

/// Runs blocking file work on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NginxError> + Send + 'static,
) -> Result<T, NginxError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(write_err(Path::new("?"), std::io::Error::other(e))))
}

/// Writes `bytes` to `path` atomically (mode 0644).
pub async fn write_file(path: &Path, bytes: &[u8]) -> Result<(), NginxError> {
    let (path, bytes) = (path.to_path_buf(), bytes.to_vec());
    blocking(move || {
        fsutil::write_atomic(&path, &bytes, 0o644).map_err(|source| write_err(&path, source))
    })
    .await
}

/// Renames the validated candidate onto the live path (one atomic step; a single-file bind
/// mount, where rename gives EBUSY, gets its bytes copied in place).
pub async fn promote(conf: &Path) -> Result<(), NginxError> {
    let conf = conf.to_path_buf();
    blocking(move || {
        let candidate = candidate_path(&conf);
        let err = |source| write_err(&conf, source);
        match std::fs::rename(&candidate, &conf) {
            Ok(()) => {
                let dir = conf.parent().unwrap_or(Path::new("."));
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(err)
            }
            Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
                let bytes = std::fs::read(&candidate).map_err(err)?;
                fsutil::write_atomic(&conf, &bytes, 0o644).map_err(err)
            }
            Err(e) => Err(err(e)),
        }
    })
    .await
}

/// The file names in `dir` (empty when it can't be read).
pub async fn list(dir: &Path) -> Vec<String> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default()
}

/// The pid in `file` when it names a running nginx (a stale pid file may name another process).
pub async fn nginx_pid(file: &Path) -> Option<u32> {
    let pid: u32 = tokio::fs::read_to_string(file)
        .await
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = tokio::fs::read_to_string(format!("/proc/{pid}/comm"))
        .await
        .ok()?;
    comm.trim().starts_with("nginx").then_some(pid)
}
