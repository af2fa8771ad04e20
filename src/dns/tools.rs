//! /api/dns helpers beyond single records: BIND import and export, ACME DNS-01 challenge
//! records, reload, the DDNS refresh of the cell's public addresses, and the secondaries that
//! may transfer the public zones.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};

use super::input;
use super::store;
use super::zonefile;
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::client::ClientInfo;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::state::AppState;

/// TTL of ACME challenge records: short, they live for minutes.
const ACME_TTL: u32 = 60;
const DEFAULT_STALE_MINUTES: u32 = 60;

pub use super::import::import;

/// The zone as a BIND file (the public view: what the world and the secondaries see).
pub async fn export(
    _admin: AdminUser,
    State(app): State<AppState>,
    Path(zone): Path<String>,
) -> ApiResult<Response> {
    let zone = input::zone_name(&zone)?;
    let snapshot = app.dns.snapshot();
    let text = {
        let origin = hickory_proto::rr::Name::from_ascii(&zone)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
        let found = snapshot
            .world
            .zone_for(&origin)
            .filter(|z| z.soa.name.to_lowercase() == origin);
        let name = zone.clone();
        let row = app
            .db
            .call(move |conn| store::require_zone(conn, &name))
            .await?;
        match found {
            Some(z) => zonefile::export(&origin, row.default_ttl, &z.soa, z.records()),
            None => {
                return Err(ApiError::Unavailable {
                    subsystem: "dns",
                    reason: "the zone is not loaded yet".into(),
                })
            }
        }
    };
    let filename = format!("attachment; filename=\"{}zone\"", zone);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (header::CONTENT_DISPOSITION, filename),
        ],
        text,
    )
        .into_response())
}

pub async fn reload(
    _admin: AdminUser,
    State(app): State<AppState>,
    audit: AuditCtx,
) -> ApiResult<Json<Value>> {
    audit
        .transact(&app.db, |_tx, entry| {
            entry.target_type = "dns".into();
            Ok(())
        })
        .await?;
    crate::driver::Driver::reconcile(app.dns.as_ref(), &app.db)
        .await
        .map_err(|e| ApiError::Unavailable {
            subsystem: "dns",
            reason: e.to_string(),
        })?;
    Ok(Json(
        json!({ "reloaded": true, "status": crate::driver::Driver::status(app.dns.as_ref()).await }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    /// The domain being validated (`_acme-challenge.` is prepended) or the full record name.
    domain: String,
    value: Option<String>,
}

fn challenge_name(domain: &str) -> String {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.starts_with("_acme-challenge.") {
        format!("{d}.")
    } else {
        format!("_acme-challenge.{d}.")
    }
}

/// The zone holding a name: the longest zone name it ends with.
fn zone_of(conn: &rusqlite::Connection, name: &str) -> ApiResult<String> {
    store::zones(conn)?
        .into_iter()
        .map(|z| z.name)
        .filter(|z| name.ends_with(&format!(".{z}")) || name == z)
        .max_by_key(String::len)
        .ok_or_else(|| ApiError::not_found(format!("a zone for {name}")))
}

fn acme_value(value: Option<&str>) -> ApiResult<String> {
    let value = value.map(str::trim).unwrap_or_default();
    // Key authorisation digests are base64url (43 characters); accept that alphabet only.
    if value.is_empty()
        || value.len() > 512
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid(
            "value",
            "must be the base64url challenge digest",
        ));
    }
    Ok(value.to_string())
}

pub async fn acme_present(
    _admin: AdminUser,
    State(app): State<AppState>,
    audit: AuditCtx,
    Json(body): Json<Challenge>,
) -> ApiResult<Response> {
    let name = challenge_name(&body.domain);
    let value = match acme_value(body.value.as_deref()) {
        Ok(v) => v,
        Err(err) => {
            return Err(audit
                .refuse(&app.db, "dns_acme", &name, json!({}), err)
                .await)
        }
    };
    let row = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_acme".into();
            entry.target_id = name.clone();
            let zone = zone_of(tx, &name)?;
            let zone_row = store::require_zone(tx, &zone)?;
            let input = input::RecordInput {
                name: name.clone(),
                rtype: "TXT".into(),
                ttl: Some(ACME_TTL),
                data: format!("\"{value}\""),
                view: Some("public".into()),
            };
            let (record, view) = input::record(&zone_row, &input)?;
            let row = store::insert_record(tx, &zone, &record, &view)?;
            store::bump_serial(tx, &zone)?;
            entry.detail = json!({ "zone": zone });
            Ok(row)
        })
        .await?;
    app.refresh_dns();
    Ok((StatusCode::CREATED, Json(json!(row))).into_response())
}

