//! GET /health (public), GET /api/status, GET /api/health/history, and
//! POST /api/status/storage/acknowledge.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Query};
use crate::health::HealthApp;

/// Public and cheap: whether picd answers and its database is reachable. Says nothing about
/// the cell beyond whether setup is pending.
pub async fn health(State(app): State<HealthApp>) -> ApiResult<Json<Value>> {
    let setup_complete = app.setup.is_complete(&app.db).await?;
    Ok(Json(
        json!({ "status": "ok", "setup_complete": setup_complete }),
    ))
}

pub async fn status(_admin: AdminUser, State(app): State<HealthApp>) -> ApiResult<Json<Value>> {
    let config = app
        .db
        .call(|conn| crate::cell::read_cell_config(conn))
        .await?;
    let subsystems = app.drivers.statuses().await;
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": app.started.elapsed().as_secs(),
        "cell": config.map(|c| json!({ "name": c.cell.name, "domain": c.cell.domain })),
        "overall": super::overall(&subsystems),
        "subsystems": subsystems,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    limit: Option<u32>,
}

pub async fn history(
    _admin: AdminUser,
    State(app): State<HealthApp>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    let entries = app
        .db
        .call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT time, overall, subsystems FROM health_history ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                let subsystems: String = r.get(2)?;
                Ok(json!({
                    "time": r.get::<_, String>(0)?,
                    "overall": r.get::<_, String>(1)?,
                    "subsystems": serde_json::from_str::<Value>(&subsystems).unwrap_or(Value::Null),
                }))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(json!({ "entries": entries })))
}

/// The owner accepts degraded storage as it is, and changes are allowed again
/// (src/health/write_guard.rs); `acknowledged` is false when the storage was whole. Audited
/// like every change: the entry records that the owner chose to carry on.
pub async fn acknowledge_storage(
    _admin: AdminUser,
    audit: AuditCtx,
    State(app): State<HealthApp>,
) -> ApiResult<Json<Value>> {
    let degraded = app.storage.degraded();
    audit
        .transact(&app.db, move |_tx, entry| {
            entry.action = "storage.acknowledge".into();
            entry.target_type = "storage".into();
            entry.target_id = "database".into();
            entry.detail = json!({ "degraded": degraded });
            Ok(())
        })
        .await?;
    let guard = app.storage.clone();
    let acknowledged = tokio::task::spawn_blocking(move || guard.acknowledge())
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    Ok(Json(json!({ "acknowledged": acknowledged })))
}
