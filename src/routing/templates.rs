//! `GET /api/routing/templates` and `POST /api/routing/templates/{id}/apply`: a few
//! protections an owner asks for by name, each made of the same rules the firewall and
//! rate-limit routes create (so they are listed, counted and deleted like any other), applied
//! with one call that may name the port.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::input::NewRule;
use super::rate_limits::NewRateLimit;
use super::routes::{insert_firewall_rule, insert_rate_limit};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::routing::RoutingApp;

#[derive(Serialize)]
pub struct Template {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub category: &'static str,
    /// `firewall` (a rule of /api/routing/firewall) or `rate_limit` (/api/routing/rate-limits).
    pub kind: &'static str,
    pub protocol: &'static str,
    /// The port it protects when the call names none; None: the call must name one.
    pub default_port: Option<u16>,
    pub risk: &'static str,
}

pub const TEMPLATES: &[Template] = &[
    Template {
        id: "ssh-brute-force",
        title: "SSH brute-force limit",
        description: "New SSH connections over 5 a minute are dropped (established ones are \
                      not touched).",
        category: "Infrastructure",
        kind: "firewall",
        protocol: "tcp",
        default_port: Some(22),
        risk: "low",
    },
    Template {
        id: "block-database-port",
        title: "Block a database port",
        description: "Drops every packet to a database port (PostgreSQL's by default) before \
                      connection tracking, from every source.",
        category: "Database",
        kind: "rate_limit",
        protocol: "tcp",
        default_port: Some(5432),
        risk: "low",
    },
    Template {
        id: "allow-only-listed",
        title: "Allow only listed addresses on a port",
        description: "Only the addresses on the whitelist reach the port; everyone else's \
                      packets are dropped.",
        category: "Infrastructure",
        kind: "rate_limit",
        protocol: "tcp",
        default_port: None,
        risk: "medium",
    },
    Template {
        id: "udp-flood",
        title: "UDP flood shield",
        description: "Each source may send 500 packets a second to the port and all sources \
                      together 5,000; the rest is dropped.",
        category: "Gaming",
        kind: "rate_limit",
        protocol: "udp",
        default_port: None,
        risk: "low",
    },
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    category: Option<String>,
}

pub async fn list(_admin: AdminUser, Query(query): Query<ListQuery>) -> Json<Value> {
    let templates: Vec<&Template> = TEMPLATES
        .iter()
        .filter(|t| query.category.as_deref().is_none_or(|c| t.category == c))
        .collect();
    Json(json!({ "templates": templates }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    #[serde(default)]
    port: Option<u16>,
}

pub async fn apply(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    audit: AuditCtx,
    Path(id): Path<String>,
    Json(body): Json<ApplyBody>,
) -> ApiResult<Response> {
    let Some(template) = TEMPLATES.iter().find(|t| t.id == id) else {
        return Err(ApiError::not_found("template"));
    };
    let rule = match plan(template, body.port) {
        Ok(rule) => rule,
        Err(err) => return Err(audit.refuse(&app.db, "template", &id, json!({}), err).await),
    };
    match rule {
        Planned::Firewall(rule) => insert_firewall_rule(&app, audit, rule).await,
        Planned::RateLimit(rule) => insert_rate_limit(&app, audit, rule).await,
    }
}

enum Planned {
    Firewall(super::store::FirewallRule),
    RateLimit(super::rate_limits::RateLimit),
}

/// The rule a template makes for `port` (or its default port), validated like any other.
fn plan(template: &Template, port: Option<u16>) -> Result<Planned, ApiError> {
    let port = match port.or(template.default_port) {
        Some(0) => return Err(ApiError::invalid("port", "must be 1 to 65535")),
        Some(port) => port,
        None => return Err(ApiError::invalid("port", "this template needs a port")),
    };
    let name = format!("{} ({port})", template.title);
    if template.kind == "firewall" {
        let rule = NewRule::limit_new_connections(name, template.protocol, port, 5, "minute");
        return Ok(Planned::Firewall(rule.validate()?));
    }
    let (rule_type, max_pps, max_port_pps) = match template.id {
        "udp-flood" => ("rate_limit", Some(500), Some(5000)),
        "allow-only-listed" => ("allow_only", None, None),
        _ => ("block", None, None),
    };
    let rule = NewRateLimit {
        name,
        protocol: Some(template.protocol.into()),
        port_start: Some(port),
        port_end: None,
        rule_type: rule_type.into(),
        max_pps,
        max_port_pps,
    };
    Ok(Planned::RateLimit(rule.validate()?))
}
