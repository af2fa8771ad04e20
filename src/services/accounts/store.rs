//! SQL of the service accounts and the store's settings.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::error::ApiError;
use crate::vault::Vault;

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub service_id: String,
    pub username: String,
    /// None for the owner's own account.
    pub peer_name: Option<String>,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: String,
}

const COLUMNS: &str = "service_id, username, peer_name, password_hash, created_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        service_id: row.get(0)?,
        username: row.get(1)?,
        peer_name: row.get(2)?,
        password_hash: row.get(3)?,
        created_at: row.get(4)?,
    })
}

fn query(conn: &Connection, filter: &str, value: &str) -> rusqlite::Result<Vec<Account>> {
    let sql =
        format!("SELECT {COLUMNS} FROM service_accounts WHERE {filter} = ?1 ORDER BY username");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([value], from_row)?;
    rows.collect()
}

pub fn of_service(conn: &Connection, service_id: &str) -> rusqlite::Result<Vec<Account>> {
    query(conn, "service_id", service_id)
}

pub fn of_peer(conn: &Connection, peer: &str) -> rusqlite::Result<Vec<Account>> {
    query(conn, "peer_name", peer)
}

pub fn get(
    conn: &Connection,
    service_id: &str,
    username: &str,
) -> rusqlite::Result<Option<Account>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM service_accounts WHERE service_id = ?1 AND username = ?2"),
        [service_id, username],
        from_row,
    )
    .optional()
}

pub fn insert(conn: &Connection, account: &Account) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO service_accounts (service_id, username, peer_name, password_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            account.service_id,
            account.username,
            account.peer_name,
            account.password_hash,
            account.created_at
        ],
    )?;
    Ok(())
}

/// Deletes one account and its password.
pub fn delete(
    conn: &Connection,
    vault: &Vault,
    service_id: &str,
    username: &str,
) -> Result<bool, ApiError> {
    let deleted = conn.execute(
        "DELETE FROM service_accounts WHERE service_id = ?1 AND username = ?2",
        [service_id, username],
    )? > 0;
    vault.delete(conn, &super::secret_name(service_id, username))?;
    Ok(deleted)
}

/// Deletes every account of a peer and their passwords, in the caller's transaction (the
/// peers domain calls it when a peer is deleted); the next reconcile archives their data.
pub fn forget_peer(conn: &Connection, vault: &Vault, peer: &str) -> Result<Vec<Account>, ApiError> {
    let accounts = of_peer(conn, peer)?;
    for account in &accounts {
        delete(conn, vault, &account.service_id, &account.username)?;
    }
    Ok(accounts)
}

/// Deletes every account of a service (a purge).
pub fn forget_service(
    conn: &Connection,
    vault: &Vault,
    service_id: &str,
) -> Result<usize, ApiError> {
    let accounts = of_service(conn, service_id)?;
    for account in &accounts {
        delete(conn, vault, service_id, &account.username)?;
    }
    Ok(accounts.len())
}

pub fn retention_days(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT archive_retention_days FROM service_settings WHERE id = 1",
        [],
        |r| r.get(0),
    )
}

pub fn set_retention_days(conn: &Connection, days: u32) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE service_settings SET archive_retention_days = ?1 WHERE id = 1",
        [days],
    )?;
    Ok(())
}