pub async fn acme_cleanup(
    _admin: AdminUser,
    State(app): State<AppState>,
    audit: AuditCtx,
    Json(body): Json<Challenge>,
) -> ApiResult<Json<Value>> {
    let name = challenge_name(&body.domain);
    let value = body
        .value
        .as_deref()
        .map(|v| acme_value(Some(v)))
        .transpose()?;
    let removed = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_acme".into();
            entry.target_id = name.clone();
            let zone = zone_of(tx, &name)?;
            let mut removed = 0;
            for row in store::records(tx, &zone)? {
                let matches = row.name == name
                    && row.rtype == "TXT"
                    && value
                        .as_ref()
                        .is_none_or(|v| row.data == format!("\"{v}\""));
                if matches {
                    removed += store::delete_record(tx, &row.id)?;
                }
            }
            if removed > 0 {
                store::bump_serial(tx, &zone)?;
            }
            entry.detail = json!({ "removed": removed });
            Ok(removed)
        })
        .await?;
    app.refresh_dns();
    Ok(Json(json!({ "removed": removed })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Stale {
    max_age_minutes: Option<u32>,
    #[serde(default)]
    dry_run: bool,
}

/// Removes challenge records older than `max_age_minutes` (default 60); `dry_run` only lists.
pub async fn acme_cleanup_stale(
    _admin: AdminUser,
    State(app): State<AppState>,
    audit: AuditCtx,
    Json(body): Json<Stale>,
) -> ApiResult<Json<Value>> {
    let minutes = body.max_age_minutes.unwrap_or(DEFAULT_STALE_MINUTES);
    let cutoff = crate::time::format_rfc3339(
        crate::time::now() - time::Duration::minutes(i64::from(minutes)),
    );
    let dry_run = body.dry_run;
    let stale = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_acme".into();
            let mut stale = Vec::new();
            for zone in store::zones(tx)? {
                let mut removed = false;
                for row in store::records(tx, &zone.name)? {
                    if row.name.starts_with("_acme-challenge.")
                        && row.rtype == "TXT"
                        && row.created_at < cutoff
                    {
                        if !dry_run {
                            store::delete_record(tx, &row.id)?;
                            removed = true;
                        }
                        stale.push(
                            json!({ "id": row.id, "name": row.name, "created_at": row.created_at }),
                        );
                    }
                }
                if removed {
                    store::bump_serial(tx, &zone.name)?;
                }
            }
            entry.detail =
                json!({ "dry_run": dry_run, "records": stale.len(), "max_age_minutes": minutes });
            Ok(stale)
        })
        .await?;
    if !dry_run {
        app.refresh_dns();
    }
    Ok(Json(json!({ "dry_run": dry_run, "stale": stale })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Ddns {
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
}

/// Sets the cell zone's public apex A/AAAA: to the given addresses, or to the caller's address.
pub async fn ddns_refresh(
    _admin: AdminUser,
    State(app): State<AppState>,
    audit: AuditCtx,
    Extension(client): Extension<ClientInfo>,
    Json(body): Json<Ddns>,
) -> ApiResult<Json<Value>> {
    let mut addresses: Vec<IpAddr> = [body.ipv4, body.ipv6].into_iter().flatten().collect();
    if body.ipv4.is_some_and(|ip| !ip.is_ipv4()) || body.ipv6.is_some_and(|ip| !ip.is_ipv6()) {
        return Err(audit
            .refuse(
                &app.db,
                "dns_zone",
                "",
                json!({}),
                ApiError::invalid("ipv4", "ipv4 takes an IPv4 address and ipv6 an IPv6 one"),
            )
            .await);
    }
    if addresses.is_empty() {
        addresses.push(client.addr);
    }
    let result = audit
        .transact(&app.db, move |tx, entry| {
            let zone =
                store::ensure_cell_zone(tx)?.ok_or_else(|| ApiError::not_found("cell zone"))?;
            entry.target_type = "dns_zone".into();
            entry.target_id = zone.clone();
            let zone_row = store::require_zone(tx, &zone)?;
            let mut changed = Vec::new();
            for ip in &addresses {
                let rtype = if ip.is_ipv4() { "A" } else { "AAAA" };
                let existing: Vec<_> = store::records(tx, &zone)?
                    .into_iter()
                    .filter(|r| r.name == zone && r.rtype == rtype && r.view == "public")
                    .collect();
                if existing.len() == 1 && existing[0].data == ip.to_string() {
                    continue;
                }
                for row in existing {
                    store::delete_record(tx, &row.id)?;
                }
                let input = input::RecordInput {
                    name: "@".into(),
                    rtype: rtype.into(),
                    ttl: Some(300),
                    data: ip.to_string(),
                    view: None,
                };
                let (record, view) = input::record(&zone_row, &input)?;
                store::insert_record(tx, &zone, &record, &view)?;
                changed.push(json!({ "type": rtype, "address": ip }));
            }
            if !changed.is_empty() {
                store::bump_serial(tx, &zone)?;
            }
            entry.detail = json!({ "changed": changed });
            Ok(json!({ "zone": zone, "changed": changed }))
        })
        .await?;
    app.refresh_dns();
    Ok(Json(result))
}

pub async fn secondaries(_admin: AdminUser, State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let list = app.db.call(|conn| Ok(store::secondaries(conn)?)).await?;
    Ok(Json(
        json!({ "secondaries": list.iter().map(ToString::to_string).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secondary {
    address: String,
}

pub async fn add_secondary(
    _admin: AdminUser,
    State(app): State<AppState>,
    audit: AuditCtx,
    Json(body): Json<Secondary>,
) -> ApiResult<Response> {
    let Some(addr) = store::parse_secondary(body.address.trim()) else {
        let err = ApiError::invalid("address", "must be an IP address, optionally with :port");
        return Err(audit
            .refuse(&app.db, "dns_secondary", "", json!({}), err)
            .await);
    };
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_secondary".into();
            entry.target_id = addr.to_string();
            tx.execute(
                "INSERT INTO dns_secondaries (address, created_at) VALUES (?1, ?2)",
                rusqlite::params![addr.to_string(), crate::time::now_rfc3339()],
            )
            .map_err(|e| crate::db::conflict_on_unique(e, "this secondary is listed"))?;
            Ok(())
        })
        .await?;
    app.refresh_dns();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "address": addr.to_string() })),
    )
        .into_response())
}

pub async fn delete_secondary(
    _admin: AdminUser,
    State(app): State<AppState>,
    audit: AuditCtx,
    Path(address): Path<String>,
) -> ApiResult<Json<Value>> {
    let addr = store::parse_secondary(&address).ok_or_else(|| {
        ApiError::invalid("address", "must be an IP address, optionally with :port")
    })?;
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_secondary".into();
            entry.target_id = addr.to_string();
            match tx.execute(
                "DELETE FROM dns_secondaries WHERE address = ?1",
                [addr.to_string()],
            )? {
                0 => Err(ApiError::not_found("secondary")),
                _ => Ok(()),
            }
        })
        .await?;
    app.refresh_dns();
    Ok(Json(json!({ "deleted": true })))
}
