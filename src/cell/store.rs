//! Reading and writing the cell's settings (`cell_config`, one row).

use rusqlite::{params, Connection, OptionalExtension};

use super::dns_settings::DnsSettings;
use super::labels::{DnsLabel, DomainName};
use super::settings::CellSettings;
use super::tls::{TlsMode, TlsSettings};
use crate::dns::names::{NameView, APEX};
use crate::error::ApiError;

/// What the cell's CA may vouch for: the cell's domain and subnets.
pub fn ca_scope(cell: &CellSettings) -> crate::vault::ca::CaScope {
    crate::vault::ca::CaScope::new(&cell.domain, cell.subnet_v4, cell.subnet_v6)
}

/// The cell's settings as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CellConfig {
    pub cell: CellSettings,
    pub dns: DnsSettings,
    pub tls: TlsSettings,
    pub updated_at: String,
}

/// This cell's own id (32 hex digits), made once by migration 0023: the mark on the engine
/// objects it creates (see services::driver).
pub fn cell_id(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("SELECT cell_id FROM cell_identity WHERE id = 1", [], |r| {
        r.get(0)
    })
}

pub fn write_cell_config(
    conn: &Connection,
    cell: &CellSettings,
    dns: &DnsSettings,
    tls: &TlsSettings,
) -> Result<(), ApiError> {
    let upstreams =
        serde_json::to_string(&dns.upstreams).map_err(|e| ApiError::Internal(e.into()))?;
    conn.prepare_cached(
        "INSERT INTO cell_config (id, name, domain, public_endpoint, wireguard_port, subnet_v4, subnet_v6,
                                  dns_upstreams, split_horizon, updated_at, tls_mode, acme_email, acme_ca)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(id) DO UPDATE SET name = ?1, domain = ?2, public_endpoint = ?3, wireguard_port = ?4,
             subnet_v4 = ?5, subnet_v6 = ?6, dns_upstreams = ?7, split_horizon = ?8, updated_at = ?9,
             tls_mode = ?10, acme_email = ?11, acme_ca = ?12",
    )?
    .execute(params![
            cell.name.as_str(),
            cell.domain.as_str(),
            cell.public_endpoint,
            cell.wireguard_port,
            cell.subnet_v4.to_string(),
            cell.subnet_v6.to_string(),
            upstreams,
            dns.split_horizon,
            crate::time::now_rfc3339(),
            tls.mode.as_str(),
            tls.acme_email,
            tls.acme_ca
    ])?;
    publish_own_name(conn, cell)
}

pub fn read_cell_config(conn: &Connection) -> Result<Option<CellConfig>, ApiError> {
    let corrupt = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("stored cell config: bad {what}").into(),
        )
    };
    let config = conn
        .prepare_cached(
            "SELECT name, domain, public_endpoint, wireguard_port, subnet_v4, subnet_v6, dns_upstreams,
                    split_horizon, updated_at, tls_mode, acme_email, acme_ca
             FROM cell_config WHERE id = 1",
        )?
        .query_row([], |r| {
                let text = |i: usize| r.get::<_, String>(i);
                Ok(CellConfig {
                    cell: CellSettings {
                        name: DnsLabel::parse(&text(0)?).map_err(|_| corrupt(0, "name"))?,
                        domain: DomainName::parse(&text(1)?).map_err(|_| corrupt(1, "domain"))?,
                        public_endpoint: text(2)?,
                        wireguard_port: r.get(3)?,
                        subnet_v4: text(4)?.parse().map_err(|_| corrupt(4, "subnet_v4"))?,
                        subnet_v6: text(5)?.parse().map_err(|_| corrupt(5, "subnet_v6"))?,
                    },
                    dns: DnsSettings {
                        upstreams: serde_json::from_str(&text(6)?)
                            .map_err(|_| corrupt(6, "dns_upstreams"))?,
                        split_horizon: r.get(7)?,
                    },
                    updated_at: text(8)?,
                    tls: TlsSettings {
                        mode: TlsMode::parse(&text(9)?).ok_or_else(|| corrupt(9, "tls_mode"))?,
                        acme_email: text(10)?,
                        acme_ca: text(11)?,
                    },
                })
            })
        .optional()?;
    Ok(config)
}

/// When the setup wizard completed (shown by /api/config), read from the wizard's row.
pub fn setup_completed_at(conn: &Connection) -> Result<Option<String>, ApiError> {
    Ok(conn
        .prepare_cached("SELECT completed_at FROM setup_state WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

/// Publishes the cell's own name (its domain, for peers) at its WireGuard addresses. Written
/// with the settings, and at start-up for a cell set up before names were published.
pub fn publish_own_name(conn: &Connection, cell: &CellSettings) -> Result<(), ApiError> {
    let (v4, v6) = cell.own_addresses();
    crate::dns::names::publish(conn, "cell", APEX, NameView::Internal, &[v4, v6])
}
