//! SQL for peers: the rows, address allocation, and the desired WireGuard entries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use defguard_wireguard_rs::key::Key;
use ipnet::{Ipv4Net, Ipv6Net};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::db::conflict_on_unique;
use crate::dns::names::NameView;
use crate::error::ApiError;
use crate::vault::Vault;
use crate::wireguard::{parse_key, DesiredPeer};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PeerRecord {
    pub name: String,
    pub public_key: String,
    /// `generated` when picd made the key pair (and keeps the private key in the vault),
    /// `client` when the device brought its own public key.
    pub key_source: String,
    pub has_preshared_key: bool,
    pub address_v4: String,
    pub address_v6: String,
    pub tunnel: String,
    /// The client's AllowedIPs: what it routes through the cell.
    pub allowed_ips: Vec<String>,
    pub persistent_keepalive: Option<u16>,
    pub enabled: bool,
    pub expires_at: Option<String>,
    pub has_portal_login: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl PeerRecord {
    pub fn is_expired(&self) -> bool {
        self.expires_at
            .as_deref()
            .and_then(crate::time::parse_rfc3339)
            .is_some_and(|t| t <= crate::time::now())
    }

    /// Whether the interface should carry this peer.
    pub fn is_active(&self) -> bool {
        self.enabled && !self.is_expired()
    }
}

const COLUMNS: &str = "name, public_key, key_source, has_preshared_key, address_v4, address_v6, tunnel, \
     allowed_ips, persistent_keepalive, enabled, expires_at, user_id IS NOT NULL, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<PeerRecord> {
    let allowed: String = row.get(7)?;
    Ok(PeerRecord {
        name: row.get(0)?,
        public_key: row.get(1)?,
        key_source: row.get(2)?,
        has_preshared_key: row.get(3)?,
        address_v4: row.get(4)?,
        address_v6: row.get(5)?,
        tunnel: row.get(6)?,
        allowed_ips: serde_json::from_str(&allowed).unwrap_or_default(),
        persistent_keepalive: row.get(8)?,
        enabled: row.get(9)?,
        expires_at: row.get(10)?,
        has_portal_login: row.get(11)?,
        created_at: row.get(12)?,
        updated_at: row.get(13)?,
    })
}

pub fn get(conn: &Connection, name: &str) -> rusqlite::Result<Option<PeerRecord>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM peers WHERE name = ?1"))?
        .query_row([name], from_row)
        .optional()
}

pub fn require(conn: &Connection, name: &str) -> Result<PeerRecord, ApiError> {
    get(conn, name)?.ok_or_else(|| ApiError::not_found(format!("peer '{name}'")))
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<PeerRecord>> {
    conn.prepare(&format!("SELECT {COLUMNS} FROM peers ORDER BY name"))?
        .query_map([], from_row)?
        .collect()
}

pub fn by_user(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<PeerRecord>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM peers WHERE user_id = ?1"),
        [user_id],
        from_row,
    )
    .optional()
}

pub fn user_id(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT user_id FROM peers WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
    .map(Option::flatten)
}

/// The owner of the peers' names in DNS (`<peer>.<cell domain>`).
const NAME_OWNER: &str = "peers";

pub fn insert(conn: &Connection, peer: &PeerRecord) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO peers (name, public_key, key_source, has_preshared_key, address_v4, address_v6, tunnel,
                            allowed_ips, persistent_keepalive, enabled, expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
        params![
            peer.name,
            peer.public_key,
            peer.key_source,
            peer.has_preshared_key,
            peer.address_v4,
            peer.address_v6,
            peer.tunnel,
            serde_json::to_string(&peer.allowed_ips).unwrap_or_default(),
            peer.persistent_keepalive,
            peer.enabled,
            peer.expires_at,
            peer.created_at
        ],
    )
    .map_err(|e| match conflict_on_unique(e, "") {
        ApiError::Conflict { .. } => {
            ApiError::conflict("peer_exists", "a peer with this name or public key already exists")
        }
        other => other,
    })?;
    let addresses: Vec<std::net::IpAddr> = [&peer.address_v4, &peer.address_v6]
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    crate::dns::names::publish(conn, NAME_OWNER, &peer.name, NameView::Internal, &addresses)
}

/// Writes the mutable fields of a peer.
pub fn update(conn: &Connection, peer: &PeerRecord) -> Result<(), ApiError> {
    conn.execute(
        "UPDATE peers SET public_key = ?2, key_source = ?3, has_preshared_key = ?4, tunnel = ?5,
                          allowed_ips = ?6, persistent_keepalive = ?7, enabled = ?8, expires_at = ?9,
                          updated_at = ?10
         WHERE name = ?1",
        params![
            peer.name,
            peer.public_key,
            peer.key_source,
            peer.has_preshared_key,
            peer.tunnel,
            serde_json::to_string(&peer.allowed_ips).unwrap_or_default(),
            peer.persistent_keepalive,
            peer.enabled,
            peer.expires_at,
            crate::time::now_rfc3339()
        ],
    )
    .map_err(|e| match conflict_on_unique(e, "") {
        ApiError::Conflict { .. } => ApiError::conflict("key_in_use", "another peer uses this public key"),
        other => other,
    })?;
    Ok(())
}

