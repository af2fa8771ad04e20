//! SQL for zones, records and secondaries.

use std::net::IpAddr;

use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::error::ApiError;

pub const DEFAULT_TTL: u32 = 3600;

#[derive(Debug, Clone, Serialize)]
pub struct ZoneRow {
    pub name: String,
    pub serial: u32,
    pub default_ttl: u32,
    pub created_at: String,
}

impl ZoneRow {
    pub fn origin(&self) -> Result<Name, ApiError> {
        Name::from_ascii(&self.name)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("zone name {}: {e}", self.name)))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordRow {
    pub id: String,
    pub zone: String,
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub data: String,
    pub view: String,
    #[serde(skip)]
    pub wire: Vec<u8>,
    pub created_at: String,
    pub updated_at: String,
}

impl RecordRow {
    pub fn to_record(&self) -> Result<Record, ApiError> {
        Record::from_bytes(&self.wire)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored record {}: {e}", self.id)))
    }
}

fn zone_from_row(r: &Row<'_>) -> rusqlite::Result<ZoneRow> {
    Ok(ZoneRow {
        name: r.get(0)?,
        serial: r.get(1)?,
        default_ttl: r.get(2)?,
        created_at: r.get(3)?,
    })
}

const RECORD_COLUMNS: &str = "id, zone, name, type, ttl, data, view, wire, created_at, updated_at";

fn record_from_row(r: &Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        id: r.get(0)?,
        zone: r.get(1)?,
        name: r.get(2)?,
        rtype: r.get(3)?,
        ttl: r.get(4)?,
        data: r.get(5)?,
        view: r.get(6)?,
        wire: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

pub fn zones(conn: &Connection) -> rusqlite::Result<Vec<ZoneRow>> {
    conn.prepare("SELECT name, serial, default_ttl, created_at FROM dns_zones ORDER BY name")?
        .query_map([], zone_from_row)?
        .collect()
}

pub fn zone(conn: &Connection, name: &str) -> rusqlite::Result<Option<ZoneRow>> {
    conn.query_row(
        "SELECT name, serial, default_ttl, created_at FROM dns_zones WHERE name = ?1",
        [name],
        zone_from_row,
    )
    .optional()
}

pub fn require_zone(conn: &Connection, name: &str) -> Result<ZoneRow, ApiError> {
    zone(conn, name)?.ok_or_else(|| ApiError::not_found(format!("zone '{name}'")))
}

/// A serial in the YYYYMMDDnn convention that is always larger than `current`.
pub fn next_serial(current: u32) -> u32 {
    let today = crate::time::now();
    let base = (today.year() as u32) * 1_000_000
        + (today.month() as u32) * 10_000
        + u32::from(today.day()) * 100;
    base.max(current.wrapping_add(1))
}

pub fn create_zone(conn: &Connection, name: &str, default_ttl: u32) -> Result<ZoneRow, ApiError> {
    let zone = ZoneRow {
        name: name.into(),
        serial: next_serial(0),
        default_ttl,
        created_at: crate::time::now_rfc3339(),
    };
    conn.execute(
        "INSERT INTO dns_zones (name, serial, default_ttl, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![zone.name, zone.serial, zone.default_ttl, zone.created_at],
    )
    .map_err(|e| crate::db::conflict_on_unique(e, "this zone exists"))?;
    Ok(zone)
}

/// Bumps a zone's SOA serial (in the caller's transaction, with the change it marks).
pub fn bump_serial(conn: &Connection, zone: &str) -> Result<u32, ApiError> {
    let current = require_zone(conn, zone)?.serial;
    let next = next_serial(current);
    conn.execute(
        "UPDATE dns_zones SET serial = ?2 WHERE name = ?1",
        params![zone, next],
    )?;
    Ok(next)
}

/// The cell's own zone (its domain), created when missing; its serial moves when peers come
/// and go, since their names live in it.
pub fn ensure_cell_zone(conn: &Connection) -> Result<Option<String>, ApiError> {
    let Some((name, exists)) = cell_zone(conn)? else {
        return Ok(None);
    };
    if !exists {
        create_zone(conn, &name, DEFAULT_TTL)?;
    }
    Ok(Some(name))
}

/// Whether the cell has a domain but no zone for it yet (`ensure_cell_zone` would create it).
pub fn cell_zone_missing(conn: &Connection) -> Result<bool, ApiError> {
    Ok(cell_zone(conn)?.is_some_and(|(_, exists)| !exists))
}

/// The name of the cell's zone once it has a domain, and whether that zone exists.
fn cell_zone(conn: &Connection) -> Result<Option<(String, bool)>, ApiError> {
    let Some(config) = crate::cell::read_cell_config(conn)? else {
        return Ok(None);
    };
    let name = format!("{}.", config.cell.domain);
    let exists = zone(conn, &name)?.is_some();
    Ok(Some((name, exists)))
}

pub fn records(conn: &Connection, zone: &str) -> rusqlite::Result<Vec<RecordRow>> {
    conn.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM dns_records WHERE zone = ?1 ORDER BY name, type, data"
    ))?
    .query_map([zone], record_from_row)?
    .collect()
}

