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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn database_with(rows: i64) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        for n in 0..rows {
            conn.execute("INSERT INTO t VALUES (?1)", [n]).unwrap();
        }
        conn
    }

    #[test]
    fn a_copy_is_private_whole_and_only_the_newest_of_its_kind_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        let conn = database_with(3);
        // Sorted by the time at the end of the name, not by the versions before it.
        let names = [
            "pre-migrate-12-21-20261201T000000Z.db",
            "pre-migrate-7-21-20261202T000000Z.db",
            "pre-migrate-9-21-20261203T000000Z.db",
        ];
        for name in names {
            write_copy(&conn, &backups, name, "pre-migrate-", 2).unwrap();
        }
        // Another kind of copy is never pruned by this one's count.
        write_copy(
            &conn,
            &backups,
            "snapshot-20261130T000000Z.db",
            "snapshot-",
            2,
        )
        .unwrap();
        let kept: Vec<String> = list(&backups, "pre-migrate-")
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept, names[1..]);
        assert_eq!(list(&backups, "snapshot-").unwrap().len(), 1);

        let newest = backups.join(names[2]);
        let mode = std::fs::metadata(&newest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&backups).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let copy = Connection::open(&newest).unwrap();
        let count: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 3);
        // No partial file is left beside the copies.
        let leftovers = std::fs::read_dir(&backups)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn a_copy_never_replaces_one_of_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        let name = "pre-migrate-1-2-20261201T000000Z.db";
        write_copy(&database_with(1), dir.path(), name, "pre-migrate-", 5).unwrap();
        let again = write_copy(&database_with(2), dir.path(), name, "pre-migrate-", 5);
        assert!(again.is_err());
        let copy = Connection::open(dir.path().join(name)).unwrap();
        let count: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1, "the first copy was overwritten");
    }
}
