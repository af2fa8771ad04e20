//! `/api/connectivity/peers`: each peer's exit (a connection, or direct) and whether it goes
//! direct while its exit is down (fail-open; off by default: a peer whose exit is down gets
//! no internet rather than leaking through the cell's uplink). A change is stored with its
//! audit entry, then the table is rebuilt; moving a peer is one element of the next table.

use axum::extract::State;
use serde_json::{json, Value};

use super::store;
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::connectivity::ConnectivityApp;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::validation::{object, Problems};

const TARGET: &str = "peer_exit";
/// Longest peer name looked up: a DNS label, so 63; longer cannot be a peer.
const PEER_NAME_MAX: usize = 63;
const ID_MAX: usize = 64;

/// Each peer with its exit, and its traffic through that exit as the table's counters last
/// read back (null for a direct peer, or an exit whose traffic is not counted).
pub async fn list(_admin: AdminUser, State(app): State<ConnectivityApp>) -> ApiResult<Json<Value>> {
    let peers = app.db.call(|conn| Ok(store::peer_exits(conn)?)).await?;
    let counters = app.routing.counters();
    let peers: Vec<Value> = peers
        .into_iter()
        .map(|p| {
            let traffic = p
                .connection
                .as_deref()
                .and_then(|c| super::traffic::sum(&counters, &p.peer, c));
            let mut value = json!(p);
            value["traffic"] = json!(traffic);
            value
        })
        .collect();
    Ok(Json(json!({ "peers": peers })))
}

/// The one field a body must have, and nothing else.
fn only_field<'a>(body: &'a Value, key: &str) -> Result<&'a Value, ApiError> {
    let mut p = Problems::default();
    let Some(map) = object(body, &[key], &mut p, "") else {
        return Err(p.into_error(""));
    };
    match map.get(key) {
        Some(value) if p.is_empty() => Ok(value),
        Some(_) => Err(p.into_error("")),
        None => {
            p.add(key, "is required");
            Err(p.into_error(""))
        }
    }
}

/// What changes: the exit (Some(None) is direct) or the fail-open flag.
enum Change {
    Exit(Option<String>),
    FailOpen(bool),
}

pub async fn set_exit(
    admin: AdminUser,
    State(app): State<ConnectivityApp>,
    audit: AuditCtx,
    Path(peer): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let change = only_field(&body, "connection").and_then(|v| match v {
        Value::Null => Ok(Change::Exit(None)),
        Value::String(id) if !id.is_empty() && id.len() <= ID_MAX => {
            Ok(Change::Exit(Some(id.clone())))
        }
        _ => Err(ApiError::invalid(
            "connection",
            "must be a connection's id, or null for direct",
        )),
    });
    apply(admin, app, audit, peer, change).await
}

pub async fn set_fail_open(
    admin: AdminUser,
    State(app): State<ConnectivityApp>,
    audit: AuditCtx,
    Path(peer): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let change = only_field(&body, "fail_open").and_then(|v| match v {
        Value::Bool(b) => Ok(Change::FailOpen(*b)),
        _ => Err(ApiError::invalid("fail_open", "must be true or false")),
    });
    apply(admin, app, audit, peer, change).await
}

async fn apply(
    _admin: AdminUser,
    app: ConnectivityApp,
    audit: AuditCtx,
    peer: String,
    change: Result<Change, ApiError>,
) -> ApiResult<Json<Value>> {
    if peer.len() > PEER_NAME_MAX {
        let err = ApiError::not_found("peer");
        return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await);
    }
    let change = match change {
        Ok(change) => change,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, &peer, json!({}), err).await),
    };
    let moves = matches!(change, Change::Exit(_));
    let exit = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = peer.clone();
            let not_found = || ApiError::not_found(format!("peer '{peer}'"));
            let current = store::peer_exit(tx, &peer)?.ok_or_else(not_found)?;
            let (connection, fail_open) = match change {
                Change::Exit(connection) => (connection, current.fail_open),
                Change::FailOpen(fail_open) => (current.connection, fail_open),
            };
            if let Some(id) = &connection {
                if store::get(tx, id)?.is_none() {
                    return Err(ApiError::invalid("connection", "no such connection"));
                }
            }
            entry.detail = json!({ "connection": connection, "fail_open": fail_open });
            let now = crate::time::now_rfc3339();
            store::set_peer_exit(tx, &peer, connection.as_deref(), fail_open, &now)?
                .ok_or_else(not_found)
        })
        .await?;
    // A new exit: the peer's old flows go, so none keeps its old way out.
    let moved = match moves {
        true => vec![exit.address_v4.clone(), exit.address_v6.clone()],
        false => Vec::new(),
    };
    super::passes::apply_then_flush(&app, moved);
    Ok(Json(json!(exit)))
}
