//! `/api/routing/firewall`, `/api/routing/rate-limits` and `/api/routing/ip-list`: the
//! owner's firewall rules, rate-limit rules on the cell's ports and IP allow/block lists. Each change is stored with its audit entry, then the table is rebuilt;
//! the answer does not wait for nft (a cell without CAP_NET_ADMIN still records the change).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use std::collections::HashMap;

use super::input::{NewIpEntry, NewRule};
use super::rate_limits::{self, NewRateLimit, RateLimit};
use super::render::Counter;
use super::store::{self, FirewallRule};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routing::RoutingApp;

const RULE: &str = "firewall_rule";
const ENTRY: &str = "ip_list_entry";
const RATE_LIMIT: &str = "rate_limit_rule";
/// Longest id accepted in a path: a UUID, or a system rule's name.
const ID_MAX: usize = 64;

fn rule_json(rule: &store::FirewallRule, counter: super::render::Counter, applied: bool) -> Value {
    let mut value = serde_json::to_value(rule).unwrap_or_else(|_| json!({}));
    value["packets_total"] = json!(counter.packets);
    value["bytes_total"] = json!(counter.bytes);
    value["status"] = json!(if applied { "active" } else { "pending_add" });
    value
}

pub async fn list_rules(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
) -> ApiResult<Json<Value>> {
    let rules = app.db.call(|conn| Ok(store::list_rules(conn)?)).await?;
    let counters = app.routing.counters();
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            let counter = counters.get(&r.id);
            rule_json(r, counter.copied().unwrap_or_default(), counter.is_some())
        })
        .collect();
    Ok(Json(json!({ "rules": rules })))
}

pub async fn create_rule(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    audit: AuditCtx,
    Json(body): Json<NewRule>,
) -> ApiResult<Response> {
    let rule = match body.validate() {
        Ok(rule) => rule,
        Err(err) => return Err(audit.refuse(&app.db, RULE, "", json!({}), err).await),
    };
    insert_firewall_rule(&app, audit, rule).await
}

/// Stores a validated firewall rule with its audit entry (409 for a duplicate) and rebuilds
/// the table; the 201 answer.
pub(super) async fn insert_firewall_rule(
    app: &RoutingApp,
    audit: AuditCtx,
    rule: FirewallRule,
) -> ApiResult<Response> {
    let detail = json!({
        "name": rule.name, "chain": rule.chain, "protocol": rule.protocol,
        "port_start": rule.port_start, "port_end": rule.port_end, "action": rule.action,
    });
    let row = NewRow {
        target_type: RULE,
        id: rule.id.clone(),
        detail,
        duplicate: "the same rule exists already",
    };
    let stored = rule.clone();
    insert_row(app, audit, row, move |tx| store::insert_rule(tx, &stored)).await?;
    let body = rule_json(&rule, Default::default(), false);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A row a POST adds: what its audit entry names, and the message of a 409 for a duplicate.
struct NewRow {
    target_type: &'static str,
    id: String,
    detail: Value,
    duplicate: &'static str,
}

/// Stores a validated row with its audit entry (409 `already_exists` when `insert` hits a
/// unique constraint) and rebuilds the table.
async fn insert_row(
    app: &RoutingApp,
    audit: AuditCtx,
    row: NewRow,
    insert: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()> + Send + 'static,
) -> ApiResult<()> {
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = row.target_type.into();
            entry.target_id = row.id;
            entry.detail = row.detail;
            insert(tx).map_err(|e| crate::db::conflict_on_unique(e, row.duplicate))
        })
        .await?;
    app.routing.reconcile_soon(&app.db);
    Ok(())
}

pub async fn delete_rule(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    audit: AuditCtx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if id.len() > ID_MAX {
        return Err(ApiError::not_found("firewall rule"));
    }
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = RULE.into();
            entry.target_id = id.clone();
            match store::rule_is_system(tx, &id)? {
                None => Err(ApiError::not_found("firewall rule")),
                Some(true) => Err(ApiError::forbidden(
                    "system_rule",
                    "a system rule cannot be deleted",
                )),
                Some(false) => {
                    store::delete_rule(tx, &id)?;
                    Ok(())
                }
            }
        })
        .await?;
    app.routing.reconcile_soon(&app.db);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(rename = "type", default)]
    list_type: Option<String>,
}

pub async fn list_ip_entries(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    if let Some(t) = query.list_type.as_deref() {
        if t != "blacklist" && t != "whitelist" {
            return Err(ApiError::invalid("type", "must be blacklist or whitelist"));
        }
    }
    let entries = app
        .db
        .call(move |conn| {
            let now = crate::time::now_rfc3339();
            Ok(store::list_ip_entries(
                conn,
                query.list_type.as_deref(),
                &now,
            )?)
        })
        .await?;
    Ok(Json(json!({ "entries": entries })))
}

pub async fn create_ip_entry(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    audit: AuditCtx,
    Json(body): Json<NewIpEntry>,
) -> ApiResult<Response> {
    let new = match body.validate() {
        Ok(entry) => entry,
        Err(err) => return Err(audit.refuse(&app.db, ENTRY, "", json!({}), err).await),
    };
    let row = NewRow {
        target_type: ENTRY,
        id: new.id.clone(),
        detail: json!({
            "list_type": new.list_type, "ip_address": new.ip_address,
            "expires_at": new.expires_at,
        }),
        duplicate: "this address is on that list already",
    };
    let stored = new.clone();
    insert_row(&app, audit, row, move |tx| {
        store::insert_ip_entry(tx, &stored)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(&new).unwrap_or_default()),
    )
        .into_response())
}

