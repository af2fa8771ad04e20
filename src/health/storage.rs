//! The database's own health, checked at start-up: `PRAGMA quick_check`, and the audit chain
//! against its anchor outside the database (`audit::anchor`). A loss found there puts picd in
//! a `degraded` state that `/api/status` (the `storage` subsystem), the status page and the
//! log name: which audit entries are missing and what to restore. picd keeps serving so the
//! owner can look, but keeps the old anchor and takes no snapshot until the loss is resolved
//! (a snapshot would push the good ones out).
//!
//! Also the daily snapshot: a consistent copy of the database in `backups/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use crate::audit::anchor::{self, AnchorCheck};
use crate::db::Db;
use crate::driver::{Driver, DriverError, DriverState, SubsystemStatus};

/// Snapshots kept in `backups/`.
const SNAPSHOTS_KEPT: usize = 7;
const SNAPSHOT_PREFIX: &str = "snapshot-";
/// Lines of `quick_check`'s answer kept in the reason.
const QUICK_CHECK_LINES: usize = 5;

/// What the start-up check found; `None` when the database is whole.
#[derive(Debug, Clone, Default)]
pub struct StorageCheck {
    pub problem: Option<String>,
}

impl StorageCheck {
    pub fn degraded(&self) -> bool {
        self.problem.is_some()
    }
}

/// Runs the checks on the database as picd found it, before anything writes, and logs what
/// they found. Makes the first anchor when there is none.
pub async fn check_at_start(db: &Db, state_dir: &Path) -> anyhow::Result<StorageCheck> {
    let mut problems = Vec::new();
    // An anchor that cannot be read is reported, and kept for the owner to look at.
    let (stored, unreadable) = match anchor::read(state_dir) {
        Ok(stored) => (stored, false),
        Err(e) => {
            problems.push(format!("the audit anchor cannot be read ({e:#})"));
            (None, true)
        }
    };
    let (integrity, compared, current) = db
        .call(move |conn| {
            let integrity = quick_check(conn)?;
            let compared = anchor::check(conn, stored.as_ref())?;
            Ok((integrity, compared, anchor::current(conn)?))
        })
        .await
        .map_err(|e| anyhow::anyhow!("checking the database: {e}"))?;
    if let Some(report) = integrity {
        problems.push(format!("the database fails its integrity check ({report})"));
    }
    let restore = "changes are refused until the owner acts: restore the newest snapshot from \
                   backups/ (see the README, \"Restoring a snapshot\"), or accept the loss \
                   with POST /api/status/storage/acknowledge while picd runs, or with \
                   `picd audit reanchor` while it is stopped (which also moves the audit \
                   anchor to the database's head)";
    match compared {
        AnchorCheck::Holds => {}
        AnchorCheck::Missing if unreadable => {}
        AnchorCheck::Missing => {
            anchor::write(state_dir, &current).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        }
        AnchorCheck::Behind {
            first_missing,
            last_missing,
        } => problems.push(format!(
            "the database is behind its audit anchor: audit entries {first_missing} to \
             {last_missing} ({} acknowledged change(s)) are missing, lost with the changes \
             they record; the database ends at entry {}",
            last_missing - first_missing + 1,
            first_missing - 1
        )),
        AnchorCheck::Diverged { seq } => problems.push(format!(
            "audit entry {seq} is not the one the audit anchor recorded: the history after \
             it was lost and replaced"
        )),
    }
    let problem = (!problems.is_empty()).then(|| format!("{}; {restore}", problems.join("; ")));
    if let Some(problem) = &problem {
        tracing::error!(problem = %problem, "storage is degraded");
    }
    Ok(StorageCheck { problem })
}

/// `PRAGMA quick_check`: None when it says "ok", else its first lines. A page damaged badly
/// enough stops the check itself with SQLITE_CORRUPT after the lines naming it: that is its
/// finding too, not a reason for picd to refuse to start (the owner needs it running to see
/// what was lost).
fn quick_check(conn: &rusqlite::Connection) -> rusqlite::Result<Option<String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check")?;
    let mut rows = stmt.query([])?;
    let mut lines = Vec::new();
    while lines.len() < QUICK_CHECK_LINES {
        match rows.next() {
            Ok(Some(row)) => lines.push(row.get::<_, String>(0)?),
            Ok(None) => break,
            Err(e) if is_corruption(&e) => {
                lines.push(format!("the check stopped: {e}"));
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok((lines != ["ok"]).then(|| lines.join("; ")))
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// The `storage` subsystem of /api/status.
pub struct StorageStatus(pub StorageCheck);

#[async_trait]
impl Driver for StorageStatus {
    fn name(&self) -> &'static str {
        "storage"
    }

    async fn reconcile(&self, _db: &Db) -> Result<(), DriverError> {
        Ok(())
    }

    async fn status(&self) -> SubsystemStatus {
        match &self.0.problem {
            None => SubsystemStatus::ok(
                "storage",
                Some(
                    "at start the database passed its integrity check and held every \
                     acknowledged audit entry"
                        .into(),
                ),
            ),
            Some(problem) => SubsystemStatus {
                name: "storage",
                state: DriverState::Degraded,
                reason: Some(problem.clone()),
            },
        }
    }
}

/// Takes a snapshot when the newest is older than `interval` (at start, then as time
/// passes); a cell with an empty audit log (nothing set up yet) has nothing to keep.
pub async fn run_snapshots(db: Db, state_dir: PathBuf, interval: Duration) -> anyhow::Result<()> {
    let dir = state_dir.join("backups");
    let mut ticker = tokio::time::interval(interval.min(Duration::from_secs(3600)));
    loop {
        ticker.tick().await;
        if !snapshot_due(&dir, interval)? {
            continue;
        }
        let used = db
            .call(|conn| Ok(anchor::head(conn)?.0 > 0))
            .await
            .map_err(|e| anyhow::anyhow!("reading the audit head: {e}"))?;
        if !used {
            continue;
        }
        let name = format!("{SNAPSHOT_PREFIX}{}.db", crate::db::backup::file_time());
        match db
            .copy_to(dir.clone(), name, SNAPSHOT_PREFIX, SNAPSHOTS_KEPT)
            .await
        {
            Ok(path) => tracing::info!(snapshot = %path.display(), "database snapshot written"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "writing a database snapshot"),
        }
    }
}

fn snapshot_due(dir: &Path, interval: Duration) -> anyhow::Result<bool> {
    let Some(newest) = crate::db::backup::list(dir, SNAPSHOT_PREFIX)?.pop() else {
        return Ok(true);
    };
    let age = std::fs::metadata(&newest)?
        .modified()?
        .elapsed()
        .unwrap_or_default();
    Ok(age >= interval)
}
