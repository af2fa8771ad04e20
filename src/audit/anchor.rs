//! The anchor of the audit chain: the head's sequence and hash, kept in a file of the state
//! directory, outside the database. A damaged disk can make SQLite drop the last committed
//! frames of its WAL (a bad checksum ends recovery there) and `audit_head` rolls back with
//! them, so the chain alone still verifies; the anchor remembers how far it had reached.
//!
//! The anchor is written after commits, off the writer's path (an fsync and a rename per
//! group would double a commit's cost): a task waits for the writer's commit signal and
//! writes the newest head, many commits at once when they come quickly. At shutdown, once
//! the last request has been answered, the head is anchored once more: a write answered
//! during the shutdown grace would otherwise stay unanchored, the keeper stopped with the
//! server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::db::Db;

const FILE_NAME: &str = "audit-anchor.json";
/// Larger files are not an anchor picd wrote.
const MAX_FILE_BYTES: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
    pub time: String,
}

/// How the database compares with its anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnchorCheck {
    /// The chain reaches the anchor, with the anchored entry unchanged.
    Holds,
    /// No anchor yet (a new cell, or one from before anchors): one is made from the head.
    Missing,
    /// Entries `first_missing..=last_missing` were acknowledged and are gone.
    Behind {
        first_missing: i64,
        last_missing: i64,
    },
    /// The entry at the anchor's sequence differs from the one anchored: history was replaced.
    Diverged { seq: i64 },
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Reads the anchor; None when there is none yet.
pub fn read(state_dir: &Path) -> anyhow::Result<Option<Anchor>> {
    let path = path(state_dir);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut text = String::new();
    use std::io::Read;
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    let anchor = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an audit anchor", path.display()))?;
    Ok(Some(anchor))
}

/// Replaces the anchor atomically and durably: a temporary file, fsync, rename, fsync of
/// the directory.
pub fn write(state_dir: &Path, anchor: &Anchor) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let target = path(state_dir);
    let temp = state_dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("creating {}", temp.display()))?;
    file.write_all(serde_json::to_string(anchor)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, &target).with_context(|| format!("replacing {}", target.display()))?;
    std::fs::File::open(state_dir)?.sync_all()?;
    Ok(())
}

/// The newest anchor this process wrote with `write_newer`, per state dir.
static NEWEST_WRITTEN: Mutex<Vec<(PathBuf, i64)>> = Mutex::new(Vec::new());

/// `write`, for the keeper and the shutdown: one at a time, and never an older head over a
/// newer one. The keeper's last write may still run on a blocking thread when the shutdown
/// writes the final head; within one picd the chain only grows, so the lower sequence is
/// the stale one.
fn write_newer(state_dir: &Path, anchor: &Anchor) -> anyhow::Result<()> {
    let mut newest = NEWEST_WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
    let known = newest.iter_mut().find(|(dir, _)| dir == state_dir);
    if known.as_ref().is_some_and(|(_, seq)| *seq > anchor.seq) {
        return Ok(());
    }
    write(state_dir, anchor)?;
    match known {
        Some((_, seq)) => *seq = anchor.seq,
        None => newest.push((state_dir.to_path_buf(), anchor.seq)),
    }
    Ok(())
}

/// The head of the chain in the database.
pub fn head(conn: &Connection) -> rusqlite::Result<(i64, String)> {
    conn.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
}

/// Compares the database's chain with `anchor`.
pub fn check(conn: &Connection, anchor: Option<&Anchor>) -> rusqlite::Result<AnchorCheck> {
    let Some(anchor) = anchor else {
        return Ok(AnchorCheck::Missing);
    };
    let (seq, _) = head(conn)?;
    if seq < anchor.seq {
        return Ok(AnchorCheck::Behind {
            first_missing: seq + 1,
            last_missing: anchor.seq,
        });
    }
    if anchor.seq == 0 {
        return Ok(AnchorCheck::Holds);
    }
    let stored: Option<String> = conn
        .query_row(
            "SELECT hash FROM audit_log WHERE seq = ?1",
            [anchor.seq],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match stored {
        Some(hash) if hash == anchor.hash => AnchorCheck::Holds,
        _ => AnchorCheck::Diverged { seq: anchor.seq },
    })
}

/// The anchor for the database's current head.
pub fn current(conn: &Connection) -> rusqlite::Result<Anchor> {
    let (seq, hash) = head(conn)?;
    Ok(Anchor {
        seq,
        hash,
        time: crate::time::now_rfc3339(),
    })
}

/// Keeps the anchor at the chain's head: after each commit signal, writes the newest head
/// when it moved. Started only when the database holds its anchor (a degraded start keeps
/// the old anchor, so the loss stays named until the owner restores or accepts it).
pub async fn run_anchor_keeper(db: Db, state_dir: PathBuf) -> anyhow::Result<()> {
    let mut commits = db.subscribe_commits();
    let mut written: Option<i64> = None;
    loop {
        let anchor = db
            .call(|conn| Ok(current(conn)?))
            .await
            .map_err(|e| anyhow::anyhow!("reading the audit head: {e}"))?;
        if written != Some(anchor.seq) {
            let dir = state_dir.clone();
            let seq = anchor.seq;
            let result = tokio::task::spawn_blocking(move || write_newer(&dir, &anchor)).await?;
            match result {
                Ok(()) => written = Some(seq),
                // Tried again after the next commit; the anchor lagging is not a loss.
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "writing the audit anchor"),
            }
        }
        if commits.changed().await.is_err() {
            return Ok(());
        }
    }
}

/// The last anchor, written when picd stops: the keeper ends with the server, and a write
/// answered after its last pass (during the shutdown grace) would otherwise be anchored only
/// by the next start's check.
pub async fn anchor_at_shutdown(db: &Db, state_dir: &Path) {
    let dir = state_dir.to_path_buf();
    let result = match db.call(|conn| Ok(current(conn)?)).await {
        Ok(anchor) => tokio::task::spawn_blocking(move || write_newer(&dir, &anchor))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|written| written),
        Err(e) => Err(anyhow::anyhow!("reading the audit head: {e}")),
    };
    if let Err(e) = result {
        tracing::warn!(error = %format!("{e:#}"), "writing the audit anchor at shutdown");
    }
}
