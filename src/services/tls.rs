//! The certificate of a service that speaks TLS itself (mail: IMAP on 993, submission's
//! STARTTLS), issued by picd's CA for `<subdomain>.<cell domain>` and renewed before it
//! expires, as Caddy's is. Its row is in `service_certificates`, its key in the vault; both
//! files go into the service's config folder, which the container mounts read-only, the key
//! with mode 0600 (the servers' masters read it as root). The certificate is part of the
//! container's spec hash: a renewed one recreates the container, which loads it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::catalog::{self, Manifest};
use crate::error::ApiError;
use crate::services::ServicesApp;
use crate::vault::Vault;

/// Validity of a service's certificate, and how long before its end it is renewed.
const CERT_DAYS: u32 = 90;
const RENEW_BEFORE_DAYS: i64 = 30;
/// How often the keeper looks at every service's certificate.
const KEEPER_EVERY: Duration = Duration::from_secs(3600);
pub const CERT_FILE: &str = "tls-cert.pem";
pub const KEY_FILE: &str = "tls-key.pem";

fn key_secret(service_id: &str) -> String {
    format!("service.{service_id}.tls.key")
}

/// The service's certificate and key (PEM), issued again when there is none, when the host
/// changed, when it is less than RENEW_BEFORE_DAYS from its end, or when it came from a
/// retired CA. None for a service without TLS endpoints or before the cell is set up.
pub fn ensure(
    conn: &Connection,
    vault: &Vault,
    manifest: &Manifest,
) -> Result<Option<(String, Zeroizing<String>)>, ApiError> {
    if !manifest.needs_certificate() {
        return Ok(None);
    }
    let Some(host) = super::exposure::host(conn, manifest)? else {
        return Ok(None);
    };
    let hosts = vec![host];
    let wanted = serde_json::to_string(&hosts).unwrap_or_default();
    let current: Option<(String, String, String)> = conn
        .query_row(
            "SELECT hosts, cert_pem, not_after FROM service_certificates WHERE service_id = ?1",
            [manifest.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((stored_hosts, cert_pem, not_after)) = current {
        let fresh = crate::time::parse_rfc3339(&not_after)
            .is_some_and(|t| (t - crate::time::now()).whole_days() > RENEW_BEFORE_DAYS);
        if stored_hosts == wanted && fresh && crate::vault::ca::issued_by_current(conn, &cert_pem)?
        {
            if let Some(key) = vault.get(conn, &key_secret(manifest.id))? {
                let key = Zeroizing::new(String::from_utf8_lossy(&key).into_owned());
                return Ok(Some((cert_pem, key)));
            }
        }
    }
    let issued = crate::vault::ca::issue(conn, vault, &hosts, &[], CERT_DAYS)?;
    vault.put(conn, &key_secret(manifest.id), issued.key_pem.as_bytes())?;
    conn.execute(
        "INSERT INTO service_certificates (service_id, hosts, cert_pem, not_after, issued_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(service_id) DO UPDATE SET hosts = ?2, cert_pem = ?3, not_after = ?4,
             issued_at = ?5",
        params![
            manifest.id,
            wanted,
            issued.cert_pem,
            crate::time::format_rfc3339(issued.not_after),
            crate::time::now_rfc3339()
        ],
    )?;
    tracing::info!(service = manifest.id, serial = %issued.serial, "service certificate issued");
    Ok(Some((issued.cert_pem, issued.key_pem)))
}

/// Forgets the service's certificate and key (a purge).
pub fn forget(conn: &Connection, vault: &Vault, service_id: &str) -> Result<(), ApiError> {
    conn.execute(
        "DELETE FROM service_certificates WHERE service_id = ?1",
        [service_id],
    )?;
    vault.delete(conn, &key_secret(service_id))?;
    Ok(())
}

/// Puts the certificate and key into the service's config folder; true when they changed.
pub fn write_files(config_dir: &Path, cert_pem: &str, key_pem: &str) -> std::io::Result<bool> {
    std::fs::create_dir_all(config_dir)?;
    let cert_path = config_dir.join(CERT_FILE);
    let key_path = config_dir.join(KEY_FILE);
    let same = std::fs::read_to_string(&cert_path).is_ok_and(|c| c == cert_pem)
        && std::fs::read(&key_path).is_ok_and(|k| k == key_pem.as_bytes());
    if same {
        return Ok(false);
    }
    crate::files::write_atomically(&key_path, key_pem.as_bytes(), 0o600)?;
    crate::files::write_atomically(&cert_path, cert_pem.as_bytes(), 0o644)?;
    Ok(true)
}

/// What the container's spec hash covers of the certificate: its digest ("" without one).
pub fn spec_part(config_dir: &Path) -> String {
    match std::fs::read(config_dir.join(CERT_FILE)) {
        Ok(cert) => hex::encode(&Sha256::digest(&cert)[..8]),
        Err(_) => String::new(),
    }
}

/// Issues (or renews) the service's certificate and writes its files; true when they changed.
pub async fn refresh(app: &ServicesApp, manifest: &'static Manifest) -> Result<bool, ApiError> {
    let vault = app.vault.clone();
    let pair = app.db.write(move |tx| ensure(tx, &vault, manifest)).await?;
    let Some((cert, key)) = pair else {
        return Ok(false);
    };
    let config_dir = app.services.driver.service_dir(manifest.id).join("config");
    Ok(write_files(&config_dir, &cert, &key)?)
}

/// Keeps every installed service's certificate current: at start (so files lost from the
/// config folder come back) and then hourly; a changed one asks for a reconcile, which
/// recreates the container with it.
pub async fn run_certificate_keeper(app: ServicesApp) -> anyhow::Result<()> {
    let mut interval = tokio::time::interval(KEEPER_EVERY);
    loop {
        interval.tick().await;
        let installed = match app.db.call(|conn| Ok(super::store::installed(conn)?)).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading the installed services for their certificates");
                continue;
            }
        };
        let mut changed = false;
        for row in installed {
            let Some(manifest) = catalog::find(&row.service_id) else {
                continue;
            };
            match refresh(&app, manifest).await {
                Ok(renewed) => changed |= renewed,
                Err(e) => {
                    tracing::warn!(service = manifest.id, error = %e, "service certificate")
                }
            }
        }
        if changed {
            app.request_reconcile();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_key_file_is_0600_and_an_unchanged_pair_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_files(dir.path(), "CERT", "KEY").unwrap());
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!write_files(dir.path(), "CERT", "KEY").unwrap());
        let before = spec_part(dir.path());
        assert!(write_files(dir.path(), "CERT2", "KEY").unwrap());
        assert_ne!(spec_part(dir.path()), before);
    }
}
