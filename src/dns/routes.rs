//! /api/dns: zones, records (one at a time or in atomic bulk batches, up to
//! `dns_max_bulk_operations`), search by
//! IP, CIDR or text. Admin sessions or API keys (the `dns` scope reaches only these routes);
//! every write is audited, bumps the zone's SOA serial and refreshes the server.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use rusqlite::Transaction;
use serde::Deserialize;
use serde_json::{json, Value};

use super::index::check_cname_rules_in;
use super::input::{self, RecordInput};
use super::store::{self, RecordRow};
use crate::audit::{AuditCtx, Entry};
use crate::auth::AdminUser;
use crate::dns::DnsApp;
use crate::error::{ApiError, ApiResult, Json, Path, Query};

pub async fn zones(_admin: AdminUser, State(app): State<DnsApp>) -> ApiResult<Json<Value>> {
    let zones = app
        .db
        .call(|conn| {
            let mut out = Vec::new();
            for zone in store::zones(conn)? {
                let records = store::records(conn, &zone.name)?.len();
                out.push(json!({ "name": zone.name, "serial": zone.serial, "default_ttl": zone.default_ttl,
                                 "records": records, "created_at": zone.created_at }));
            }
            Ok(out)
        })
        .await?;
    Ok(Json(json!({ "zones": zones })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewZone {
    name: String,
    default_ttl: Option<u32>,
}

pub async fn create_zone(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Json(body): Json<NewZone>,
) -> ApiResult<Response> {
    let name = match input::zone_name(&body.name) {
        Ok(n) => n,
        Err(err) => return Err(audit.refuse(&app.db, "dns_zone", "", json!({}), err).await),
    };
    let ttl = body
        .default_ttl
        .unwrap_or(store::DEFAULT_TTL)
        .clamp(1, input::MAX_TTL);
    let zone = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_zone".into();
            entry.target_id = name.clone();
            store::create_zone(tx, &name, ttl)
        })
        .await?;
    app.dns.refresh(&app.db);
    Ok((StatusCode::CREATED, Json(json!(zone))).into_response())
}

pub async fn delete_zone(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Path(zone): Path<String>,
) -> ApiResult<Json<Value>> {
    let zone = input::zone_name(&zone)?;
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_zone".into();
            entry.target_id = zone.clone();
            store::require_zone(tx, &zone)?;
            if store::ensure_cell_zone(tx)?.as_deref() == Some(zone.as_str()) {
                return Err(ApiError::conflict(
                    "cell_zone",
                    "the cell's own zone cannot be deleted",
                ));
            }
            tx.execute("DELETE FROM dns_zones WHERE name = ?1", [&zone])?;
            Ok(())
        })
        .await?;
    app.dns.refresh(&app.db);
    Ok(Json(json!({ "deleted": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    name: Option<String>,
    #[serde(rename = "type")]
    rtype: Option<String>,
    view: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

pub async fn records(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    Path(zone): Path<String>,
    Query(query): Query<RecordQuery>,
) -> ApiResult<Json<Value>> {
    let zone = input::zone_name(&zone)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be from 1 to 1000"));
    }
    let offset = query.offset.unwrap_or(0);
    let (rows, total, serial) = app
        .db
        .call(move |conn| {
            let zone_row = store::require_zone(conn, &zone)?;
            let origin = zone_row.origin()?;
            let name = query
                .name
                .as_deref()
                .map(|n| input::owner_name(n, &origin))
                .transpose()
                .map_err(|m| ApiError::invalid("name", m))?;
            let rows: Vec<RecordRow> = store::records(conn, &zone)?
                .into_iter()
                .filter(|r| name.as_ref().is_none_or(|n| r.name == n.to_string()))
                .filter(|r| {
                    query
                        .rtype
                        .as_ref()
                        .is_none_or(|t| r.rtype.eq_ignore_ascii_case(t))
                })
                .filter(|r| query.view.as_ref().is_none_or(|v| &r.view == v))
                .collect();
            let total = rows.len();
            Ok((
                rows.into_iter()
                    .skip(offset)
                    .take(limit)
                    .collect::<Vec<_>>(),
                total,
                zone_row.serial,
            ))
        })
        .await?;
    Ok(Json(
        json!({ "records": rows, "total": total, "limit": limit, "offset": offset, "serial": serial }),
    ))
}

/// One write of a bulk batch (or a single call).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Operation {
    Add {
        #[serde(flatten)]
        record: RecordInput,
    },
    Update {
        id: String,
        ttl: Option<u32>,
        data: Option<String>,
        view: Option<String>,
    },
    Delete {
        id: String,
    },
}

/// Applies one operation inside `tx` (the CNAME rules asked of the records its name holds,
/// earlier operations of the same write included); returns what the response and the audit
/// entry show.
fn apply(tx: &Transaction<'_>, zone_row: &store::ZoneRow, op: &Operation) -> ApiResult<Value> {
    let zone = zone_row.name.as_str();
    match op {
        Operation::Add { record } => {
            let (parsed, view) = input::record(zone_row, record)?;
            check_cname_rules_in(tx, zone, &parsed, &view)?;
            let row = store::insert_record(tx, zone, &parsed, &view)?;
            Ok(json!(row))
        }
        Operation::Update {
            id,
            ttl,
            data,
            view,
        } => {
            let old = store::record(tx, id)?
                .filter(|r| r.zone == zone)
                .ok_or_else(|| ApiError::not_found("record"))?;
            let replacement = RecordInput {
                name: old.name.clone(),
                rtype: old.rtype.clone(),
                ttl: Some(ttl.unwrap_or(old.ttl)),
                data: data.clone().unwrap_or_else(|| old.data.clone()),
                view: Some(view.clone().unwrap_or_else(|| old.view.clone())),
            };
            let (parsed, view) = input::record(zone_row, &replacement)?;
            store::delete_record(tx, id)?;
            check_cname_rules_in(tx, zone, &parsed, &view)?;
            let mut row = store::insert_record(tx, zone, &parsed, &view)?;
            // The record keeps its id across updates.
            tx.execute(
                "UPDATE dns_records SET id = ?1, created_at = ?2 WHERE id = ?3",
                rusqlite::params![id, old.created_at, row.id],
            )?;
            row.id = id.clone();
            row.created_at = old.created_at;
            Ok(json!(row))
        }
        Operation::Delete { id } => {
            let old = store::record(tx, id)?
                .filter(|r| r.zone == zone)
                .ok_or_else(|| ApiError::not_found("record"))?;
            store::delete_record(tx, id)?;
            Ok(json!({ "deleted": old.id, "name": old.name, "type": old.rtype, "data": old.data }))
        }
    }
}

/// Runs operations in one transaction (all or none), bumps the serial, audits once.
async fn write(
    app: &DnsApp,
    audit: &AuditCtx,
    zone: String,
    ops: Vec<Operation>,
    action: &'static str,
) -> ApiResult<Vec<Value>> {
    let max_records = app.settings.dns_max_records_per_zone;
    let results = audit
        .transact(&app.db, move |tx, entry: &mut Entry| {
            entry.action = action.into();
            entry.target_type = "dns_zone".into();
            entry.target_id = zone.clone();
            let zone_row = store::require_zone(tx, &zone)?;
            let adds = ops.iter().filter(|op| matches!(op, Operation::Add { .. })).count();
            if store::record_count(tx, &zone)? + adds > max_records {
                return Err(ApiError::LimitExceeded { limit: "dns_max_records_per_zone", max: max_records, too_large: false });
            }
            let mut results = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                let result = apply(tx, &zone_row, op).map_err(|e| match e {
                    ApiError::Invalid { fields } if ops.len() > 1 => ApiError::Invalid {
                        fields: fields.into_iter().map(|(f, m)| (format!("operations[{i}].{f}"), m)).collect(),
                    },
                    other => other,
                })?;
                results.push(result);
            }
            let serial = store::bump_serial(tx, &zone)?;
            entry.detail = json!({ "operations": results.len(), "serial": serial,
                "changes": results.iter().map(|r| json!({"name": r["name"], "type": r["type"], "data": r["data"]})).collect::<Vec<_>>() });
            Ok(results)
        })
        .await?;
    app.dns.refresh(&app.db);
    Ok(results)
}

pub async fn add_record(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Path(zone): Path<String>,
    Json(body): Json<RecordInput>,
) -> ApiResult<Response> {
    let zone = input::zone_name(&zone)?;
    let mut results = write(
        &app,
        &audit,
        zone,
        vec![Operation::Add { record: body }],
        "dns.records.create",
    )
    .await?;
    Ok((StatusCode::CREATED, Json(results.remove(0))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordUpdate {
    ttl: Option<u32>,
    data: Option<String>,
    view: Option<String>,
}

pub async fn update_record(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Path((zone, id)): Path<(String, String)>,
    Json(body): Json<RecordUpdate>,
) -> ApiResult<Json<Value>> {
    let zone = input::zone_name(&zone)?;
    let op = Operation::Update {
        id,
        ttl: body.ttl,
        data: body.data,
        view: body.view,
    };
    let mut results = write(&app, &audit, zone, vec![op], "dns.records.update").await?;
    Ok(Json(results.remove(0)))
}

/// Deletes exactly one record, named by its id: a whole RRset is never dropped by accident.
pub async fn delete_record(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Path((zone, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let zone = input::zone_name(&zone)?;
    let mut results = write(
        &app,
        &audit,
        zone,
        vec![Operation::Delete { id }],
        "dns.records.delete",
    )
    .await?;
    Ok(Json(results.remove(0)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bulk {
    operations: Vec<Operation>,
}

pub async fn bulk(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Path(zone): Path<String>,
    Json(body): Json<Bulk>,
) -> ApiResult<Json<Value>> {
    let zone = input::zone_name(&zone)?;
    let max_bulk = app.settings.dns_max_bulk_operations;
    if body.operations.is_empty() || body.operations.len() > max_bulk {
        let err = if body.operations.is_empty() {
            ApiError::invalid("operations", format!("give 1 to {max_bulk} operations"))
        } else {
            ApiError::LimitExceeded {
                limit: "dns_max_bulk_operations",
                max: max_bulk,
                too_large: true,
            }
        };
        return Err(audit
            .refuse(&app.db, "dns_zone", &zone, json!({}), err)
            .await);
    }
    let results = write(&app, &audit, zone, body.operations, "dns.records.bulk").await?;
    Ok(Json(
        json!({ "applied": results.len(), "results": results }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    q: Option<String>,
    ip: Option<String>,
    cidr: Option<String>,
    limit: Option<usize>,
}

/// Records whose data is exactly an IP, inside a network, or whose name or data contain text.
pub async fn search(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    Query(query): Query<Search>,
) -> ApiResult<Json<Value>> {
    let ip = query
        .ip
        .as_deref()
        .map(|s| {
            s.parse::<IpAddr>()
                .map_err(|_| ApiError::invalid("ip", "must be an IP address"))
        })
        .transpose()?;
    let cidr = query
        .cidr
        .as_deref()
        .map(|s| {
            s.parse::<IpNet>()
                .map_err(|_| ApiError::invalid("cidr", "must be a network in CIDR form"))
        })
        .transpose()?;
    let text = query.q.as_deref().map(str::to_ascii_lowercase);
    if ip.is_none() && cidr.is_none() && text.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::invalid("q", "give q, ip or cidr"));
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = app
        .db
        .call(move |conn| {
            let mut found = Vec::new();
            for zone in store::zones(conn)? {
                for row in store::records(conn, &zone.name)? {
                    let addr = row.data.parse::<IpAddr>().ok();
                    let hit = ip.is_some_and(|ip| addr == Some(ip))
                        || cidr.is_some_and(|net| addr.is_some_and(|a| net.contains(&a)))
                        || text.as_ref().is_some_and(|t| {
                            row.name.contains(t.as_str())
                                || row.data.to_ascii_lowercase().contains(t.as_str())
                        });
                    if hit && found.len() < limit {
                        found.push(row);
                    }
                }
            }
            Ok(found)
        })
        .await?;
    Ok(Json(json!({ "records": rows })))
}
