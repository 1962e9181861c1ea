//! Atomic file writes: write-temp → fsync → rename → fsync dir, so a reader never sees half a file.

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `bytes` to `dest` atomically with `mode`, creating parent directories.
///
/// Falls back to an in-place write when `dest` is a single-file bind mount (rename gives EBUSY).
pub fn write_atomic(dest: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".vhostd-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    match tmp.persist(dest) {
        Ok(_) => File::open(dir)?.sync_all(),
        Err(e) if e.error.kind() == io::ErrorKind::ResourceBusy => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(dest)?;
            f.write_all(bytes)?;
            f.sync_all()
        }
        Err(e) => Err(e.error),
    }
}

/// Writes `bytes` to `dest` only when its current content differs; returns whether it wrote.
pub fn write_if_changed(dest: &Path, bytes: &[u8], mode: u32) -> io::Result<bool> {
    match fs::read(dest) {
        Ok(old) if old == bytes => Ok(false),
        _ => write_atomic(dest, bytes, mode).map(|()| true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_mode_and_skips_identical_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/key.pem");
        assert!(write_if_changed(&p, b"x", 0o600).unwrap());
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!write_if_changed(&p, b"x", 0o600).unwrap());
        assert!(write_if_changed(&p, b"y", 0o600).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"y");
    }
}
