//! The one writer: a dedicated thread owns the store's write connection and commits the
//! write jobs queued for it in groups. Every job runs in its own SAVEPOINT inside one
//! BEGIN IMMEDIATE transaction, so a job that fails (or panics) rolls back only itself; the
//! group is committed once, one fsync for all of them, and only then is each job answered.
//! Writers inside picd therefore queue here instead of polling SQLite's busy timeout against
//! each other, and a burst of writes costs one durable commit instead of one each.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{oneshot, watch};

use super::checkpoint::{Checkpointer, WRITER_AUTOCHECKPOINT_PAGES};
use crate::error::ApiError;

/// The most jobs committed together: bounds how long the first of a group waits for the
/// others to run before its commit.
pub const MAX_BATCH: usize = 64;

/// A queued write, type-erased so that jobs returning different values share one queue.
pub trait Job: Send {
    /// Runs the work inside the job's savepoint; true when its changes are to be kept.
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Replaces the job's outcome with an error (it did not run, panicked, or its savepoint
    /// could not be released).
    fn fail(&mut self, err: ApiError);
    /// Hands the outcome back, once the group's commit has succeeded or failed.
    fn answer(self: Box<Self>, committed: Result<(), &str>);
    /// A background job (one step of a long import) runs only when no other write waits,
    /// and alone in its group, so it never delays another write by more than its own run.
    fn background(&self) -> bool {
        false
    }
}

/// A write whose value goes back to the caller over a oneshot channel.
pub struct WriteJob<T, F> {
    work: Option<F>,
    outcome: Option<Result<T, ApiError>>,
    reply: oneshot::Sender<Result<T, ApiError>>,
    background: bool,
}

impl<T, F> WriteJob<T, F> {
    pub fn new(work: F, reply: oneshot::Sender<Result<T, ApiError>>, background: bool) -> Self {
        WriteJob {
            work: Some(work),
            outcome: None,
            reply,
            background,
        }
    }
}

impl<T, F> Job for WriteJob<T, F>
where
    T: Send,
    F: FnOnce(&Transaction<'_>) -> Result<T, ApiError> + Send,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = work(tx);
        let keep = outcome.is_ok();
        self.outcome = Some(outcome);
        keep
    }

    fn fail(&mut self, err: ApiError) {
        self.outcome = Some(Err(err));
    }

    fn answer(self: Box<Self>, committed: Result<(), &str>) {
        let answer = match (self.outcome, committed) {
            (Some(Ok(value)), Ok(())) => Ok(value),
            // A change that was not made durable is not reported as done.
            (Some(Ok(_)), Err(e)) => Err(internal(format!("the write was not committed: {e}"))),
            (Some(Err(err)), _) => Err(err),
            (None, Err(e)) => Err(internal(format!("the write did not run: {e}"))),
            (None, Ok(())) => Err(internal("the write job never ran".into())),
        };
        // The caller may have gone away (its request was dropped); nothing to tell then.
        let _ = self.reply.send(answer);
    }

    fn background(&self) -> bool {
        self.background
    }
}

fn internal(message: String) -> ApiError {
    ApiError::Internal(anyhow::anyhow!(message))
}

/// The handle on the writer thread. Dropping it closes the queue: the thread commits what
/// was queued, then ends, and the drop waits for that.
pub struct Writer {
    jobs: Option<Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    _checkpointer: Checkpointer,
}

impl Writer {
    pub fn start(path: &Path, commits: Arc<watch::Sender<u64>>) -> anyhow::Result<Writer> {
        let conn = open_writer_connection(path)?;
        let checkpointer = Checkpointer::start(path)?;
        let (jobs, queue) = std::sync::mpsc::channel();
        let path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("picd-db-writer".into())
            .spawn(move || run_writer(conn, &path, &queue, &commits))?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
            _checkpointer: checkpointer,
        })
    }

    pub fn submit(&self, job: Box<dyn Job>) -> Result<(), ApiError> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| internal("the database writer has stopped".into()))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            // The last handle may be dropped by a job on the writer thread itself; that
            // thread ends on its own once the queue is empty.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// The writer's connection leaves checkpoints to the checkpointer (see `checkpoint`) and
