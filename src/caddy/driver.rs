//! The Caddy driver: builds the config picd wants (the cell's domain, extra routes, TLS) and
//! loads it through Caddy's admin API when the running config differs, so applying twice
//! changes nothing and a Caddy that restarted empty gets everything back at the next pass.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::admin::{self, AdminAddress};
use super::config::{self, Site};
use super::store;
use super::tls_files::{self, TlsPaths};
use crate::cell::tls::{TlsMode, TlsSettings};
use crate::config::Settings;
use crate::db::Db;
use crate::driver::{Driver, DriverError, DriverState, SubsystemStatus};
use crate::error::ApiError;
use crate::vault::Vault;

const NAME: &str = "caddy";
/// Validity of the certificates picd issues for Caddy, and when they are renewed.
const CERT_DAYS: u32 = 90;
const RENEW_BEFORE_DAYS: i64 = 30;
const CERT_KEY: &str = "caddy.tls.key";

pub struct CaddyDriver {
    settings: Arc<Settings>,
    admin: AdminAddress,
    vault: Vault,
    state: Mutex<Option<String>>,
}

/// What Caddy should run, and the certificate files that config names.
pub struct DesiredConfig {
    pub config: serde_json::Value,
    tls_files: Option<(TlsPaths, String, zeroize::Zeroizing<String>)>,
}

/// Where Caddy reaches picd: its socket when it has one (the only place forwarded headers
/// count), else its TCP address.
fn picd_upstream(settings: &Settings) -> String {
    match settings.listen_socket() {
        Some(path) => format!("unix/{}", path.display()),
        None => settings.listen.to_string(),
    }
}

/// The sites Caddy should serve: the cell's domain first, then the extra routes.
pub fn desired_sites(conn: &Connection, settings: &Settings) -> Result<Vec<Site>, ApiError> {
    let Some(config) = crate::cell::read_cell_config(conn)? else {
        return Ok(Vec::new());
    };
    let mut sites = vec![Site {
        host: config.cell.domain.to_string(),
        upstream: picd_upstream(settings),
    }];
    sites.extend(store::routes(conn)?);
    Ok(sites)
}

/// How Caddy gets its certificates, as the wizard or /api/config set it.
pub fn tls_settings(conn: &Connection) -> Result<TlsSettings, ApiError> {
    Ok(crate::cell::read_cell_config(conn)?
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
    /// Refuses a `caddy_admin` that is not a socket or on loopback: picd would hand the whole
    /// config (routes, TLS) to whoever answers there.
    pub fn new(settings: Arc<Settings>, vault: Vault) -> anyhow::Result<Self> {
        let admin = AdminAddress::parse(&settings.caddy_admin).map_err(anyhow::Error::msg)?;
        Ok(CaddyDriver {
            settings,
            admin,
            vault,
            state: Mutex::new(None),
        })
    }

    fn set_error(&self, error: Option<String>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    /// The config to load (None before setup).
    pub async fn desired_config(&self, db: &Db) -> Result<Option<DesiredConfig>, ApiError> {
        let (settings, vault) = (Arc::clone(&self.settings), self.vault.clone());
        let admin = self.admin.clone();
        db.write(move |tx| {
            let sites = desired_sites(tx, &settings)?;
            if sites.is_empty() {
                return Ok(None);
            }
            let tls = tls_settings(tx)?;
            if tls.mode == TlsMode::Acme {
                let config = config::build(&settings, &admin, &tls, &sites, None);
                return Ok(Some(DesiredConfig {
                    config,
                    tls_files: None,
                }));
            }
            let hosts = certificate_hosts(&sites);
            let (cert_pem, key_pem) = ensure_certificate(tx, &vault, &hosts, false)?;
            let paths = tls_files::paths(&settings.caddy_tls_dir(), &cert_pem);
            let config = config::build(&settings, &admin, &tls, &sites, Some(&paths));
            Ok(Some(DesiredConfig {
                config,
                tls_files: Some((paths, cert_pem, zeroize::Zeroizing::new(key_pem))),
            }))
        })
        .await
    }

    /// Loads the desired config into Caddy unless Caddy already runs exactly that.
    pub async fn apply(&self, db: &Db) -> Result<(), DriverError> {
        let addr = &self.admin;
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
        // The files first: the config names them, and a restart of picd empties /run/picd
        // while Caddy keeps running the config that names them.
        let result = match self.write_tls_files(&desired).await {
            Err(e) => Err(e),
            Ok(()) if running == desired.config => Ok(()),
            Ok(()) => admin::load(addr, &desired.config)
                .await
                .map_err(|e| DriverError::Failed(NAME, e)),
        };
        if result.is_ok() {
            let dir = self.settings.caddy_tls_dir();
            let keep = desired.tls_files.map(|(paths, _, _)| paths);
            let _ =
                tokio::task::spawn_blocking(move || tls_files::remove_others(&dir, keep.as_ref()))
                    .await;
        }
        self.set_error(result.as_ref().err().map(ToString::to_string));
        result
    }

    async fn write_tls_files(&self, desired: &DesiredConfig) -> Result<(), DriverError> {
        let Some((paths, cert, key)) = desired.tls_files.clone() else {
            return Ok(());
        };
        let dir = self.settings.caddy_tls_dir();
        tokio::task::spawn_blocking(move || tls_files::write(&paths, &cert, &key))
            .await
            .map_err(|e| DriverError::Failed(NAME, e.to_string()))?
            .map_err(|e| {
                DriverError::Failed(
                    NAME,
                    format!("writing the certificate files in {}: {e}", dir.display()),
                )
            })
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
        let addr = &self.admin;
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
