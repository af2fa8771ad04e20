//! Reading the audit log: filtered, paged queries for the API and the CSV export.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row};
use serde::Deserialize;

use super::chain::StoredEntry;
use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// The reference's filters for GET /api/audit (and the export).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub result: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    /// Only for the export; accepted here so one filter type serves both.
    pub format: Option<String>,
}

impl AuditFilter {
    /// The WHERE clause and its parameters. Times are normalised to the stored form so that
    /// string comparison orders them correctly.
    fn where_clause(&self) -> Result<(String, Vec<SqlValue>), ApiError> {
        let mut clauses = Vec::new();
        let mut params = Vec::new();
        for (column, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target_type", &self.target_type),
            ("target_id", &self.target_id),
            ("result", &self.result),
        ] {
            if let Some(v) = value {
                clauses.push(format!("{column} = ?"));
                params.push(SqlValue::Text(v.clone()));
            }
        }
        for (field, op, value) in [("since", ">=", &self.since), ("until", "<", &self.until)] {
            if let Some(v) = value {
                let t = crate::time::parse_rfc3339(v).ok_or_else(|| {
                    ApiError::invalid(field, "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
                })?;
                clauses.push(format!("time {op} ?"));
                params.push(SqlValue::Text(crate::time::format_rfc3339(t)));
            }
        }
        let sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        Ok((sql, params))
    }

    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(limit) = self.limit {
            if limit == 0 || limit > MAX_LIMIT {
                return Err(ApiError::invalid(
                    "limit",
                    format!("must be between 1 and {MAX_LIMIT}"),
                ));
            }
        }
        if let Some(r) = &self.result {
            if !["success", "failure", "denied"].contains(&r.as_str()) {
                return Err(ApiError::invalid(
                    "result",
                    "must be success, failure or denied",
                ));
            }
        }
        self.where_clause().map(|_| ())
    }
}

pub const COLUMNS: &str =
    "seq, time, actor, action, target_type, target_id, result, client_addr, detail, prev_hash, hash";

pub fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredEntry> {
    let detail: String = row.get(8)?;
    Ok(StoredEntry {
        id: row.get(0)?,
        time: row.get(1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        target_type: row.get(4)?,
        target_id: row.get(5)?,
        result: row.get(6)?,
        client_addr: row.get(7)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        prev_hash: row.get(9)?,
        hash: row.get(10)?,
    })
}

/// One page of entries, newest first, and the number of entries matching the filter.
pub fn query(conn: &Connection, filter: &AuditFilter) -> Result<(Vec<StoredEntry>, u64), ApiError> {
    filter.validate()?;
    let (clause, mut params) = filter.where_clause()?;
    let total: u64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM audit_log {clause}"),
        rusqlite::params_from_iter(params.iter()),
        |r| r.get(0),
    )?;
    params.push(SqlValue::Integer(
        filter.limit.unwrap_or(DEFAULT_LIMIT).into(),
    ));
    params.push(SqlValue::Integer(
        filter.offset.unwrap_or(0).min(i64::MAX as u64) as i64,
    ));
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit_log {clause} ORDER BY seq DESC LIMIT ? OFFSET ?"
    ))?;
    let entries = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((entries, total))
}

/// Calls `each` for every matching entry, oldest first (the export's order).
pub fn for_each(
    conn: &Connection,
    filter: &AuditFilter,
    mut each: impl FnMut(StoredEntry) -> bool,
) -> Result<(), ApiError> {
    let (clause, params) = filter.where_clause()?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM audit_log {clause} ORDER BY seq"
    ))?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    while let Some(row) = rows.next()? {
        if !each(from_row(row)?) {
            break;
        }
    }
    Ok(())
}
