//! POST and PUT of a `tor` connection (the connectivity routes dispatch here on the type). A
//! tor connection holds only its name: picd chooses its ports and files; there is no secret.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{TorSettings, TYPE_TOR};
use crate::audit::AuditCtx;
use crate::connectivity::store::{self, ConnectionSettings};
use crate::connectivity::ConnectivityApp;
use crate::error::{ApiError, ApiResult, Json};
use crate::validation::{object, Problems};

const TARGET: &str = "connection";
const FIELDS: [&str; 2] = ["name", "type"];

/// Whether a new connection's body asks for a tor exit (the routes dispatch on it).
pub fn asks_for_tor(body: &Value) -> bool {
    body.get("type").and_then(Value::as_str) == Some(TYPE_TOR)
}

/// The name a body gives (required when `creating`); the type, when given, must be tor.
fn read(body: &Value, creating: bool) -> Result<Option<String>, ApiError> {
    let mut p = Problems::default();
    let Some(map) = object(body, &FIELDS, &mut p, "") else {
        return Err(p.into_error(""));
    };
    match map.get("type") {
        None if creating => p.add("type", "is required"),
        Some(Value::String(t)) if t == TYPE_TOR => {}
        None => {}
        Some(_) => p.add(
            "type",
            "cannot change: delete the connection and add a new one",
        ),
    }
    let name = match map.get("name") {
        None if creating => {
            p.add("name", "is required");
            None
        }
        None => {
            p.add(
                "name",
                "name a new name (a tor connection has nothing else)",
            );
            None
        }
        Some(Value::String(n)) => match crate::connectivity::routes::valid_name(n.trim()) {
            Ok(n) => Some(n),
            Err(e) => {
                p.add("name", e);
                None
            }
        },
        Some(_) => {
            p.add("name", "must be a string");
            None
        }
    };
    p.into_result(name)
}

pub async fn create(app: ConnectivityApp, audit: AuditCtx, body: Value) -> ApiResult<Response> {
    let name = match read(&body, true) {
        Ok(name) => name.unwrap_or_default(),
        Err(err) => return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await),
    };
    let row = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            let settings = ConnectionSettings::Tor(TorSettings::default());
            let row = store::new_row(tx, name, TYPE_TOR, settings)?;
            entry.target_id = row.id.clone();
            entry.detail = json!({ "name": row.name, "type": row.kind, "slot": row.slot });
            store::insert_row(tx, &row)?;
            Ok(row)
        })
        .await?;
    crate::connectivity::passes::apply_soon(&app);
    let body = crate::connectivity::routes::connection_json(&app, &row, &[]);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// PUT on an existing tor connection: a new name.
pub async fn update(
    app: ConnectivityApp,
    audit: AuditCtx,
    id: String,
    body: Value,
) -> ApiResult<Json<Value>> {
    let name = match read(&body, false) {
        Ok(name) => name,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, &id, json!({}), err).await),
    };
    let (row, users) = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = id.clone();
            let mut row = store::get(tx, &id)?
                .ok_or_else(|| ApiError::not_found(format!("connection '{id}'")))?;
            row.name = name.unwrap_or(row.name);
            row.updated_at = crate::time::now_rfc3339();
            entry.detail = json!({ "name": row.name, "type": row.kind });
            store::update_row(tx, &row)?;
            let users = store::users(tx, &row.id)?;
            Ok((row, users))
        })
        .await?;
    crate::connectivity::passes::apply_soon(&app);
    Ok(Json(crate::connectivity::routes::connection_json(
        &app, &row, &users,
    )))
}
