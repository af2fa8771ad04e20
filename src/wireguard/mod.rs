//! The cell's WireGuard interface: its identity (the private key a vault secret), the desired
//! state read from the store, the driver that applies it, and /api/wireguard/status.

mod device;
pub mod driver;
pub mod routes;

use std::net::IpAddr;

use defguard_wireguard_rs::key::Key;
use defguard_wireguard_rs::net::IpAddrMask;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::ApiError;
use crate::vault::Vault;

/// The vault secret holding the cell's WireGuard private key.
const SERVER_KEY: &str = "wireguard.private_key";

/// The cell's WireGuard public key, creating the key pair on first use.
pub fn ensure_server_key(conn: &Connection, vault: &Vault) -> Result<String, ApiError> {
    let existing: Option<String> = conn
        .query_row(
            "SELECT public_key FROM wireguard_server WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(public_key) = existing {
        return Ok(public_key);
    }
    let private = Key::generate();
    let public_key = private.public_key().to_string();
    vault.put(conn, SERVER_KEY, private.to_string().as_bytes())?;
    conn.execute(
        "INSERT INTO wireguard_server (id, public_key, created_at) VALUES (1, ?1, ?2)",
        params![public_key, crate::time::now_rfc3339()],
    )?;
    Ok(public_key)
}

pub fn server_public_key(conn: &Connection) -> Result<Option<String>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT public_key FROM wireguard_server WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

/// A peer as the interface should hold it.
#[derive(Clone, PartialEq)]
pub struct DesiredPeer {
    pub public_key: Key,
    pub preshared_key: Option<Key>,
    pub allowed_ips: Vec<IpAddrMask>,
}

/// Everything the interface should be.
pub struct Desired {
    pub private_key: Key,
    pub port: u16,
    pub addresses: Vec<IpAddrMask>,
    pub peers: Vec<DesiredPeer>,
}

impl Desired {
    /// What distinguishes one interface set-up from another (a change means rebuilding it).
    pub fn interface_identity(&self) -> (String, u16, Vec<String>) {
        (
            self.private_key.to_lower_hex(),
            self.port,
            self.addresses.iter().map(ToString::to_string).collect(),
        )
    }
}

pub fn parse_key(text: &str) -> Option<Key> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok().map(Key::new)
}

/// The cell's own address in each of its subnets: the first host.
pub fn cell_addresses(cell: &crate::cell::CellSettings) -> (IpAddr, IpAddr) {
    cell.own_addresses()
}

/// Reads the desired state: None until setup has completed.
pub fn desired(conn: &Connection, vault: &Vault) -> Result<Option<Desired>, ApiError> {
    let Some(config) = crate::cell::read_cell_config(conn)? else {
        return Ok(None);
    };
    // The key is made at setup (or at start-up for an older cell), never here: this is a read.
    let secret = vault
        .get(conn, SERVER_KEY)?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("WireGuard key missing")))?;
    let private_key = std::str::from_utf8(&secret)
        .ok()
        .and_then(parse_key)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("WireGuard key unreadable")))?;
    let (v4, v6) = cell_addresses(&config.cell);
    Ok(Some(Desired {
        private_key,
        port: config.cell.wireguard_port,
        addresses: vec![
            IpAddrMask::new(v4, config.cell.subnet_v4.prefix_len()),
            IpAddrMask::new(v6, config.cell.subnet_v6.prefix_len()),
        ],
        peers: crate::peers::store::desired_peers(conn, vault)?,
    }))
}

/// The WireGuard routes' state: the core and the WireGuard driver.
#[derive(Clone)]
pub struct WireGuardApp {
    pub core: crate::state::Core,
    pub wireguard: std::sync::Arc<driver::WireGuardDriver>,
}
crate::reads_through_to_core!(WireGuardApp);
