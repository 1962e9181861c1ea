//! Watches a directory vhostd reads (templates, snippets, htpasswd files) and says when its
//! contents changed. Only changes count: vhostd's own reads of the files (open, read, close)
//! wake nothing, so a broken file is acted on once, not in a loop. A missing directory is
//! looked for once a second (a `stat`) and watched as soon as it appears; its appearance,
//! disappearance or replacement counts as a change.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::event::{AccessKind, AccessMode, ModifyKind};
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

/// How often a directory's existence (and identity) is checked.
const POLL: Duration = Duration::from_secs(1);

/// Events closer together than this are reported as one.
const SETTLE: Duration = Duration::from_millis(200);

/// A running watch; dropping it stops it.
pub struct DirWatch {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// True for the event kinds that change what vhostd would read: creation, removal, renames
/// and writes; not opens, reads or attribute changes (vhostd's own reads cause those).
pub fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        _ => false,
    }
}

/// Sends `()` on `tx` each time the contents of `dir` change (see module docs).
/// The directory's state is taken before this returns, so a change right after is not missed.
pub async fn watch_dir(dir: PathBuf, tx: mpsc::Sender<()>) -> DirWatch {
    watch(dir, RecursiveMode::NonRecursive, tx).await
}

/// Like [`watch_dir`], for `dir` and everything below it (certificates' `live/HOST/` files).
pub async fn watch_tree(dir: PathBuf, tx: mpsc::Sender<()>) -> DirWatch {
    watch(dir, RecursiveMode::Recursive, tx).await
}

async fn watch(dir: PathBuf, mode: RecursiveMode, tx: mpsc::Sender<()>) -> DirWatch {
    let current = match identity(tokio::fs::metadata(&dir).await.ok()) {
        Some(id) => start_off(&dir, mode, tx.clone())
            .await
            .ok()
            .map(|w| (id, w)),
        None => None,
    };
    DirWatch {
        task: tokio::spawn(follow(dir, mode, tx, current)),
    }
}

type Watcher = Debouncer<RecommendedWatcher, RecommendedCache>;

async fn follow(
    dir: PathBuf,
    mode: RecursiveMode,
    tx: mpsc::Sender<()>,
    mut current: Option<(u64, Watcher)>,
) {
    loop {
        tokio::time::sleep(POLL).await;
        let id = identity(tokio::fs::metadata(&dir).await.ok());
        let seen = current.as_ref().map(|(i, _)| *i);
        if id != seen {
            current = None;
            if let Some(i) = id {
                match start_off(&dir, mode, tx.clone()).await {
                    Ok(w) => current = Some((i, w)),
                    Err(e) => {
                        tracing::warn!(action = "watch_failed", dir = %dir.display(), error = %e, "cannot watch the directory; changes are noticed within a second instead");
                    }
                }
            }
            let _ = tx.try_send(());
        }
    }
}

/// A directory's identity, when it exists (a replaced directory has a new inode).
fn identity(m: Option<std::fs::Metadata>) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let m = m?;
    m.is_dir().then(|| m.ino() ^ m.dev().rotate_left(32))
}

/// [`start`] on the blocking pool: a watch registers every directory it covers (a
/// recursive one walks the whole tree).
async fn start_off(
    dir: &Path,
    mode: RecursiveMode,
    tx: mpsc::Sender<()>,
) -> Result<Watcher, String> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || start(&dir, mode, tx).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
}

fn start(
    dir: &Path,
    mode: RecursiveMode,
    tx: mpsc::Sender<()>,
) -> Result<Watcher, notify_debouncer_full::notify::Error> {
    let mut deb = new_debouncer(SETTLE, None, move |r: DebounceEventResult| {
        if let Ok(events) = r
            && events.iter().any(|e| is_change(&e.kind))
        {
            let _ = tx.try_send(());
        }
    })?;
    deb.watch(dir, mode)?;
    Ok(deb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify_debouncer_full::notify::event::{CreateKind, DataChange, MetadataKind};

    #[test]
    fn reads_are_not_changes() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!is_change(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::AccessTime
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Data(
            DataChange::Content
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
    }

    #[tokio::test]
    async fn a_missing_directory_is_watched_once_it_appears() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("later");
        let (tx, mut rx) = mpsc::channel(8);
        let _w = watch_dir(dir.clone(), tx).await;
        std::fs::create_dir(&dir).unwrap();
        let t = Duration::from_secs(10);
        tokio::time::timeout(t, rx.recv()).await.unwrap();
        // Reading the files is not a change; writing one is.
        std::fs::write(dir.join("f"), "x").unwrap();
        tokio::time::timeout(t, rx.recv()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        while rx.try_recv().is_ok() {}
        let _ = std::fs::read(dir.join("f")).unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(1500), rx.recv())
                .await
                .is_err(),
            "a read woke the watcher"
        );
    }
}
