//! SQL for issued certificates and trusted cells' keys.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::db::conflict_on_unique;
use crate::error::ApiError;

/// An issued certificate as listed (never with a private key: none is kept).
#[derive(Debug, Clone, Serialize)]
pub struct CertRecord {
    pub id: String,
    pub serial: String,
    pub names: Vec<String>,
    pub ips: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub cert_pem: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub revocation_reason: Option<String>,
    /// The serial of the CA that signed it (the current one, or a retired one).
    pub issuer_serial: Option<String>,
}

const CERT_COLUMNS: &str =
    "id, serial, names, ips, not_before, not_after, cert_pem, created_at, revoked_at, revocation_reason, issuer_serial";

fn cert_from_row(row: &Row<'_>) -> rusqlite::Result<CertRecord> {
    let names: String = row.get(2)?;
    let ips: String = row.get(3)?;
    Ok(CertRecord {
        id: row.get(0)?,
        serial: row.get(1)?,
        names: serde_json::from_str(&names).unwrap_or_default(),
        ips: serde_json::from_str(&ips).unwrap_or_default(),
        not_before: row.get(4)?,
        not_after: row.get(5)?,
        cert_pem: row.get(6)?,
        created_at: row.get(7)?,
        revoked_at: row.get(8)?,
        revocation_reason: row.get(9)?,
        issuer_serial: row.get(10)?,
    })
}

pub fn insert_cert(conn: &Connection, cert: &CertRecord) -> Result<(), ApiError> {
    conn.execute(
        &format!("INSERT INTO certificates ({CERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, ?9)"),
        params![
            cert.id,
            cert.serial,
            serde_json::to_string(&cert.names).unwrap_or_default(),
            serde_json::to_string(&cert.ips).unwrap_or_default(),
            cert.not_before,
            cert.not_after,
            cert.cert_pem,
            cert.created_at,
            cert.issuer_serial
        ],
    )
    .map_err(|e| conflict_on_unique(e, "serial collision"))?;
    Ok(())
}

pub fn list_certs(conn: &Connection) -> rusqlite::Result<Vec<CertRecord>> {
    conn.prepare(&format!(
        "SELECT {CERT_COLUMNS} FROM certificates ORDER BY created_at DESC"
    ))?
    .query_map([], cert_from_row)?
    .collect()
}

pub fn get_cert(conn: &Connection, id: &str) -> rusqlite::Result<Option<CertRecord>> {
    conn.query_row(
        &format!("SELECT {CERT_COLUMNS} FROM certificates WHERE id = ?1"),
        [id],
        cert_from_row,
    )
    .optional()
}

/// Marks a certificate revoked and bumps the CRL number of the CA that signed it (a retired
/// CA's own CRL lists the certificates it signed).
pub fn revoke_cert(conn: &Connection, id: &str, reason: &str) -> Result<CertRecord, ApiError> {
    let cert = get_cert(conn, id)?.ok_or_else(|| ApiError::not_found("certificate"))?;
    if cert.revoked_at.is_some() {
        return Err(ApiError::conflict(
            "already_revoked",
            "the certificate is already revoked",
        ));
    }
    conn.execute(
        "UPDATE certificates SET revoked_at = ?1, revocation_reason = ?2 WHERE id = ?3",
        params![crate::time::now_rfc3339(), reason, id],
    )?;
    let retired = match &cert.issuer_serial {
        Some(serial) => conn.execute(
            "UPDATE retired_cas SET crl_number = crl_number + 1 WHERE serial = ?1",
            [serial],
        )?,
        None => 0,
    };
    if retired == 0 {
        conn.execute("UPDATE ca SET crl_number = crl_number + 1 WHERE id = 1", [])?;
    }
    get_cert(conn, id)?.ok_or_else(|| ApiError::not_found("certificate"))
}

#[derive(Debug, Clone, Serialize)]
pub struct TrustKey {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub public_key: String,
    pub created_at: String,
}

pub fn insert_trust_key(
    conn: &Connection,
    name: &str,
    kind: &str,
    public_key: &str,
) -> Result<TrustKey, ApiError> {
    let key = TrustKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.into(),
        kind: kind.into(),
        public_key: public_key.into(),
        created_at: crate::time::now_rfc3339(),
    };
    conn.execute(
        "INSERT INTO trust_keys (id, name, kind, public_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key.id, key.name, key.kind, key.public_key, key.created_at],
    )
    .map_err(|e| conflict_on_unique(e, "this key is already trusted"))?;
    Ok(key)
}

pub fn list_trust_keys(conn: &Connection) -> rusqlite::Result<Vec<TrustKey>> {
    conn.prepare(
        "SELECT id, name, kind, public_key, created_at FROM trust_keys ORDER BY created_at",
    )?
    .query_map([], |r| {
        Ok(TrustKey {
            id: r.get(0)?,
            name: r.get(1)?,
            kind: r.get(2)?,
            public_key: r.get(3)?,
            created_at: r.get(4)?,
        })
    })?
    .collect()
}

pub fn delete_trust_key(conn: &Connection, id: &str) -> Result<(), ApiError> {
    match conn.execute("DELETE FROM trust_keys WHERE id = ?1", [id])? {
        0 => Err(ApiError::not_found("trust key")),
        _ => Ok(()),
    }
}