pub fn set_user(conn: &Connection, name: &str, user_id: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE peers SET user_id = ?2 WHERE name = ?1",
        params![name, user_id],
    )
}

pub fn delete(conn: &Connection, name: &str) -> Result<usize, ApiError> {
    let removed = conn.execute("DELETE FROM peers WHERE name = ?1", [name])?;
    crate::dns::names::withdraw(conn, NAME_OWNER, name)?;
    Ok(removed)
}

/// The lowest free IPv4 and IPv6 host addresses, skipping the network address, the cell's own
/// address (the first host) and, for IPv4, the broadcast address. Addresses are unique in the
/// table, so none is handed out twice while in use, and a deleted peer's addresses free up.
pub fn allocate_peer_addresses(
    conn: &Connection,
    v4: Ipv4Net,
    v6: Ipv6Net,
) -> Result<(Ipv4Addr, Ipv6Addr), ApiError> {
    let used = |column: &str| -> rusqlite::Result<std::collections::HashSet<String>> {
        conn.prepare(&format!("SELECT {column} FROM peers"))?
            .query_map([], |r| r.get(0))?
            .collect()
    };
    let (used_v4, used_v6) = (used("address_v4")?, used("address_v6")?);
    let exhausted = |subnet: String| {
        ApiError::conflict(
            "subnet_exhausted",
            format!("no free address left in {subnet}; widen the subnet in /api/config"),
        )
    };
    let base4 = u32::from(v4.network());
    let hosts4 = (1u64 << (32 - v4.prefix_len())) - 1; // last index is the broadcast address
    let addr4 = (2..hosts4)
        .map(|i| Ipv4Addr::from(base4 + i as u32))
        .find(|a| !used_v4.contains(&a.to_string()))
        .ok_or_else(|| exhausted(v4.to_string()))?;
    let base6 = u128::from(v6.network());
    let size6 = 1u128
        .checked_shl(u32::from(128 - v6.prefix_len()))
        .unwrap_or(u128::MAX);
    let addr6 = (2..size6.min(u128::from(u32::MAX)))
        .map(|i| Ipv6Addr::from(base6 + i))
        .find(|a| !used_v6.contains(&a.to_string()))
        .ok_or_else(|| exhausted(v6.to_string()))?;
    Ok((addr4, addr6))
}

pub fn private_key_secret(name: &str) -> String {
    format!("peer.{name}.private_key")
}

pub fn preshared_key_secret(name: &str) -> String {
    format!("peer.{name}.preshared_key")
}

/// The public key of a peer that belongs on the interface (active, with a usable key).
fn on_interface(peer: &PeerRecord) -> Option<Key> {
    peer.is_active()
        .then(|| parse_key(&peer.public_key))
        .flatten()
}

fn desired_entry(
    peer: &PeerRecord,
    public_key: Key,
    preshared: Option<Zeroizing<Vec<u8>>>,
) -> DesiredPeer {
    let preshared_key = preshared.and_then(|s| std::str::from_utf8(&s).ok().and_then(parse_key));
    let allowed_ips = [&peer.address_v4, &peer.address_v6]
        .iter()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(defguard_wireguard_rs::net::IpAddrMask::host)
        .collect();
    DesiredPeer {
        public_key,
        preshared_key,
        allowed_ips,
    }
}

/// Every peer the interface should carry (enabled and not expired), their preshared keys
/// decrypted together.
pub fn desired_peers(conn: &Connection, vault: &Vault) -> Result<Vec<DesiredPeer>, ApiError> {
    let peers: Vec<(PeerRecord, Key)> = list(conn)?
        .into_iter()
        .filter_map(|peer| on_interface(&peer).map(|key| (peer, key)))
        .collect();
    let secrets: Vec<String> = peers
        .iter()
        .filter(|(peer, _)| peer.has_preshared_key)
        .map(|(peer, _)| preshared_key_secret(&peer.name))
        .collect();
    let mut preshared = vault.get_many(conn, &secrets)?.into_iter();
    Ok(peers
        .into_iter()
        .map(|(peer, key)| {
            let psk = if peer.has_preshared_key {
                preshared.next().flatten()
            } else {
                None
            };
            desired_entry(&peer, key, psk)
        })
        .collect())
}

/// One peer's desired entry; None when it should not be on the interface.
pub fn desired_peer(
    conn: &Connection,
    vault: &Vault,
    name: &str,
) -> Result<Option<DesiredPeer>, ApiError> {
    let Some(peer) = get(conn, name)? else {
        return Ok(None);
    };
    let Some(public_key) = on_interface(&peer) else {
        return Ok(None);
    };
    let preshared = if peer.has_preshared_key {
        vault.get(conn, &preshared_key_secret(&peer.name))?
    } else {
        None
    };
    Ok(Some(desired_entry(&peer, public_key, preshared)))
}