/// How many records the zone holds.
pub fn record_count(conn: &Connection, zone: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached("SELECT COUNT(*) FROM dns_records WHERE zone = ?1")?
        .query_row([zone], |r| r.get(0))
}

/// How many CNAME records and how many others `name` holds in `view`.
pub fn name_counts(
    conn: &Connection,
    zone: &str,
    name: &str,
    view: &str,
) -> rusqlite::Result<(usize, usize)> {
    conn.prepare_cached(
        "SELECT COALESCE(SUM(type = 'CNAME'), 0), COALESCE(SUM(type <> 'CNAME'), 0)
         FROM dns_records WHERE zone = ?1 AND name = ?2 AND view = ?3",
    )?
    .query_row([zone, name, view], |r| Ok((r.get(0)?, r.get(1)?)))
}

pub fn record(conn: &Connection, id: &str) -> rusqlite::Result<Option<RecordRow>> {
    conn.query_row(
        &format!("SELECT {RECORD_COLUMNS} FROM dns_records WHERE id = ?1"),
        [id],
        record_from_row,
    )
    .optional()
}

/// Stores a parsed record; a duplicate (same name, type, data and view) is a conflict.
pub fn insert_record(
    conn: &Connection,
    zone: &str,
    record: &Record,
    view: &str,
) -> Result<RecordRow, ApiError> {
    let now = crate::time::now_rfc3339();
    let row = RecordRow {
        id: uuid::Uuid::now_v7().to_string(),
        zone: zone.into(),
        name: record.name.to_lowercase().to_string(),
        rtype: record.record_type().to_string(),
        ttl: record.ttl,
        data: super::zonefile::rdata_text(&record.data),
        view: view.into(),
        wire: record
            .to_bytes()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("encoding a record: {e}")))?,
        created_at: now.clone(),
        updated_at: now,
    };
    conn.prepare_cached(&format!(
        "INSERT INTO dns_records ({RECORD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![row.id, row.zone, row.name, row.rtype, row.ttl, row.data, row.view, row.wire, row.created_at, row.updated_at])
    .map_err(|e| crate::db::conflict_on_unique(e, "this record exists"))?;
    Ok(row)
}

pub fn delete_record(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM dns_records WHERE id = ?1", [id])
}

pub fn transfer_allow(conn: &Connection) -> rusqlite::Result<Vec<IpAddr>> {
    Ok(secondaries(conn)?.into_iter().map(|a| a.ip()).collect())
}

/// Where NOTIFY goes: each secondary's address (port 53 unless given as `ip:port`).
pub fn secondaries(conn: &Connection) -> rusqlite::Result<Vec<std::net::SocketAddr>> {
    let rows: Vec<String> = conn
        .prepare("SELECT address FROM dns_secondaries")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows.iter().filter_map(|a| parse_secondary(a)).collect())
}

pub fn parse_secondary(text: &str) -> Option<std::net::SocketAddr> {
    text.parse().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| std::net::SocketAddr::new(ip, 53))
    })
}

/// Peers' names live in the cell's zone: when one comes or goes, the zone's serial moves.
pub fn bump_cell_serial(conn: &Connection) -> Result<(), ApiError> {
    if let Some(zone) = ensure_cell_zone(conn)? {
        bump_serial(conn, &zone)?;
    }
    Ok(())
}
