//! The writer's promises: a failing or panicking job rolls back only itself, jobs queued
//! together share one commit, and nothing is answered before its commit.

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use rusqlite::Connection;

use super::Db;
use crate::error::ApiError;

/// Jobs queued behind a blocked one; all fit in one group.
const QUEUED_JOBS: usize = 10;

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(&dir.path().join("test.db")).expect("open");
    db.call_blocking(|conn| {
        conn.execute_batch(
            "CREATE TABLE items (n INTEGER PRIMARY KEY);
             CREATE TABLE parents (id INTEGER PRIMARY KEY);
             CREATE TABLE children (parent INTEGER REFERENCES parents(id)
                                    DEFERRABLE INITIALLY DEFERRED);",
        )?;
        Ok(())
    })
    .expect("schema");
    (dir, db)
}

fn committed_items(db: &Db) -> Vec<i64> {
    db.call_blocking(|conn| {
        Ok(conn
            .prepare("SELECT n FROM items ORDER BY n")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    })
    .expect("read items")
}

fn insert(tx: &Connection, n: i64) -> Result<(), ApiError> {
    tx.execute("INSERT INTO items (n) VALUES (?1)", [n])?;
    Ok(())
}

/// Queues a job that holds the writer until the returned sender is used (or dropped), and
/// waits until it runs, so that the jobs queued next form one group.
async fn hold_writer(db: &Db) -> (mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let (release, held) = mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel();
    let db = db.clone();
    let holder = tokio::spawn(async move {
        db.write(move |_| {
            let _ = started.send(());
            let _ = held.recv();
            Ok(())
        })
        .await
        .expect("the holding job");
    });
    running.await.expect("the holding job started");
    (release, holder)
}

/// Queues `n` jobs (polling each once, which submits it) and returns them to await.
async fn queue<T, F>(db: &Db, n: usize, job: F) -> Vec<tokio::task::JoinHandle<Result<T, ApiError>>>
where
    T: Send + 'static,
    F: Fn(usize, &rusqlite::Transaction<'_>) -> Result<T, ApiError> + Send + Sync + 'static,
{
    let job = Arc::new(job);
    let mut handles = Vec::new();
    for i in 0..n {
        let (db, job) = (db.clone(), Arc::clone(&job));
        handles.push(tokio::spawn(
            async move { db.write(move |tx| job(i, tx)).await },
        ));
    }
    // Spawned tasks submit on their first poll; give each one time to be polled.
    tokio::time::sleep(Duration::from_millis(200)).await;
    handles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_queued_together_share_one_commit_and_answer_after_it() {
    let (dir, db) = open();
    let outside = Arc::new(Mutex::new(
        Connection::open(dir.path().join("test.db")).expect("outside connection"),
    ));
    let (release, holder) = hold_writer(&db).await;
    let seen = Arc::clone(&outside);
    let jobs = queue(&db, QUEUED_JOBS, move |i, tx| {
        insert(tx, i as i64)?;
        // What another connection sees: nothing of this group before its commit.
        let conn = seen.lock().unwrap();
        Ok(conn.query_row("SELECT COUNT(*) FROM items", [], |r| r.get::<_, i64>(0))?)
    })
    .await;
    release.send(()).expect("release");
    holder.await.expect("holder");
    for job in join_all(jobs).await {
        assert_eq!(
            job.expect("task").expect("job"),
            0,
            "jobs were committed apart"
        );
    }
    // Every job was answered, so every row is committed.
    assert_eq!(committed_items(&db).len(), QUEUED_JOBS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_rolls_back_only_itself() {
    let (_dir, db) = open();
    let (release, holder) = hold_writer(&db).await;
    let jobs = queue(&db, QUEUED_JOBS, |i, tx| {
        insert(tx, i as i64)?;
        if i % 3 == 0 {
            return Err(ApiError::not_found("odd luck"));
        }
        Ok(i)
    })
    .await;
    drop(release);
    holder.await.expect("holder");
    let mut kept = Vec::new();
    for (i, job) in join_all(jobs).await.into_iter().enumerate() {
        match job.expect("task") {
            Ok(n) => kept.push(n as i64),
            Err(e) => {
                assert_eq!(i % 3, 0, "job {i} failed: {e}");
                assert!(matches!(e, ApiError::NotFound { .. }), "job {i}: {e}");
            }
        }
    }
    assert_eq!(kept.len(), QUEUED_JOBS - QUEUED_JOBS.div_ceil(3));
    assert_eq!(committed_items(&db), kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_rolls_back_only_itself_and_the_writer_lives_on() {
    let (_dir, db) = open();
    let (release, holder) = hold_writer(&db).await;
    let jobs = queue(&db, 3, |i, tx| {
        insert(tx, i as i64)?;
        if i == 1 {
            panic!("a job that panics half-way");
        }
        Ok(())
    })
    .await;
    drop(release);
    holder.await.expect("holder");
    let answers: Vec<_> = join_all(jobs)
        .await
        .into_iter()
        .map(|j| j.expect("task"))
        .collect();
    assert!(answers[0].is_ok() && answers[2].is_ok());
    assert!(matches!(answers[1], Err(ApiError::Internal(_))));
    assert_eq!(committed_items(&db), vec![0, 2]);
    db.write(|tx| insert(tx, 7))
        .await
        .expect("a write after the panic");
    assert_eq!(committed_items(&db), vec![0, 2, 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_commit_fails_no_job_of_the_group_is_reported_done() {
    let (_dir, db) = open();
    let (release, holder) = hold_writer(&db).await;
    // The orphan passes its own statement (the foreign key is deferred) and fails the COMMIT.
    let jobs = queue(&db, 3, |i, tx| {
        if i == 1 {
            tx.execute("INSERT INTO children (parent) VALUES (42)", [])?;
        } else {
            insert(tx, i as i64)?;
        }
        Ok(())
    })
    .await;
    drop(release);
    holder.await.expect("holder");
    for job in join_all(jobs).await {
        assert!(matches!(job.expect("task"), Err(ApiError::Internal(_))));
    }
    assert!(committed_items(&db).is_empty());
    db.write(|tx| insert(tx, 7))
        .await
        .expect("a write after the failed commit");
    assert_eq!(committed_items(&db), vec![7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_connections_refuse_writes() {
    let (_dir, db) = open();
    let refused = db.call(|conn| insert(conn, 1)).await;
    assert!(refused.is_err(), "a pooled read connection wrote");
    assert!(committed_items(&db).is_empty());
}

/// A burst of writes must not leave the writer holding SQLite's default 2 MB page cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_keeps_a_small_page_cache() {
    let (_dir, db) = open();
    let writer_cache: i64 = db
        .write(|tx| Ok(tx.pragma_query_value(None, "cache_size", |r| r.get(0))?))
        .await
        .expect("the writer's cache_size");
    assert_eq!(writer_cache, super::WRITER_CACHE_KIB);
    let reader_cache: i64 = db
        .call(|conn| Ok(conn.pragma_query_value(None, "cache_size", |r| r.get(0))?))
        .await
        .expect("a reader's cache_size");
    assert_eq!(reader_cache, super::READER_CACHE_KIB);
}

#[test]
fn dropping_the_last_handle_commits_what_was_queued() {
    let (dir, db) = open();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let pending = db.write(|tx| insert(tx, 5));
    let polled = runtime.block_on(async {
        let mut pending = Box::pin(pending);
        // One poll submits the job; the answer is not awaited.
        futures_util::poll!(&mut pending).is_pending()
    });
    assert!(polled);
    drop(db);
    let conn = Connection::open(dir.path().join("test.db")).expect("reopen");
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_job_waits_for_queued_writes_and_commits_alone() {
    let (dir, db) = open();
    let outside = Connection::open(dir.path().join("test.db")).expect("outside connection");
    let (release, holder) = hold_writer(&db).await;
    let background = {
        let db = db.clone();
        tokio::spawn(async move {
            db.write_background(move |tx| {
                insert(tx, 100)?;
                // Run after the ordinary writes' commit, not inside their group.
                Ok(outside.query_row("SELECT COUNT(*) FROM items", [], |r| r.get::<_, i64>(0))?)
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Queued after the background job, yet written before it.
    let ordinary = queue(&db, QUEUED_JOBS, |i, tx| insert(tx, i as i64)).await;
    release.send(()).expect("release");
    holder.await.expect("holder");
    for job in join_all(ordinary).await {
        job.expect("task").expect("job");
    }
    let seen = background.await.expect("task").expect("background job");
    assert_eq!(
        seen, QUEUED_JOBS as i64,
        "the background job ran before or among the writes queued behind it"
    );
    assert_eq!(committed_items(&db).len(), QUEUED_JOBS + 1);
}
