//! Filled connection info for a service account: URL, username, password and how to set up
//! a client. The peers domain shows a peer all of theirs through `of_peer`.

use rusqlite::Connection;
use serde_json::{json, Value};

use super::store::{self, Account};
use crate::error::ApiError;
use crate::services::catalog::{self, Manifest};
use crate::services::{exposure, store as installed};
use crate::vault::Vault;

pub fn of_account(
    conn: &Connection,
    vault: &Vault,
    manifest: &Manifest,
    account: &Account,
) -> Result<Value, ApiError> {
    let secret = super::secret_name(&account.service_id, &account.username);
    let password = vault
        .get(conn, &secret)?
        .ok_or_else(|| ApiError::not_found("account password"))?;
    let host = exposure::host(conn, manifest)?;
    let url = host.as_ref().map(|h| format!("https://{h}/"));
    let setup = manifest
        .client
        .setup
        .replace("<host>", host.as_deref().unwrap_or("<cell domain>"));
    Ok(json!({
        "service": manifest.id,
        "name": manifest.name,
        "username": account.username,
        "password": String::from_utf8_lossy(&password),
        "url": url,
        "protocol": manifest.client.protocol,
        "setup": setup,
        "created_at": account.created_at,
    }))
}

/// Every account a peer has in an installed service, filled.
pub fn of_peer(conn: &Connection, vault: &Vault, peer: &str) -> Result<Vec<Value>, ApiError> {
    let mut filled = Vec::new();
    for account in store::of_peer(conn, peer)? {
        let Some(manifest) = catalog::find(&account.service_id) else {
            continue;
        };
        if installed::installed_one(conn, manifest.id)?.is_some() {
            filled.push(of_account(conn, vault, manifest, &account)?);
        }
    }
    Ok(filled)
}
