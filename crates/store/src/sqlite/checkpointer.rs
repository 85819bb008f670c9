//! WAL checkpoints off the commit path.
//!
//! With SQLite's own autocheckpoint, the commit that takes the WAL past its
//! limit copies the WAL's pages into the database file and fsyncs it before
//! it returns: 6–7 ms of `fsync` alone here, and every send behind that
//! commit waits (the fixed-rate p99; docs/benchmarks.md, "What was tried").
//!
//! Here the appender's commits only count the WAL's frames (a WAL hook).
//! Past the limit, a thread of this module's copies what the WAL holds with a
//! PASSIVE checkpoint, beside the appender's commits. The appender then
//! copies the few frames committed meanwhile, cheap now that the database
//! file's pages are on disk, which leaves nothing in the WAL uncopied, so its
//! next transaction starts the WAL over from the beginning. A passive
//! checkpoint alone never catches up with a writer that never pauses, and the
//! WAL would grow without bound.

use std::ffi::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use palaver_domain::store::{StoreError, StoreResult};
use rusqlite::{ffi, Connection};

/// Nothing to do until the WAL passes the limit.
const IDLE: u8 = 0;
/// The checkpoint thread is copying the WAL.
const COPYING: u8 = 1;
/// The thread has copied what the WAL held when it started; the appender
/// copies the rest.
const COPIED: u8 = 2;

/// What the appender's connection and the checkpoint thread share.
struct Progress {
    /// Frames in the WAL after the appender's last commit (its WAL hook).
    frames: AtomicU32,
    phase: AtomicU8,
}

/// The checkpoint thread, and what the appender's commits tell it.
pub struct Checkpointer {
    progress: Arc<Progress>,
    limit: u32,
    wake: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread with its own connection to the database at `path`.
    /// Checkpoints start once a commit leaves more than `limit` WAL frames.
    pub fn start(path: &Path, limit: u32) -> StoreResult<Self> {
        let connection = super::connection::open(path)?;
        let progress = Arc::new(Progress {
            frames: AtomicU32::new(0),
            phase: AtomicU8::new(IDLE),
        });
        // One pending wake-up is all a pass needs.
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let shared = progress.clone();
        let thread = std::thread::Builder::new()
            .name("palaver-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    checkpoint(&connection, "in the background");
                    shared.phase.store(COPIED, Ordering::Release);
                }
            })
            .map_err(|err| StoreError::Other(format!("starting the checkpoint thread: {err}")))?;
        Ok(Self {
            progress,
            limit,
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Makes `connection`'s commits report the WAL's size here, in place of
    /// SQLite's autocheckpoint (a connection has one WAL hook or the other).
    pub fn watch(&self, connection: Connection) -> Watched {
        let progress = self.progress.clone();
        // SAFETY: the hook's argument points into `progress`, which `Watched`
        // keeps alive until after the connection is closed or dropped.
        unsafe {
            ffi::sqlite3_wal_hook(
                connection.handle(),
                Some(on_wal_commit),
                Arc::as_ptr(&progress) as *mut c_void,
            );
        }
        Watched {
            connection,
            _progress: progress,
        }
    }

    /// Called by the appender after each commit (and after answering it).
    pub fn after_commit(&self, connection: &Connection) {
        let progress = &self.progress;
        match progress.phase.load(Ordering::Acquire) {
            IDLE if progress.frames.load(Ordering::Relaxed) > self.limit => {
                progress.phase.store(COPYING, Ordering::Release);
                if let Some(wake) = &self.wake {
                    match wake.try_send(()) {
                        Ok(()) | Err(TrySendError::Full(())) => {}
                        Err(TrySendError::Disconnected(())) => {
                            progress.phase.store(IDLE, Ordering::Release);
                        }
                    }
                }
            }
            COPIED => {
                checkpoint(connection, "after the background pass");
                progress.phase.store(IDLE, Ordering::Release);
            }
            _ => {}
        }
    }

    /// Ends the thread (after the pass it may be running) and closes its connection.
    pub fn stop(&mut self) {
        self.wake = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A connection whose WAL hook points at a `Progress`; the connection is
/// declared first, so it is dropped first.
pub struct Watched {
    pub connection: Connection,
    _progress: Arc<Progress>,
}

impl Watched {
    /// Closes the connection (checkpointing the WAL if it is the last one).
    pub fn close(self) -> rusqlite::Result<()> {
        let Watched {
            connection,
            _progress,
        } = self;
        connection.close().map_err(|(_, err)| err)
    }
}

unsafe extern "C" fn on_wal_commit(
    progress: *mut c_void,
    _db: *mut ffi::sqlite3,
    _database: *const c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: registered by `Checkpointer::watch` with a live `Progress`.
    let progress = unsafe { &*(progress as *const Progress) };
    progress
        .frames
        .store(frames.max(0) as u32, Ordering::Relaxed);
    ffi::SQLITE_OK
}

/// A PASSIVE checkpoint: copies what no reader still needs, waits for nobody.
fn checkpoint(connection: &Connection, when: &'static str) {
    let started = Instant::now();
    let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    metrics::histogram!("palaver_store_checkpoint_seconds", "when" => when)
        .record(started.elapsed());
    if let Err(err) = result {
        tracing::warn!(error = %err, when, "WAL checkpoint failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_starts_over_while_commits_never_pause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let setup = Connection::open(&path).unwrap();
        setup.pragma_update(None, "page_size", 1024).unwrap();
        setup.pragma_update(None, "journal_mode", "WAL").unwrap();
        setup
            .execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)", [])
            .unwrap();
        let checkpointer = Checkpointer::start(&path, 100).unwrap();
        let watched = checkpointer.watch(crate::sqlite::connection::open(&path).unwrap());
        let body = "x".repeat(300);
        for _ in 0..3_000 {
            watched
                .connection
                .execute("INSERT INTO t (body) VALUES (?1)", [&body])
                .unwrap();
            checkpointer.after_commit(&watched.connection);
        }
        let size = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().len();
        // 3,000 commits of at least one 1 KiB page each: a WAL that never
        // started over would hold them all.
        assert!(
            size("c.db-wal") < 1_000 * 1_024,
            "WAL {} bytes",
            size("c.db-wal")
        );
        // The rows reached the database file through checkpoints.
        assert!(
            size("c.db") > 900 * 1_024,
            "database {} bytes",
            size("c.db")
        );
        let rows: i64 = setup
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 3_000);
    }

    #[test]
    fn commits_report_the_wals_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let setup = Connection::open(&path).unwrap();
        setup.pragma_update(None, "journal_mode", "WAL").unwrap();
        setup
            .execute("CREATE TABLE t (id INTEGER PRIMARY KEY)", [])
            .unwrap();
        let checkpointer = Checkpointer::start(&path, u32::MAX).unwrap();
        let watched = checkpointer.watch(crate::sqlite::connection::open(&path).unwrap());
        let before = checkpointer.progress.frames.load(Ordering::Relaxed);
        watched
            .connection
            .execute("INSERT INTO t DEFAULT VALUES", [])
            .unwrap();
        assert!(checkpointer.progress.frames.load(Ordering::Relaxed) > before);
    }
}
