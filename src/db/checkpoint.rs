//! WAL checkpoints off the writer's path. SQLite's automatic checkpoint runs inside the
//! COMMIT that crosses its threshold: the writer would copy pages into the database file
//! and fsync it before answering the group it is committing, and every write queued behind
//! would wait too. A thread of its own checkpoints instead, PASSIVE (it never blocks the
//! writer or a reader), on its own connection.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back into the database file. Short enough that the WAL stays
/// small (a few thousand frames at hundreds of writes a second), long enough that an idle
/// cell does no work: a pass with nothing new to copy returns at once.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// The writer's automatic checkpoint, kept only as a backstop for a checkpointer that cannot
/// keep up (a long read pins old frames): about 40 MB of WAL.
pub const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// The handle on the checkpoint thread; dropping it stops the thread and waits for it.
pub struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> anyhow::Result<Checkpointer> {
        let conn = super::open_connection(path)?;
        let (stop, stopped) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("picd-db-checkpoint".into())
            .spawn(move || run_checkpointer(&conn, &stopped))?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_checkpointer(conn: &Connection, stopped: &Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_INTERVAL) {
        // A pass that could not copy everything (a reader still uses old frames) leaves the
        // rest for the next one.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpointing the WAL");
        }
    }
}
