//! SQL of the mail service's aliases, quota overrides and default quota (migration 0020).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// An alias: `<alias>@<cell domain>` delivered into the mailbox of the account `target`.
#[derive(Debug, Clone, Serialize)]
pub struct Alias {
    pub alias: String,
    pub target: String,
    pub created_at: String,
}

fn alias_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Alias> {
    Ok(Alias {
        alias: row.get(0)?,
        target: row.get(1)?,
        created_at: row.get(2)?,
    })
}

pub fn aliases(conn: &Connection) -> rusqlite::Result<Vec<Alias>> {
    let mut stmt =
        conn.prepare("SELECT alias, target, created_at FROM mail_aliases ORDER BY alias")?;
    let rows = stmt.query_map([], alias_from_row)?;
    rows.collect()
}

pub fn alias(conn: &Connection, alias: &str) -> rusqlite::Result<Option<Alias>> {
    conn.query_row(
        "SELECT alias, target, created_at FROM mail_aliases WHERE alias = ?1",
        [alias],
        alias_from_row,
    )
    .optional()
}

pub fn insert_alias(conn: &Connection, alias: &Alias) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO mail_aliases (alias, target, created_at) VALUES (?1, ?2, ?3)",
        params![alias.alias, alias.target, alias.created_at],
    )?;
    Ok(())
}

pub fn delete_alias(conn: &Connection, alias: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM mail_aliases WHERE alias = ?1", [alias])? > 0)
}

/// The mailboxes whose quota is not the default: username -> limit in bytes.
pub fn quota_overrides(conn: &Connection) -> rusqlite::Result<HashMap<String, u64>> {
    let mut stmt = conn.prepare("SELECT username, limit_bytes FROM mail_quotas")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Sets (Some) or clears (None: back to the default) one mailbox's quota.
pub fn set_quota_override(
    conn: &Connection,
    username: &str,
    limit_bytes: Option<u64>,
) -> rusqlite::Result<()> {
    match limit_bytes {
        Some(limit) => conn.execute(
            "INSERT INTO mail_quotas (username, limit_bytes, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (username) DO UPDATE SET limit_bytes = ?2, updated_at = ?3",
            params![username, limit, crate::time::now_rfc3339()],
        )?,
        None => conn.execute("DELETE FROM mail_quotas WHERE username = ?1", [username])?,
    };
    Ok(())
}

pub fn default_quota(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT quota_default_bytes FROM mail_settings WHERE id = 1",
        [],
        |r| r.get(0),
    )
}

pub fn set_default_quota(conn: &Connection, limit_bytes: u64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE mail_settings SET quota_default_bytes = ?1 WHERE id = 1",
        [limit_bytes],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED: &str = "2026-01-01T00:00:00Z";

    fn alias(name: &str, target: &str) -> Alias {
        Alias {
            alias: name.into(),
            target: target.into(),
            created_at: CREATED.into(),
        }
    }

    #[test]
    fn an_alias_and_a_quota_need_a_mailbox_and_go_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(&dir.path().join("test.db")).unwrap();
        db.call_blocking(|conn| {
            // The owner's own account (no peer): a mailbox of the mail service.
            conn.execute(
                "INSERT INTO service_accounts (service_id, username, password_hash, created_at)
                 VALUES ('mail', 'alice', 'x', ?1)",
                [CREATED],
            )?;
            insert_alias(conn, &alias("info", "alice"))?;
            assert!(insert_alias(conn, &alias("sales", "nobody")).is_err());
            set_quota_override(conn, "alice", Some(4096))?;
            assert!(set_quota_override(conn, "nobody", Some(4096)).is_err());
            assert!(
                set_quota_override(conn, "alice", Some(10)).is_err(),
                "below 1 KiB"
            );
            assert_eq!(quota_overrides(conn)?.get("alice"), Some(&4096));
            assert_eq!(default_quota(conn)?, 1 << 30);

            conn.execute("DELETE FROM service_accounts WHERE username = 'alice'", [])?;
            assert!(aliases(conn)?.is_empty(), "the alias outlived its mailbox");
            assert!(
                quota_overrides(conn)?.is_empty(),
                "the quota outlived its mailbox"
            );
            Ok(())
        })
        .unwrap();
    }
}
