//! The numbered migrations: applied in order, each in its own transaction, each recorded in
//! `schema_migrations` with a SHA-256 of its text (as sqlx and refinery do). Before anything
//! is written, the recorded versions are checked against this binary's: a version it does not
//! know (a database from a newer picd) or a migration whose text changed since it was applied
//! stops picd, and the database is left untouched. A database that already holds data is
//! copied to `backups/` before the pending migrations run.

use std::path::Path;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

/// Migrations, in order: (version, name, SQL). A landed migration is never edited: add a new
/// one with the next number (migrations/released.sha256 pins the released ones).
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/0001_foundation.sql"),
    ),
    (2, "vault", include_str!("../../migrations/0002_vault.sql")),
    (3, "peers", include_str!("../../migrations/0003_peers.sql")),
    (4, "dns", include_str!("../../migrations/0004_dns.sql")),
    (5, "caddy", include_str!("../../migrations/0005_caddy.sql")),
    (6, "tls", include_str!("../../migrations/0006_tls.sql")),
    (
        7,
        "setup_claim",
        include_str!("../../migrations/0007_setup_claim.sql"),
    ),
    (
        8,
        "ca_constraints",
        include_str!("../../migrations/0008_ca_constraints.sql"),
    ),
    (
        9,
        "dns_tsig",
        include_str!("../../migrations/0009_dns_tsig.sql"),
    ),
    (
        10,
        "dns_names",
        include_str!("../../migrations/0010_dns_names.sql"),
    ),
    (
        11,
        "routing",
        include_str!("../../migrations/0011_routing.sql"),
    ),
    (
        12,
        "routing_limits_metrics",
        include_str!("../../migrations/0012_routing_limits_metrics.sql"),
    ),
    (
        13,
        "services",
        include_str!("../../migrations/0013_services.sql"),
    ),
    (
        14,
        "service_accounts",
        include_str!("../../migrations/0014_service_accounts.sql"),
    ),
    (
        15,
        "routing_peer_policy",
        include_str!("../../migrations/0015_routing_peer_policy.sql"),
    ),
    (
        16,
        "service_ports",
        include_str!("../../migrations/0016_service_ports.sql"),
    ),
    (
        17,
        "connectivity",
        include_str!("../../migrations/0017_connectivity.sql"),
    ),
    (
        18,
        "service_tls",
        include_str!("../../migrations/0018_service_tls.sql"),
    ),
    (
        19,
        "connectivity_proxies",
        include_str!("../../migrations/0019_connectivity_proxies.sql"),
    ),
    (
        20,
        "mail_aliases_quotas",
        include_str!("../../migrations/0020_mail_aliases_quotas.sql"),
    ),
    (
        21,
        "routing_exit_metrics",
        include_str!("../../migrations/0021_routing_exit_metrics.sql"),
    ),
    (
        22,
        "ip_list_pending_remove",
        include_str!("../../migrations/0022_ip_list_pending_remove.sql"),
    ),
    (
        23,
        "cell_identity",
        include_str!("../../migrations/0023_cell_identity.sql"),
    ),
    (
        24,
        "service_desired_state",
        include_str!("../../migrations/0024_service_desired_state.sql"),
    ),
];

/// Pre-migration copies kept in `backups/`; older ones are removed.
const PRE_MIGRATE_KEPT: usize = 5;
const PRE_MIGRATE_PREFIX: &str = "pre-migrate-";

/// A row of `schema_migrations` as an older or newer picd may have left it.
struct Recorded {
    version: u32,
    checksum: Option<String>,
}

/// The checksums of the migrations of every released picd (`sha256sum` lines), compiled in:
/// what a database migrated by a release that kept no checksums was built from.
const RELEASED: &str = include_str!("../../migrations/released.sha256");

