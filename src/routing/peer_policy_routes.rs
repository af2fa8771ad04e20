//! `/api/routing/peers`: each peer's policy (internet on/off, peer to peer on/off). A change is
//! stored with its audit entry, then the table is rebuilt; the answer does not wait for nft.

use axum::extract::State;
use serde_json::{json, Value};

use super::peer_policy::{self, PolicyChange};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::routing::RoutingApp;
use crate::validation::{object, Problems};

const TARGET: &str = "peer_policy";
const FIELDS: &[&str] = &["internet", "peer_to_peer"];
/// Longest peer name looked up: a DNS label, so 63; longer cannot be a peer.
const PEER_NAME_MAX: usize = 63;

pub async fn list(_admin: AdminUser, State(app): State<RoutingApp>) -> ApiResult<Json<Value>> {
    let peers = app.db.call(|conn| Ok(peer_policy::list(conn)?)).await?;
    Ok(Json(json!({ "peers": peers })))
}

/// The change a body asks for: `internet` and/or `peer_to_peer`, booleans, nothing else.
fn change_of(body: &Value) -> Result<PolicyChange, ApiError> {
    let mut p = Problems::default();
    let Some(map) = object(body, FIELDS, &mut p, "") else {
        return Err(p.into_error(""));
    };
    let mut flag = |key: &str| match map.get(key) {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            p.add(key, "must be true or false");
            None
        }
    };
    let change = PolicyChange {
        internet: flag("internet"),
        peer_to_peer: flag("peer_to_peer"),
    };
    if p.is_empty() && change == PolicyChange::default() {
        p.add("internet", "name internet, peer_to_peer or both");
    }
    p.into_result(change)
}

pub async fn update(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    audit: AuditCtx,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    if name.len() > PEER_NAME_MAX {
        let err = ApiError::not_found("peer");
        return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await);
    }
    let change = match change_of(&body) {
        Ok(change) => change,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, &name, json!({}), err).await),
    };
    let policy = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = name.clone();
            let now = crate::time::now_rfc3339();
            let policy = peer_policy::update(tx, &name, change, &now)?
                .ok_or_else(|| ApiError::not_found(format!("peer '{name}'")))?;
            entry.detail = json!({
                "internet": policy.internet, "peer_to_peer": policy.peer_to_peer,
            });
            Ok(policy)
        })
        .await?;
    app.routing.reconcile_soon(&app.db);
    Ok(Json(json!(policy)))
}