/// keeps a small page cache (see `WRITER_CACHE_KIB`).
fn open_writer_connection(path: &Path) -> anyhow::Result<Connection> {
    let conn = super::open_connection(path)?;
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)?;
    conn.pragma_update(None, "cache_size", super::WRITER_CACHE_KIB)?;
    Ok(conn)
}

fn run_writer(
    mut conn: Connection,
    path: &Path,
    queue: &Receiver<Box<dyn Job>>,
    commits: &watch::Sender<u64>,
) {
    // Background jobs wait here while ordinary writes are queued.
    let mut deferred: VecDeque<Box<dyn Job>> = VecDeque::new();
    loop {
        let mut batch = Vec::new();
        if deferred.is_empty() {
            let Ok(first) = queue.recv() else { break };
            sort_job(first, &mut batch, &mut deferred);
        }
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => sort_job(job, &mut batch, &mut deferred),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            batch.extend(deferred.pop_front());
        }
        let committed = commit_batch(&mut conn, batch);
        if committed {
            commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        if !committed {
            // The connection may be what failed (an I/O error): start the next group on a
            // fresh one.
            match open_writer_connection(path) {
                Ok(fresh) => conn = fresh,
                Err(e) => tracing::error!(error = %e, "reopening the database writer connection"),
            }
        }
    }
}

fn sort_job(
    job: Box<dyn Job>,
    batch: &mut Vec<Box<dyn Job>>,
    deferred: &mut VecDeque<Box<dyn Job>>,
) {
    if job.background() {
        deferred.push_back(job);
    } else {
        batch.push(job);
    }
}

/// Runs one group of jobs in one transaction and answers them all; false when the group
/// could not be committed.
fn commit_batch(conn: &mut Connection, batch: Vec<Box<dyn Job>>) -> bool {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "beginning a group of writes");
            answer_all(batch, &format!("could not begin: {e}"));
            return false;
        }
    };
    let mut ran = Vec::with_capacity(batch.len());
    let mut queued = batch.into_iter();
    while let Some(mut job) = queued.next() {
        run_in_savepoint(&tx, job.as_mut());
        ran.push(job);
        // Some errors (a full disk, an I/O error) make SQLite roll back the whole
        // transaction: the jobs run before this one are lost with it.
        if tx.is_autocommit() {
            tracing::error!("a write job's error rolled back its whole group");
            ran.extend(queued);
            answer_all(ran, "the group's transaction was rolled back");
            return false;
        }
    }
    match tx.commit() {
        Ok(()) => {
            for job in ran {
                job.answer(Ok(()));
            }
            true
        }
        Err(e) => {
            tracing::error!(error = %e, jobs = ran.len(), "committing a group of writes");
            answer_all(ran, &e.to_string());
            false
        }
    }
}

fn answer_all(jobs: Vec<Box<dyn Job>>, why: &str) {
    for job in jobs {
        job.answer(Err(why));
    }
}

/// Runs `job` in a savepoint of its own (`super::in_savepoint`), rolled back when it fails or
/// panics, so that the other jobs of the group keep their changes.
fn run_in_savepoint(tx: &Transaction<'_>, job: &mut dyn Job) {
    let ended = super::in_savepoint(tx, |tx| {
        match catch_unwind(AssertUnwindSafe(|| job.run(tx))) {
            Ok(true) => Ok(()),
            Ok(false) => Err(()),
            Err(_) => {
                tracing::error!("a write job panicked; its changes are rolled back");
                job.fail(internal("the write job panicked".into()));
                Err(())
            }
        }
    });
    if let Err(e) = ended {
        job.fail(ApiError::Db(e));
    }
}