pub async fn delete_ip_entry(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    audit: AuditCtx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    delete_row(
        &app,
        audit,
        (ENTRY, "IP list entry"),
        id,
        store::delete_ip_entry,
    )
    .await
}

/// Deletes one row by id with its audit entry (404 naming `what` when there is none), then
/// rebuilds the table.
async fn delete_row(
    app: &RoutingApp,
    audit: AuditCtx,
    (target_type, what): (&'static str, &'static str),
    id: String,
    delete: fn(&rusqlite::Connection, &str) -> rusqlite::Result<usize>,
) -> ApiResult<StatusCode> {
    if id.len() > ID_MAX {
        return Err(ApiError::not_found(what));
    }
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = target_type.into();
            entry.target_id = id.clone();
            match delete(tx, &id)? {
                0 => Err(ApiError::not_found(what)),
                _ => Ok(()),
            }
        })
        .await?;
    app.routing.reconcile_soon(&app.db);
    Ok(StatusCode::NO_CONTENT)
}

fn rate_limit_json(rule: &RateLimit, counters: &HashMap<String, Counter>) -> Value {
    let lookup = |key: &str| counters.get(key).copied().unwrap_or_default();
    let dropped = rate_limits::dropped(rule, &lookup);
    let loaded = ["block", "source4", "port"]
        .iter()
        .any(|part| counters.contains_key(&rate_limits::comment(&rule.id, part)));
    let mut value = serde_json::to_value(rule).unwrap_or_else(|_| json!({}));
    value["packets_dropped"] = json!(dropped.packets);
    value["bytes_dropped"] = json!(dropped.bytes);
    value["status"] = json!(if loaded { "loaded" } else { "pending_load" });
    value
}

pub async fn list_rate_limits(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
) -> ApiResult<Json<Value>> {
    let rules = app.db.call(|conn| Ok(rate_limits::list(conn)?)).await?;
    let counters = app.routing.counters();
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| rate_limit_json(r, &counters))
        .collect();
    Ok(Json(json!({ "rules": rules })))
}

pub async fn create_rate_limit(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    audit: AuditCtx,
    Json(body): Json<NewRateLimit>,
) -> ApiResult<Response> {
    let rule = match body.validate() {
        Ok(rule) => rule,
        Err(err) => return Err(audit.refuse(&app.db, RATE_LIMIT, "", json!({}), err).await),
    };
    insert_rate_limit(&app, audit, rule).await
}

/// Stores a validated rate-limit rule with its audit entry (409 for a second rule on the same
/// ports) and rebuilds the table; the 201 answer.
pub(super) async fn insert_rate_limit(
    app: &RoutingApp,
    audit: AuditCtx,
    rule: RateLimit,
) -> ApiResult<Response> {
    let row = NewRow {
        target_type: RATE_LIMIT,
        id: rule.id.clone(),
        detail: json!({
            "name": rule.name, "protocol": rule.protocol,
            "port_start": rule.port_start, "port_end": rule.port_end,
            "rule_type": rule.rule_type, "max_pps": rule.max_pps,
            "max_port_pps": rule.max_port_pps,
        }),
        duplicate: "a rate-limit rule on these ports exists already",
    };
    let stored = rule.clone();
    insert_row(app, audit, row, move |tx| rate_limits::insert(tx, &stored)).await?;
    let body = rate_limit_json(&rule, &HashMap::new());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn delete_rate_limit(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    audit: AuditCtx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    delete_row(
        &app,
        audit,
        (RATE_LIMIT, "rate-limit rule"),
        id,
        rate_limits::delete,
    )
    .await
}

/// The domain's routes, for any router whose state holds this domain's.
pub fn router<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    RoutingApp: axum::extract::FromRef<S>,
{
    use axum::routing::{delete, get, put};
    axum::Router::new()
        .route("/api/routing/firewall", get(list_rules).post(create_rule))
        .route("/api/routing/firewall/{id}", delete(delete_rule))
        .route(
            "/api/routing/ip-list",
            get(list_ip_entries).post(create_ip_entry),
        )
        .route("/api/routing/ip-list/{id}", delete(delete_ip_entry))
        .route(
            "/api/routing/rate-limits",
            get(list_rate_limits).post(create_rate_limit),
        )
        .route("/api/routing/rate-limits/{id}", delete(delete_rate_limit))
        .route("/api/routing/peers", get(super::peer_policy_routes::list))
        .route(
            "/api/routing/peers/{peer}",
            put(super::peer_policy_routes::update),
        )
        .route("/api/routing/templates", get(super::templates::list))
        .route("/api/routing/metrics", get(super::metrics_routes::history))
        .route(
            "/api/routing/metrics/summary",
            get(super::metrics_routes::summary),
        )
        .route(
            "/api/routing/templates/{id}/apply",
            axum::routing::post(super::templates::apply),
        )
}
