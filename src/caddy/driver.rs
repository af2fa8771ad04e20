//! The Caddy driver: builds the config picd wants (the cell's domain, extra routes, TLS) and
//! loads it through Caddy's admin API when the running config differs, so applying twice
//! changes nothing and a Caddy that restarted empty gets everything back at the next pass.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::config::{self, LoadedCert, Site};
use super::{admin, store};
use crate::config::Settings;
use crate::db::Db;
use crate::driver::{Driver, DriverError, DriverState, SubsystemStatus};
use crate::error::ApiError;
use crate::setup::tls::{TlsMode, TlsSettings};
use crate::vault::Vault;

const NAME: &str = "caddy";
/// Validity of the certificates picd issues for Caddy, and when they are renewed.
const CERT_DAYS: u32 = 90;
const RENEW_BEFORE_DAYS: i64 = 30;
const CERT_KEY: &str = "caddy.tls.key";

pub struct CaddyDriver {
    settings: Arc<Settings>,
    vault: Vault,
    state: Mutex<Option<String>>,
}

/// The sites Caddy should serve: the cell's domain first, then the extra routes.
pub fn desired_sites(conn: &Connection, settings: &Settings) -> Result<Vec<Site>, ApiError> {
    let Some(config) = crate::setup::store::read_cell_config(conn)? else {
        return Ok(Vec::new());
    };
    let mut sites = vec![Site {
        host: config.cell.domain.clone(),
        upstream: settings.listen.to_string(),
    }];
    sites.extend(store::routes(conn)?);
    Ok(sites)
}

/// How Caddy gets its certificates, as the wizard or /api/config set it.
pub fn tls_settings(conn: &Connection) -> Result<TlsSettings, ApiError> {
    Ok(crate::setup::store::read_cell_config(conn)?
        .map(|c| c.tls)
        .unwrap_or_default())
}

/// The host names the certificate must cover: every site's, sorted, once each.
fn certificate_hosts(sites: &[Site]) -> Vec<String> {
    let mut hosts: Vec<String> = sites.iter().map(|s| s.host.clone()).collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Issues a new certificate for the current sites now, whatever the one in force
/// (POST /api/caddy/cert-renew); the caller's transaction holds its audit entry too.
pub fn renew_certificate(
    conn: &Connection,
    vault: &Vault,
    settings: &Settings,
) -> Result<Vec<String>, ApiError> {
    let hosts = certificate_hosts(&desired_sites(conn, settings)?);
    if hosts.is_empty() {
        return Err(ApiError::not_found("cell config"));
    }
    ensure_certificate(conn, vault, &hosts, true)?;
    Ok(hosts)
}

/// The certificate for `hosts` from the cell's CA, issued again when the host list changed,
/// when it nears expiry, or when `force` is set (cert-renew).
pub fn ensure_certificate(
    conn: &Connection,
    vault: &Vault,
    hosts: &[String],
    force: bool,
) -> Result<(String, String), ApiError> {
    // The cell's CA vouches only for names under the cell's domain: a route for another host
    // is served without a certificate for it rather than breaking the certificate of all.
    let hosts = &crate::vault::ca::names_in_scope(conn, hosts)?;
    let current: Option<(String, String, String)> = conn
        .query_row(
            "SELECT hosts, cert_pem, not_after FROM caddy_certificate WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let wanted = serde_json::to_string(hosts).unwrap_or_default();
    if let (Some((stored_hosts, cert_pem, not_after)), false) = (&current, force) {
        let fresh = crate::time::parse_rfc3339(not_after)
            .is_some_and(|t| (t - crate::time::now()).whole_days() > RENEW_BEFORE_DAYS);
        // A certificate from a retired CA is replaced: devices trust only the new root.
        if *stored_hosts == wanted && fresh && crate::vault::ca::issued_by_current(conn, cert_pem)?
        {
            if let Some(key) = vault.get(conn, CERT_KEY)? {
                return Ok((cert_pem.clone(), String::from_utf8_lossy(&key).into_owned()));
            }
        }
    }
    let issued = crate::vault::ca::issue(conn, vault, hosts, &[], CERT_DAYS)?;
    vault.put(conn, CERT_KEY, issued.key_pem.as_bytes())?;
    conn.execute(
        "INSERT INTO caddy_certificate (id, hosts, cert_pem, not_after, issued_at) VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET hosts = ?1, cert_pem = ?2, not_after = ?3, issued_at = ?4",
        params![wanted, issued.cert_pem, crate::time::format_rfc3339(issued.not_after), crate::time::now_rfc3339()],
    )?;
    Ok((issued.cert_pem, issued.key_pem.to_string()))
}

impl CaddyDriver {
    pub fn new(settings: Arc<Settings>, vault: Vault) -> Self {
        CaddyDriver {
            settings,
            vault,
            state: Mutex::new(None),
        }
    }

    fn set_error(&self, error: Option<String>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    /// The config to load (None before setup).
    pub async fn desired_config(&self, db: &Db) -> Result<Option<serde_json::Value>, ApiError> {
        let (settings, vault) = (Arc::clone(&self.settings), self.vault.clone());
        db.write(move |tx| {
            let sites = desired_sites(tx, &settings)?;
            if sites.is_empty() {
                return Ok(None);
            }
            let tls = tls_settings(tx)?;
            if tls.mode == TlsMode::Acme {
                return Ok(Some(config::build(&settings, &tls, &sites, None)));
            }
            let hosts = certificate_hosts(&sites);
            let (cert_pem, key_pem) = ensure_certificate(tx, &vault, &hosts, false)?;
            let key = zeroize::Zeroizing::new(key_pem);
            Ok(Some(config::build(
                &settings,
                &tls,
                &sites,
                Some(LoadedCert {
                    cert_pem: &cert_pem,
                    key_pem: &key,
                }),
            )))
        })
        .await
    }

    /// Loads the desired config into Caddy unless Caddy already runs exactly that.
    pub async fn apply(&self, db: &Db) -> Result<(), DriverError> {
        let addr = &self.settings.caddy_admin;
        // Nothing to do (no certificate to issue) while Caddy is not there; the desired state
        // waits in the store and applies when it answers again.
        let running = match admin::running_config(addr).await {
            Ok(running) => running,
            Err(e) => {
                let error = DriverError::Unavailable(NAME, e);
                self.set_error(Some(error.to_string()));
                return Err(error);
            }
        };
        let desired = self
            .desired_config(db)
            .await
            .map_err(|e| DriverError::Failed(NAME, e.to_string()))?;
        let Some(desired) = desired else {
            return Ok(());
        };
        let result = if running == desired {
            Ok(())
        } else {
            admin::load(addr, &desired)
                .await
                .map_err(|e| DriverError::Failed(NAME, e))
        };
        self.set_error(result.as_ref().err().map(ToString::to_string));
        result
    }
}

#[async_trait]
impl Driver for CaddyDriver {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn reconcile(&self, db: &Db) -> Result<(), DriverError> {
        self.apply(db).await
    }

    async fn status(&self) -> SubsystemStatus {
        let addr = &self.settings.caddy_admin;
        if let Err(e) = admin::running_config(addr).await {
            return SubsystemStatus::unavailable(NAME, e);
        }
        match self.state.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(error) => SubsystemStatus {
                name: NAME,
                state: DriverState::Degraded,
                reason: Some(error),
            },
            None => SubsystemStatus::ok(NAME, Some(format!("admin API answers at {addr}"))),
        }
    }
}
