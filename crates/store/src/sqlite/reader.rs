//! The reads every new real-time connection makes (and every REST call's
//! question whether its login is live), on threads of their own.
//!
//! Through sqlx, one read costs four hand-offs between threads: the query to
//! the connection's worker thread, each row back, and on release a ping to the
//! worker and its answer (sqlx tests every connection it takes back into the
//! pool). Connection set-up makes two reads, so on a busy core it waited more
//! for thread wake-ups than it worked. Here a read is one job to a reader
//! thread, which runs it start to finish, and one answer back (as for appends,
//! see `appender`).

use std::path::Path;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use palaver_domain::store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::store_closed;
use crate::errors::map_rusqlite;

enum Job {
    Read(Box<dyn FnOnce(&Connection) + Send>),
    /// Ends the thread that takes it, closing its connection.
    Stop,
}

/// A few reader threads sharing one queue of jobs. Closed, they have dropped
/// the queue's receiving ends: jobs still queued are discarded (their callers'
/// answers with them) and later sends fail, so every read after `close`
/// fails as unavailable without a flag of its own.
pub struct Readers {
    jobs: crossbeam_channel::Sender<Job>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Readers {
    /// Opens `threads` read-only connections to the (already migrated)
    /// database at `path`, a thread each.
    pub fn start(path: &Path, threads: usize) -> StoreResult<Self> {
        // Unbounded on purpose: each job is one caller awaiting its answer
        // (a connection starting up, a REST call), so the queue never holds
        // more jobs than there are callers waiting, and a bound would only move
        // the wait. A job whose caller has gone is dropped unrun.
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads {
            let connection = open(path)?;
            let queue = queue.clone();
            let handle = std::thread::Builder::new()
                .name(format!("palaver-read-{n}"))
                .spawn(move || {
                    while let Ok(Job::Read(read)) = queue.recv() {
                        read(&connection);
                    }
                })
                .map_err(|err| StoreError::Other(format!("starting a reader thread: {err}")))?;
            handles.push(handle);
        }
        Ok(Self {
            jobs,
            threads: Mutex::new(handles),
        })
    }

    /// Runs `read` on a reader thread's connection.
    pub async fn read<T, F>(&self, read: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Job::Read(Box::new(move |connection| {
            // A caller that went away (a client that hung up) costs no read.
            if reply.is_closed() {
                return;
            }
            let _ = reply.send(read(connection));
        }));
        self.jobs.send(job).map_err(|_| store_closed())?;
        answer.await.map_err(|_| store_closed())?
    }

    /// Finishes the queued reads, then closes the connections; reads after
    /// this fail as unavailable.
    pub async fn close(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        if threads.is_empty() {
            return;
        }
        // Queued behind the reads already sent; each thread takes one and
        // ends, so every reader connection closes before the writers do.
        for _ in 0..threads.len() {
            let _ = self.jobs.send(Job::Stop);
        }
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

fn open(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(map_rusqlite)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(map_rusqlite)?;
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use futures::FutureExt;

    use super::*;

    #[tokio::test]
    async fn a_read_whose_caller_went_away_is_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        Connection::open(&path).unwrap();
        let readers = Readers::start(&path, 1).unwrap();
        // The one thread is held by a read until released.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let holding = readers.read(move |_| {
            held.recv().unwrap();
            Ok(())
        });
        tokio::pin!(holding);
        assert!((&mut holding).now_or_never().is_none());
        let ran = Arc::new(AtomicBool::new(false));
        let abandoned = readers.read({
            let ran = ran.clone();
            move |_| {
                ran.store(true, Ordering::SeqCst);
                Ok(())
            }
        });
        // Queued on its first poll, then given up.
        assert!(abandoned.now_or_never().is_none());
        release.send(()).unwrap();
        holding.await.unwrap();
        // A read queued after it answers, so the abandoned one has been taken.
        readers.read(|_| Ok(())).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst));
        readers.close().await;
    }
}
