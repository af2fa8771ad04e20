//! /api/dns helpers beyond single records: BIND import and export, reload and the DDNS
//! refresh of the cell's public addresses. ACME challenges are in `acme_routes`, the
//! secondaries in `secondary_routes`.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::header;
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
use crate::dns::DnsApp;
use crate::error::{ApiError, ApiResult, Json, Path};

pub use super::import::import;

/// The zone as a BIND file (the public view: what the world and the secondaries see).
pub async fn export(
    _admin: AdminUser,
    State(app): State<DnsApp>,
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
    State(app): State<DnsApp>,
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Ddns {
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
}

/// Sets the cell zone's public apex A/AAAA: to the given addresses, or to the caller's address.
pub async fn ddns_refresh(
    _admin: AdminUser,
    State(app): State<DnsApp>,
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
    app.dns.refresh(&app.db);
    Ok(Json(result))
}
