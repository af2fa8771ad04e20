//! SQL for connections, each peer's exit and the exits' health. A connection's secrets are
//! vault entries named after its id; its row holds only what may be shown.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::proxy::ProxySettings;
use super::wgquick::Secrets;
use crate::error::ApiError;
use crate::vault::Vault;

pub const TYPE_WIREGUARD_EXT: &str = "wireguard_ext";
pub const TYPE_OPENVPN: &str = "openvpn";

/// A connection's shown settings, in its type's shape (stored as that shape's JSON; the row's
/// `type` says which).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ConnectionSettings {
    WireGuard(super::wgquick::Settings),
    OpenVpn(super::openvpn::Settings),
    Proxy(ProxySettings),
    Tor(super::tor::TorSettings),
}

impl ConnectionSettings {
    /// The resolvers the exit's peers' DNS goes to.
    pub fn dns(&self) -> &[std::net::IpAddr] {
        match self {
            ConnectionSettings::WireGuard(s) => &s.dns,
            ConnectionSettings::OpenVpn(s) => &s.dns,
            ConnectionSettings::Proxy(s) => &s.dns,
            // Its DNSPort answers; there is no resolver of its own.
            ConnectionSettings::Tor(_) => &[],
        }
    }

    /// Whether the exit's file gives it IPv6 (else its peers' IPv6 is refused at once). An
    /// `openvpn` tunnel's IPv6 comes from its server at run time (`openvpn::runtime`).
    pub fn has_ipv6(&self) -> bool {
        match self {
            ConnectionSettings::WireGuard(s) => s.addresses.iter().any(|a| a.addr().is_ipv6()),
            ConnectionSettings::OpenVpn(_)
            | ConnectionSettings::Proxy(_)
            | ConnectionSettings::Tor(_) => false,
        }
    }
}

/// A connection as stored and listed (never with a secret).
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRow {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub slot: u8,
    pub settings: ConnectionSettings,
    pub created_at: String,
    pub updated_at: String,
}

/// A peer's exit: None goes direct.
#[derive(Debug, Clone, Serialize)]
pub struct PeerExit {
    pub peer: String,
    pub address_v4: String,
    pub address_v6: String,
    pub connection: Option<String>,
    pub fail_open: bool,
    pub updated_at: Option<String>,
}

const COLUMNS: &str = "id, name, type, slot, settings, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ConnectionRow> {
    let kind: String = row.get(2)?;
    let settings: String = row.get(4)?;
    let unreadable = |e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
    };
    let settings = match kind.as_str() {
        TYPE_OPENVPN => {
            ConnectionSettings::OpenVpn(serde_json::from_str(&settings).map_err(unreadable)?)
        }
        k if super::tor::is_tor(k) => {
            ConnectionSettings::Tor(serde_json::from_str(&settings).map_err(unreadable)?)
        }
        k if super::proxy::is_proxy(k) => {
            ConnectionSettings::Proxy(serde_json::from_str(&settings).map_err(unreadable)?)
        }
        _ => ConnectionSettings::WireGuard(serde_json::from_str(&settings).map_err(unreadable)?),
    };
    Ok(ConnectionRow {
        id: row.get(0)?,
        name: row.get(1)?,
        kind,
        slot: row.get(3)?,
        settings,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<ConnectionRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM connectivity_connections ORDER BY slot"
    ))?
    .query_map([], from_row)?
    .collect()
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<ConnectionRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM connectivity_connections WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// The lowest slot no connection holds; None when all 254 are taken.
pub fn free_slot(conn: &Connection) -> rusqlite::Result<Option<u8>> {
    let taken: Vec<u8> = conn
        .prepare("SELECT slot FROM connectivity_connections")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((1..=254u8).find(|s| !taken.contains(s)))
}

fn json_of(settings: &ConnectionSettings) -> String {
    serde_json::to_string(settings).unwrap_or_else(|_| "{}".into())
}

/// Stores a new connection and its secrets (in the caller's transaction); 409 for a name
/// another connection has.
pub fn insert(
    conn: &Connection,
    vault: &Vault,
    row: &ConnectionRow,
    secrets: &Secrets,
) -> Result<(), ApiError> {
    insert_row(conn, row)?;
    put_secrets(conn, vault, &row.id, secrets)
}

/// A new connection's row: a fresh id and the lowest free slot (409 `limit_exceeded` when all
/// 254 are taken), not stored yet.
pub fn new_row(
    conn: &Connection,
    name: String,
    kind: &str,
    settings: ConnectionSettings,
) -> Result<ConnectionRow, ApiError> {
    let slot = free_slot(conn)?
        .ok_or_else(|| ApiError::conflict("limit_exceeded", "all 254 exit slots are in use"))?;
    let now = crate::time::now_rfc3339();
    Ok(ConnectionRow {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        kind: kind.to_string(),
        slot,
        settings,
        created_at: now.clone(),
        updated_at: now,
    })
}

