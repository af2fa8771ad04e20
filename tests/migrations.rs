//! Migrations that cannot drift and databases that are never harmed: a released migration's
//! file is pinned by migrations/released.sha256; a migration changed since it was applied is
//! refused at start, by name; a database from a newer picd is refused with its bytes
//! untouched; a database with data is copied to backups/ before it is migrated; a migration
//! that fails is named and rolled back.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use rusqlite::Connection;

/// The migrations released in 0.1.0.
const RELEASED: u32 = 6;
/// A version no picd has written yet.
const FUTURE: u32 = 99;
const OLD_USER: &str = "from-0-1-0";

fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")
}

/// This binary's newest migration: the highest number among migrations/NNNN_*.sql.
fn latest() -> u32 {
    std::fs::read_dir(migrations_dir())
        .expect("migrations/")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".sql")?.get(..4)?.parse().ok()
        })
        .max()
        .expect("at least one migration")
}

fn migrate(state: &Path) -> Output {
    picd_cli(&["migrate", "--state-dir", state.to_str().unwrap()], None)
}

/// `picd serve` on `state`, expected to refuse to start (killed if it is still up after 20 s).
fn serve_refused(state: &Path) -> Output {
    let out = Command::new("timeout")
        .args([
            "20",
            PICD,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(state)
        .env("PICD_WIREGUARD_MODE", "off")
        .env("PICD_ROUTING_MODE", "off")
        .env("PICD_DNS_LISTEN", "")
        .env("PICD_CADDY_ADMIN", NO_CADDY_ADMIN)
        .stdin(Stdio::null())
        .output()
        .expect("running picd serve");
    assert_ne!(out.status.code(), Some(124), "picd serve kept running");
    assert!(!out.status.success(), "picd serve started");
    out
}

/// A state directory whose database is as picd 0.1.0 left it: migrations 1-6 from the files
/// of that release, its `schema_migrations` (no checksum column), and a user.
fn state_of_0_1_0(root: &Path) -> PathBuf {
    let state = root.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let conn = Connection::open(state.join("picd.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .unwrap();
    let mut files: Vec<_> = std::fs::read_dir(migrations_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    for file in &files[..RELEASED as usize] {
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let (number, name) = stem.split_once('_').unwrap();
        conn.execute_batch(&std::fs::read_to_string(file).unwrap())
            .unwrap();
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?1, ?2, '2026-01-01T00:00:00Z')",
            rusqlite::params![number.parse::<u32>().unwrap(), name],
        )
        .unwrap();
    }
    insert_user(&conn, OLD_USER, "admin", ADMIN_PASSWORD);
    state
}

fn backups(state: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(state.join("backups"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    found.retain(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix));
    found
}

fn sqlite3(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg("-readonly")
        .arg(db)
        .arg(sql)
        .output()
        .expect("running sqlite3");
    assert!(out.status.success(), "sqlite3: {}", stderr_of(&out));
    stdout_of(&out).trim().to_string()
}

/// The database's bytes with its WAL folded in (closing the last connection checkpoints).
fn settled_bytes(db: &Path) -> Vec<u8> {
    drop(open_db(db));
    assert!(!db.with_extension("db-wal").exists(), "a WAL was left");
    std::fs::read(db).unwrap()
}

#[test]
fn released_migration_files_never_change() {
    let out = Command::new("sha256sum")
        .args(["--check", "--strict", "released.sha256"])
        .current_dir(migrations_dir())
        .output()
        .expect("running sha256sum");
    assert!(
        out.status.success(),
        "a released migration was edited (add a new migration instead):\n{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    let pinned = std::fs::read_to_string(migrations_dir().join("released.sha256")).unwrap();
    for version in 1..=RELEASED {
        assert!(
            pinned.contains(&format!("  {version:04}_")),
            "migration {version:04} is released but not pinned"
        );
    }
}

#[test]
fn a_migration_changed_after_it_was_applied_is_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let out = migrate(&state);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let db = state.join("picd.db");
    // What a binary with an edited 0003_peers.sql finds: another text's checksum recorded.
    open_db(&db)
        .execute(
            "UPDATE schema_migrations SET checksum = ?1 WHERE version = 3",
            ["0".repeat(64)],
        )
        .unwrap();
    let before = settled_bytes(&db);
    let out = migrate(&state);
    assert!(!out.status.success());
    let message = stderr_of(&out);
    assert!(
        message.contains("migration 0003_peers was changed"),
        "{message}"
    );
    let message = stderr_of(&serve_refused(&state));
    assert!(message.contains("0003_peers"), "{message}");
    assert_eq!(
        settled_bytes(&db),
        before,
        "the refused database was changed"
    );
}

#[test]
fn a_database_from_a_newer_picd_is_refused_with_its_bytes_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    assert!(migrate(&state).status.success());
    let db = state.join("picd.db");
    open_db(&db)
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at, checksum)
             VALUES (?1, 'from_the_future', '2027-01-01T00:00:00Z', ?2)",
            rusqlite::params![FUTURE, "f".repeat(64)],
        )
        .unwrap();
    let before = settled_bytes(&db);
    for out in [migrate(&state), serve_refused(&state)] {
        assert!(!out.status.success());
        let message = stderr_of(&out);
        assert!(
            message.contains(&format!("schema version {FUTURE}"))
                && message.contains(&format!("knows versions up to {}", latest()))
                && message.contains("newer picd")
                && message.contains("pre-migrate"),
            "{message}"
        );
        // Compared without folding a WAL in: picd must not have left one.
        assert!(
            !db.with_extension("db-wal").exists()
                || std::fs::metadata(db.with_extension("db-wal"))
                    .unwrap()
                    .len()
                    == 0
        );
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "the database was changed"
        );
    }
    assert!(backups(&state, "pre-migrate-").is_empty());
}