/// The released checksum of migration `version`, if a release shipped it.
fn released_checksum(version: u32, name: &str) -> Option<&'static str> {
    let file = format!("{}.sql", label(version, name));
    RELEASED.lines().find_map(|line| {
        let (sum, listed) = line.split_once("  ")?;
        (listed.trim() == file).then_some(sum.trim())
    })
}

/// What a recorded row's migration is known to have been: its recorded checksum, or, for a
/// row from before checksums were kept, the released one.
fn known_checksum(recorded: Option<&str>, version: u32, name: &str) -> Option<String> {
    recorded
        .map(str::to_string)
        .or_else(|| released_checksum(version, name).map(str::to_string))
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

fn label(version: u32, name: &str) -> String {
    format!("{version:04}_{name}")
}

/// The newest version this binary knows.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Applies pending migrations without taking a backup first (the unit tests' fresh stores).
#[cfg(test)]
pub fn migrate(conn: &mut Connection) -> anyhow::Result<Vec<u32>> {
    migrate_with(conn, None)
}

/// Applies pending migrations; when the database already holds data, a consistent copy is
/// written to `backups` first.
pub fn migrate_at(conn: &mut Connection, backups: &Path) -> anyhow::Result<Vec<u32>> {
    migrate_with(conn, Some(backups))
}

fn migrate_with(conn: &mut Connection, backups: Option<&Path>) -> anyhow::Result<Vec<u32>> {
    // Only reads until the checks pass: a refused database keeps its bytes.
    let recorded = read_recorded(conn)?;
    check_known(&recorded)?;
    check_unchanged(&recorded)?;
    let pending: Vec<_> = MIGRATIONS
        .iter()
        .filter(|(version, ..)| !recorded.iter().any(|r| r.version == *version))
        .collect();
    let from = recorded.iter().map(|r| r.version).max().unwrap_or(0);
    let mut backup = None;
    if let (Some(dir), false, false) = (backups, pending.is_empty(), recorded.is_empty()) {
        let name = format!(
            "{PRE_MIGRATE_PREFIX}{from:04}-{:04}-{}.db",
            latest_version(),
            super::backup::file_time()
        );
        let path =
            super::backup::write_copy(conn, dir, &name, PRE_MIGRATE_PREFIX, PRE_MIGRATE_KEPT)
                .context("backing the database up before migrating (nothing was migrated)")?;
        tracing::info!(backup = %path.display(), from, to = latest_version(), "database backed up before migrating");
        backup = Some(path);
    }
    prepare_table(conn)?;
    let mut applied = Vec::new();
    for (version, name, sql) in pending {
        apply_one(conn, *version, name, sql).with_context(|| {
            let at = applied.last().copied().unwrap_or(from);
            let restore = backup.as_ref().map_or(String::new(), |b| {
                format!("; the copy from before migrating is {}", b.display())
            });
            format!(
                "migration {} failed and was rolled back; the database is at version {at}{restore}",
                label(*version, name)
            )
        })?;
        applied.push(*version);
    }
    Ok(applied)
}

fn apply_one(conn: &mut Connection, version: u32, name: &str, sql: &str) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(sql)?;
    tx.execute(
        "INSERT INTO schema_migrations (version, name, applied_at, checksum)
         VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![version, name, crate::time::now_rfc3339(), checksum(sql)],
    )?;
    tx.commit()?;
    Ok(())
}