/// Stores a new connection's row; 409 for a name another connection has.
pub fn insert_row(conn: &Connection, row: &ConnectionRow) -> Result<(), ApiError> {
    conn.execute(
        &format!(
            "INSERT INTO connectivity_connections ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ),
        params![
            row.id,
            row.name,
            row.kind,
            row.slot,
            json_of(&row.settings),
            row.created_at,
            row.updated_at
        ],
    )
    .map_err(|e| crate::db::conflict_on_unique(e, "a connection with this name exists"))?;
    Ok(())
}

/// Replaces a connection's name and settings, and its secrets when a new file came with them.
pub fn update(
    conn: &Connection,
    vault: &Vault,
    row: &ConnectionRow,
    secrets: Option<&Secrets>,
) -> Result<(), ApiError> {
    update_row(conn, row)?;
    match secrets {
        Some(secrets) => put_secrets(conn, vault, &row.id, secrets),
        None => Ok(()),
    }
}

/// Replaces a connection's name and settings.
pub fn update_row(conn: &Connection, row: &ConnectionRow) -> Result<(), ApiError> {
    conn.execute(
        "UPDATE connectivity_connections SET name = ?2, settings = ?3, updated_at = ?4 WHERE id = ?1",
        params![row.id, row.name, json_of(&row.settings), row.updated_at],
    )
    .map_err(|e| crate::db::conflict_on_unique(e, "a connection with this name exists"))?;
    Ok(())
}

fn secret_name(id: &str, what: &str) -> String {
    format!("connectivity.{id}.{what}")
}

fn put_secrets(
    conn: &Connection,
    vault: &Vault,
    id: &str,
    secrets: &Secrets,
) -> Result<(), ApiError> {
    vault.put(
        conn,
        &secret_name(id, "private_key"),
        secrets.private_key.as_bytes(),
    )?;
    let psk = secret_name(id, "preshared_key");
    match &secrets.preshared_key {
        Some(key) => vault.put(conn, &psk, key.as_bytes()),
        None => vault.delete(conn, &psk).map(|_| ()),
    }
}

/// The connection's private key and preshared key, from the vault.
pub fn secrets(conn: &Connection, vault: &Vault, id: &str) -> Result<Secrets, ApiError> {
    let text = |bytes: zeroize::Zeroizing<Vec<u8>>| {
        zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())
    };
    let private_key = vault
        .get(conn, &secret_name(id, "private_key"))?
        .map(text)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("exit key missing from the vault")))?;
    let preshared_key = vault
        .get(conn, &secret_name(id, "preshared_key"))?
        .map(text);
    Ok(Secrets {
        private_key,
        preshared_key,
    })
}

/// Deletes a connection and its secrets; false when there was none.
pub fn delete(conn: &Connection, vault: &Vault, id: &str) -> Result<bool, ApiError> {
    let deleted = conn.execute("DELETE FROM connectivity_connections WHERE id = ?1", [id])?;
    vault.delete(conn, &secret_name(id, "private_key"))?;
    vault.delete(conn, &secret_name(id, "preshared_key"))?;
    super::proxy::routes::delete_password(conn, vault, id)?;
    super::openvpn::store::delete_secrets(conn, vault, id)?;
    Ok(deleted > 0)
}

/// The peers whose exit is this connection, by name.
pub fn users(conn: &Connection, id: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare(
        "SELECT peer_name FROM connectivity_peer_exits WHERE connection_id = ?1 ORDER BY peer_name",
    )?
    .query_map([id], |r| r.get(0))?
    .collect()
}

/// Every peer with its exit (None: direct) and fail-open flag, by name.
pub fn peer_exits(conn: &Connection) -> rusqlite::Result<Vec<PeerExit>> {
    let mut rows: HashMap<String, (Option<String>, bool, String)> = conn
        .prepare_cached(
            "SELECT peer_name, connection_id, fail_open, updated_at FROM connectivity_peer_exits",
        )?
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?
        .collect::<Result<_, _>>()?;
    Ok(crate::peers::store::list(conn)?
        .into_iter()
        .map(|peer| {
            let row = rows.remove(&peer.name);
            PeerExit {
                peer: peer.name,
                address_v4: peer.address_v4,
                address_v6: peer.address_v6,
                connection: row.as_ref().and_then(|r| r.0.clone()),
                fail_open: row.as_ref().is_some_and(|r| r.1),
                updated_at: row.map(|r| r.2),
            }
        })
        .collect())
}

pub fn peer_exit(conn: &Connection, name: &str) -> rusqlite::Result<Option<PeerExit>> {
    Ok(peer_exits(conn)?.into_iter().find(|p| p.peer == name))
}

/// Stores a peer's exit and fail-open flag; None when there is no such peer.
pub fn set_peer_exit(
    conn: &Connection,
    name: &str,
    connection: Option<&str>,
    fail_open: bool,
    now: &str,
) -> rusqlite::Result<Option<PeerExit>> {
    if crate::peers::store::get(conn, name)?.is_none() {
        return Ok(None);
    }
    conn.execute(
        "INSERT INTO connectivity_peer_exits (peer_name, connection_id, fail_open, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (peer_name) DO UPDATE SET connection_id = excluded.connection_id,
             fail_open = excluded.fail_open, updated_at = excluded.updated_at",
        params![name, connection, fail_open, now],
    )?;
    peer_exit(conn, name)
}

/// Each connection's last decided health: (state, since).
pub fn health(conn: &Connection) -> rusqlite::Result<HashMap<String, (String, String)>> {
    conn.prepare_cached("SELECT connection_id, state, changed_at FROM connectivity_health")?
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
        .collect()
}

/// Records a change of health (a no-op for a connection deleted meanwhile).
pub fn set_health(conn: &Connection, id: &str, state: &str, now: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO connectivity_health (connection_id, state, changed_at)
         SELECT id, ?2, ?3 FROM connectivity_connections WHERE id = ?1
         ON CONFLICT (connection_id) DO UPDATE SET state = excluded.state,
             changed_at = excluded.changed_at",
        params![id, state, now],
    )?;
    Ok(())
}