#[test]
fn a_database_with_data_is_backed_up_before_it_is_migrated() {
    let root = tempfile::tempdir().unwrap();
    let state = state_of_0_1_0(root.path());
    let out = migrate(&state);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("applied migration 0008"));
    let found = backups(
        &state,
        &format!("pre-migrate-{RELEASED:04}-{:04}-", latest()),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let backup = &found[0];
    let mode = std::fs::metadata(backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", backup.display());
    // The copy opens with sqlite3 and holds the old version, its data included.
    assert_eq!(
        sqlite3(backup, "SELECT MAX(version) FROM schema_migrations"),
        "6"
    );
    assert_eq!(
        sqlite3(
            backup,
            &format!("SELECT COUNT(*) FROM users WHERE username = '{OLD_USER}'")
        ),
        "1"
    );
    // The migrated database recorded a checksum for every migration, the old ones included.
    let db = state.join("picd.db");
    let missing: i64 = open_db(&db)
        .query_row(
            "SELECT COUNT(*) FROM schema_migrations WHERE checksum IS NULL OR length(checksum) != 64",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(missing, 0);
    // Up to date now: nothing to back up again.
    let out = migrate(&state);
    assert!(stdout_of(&out).contains("database is up to date"));
    assert_eq!(backups(&state, "pre-migrate-").len(), 1);
}

#[test]
fn a_failing_migration_is_named_and_leaves_the_database_at_the_version_before() {
    let root = tempfile::tempdir().unwrap();
    let state = state_of_0_1_0(root.path());
    let db = state.join("picd.db");
    // Something in the way of 0008's CREATE TABLE, after its ALTERs have run.
    open_db(&db)
        .execute_batch("CREATE TABLE retired_cas (in_the_way TEXT)")
        .unwrap();
    let out = migrate(&state);
    assert!(!out.status.success());
    let message = stderr_of(&out);
    assert!(
        message.contains("migration 0008_ca_constraints failed and was rolled back")
            && message.contains("the database is at version 7")
            && message.contains(&format!("pre-migrate-0006-{:04}-", latest())),
        "{message}"
    );
    let conn = open_db(&db);
    let version: u32 = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, 7);
    let altered: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('ca') WHERE name = 'name_constraints'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(altered, 0, "0008's first statements were kept");
    assert_eq!(backups(&state, "pre-migrate-").len(), 1);
}
