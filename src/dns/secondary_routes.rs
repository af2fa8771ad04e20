//! The secondaries that may transfer the public zones (/api/dns/secondaries).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::store;
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::dns::DnsApp;
use crate::error::{ApiError, ApiResult, Json, Path};

pub async fn secondaries(_admin: AdminUser, State(app): State<DnsApp>) -> ApiResult<Json<Value>> {
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
    State(app): State<DnsApp>,
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
    app.dns.refresh(&app.db);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "address": addr.to_string() })),
    )
        .into_response())
}

pub async fn delete_secondary(
    _admin: AdminUser,
    State(app): State<DnsApp>,
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
    app.dns.refresh(&app.db);
    Ok(Json(json!({ "deleted": true })))
}
