//! Opening the SQLite store (WAL, foreign keys, busy timeout, durable commits), applying the
//! numbered migrations, and running database work off the async runtime's worker threads:
//! reads on a small pool of read-only connections, writes on the one writer thread
//! (`writer`), which commits them in groups.

pub mod backup;
mod checkpoint;
mod migrations;
mod writer;

#[cfg(test)]
pub use migrations::migrate;
pub use migrations::migrate_at;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, Transaction};

use crate::error::ApiError;

/// Idle connections kept for reuse, per pool; more may be open while requests are in flight.
const MAX_IDLE_CONNECTIONS: usize = 8;
/// Prepared statements kept per connection: more than the hot paths of all routes use.
const STATEMENT_CACHE_CAPACITY: usize = 64;
/// A read connection's page cache, in KiB as SQLite's negative `cache_size` counts it.
const READER_CACHE_KIB: i64 = -256;
/// The writer's page cache, likewise. SQLite's default (2,000 KiB) filled up during a burst
/// of writes (1,000 peers created) and stayed allocated for good, the largest part of what
/// such a burst left behind. A write touches a few pages (a b-tree's path to the rows it
/// changes, the audit chain's tail); the rest is read again from the kernel's page cache.
const WRITER_CACHE_KIB: i64 = -512;

/// A handle on the store: the writer thread, and two small pools of connections used from
/// blocking threads (read-only ones for `call`, writable ones for `call_blocking`).
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writable: Mutex<Vec<Connection>>,
    writer: writer::Writer,
    /// Counts the writer's commits; watched by whoever acts after a commit (the audit anchor).
    commits: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> anyhow::Result<Db> {
        let mut conn = open_connection(path)?;
        migrate_at(&mut conn, &backup::backups_dir(path)).context("applying migrations")?;
        Db::with_connection(path, conn)
    }

    /// Opens the database with picd's settings but applies no migration.
    pub fn open_without_migrating(path: &Path) -> anyhow::Result<Db> {
        Db::with_connection(path, open_connection(path)?)
    }

    fn with_connection(path: &Path, conn: Connection) -> anyhow::Result<Db> {
        let commits = Arc::new(tokio::sync::watch::Sender::new(0));
        let writer =
            writer::Writer::start(path, commits.clone()).context("starting the database writer")?;
        Ok(Db {
            inner: Arc::new(DbInner {
                path: path.to_path_buf(),
                readers: Mutex::new(Vec::new()),
                writable: Mutex::new(vec![conn]),
                writer,
                commits,
            }),
        })
    }

    /// Changes after each commit of the writer (many commits may show as one change).
    pub fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.commits.subscribe()
    }

    /// Writes a consistent copy of the database into `dir` (see `backup::write_copy`), on a
    /// blocking thread with a connection of its own.
    pub async fn copy_to(
        &self,
        dir: PathBuf,
        name: String,
        prefix: &'static str,
        keep: usize,
    ) -> anyhow::Result<PathBuf> {
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = open_connection(&path)?;
            backup::write_copy(&conn, &dir, &name, prefix, keep)
        })
        .await?
    }

    fn pool(&self, read_only: bool) -> &Mutex<Vec<Connection>> {
        if read_only {
            &self.inner.readers
        } else {
            &self.inner.writable
        }
    }

    fn checkout(&self, read_only: bool) -> rusqlite::Result<Connection> {
        let pooled = self
            .pool(read_only)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        if let Some(conn) = pooled {
            return Ok(conn);
        }
        let conn = open_connection(&self.inner.path).map_err(|e| {
            tracing::error!(error = %e, "opening a database connection");
            rusqlite::Error::InvalidPath(self.inner.path.clone())
        })?;
        if read_only {
            conn.pragma_update(None, "query_only", "ON")?;
            // Readers come and go with the load; a small page cache each (the kernel's page
            // cache holds the file anyway) keeps a burst from leaving megabytes behind.
            conn.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
        }
        Ok(conn)
    }

    fn checkin(&self, conn: Connection, read_only: bool) {
        let mut idle = self
            .pool(read_only)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }

    fn with_pooled<T, F>(&self, read_only: bool, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<T, ApiError>,
    {
        let mut conn = self.checkout(read_only)?;
        let result = f(&mut conn);
        // A connection left inside a transaction (a panic mid-way is caught by the runtime)
        // must not be reused.
        if conn.is_autocommit() {
            self.checkin(conn, read_only);
        }
        result
    }

    /// Runs `f`, which only reads, with a connection on a blocking thread. The connection is
    /// read-only (`query_only`): a write that bypassed the writer would wait on SQLite's busy
    /// timeout behind it, so it fails instead, and the tests find it.
    pub async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.with_pooled(true, f))
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("database task failed: {e}")))?
    }

    /// Runs `f` with a writable connection on the current thread: for the CLI, which has the
    /// store to itself, and for start-up before anything else writes. Serving code writes
    /// with `write`.
    pub fn call_blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<T, ApiError>,
    {
        self.with_pooled(false, f)
    }

    /// Runs `f` on the writer thread inside a write transaction shared with the other writes
    /// queued at the same time, in a savepoint of its own: when `f` fails (or panics) only its
    /// changes are rolled back. The answer comes once the transaction is durably committed;
    /// a value is never handed back for a change that did not reach the disk.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T, ApiError> + Send + 'static,
    {
        self.submit(f, false).await
    }

    /// A write that yields to every other: one step of a long job (an import), run when no
    /// ordinary write is queued and committed alone.
    pub async fn write_background<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T, ApiError> + Send + 'static,
    {
        self.submit(f, true).await
    }

    async fn submit<T, F>(&self, f: F, background: bool) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T, ApiError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.inner
            .writer
            .submit(Box::new(writer::WriteJob::new(f, reply, background)))?;
        answer.await.map_err(|_| {
            ApiError::Internal(anyhow::anyhow!("the database writer dropped a write"))
        })?
    }
}

/// Runs `f` in a savepoint of `tx`: when it fails, its changes are rolled back and the rest
/// of the transaction stays. Savepoints nest, so this also works inside a writer job's own.
/// Errs when the savepoint could not be begun or released; changes that could not be
/// released are rolled back, so they never stay in the transaction.
pub fn in_savepoint<T, E, F>(tx: &Transaction<'_>, f: F) -> Result<Result<T, E>, rusqlite::Error>
where
    F: FnOnce(&Transaction<'_>) -> Result<T, E>,
{
    const ROLLBACK: &str = "ROLLBACK TO picd_change; RELEASE picd_change";
    tx.execute_batch("SAVEPOINT picd_change")?;
    let result = f(tx);
    // Some errors (a full disk, an I/O error) make SQLite roll back the whole transaction,
    // the savepoint with it: nothing is left to end.
    if tx.is_autocommit() {
        return Ok(result);
    }
    let end = if result.is_ok() {
        "RELEASE picd_change"
    } else {
        ROLLBACK
    };
    if let Err(e) = tx.execute_batch(end) {
        let _ = tx.execute_batch(ROLLBACK);
        return Err(e);
    }
    Ok(result)
}

fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening database {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL lets readers run beside the writer; synchronous=FULL makes every commit durable
    // (the audit log promises that an acknowledged change is on disk).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Requests' statements are prepared once per connection and kept (rusqlite keeps 16).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(conn)
}

/// Maps a unique-constraint violation to a 409 in one place; other errors pass through.
pub fn conflict_on_unique(err: rusqlite::Error, message: &str) -> ApiError {
    match &err {
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            ApiError::conflict("already_exists", message)
        }
        _ => ApiError::Db(err),
    }
}

#[cfg(test)]
mod tests;
