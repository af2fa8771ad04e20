//! Retired CAs: roots the cell no longer issues from (replaced on upgrade, or because the
//! cell's domain or subnets changed). Each keeps its key for one job, signing the CRL of the
//! certificates it issued, so revoking one of those still works; it is dropped, key and all,
//! once the last of them has expired.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::ca::{ca_error, ca_pem, current_serial};
use super::Vault;
use crate::error::ApiError;

#[derive(Debug, Clone, Serialize)]
pub struct RetiredCa {
    pub serial: String,
    pub cert_pem: String,
    #[serde(skip)]
    pub key_secret: String,
    #[serde(skip)]
    pub crl_number: u64,
    pub created_at: String,
    pub retired_at: String,
}

const COLUMNS: &str = "serial, cert_pem, key_secret, crl_number, created_at, retired_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RetiredCa> {
    Ok(RetiredCa {
        serial: r.get(0)?,
        cert_pem: r.get(1)?,
        key_secret: r.get(2)?,
        crl_number: r.get(3)?,
        created_at: r.get(4)?,
        retired_at: r.get(5)?,
    })
}

pub fn get(conn: &Connection, serial: &str) -> Result<Option<RetiredCa>, ApiError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM retired_cas WHERE serial = ?1"),
            [serial],
            from_row,
        )
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<RetiredCa>, ApiError> {
    Ok(conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM retired_cas ORDER BY retired_at"
        ))?
        .query_map([], from_row)?
        .collect::<rusqlite::Result<_>>()?)
}

/// Moves the current CA into `retired_cas`, its key to a secret of its own, and records it
/// as the issuer of the certificates signed before issuers were recorded. Returns its serial.
pub(super) fn retire_current(
    conn: &Connection,
    vault: &Vault,
    key_name: &str,
) -> Result<String, ApiError> {
    let pem = ca_pem(conn)?.ok_or_else(|| ca_error("no CA to retire"))?;
    let serial = current_serial(conn)?.ok_or_else(|| ca_error("no CA to retire"))?;
    let key = vault
        .get(conn, key_name)?
        .ok_or_else(|| ca_error("the CA key is missing from the vault"))?;
    let key_secret = format!("{key_name}.retired.{serial}");
    vault.put(conn, &key_secret, &key)?;
    let (crl_number, created_at): (u64, String) = conn.query_row(
        "SELECT crl_number, created_at FROM ca WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    conn.execute(
        &format!("INSERT INTO retired_cas ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            serial,
            pem,
            key_secret,
            crl_number,
            created_at,
            crate::time::now_rfc3339()
        ],
    )?;
    conn.execute(
        "UPDATE certificates SET issuer_serial = ?1 WHERE issuer_serial IS NULL",
        [&serial],
    )?;
    Ok(serial)
}

/// Until when a retired CA is kept: the latest expiry of the certificates it issued (None
/// when it issued none that is still valid).
pub fn keep_until(conn: &Connection, serial: &str) -> Result<Option<String>, ApiError> {
    let mut stmt = conn.prepare("SELECT not_after FROM certificates WHERE issuer_serial = ?1")?;
    let now = crate::time::now();
    let latest = stmt
        .query_map([serial], |r| r.get::<_, String>(0))?
        .filter_map(|t| t.ok().and_then(|t| crate::time::parse_rfc3339(&t)))
        .filter(|t| *t > now)
        .max();
    Ok(latest.map(crate::time::format_rfc3339))
}

/// Drops the retired CAs (and their keys) whose certificates have all expired.
pub(super) fn drop_expired(conn: &Connection, vault: &Vault) -> Result<usize, ApiError> {
    let mut dropped = 0;
    for ca in list(conn)? {
        if keep_until(conn, &ca.serial)?.is_none() {
            vault.delete(conn, &ca.key_secret)?;
            conn.execute("DELETE FROM retired_cas WHERE serial = ?1", [&ca.serial])?;
            dropped += 1;
        }
    }
    Ok(dropped)
}
