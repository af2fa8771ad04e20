//! Consistent copies of the database in the state directory's `backups/`: one before each
//! migration of a database with data, and the periodic snapshots. `VACUUM INTO` writes a
//! complete, compact database from one read transaction, so a copy taken while picd serves
//! is consistent and opens with any sqlite3.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::Connection;
use time::macros::format_description;

/// `backups/` beside the database.
pub fn backups_dir(db_path: &Path) -> PathBuf {
    db_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("backups")
}

/// The time in a backup's file name: UTC, sortable, no separators a shell minds.
pub fn file_time() -> String {
    crate::time::now()
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "unknown-time".into())
}

/// Writes a consistent copy of `conn`'s database to `dir/name` (mode 0600, `dir` 0700), then
/// keeps only the newest `keep` files of `dir` whose names start with `prefix`.
pub fn write_copy(
    conn: &Connection,
    dir: &Path,
    name: &str,
    prefix: &str,
    keep: usize,
) -> anyhow::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    // Written under a name no listing matches, renamed once complete: a copy found in
    // backups/ is always whole.
    let partial = dir.join(format!(".{name}.partial"));
    let target = partial
        .to_str()
        .with_context(|| format!("{} is not UTF-8", partial.display()))?;
    // The copy holds every secret's ciphertext and every hash: created private, before
    // SQLite writes into it (VACUUM INTO accepts an empty file).
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    if let Err(e) = conn.execute("VACUUM INTO ?1", [target]) {
        let _ = std::fs::remove_file(&partial);
        return Err(e).with_context(|| format!("writing {}", partial.display()));
    }
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", partial.display()))?;
    if path.exists() {
        let _ = std::fs::remove_file(&partial);
        anyhow::bail!("{} already exists", path.display());
    }
    std::fs::rename(&partial, &path).with_context(|| format!("naming {}", path.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    prune(dir, prefix, keep)?;
    Ok(path)
}

/// The files of `dir` named `prefix*.db`, oldest first (names end in their time).
pub fn list(dir: &Path, prefix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name.ends_with(".db") {
            let time = name
                .trim_end_matches(".db")
                .rsplit('-')
                .next()
                .unwrap_or("")
                .to_string();
            found.push((time, entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

fn prune(dir: &Path, prefix: &str, keep: usize) -> anyhow::Result<()> {
    let found = list(dir, prefix)?;
    let excess = found.len().saturating_sub(keep);
    for old in &found[..excess] {
        std::fs::remove_file(old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}
