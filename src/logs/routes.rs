//! GET /api/logs, GET /api/logs/search, GET/PUT /api/logs/verbosity (admin).

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Query};
use crate::state::Core;

const DEFAULT_LINES: usize = 200;
const MAX_LINES: usize = 5000;
/// Levels accepted per service in PUT /api/logs/verbosity.
const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recent {
    service: Option<String>,
    lines: Option<usize>,
}

pub async fn recent(_admin: AdminUser, Query(query): Query<Recent>) -> ApiResult<Json<Value>> {
    let lines = query.lines.unwrap_or(DEFAULT_LINES);
    if !(1..=MAX_LINES).contains(&lines) {
        return Err(ApiError::invalid(
            "lines",
            format!("must be from 1 to {MAX_LINES}"),
        ));
    }
    Ok(Json(
        json!({ "lines": super::recent(lines, query.service.as_deref(), None) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    q: String,
    service: Option<String>,
    lines: Option<usize>,
}

pub async fn search(_admin: AdminUser, Query(query): Query<Search>) -> ApiResult<Json<Value>> {
    if query.q.trim().is_empty() || query.q.len() > 200 {
        return Err(ApiError::invalid(
            "q",
            "give 1 to 200 characters to search for",
        ));
    }
    let lines = query.lines.unwrap_or(DEFAULT_LINES).clamp(1, MAX_LINES);
    Ok(Json(
        json!({ "lines": super::recent(lines, query.service.as_deref(), Some(query.q.trim())) }),
    ))
}

pub async fn verbosity(_admin: AdminUser) -> Json<Value> {
    Json(json!({ "filter": super::verbosity() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetVerbosity {
    /// A whole filter (`info,picd::dns=debug`), or...
    filter: Option<String>,
    /// ...a default level and per-service levels: {"level": "info", "services": {"dns": "debug"}}.
    level: Option<String>,
    #[serde(default)]
    services: std::collections::BTreeMap<String, String>,
}

fn filter_from(body: &SetVerbosity) -> Result<String, ApiError> {
    if let Some(filter) = &body.filter {
        return Ok(filter.trim().to_string());
    }
    let level = body.level.clone().unwrap_or_else(|| "info".into());
    let mut fields = Vec::new();
    if !LEVELS.contains(&level.as_str()) {
        fields.push((
            "level".to_string(),
            format!("must be one of {}", LEVELS.join(", ")),
        ));
    }
    let mut parts = vec![level];
    for (service, service_level) in &body.services {
        let valid_name =
            !service.is_empty() && service.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if !valid_name || !LEVELS.contains(&service_level.as_str()) {
            fields.push((
                format!("services.{service}"),
                format!("must be a service name with one of {}", LEVELS.join(", ")),
            ));
        } else {
            parts.push(format!("picd::{service}={service_level}"));
        }
    }
    if fields.is_empty() {
        Ok(parts.join(","))
    } else {
        Err(ApiError::Invalid { fields })
    }
}

pub async fn set_verbosity(
    _admin: AdminUser,
    State(app): State<Core>,
    audit: AuditCtx,
    Json(body): Json<SetVerbosity>,
) -> ApiResult<Json<Value>> {
    let filter = match filter_from(&body).and_then(|f| {
        if f.is_empty() || f.len() > 500 {
            return Err(ApiError::invalid(
                "filter",
                "must be a log filter such as info or info,picd::dns=debug",
            ));
        }
        Ok(f)
    }) {
        Ok(f) => f,
        Err(err) => {
            return Err(audit
                .refuse(&app.db, "logs", "verbosity", json!({}), err)
                .await)
        }
    };
    let previous = super::verbosity();
    if let Err(message) = super::set_verbosity(&filter) {
        let err = ApiError::invalid("filter", message);
        return Err(audit
            .refuse(&app.db, "logs", "verbosity", json!({}), err)
            .await);
    }
    let detail = json!({ "from": previous, "to": filter });
    audit
        .transact(&app.db, move |_tx, entry| {
            entry.target_type = "logs".into();
            entry.target_id = "verbosity".into();
            entry.detail = detail;
            Ok(())
        })
        .await?;
    Ok(Json(json!({ "filter": super::verbosity() })))
}