fn read_recorded(conn: &Connection) -> anyhow::Result<Vec<Recorded>> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(Vec::new());
    }
    // picd 0.1.0's table has no checksum column.
    let sql = if has_checksum_column(conn)? {
        "SELECT version, checksum FROM schema_migrations ORDER BY version"
    } else {
        "SELECT version, NULL FROM schema_migrations ORDER BY version"
    };
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |row| {
        Ok(Recorded {
            version: row.get(0)?,
            checksum: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn has_checksum_column(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM pragma_table_info('schema_migrations') WHERE name = 'checksum')",
        [],
        |row| row.get(0),
    )
}

/// A version this binary does not have is a database from a newer picd (a downgrade):
/// migrating it would run today's code on a schema it does not understand.
fn check_known(recorded: &[Recorded]) -> anyhow::Result<()> {
    let unknown: Vec<u32> = recorded
        .iter()
        .map(|r| r.version)
        .filter(|v| !MIGRATIONS.iter().any(|m| m.0 == *v))
        .collect();
    if let Some(newest) = unknown.iter().max() {
        anyhow::bail!(
            "the database has schema version {newest}, but this picd ({}) knows versions up to {}: \
             it was written by a newer picd. The database was not changed. Install that newer \
             picd again, or, to go back to this one, restore the copy taken before the upgrade \
             (backups/pre-migrate-{:04}-*.db, see the README, \"Rolling back an upgrade\")",
            env!("CARGO_PKG_VERSION"),
            latest_version(),
            latest_version(),
        );
    }
    Ok(())
}

/// A migration whose text differs from the one that was applied means this binary would
/// build a different schema than the database has: refused, naming the migration.
fn check_unchanged(recorded: &[Recorded]) -> anyhow::Result<()> {
    check_unchanged_against(recorded, MIGRATIONS)
}

fn check_unchanged_against(
    recorded: &[Recorded],
    migrations: &[(u32, &str, &str)],
) -> anyhow::Result<()> {
    for row in recorded {
        let Some((version, name, sql)) = migrations.iter().find(|m| m.0 == row.version) else {
            continue;
        };
        let Some(stored) = known_checksum(row.checksum.as_deref(), *version, name) else {
            continue;
        };
        let ours = checksum(sql);
        if *stored != ours {
            anyhow::bail!(
                "migration {} was changed after it was applied to this database (recorded \
                 checksum {}, this picd's {}): a migration is never edited once released. The \
                 database was not changed; install a released picd",
                label(*version, name),
                &stored[..stored.len().min(12)],
                &ours[..12],
            );
        }
    }
    Ok(())
}

/// Creates `schema_migrations`, or gives an older one its checksum column, filled in for the
/// rows that predate it (with the released checksum, which `check_unchanged` has just
/// found this binary's text to match; unreleased ones with this binary's).
fn prepare_table(conn: &Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL,
            checksum TEXT
        )",
    )?;
    if !has_checksum_column(conn)? {
        conn.execute_batch("ALTER TABLE schema_migrations ADD COLUMN checksum TEXT")?;
    }
    let missing: Option<u32> = conn
        .query_row(
            "SELECT version FROM schema_migrations WHERE checksum IS NULL LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    if missing.is_some() {
        for (version, name, sql) in MIGRATIONS {
            let sum =
                released_checksum(*version, name).map_or_else(|| checksum(sql), str::to_string);
            conn.execute(
                "UPDATE schema_migrations SET checksum = ?2 WHERE version = ?1 AND checksum IS NULL",
                rusqlite::params![version, sum],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod checksum_tests {
    use super::*;

    fn unrecorded(version: u32) -> Recorded {
        Recorded {
            version,
            checksum: None,
        }
    }

    #[test]
    fn every_released_migration_has_its_pinned_checksum_compiled_in() {
        for (version, name, sql) in MIGRATIONS.iter().take(6) {
            assert_eq!(
                released_checksum(*version, name),
                Some(checksum(sql).as_str()),
                "{}",
                label(*version, name)
            );
        }
        assert_eq!(released_checksum(7, "setup_claim"), None);
    }

    #[test]
    fn a_release_database_without_checksums_is_held_to_the_released_text() {
        let rows: Vec<Recorded> = (1..=6).map(unrecorded).collect();
        check_unchanged_against(&rows, MIGRATIONS).expect("today's released text");
        let mut edited: Vec<(u32, &str, &str)> = MIGRATIONS.to_vec();
        edited[3].2 = "CREATE TABLE dns_zones (name TEXT);";
        let refused = check_unchanged_against(&rows, &edited)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("0004_dns"), "{refused}");
    }
}
