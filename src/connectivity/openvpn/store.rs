//! An OpenVPN connection's secrets in the vault: the sanitized file (its inline keys
//! included) and the username and password, under `connectivity.<id>.*` like every
//! connection's.

use rusqlite::Connection;
use zeroize::Zeroizing;

use super::Secrets;
use crate::error::ApiError;
use crate::vault::Vault;

const NAMES: [&str; 3] = ["ovpn", "username", "password"];

fn name(id: &str, what: &str) -> String {
    format!("connectivity.{id}.{what}")
}

/// Stores the secrets (in the caller's transaction); credentials not given are removed.
pub fn put_secrets(
    conn: &Connection,
    vault: &Vault,
    id: &str,
    secrets: &Secrets,
) -> Result<(), ApiError> {
    vault.put(conn, &name(id, "ovpn"), secrets.config.as_bytes())?;
    match &secrets.credentials {
        Some((user, pass)) => {
            vault.put(conn, &name(id, "username"), user.as_bytes())?;
            vault.put(conn, &name(id, "password"), pass.as_bytes())
        }
        None => {
            vault.delete(conn, &name(id, "username"))?;
            vault.delete(conn, &name(id, "password")).map(|_| ())
        }
    }
}

pub fn secrets(conn: &Connection, vault: &Vault, id: &str) -> Result<Secrets, ApiError> {
    let text =
        |bytes: Zeroizing<Vec<u8>>| Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
    let config = vault
        .get(conn, &name(id, "ovpn"))?
        .map(text)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("exit config missing from the vault")))?;
    let user = vault.get(conn, &name(id, "username"))?.map(text);
    let pass = vault.get(conn, &name(id, "password"))?.map(text);
    Ok(Secrets {
        config,
        credentials: user.zip(pass),
    })
}

pub fn delete_secrets(conn: &Connection, vault: &Vault, id: &str) -> Result<(), ApiError> {
    for what in NAMES {
        vault.delete(conn, &name(id, what))?;
    }
    Ok(())
}

/// Records the resolvers the server pushed (runtime state, like health: no audit entry).
pub fn set_dns(conn: &Connection, id: &str, dns: &[std::net::IpAddr]) -> Result<(), ApiError> {
    let Some(mut row) = crate::connectivity::store::get(conn, id)? else {
        return Ok(());
    };
    if let crate::connectivity::store::ConnectionSettings::OpenVpn(s) = &mut row.settings {
        s.dns = dns.to_vec();
        let text = serde_json::to_string(&row.settings).unwrap_or_else(|_| "{}".into());
        conn.execute(
            "UPDATE connectivity_connections SET settings = ?2 WHERE id = ?1",
            rusqlite::params![id, text],
        )?;
    }
    Ok(())
}
