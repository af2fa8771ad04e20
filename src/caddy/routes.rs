//! /api/caddy: TLS certificate status and renewal, and the extra sites Caddy proxies.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::config::Site;
use super::store;
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::caddy::CaddyApp;
use crate::cell::tls::{TlsMode, LETS_ENCRYPT};
use crate::error::{ApiError, ApiResult, Json, Path};

/// The certificate the cell's domain is served with. Internal mode: the one picd issued
/// from the cell's CA. Acme mode: the one Caddy obtained, read from Caddy's https side.
pub async fn cert_status(_admin: AdminUser, State(app): State<CaddyApp>) -> ApiResult<Json<Value>> {
    let (config, cert) = app
        .db
        .call(|conn| {
            let cert: Option<(String, String, String)> =
                rusqlite::OptionalExtension::optional(conn.query_row(
                    "SELECT hosts, not_after, issued_at FROM caddy_certificate WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                ))?;
            Ok((crate::cell::read_cell_config(conn)?, cert))
        })
        .await?;
    let config = config.ok_or_else(|| ApiError::not_found("cell config"))?;
    let domain = config.cell.domain;
    if config.tls.mode == TlsMode::Acme {
        let ca = match config.tls.acme_ca.as_str() {
            "" => LETS_ENCRYPT,
            ca => ca,
        };
        let mut status = json!({ "mode": "acme", "domain": domain, "acme_ca": ca });
        match super::served::fetch(&app.settings.caddy_https_listen, &domain).await {
            Ok(served) => {
                status["issued"] = json!(true);
                status["issuer"] = json!(served.issuer);
                status["hosts"] = json!(served.names);
                status["issued_at"] = json!(served.not_before);
                status["expires_at"] = json!(served.not_after);
                status["days_left"] = json!(served.days_left);
            }
            Err(reason) => {
                status["issued"] = json!(false);
                status["reason"] = json!(reason);
            }
        }
        return Ok(Json(status));
    }
    let Some((hosts, not_after, issued_at)) = cert else {
        return Ok(Json(
            json!({ "mode": "internal", "domain": domain, "issued": false }),
        ));
    };
    let days_left =
        crate::time::parse_rfc3339(&not_after).map(|t| (t - crate::time::now()).whole_days());
    Ok(Json(json!({
        "mode": "internal",
        "domain": domain,
        "issued": true,
        "hosts": serde_json::from_str::<Value>(&hosts).unwrap_or(Value::Null),
        "issuer": format!("{} cell root CA", config.cell.name),
        "issued_at": issued_at,
        "expires_at": not_after,
        "days_left": days_left,
    })))
}

/// Issues Caddy a new certificate from the cell's CA now (internal TLS). The new certificate
/// is stored with its audit entry in one transaction, then loaded into Caddy; when Caddy
/// cannot take it the answer is 503, and Caddy gets it as soon as it is back.
pub async fn cert_renew(
    _admin: AdminUser,
    State(app): State<CaddyApp>,
    audit: AuditCtx,
) -> ApiResult<Json<Value>> {
    let tls = app
        .db
        .call(|conn| super::driver::tls_settings(conn))
        .await?;
    if tls.mode == TlsMode::Acme {
        let err = ApiError::conflict(
            "acme_managed",
            "in acme mode Caddy obtains and renews the certificates itself",
        );
        return Err(audit
            .refuse(&app.db, "certificate", "caddy", json!({}), err)
            .await);
    }
    let (settings, vault) = (Arc::clone(&app.settings), app.vault.clone());
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "certificate".into();
            entry.target_id = "caddy".into();
            let hosts = super::driver::renew_certificate(tx, &vault, &settings)?;
            entry.detail = json!({ "hosts": hosts });
            Ok(())
        })
        .await?;
    app.caddy
        .apply(&app.db)
        .await
        .map_err(|e| ApiError::Unavailable {
            subsystem: "caddy",
            reason: format!("{e}; Caddy gets the new certificate when it is back"),
        })?;
    cert_status(AdminUser::trusted(), State(app)).await
}

pub async fn routes(_admin: AdminUser, State(app): State<CaddyApp>) -> ApiResult<Json<Value>> {
    let routes = app.db.call(|conn| Ok(store::routes(conn)?)).await?;
    Ok(Json(json!({ "routes": routes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRoute {
    host: String,
    upstream: String,
}

fn validate(body: &NewRoute) -> Result<Site, ApiError> {
    let mut fields = Vec::new();
    let host = crate::cell::domain_name(body.host.trim())
        .map_err(|m| fields.push(("host".to_string(), m)))
        .ok();
    let upstream = body.upstream.trim();
    let valid_upstream = upstream.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty()
            && p.parse::<u16>().is_ok_and(|p| p > 0)
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c))
    });
    if !valid_upstream {
        fields.push((
            "upstream".into(),
            "must be host:port of the backend, e.g. 127.0.0.1:8080".into(),
        ));
    }
    match (host, fields.is_empty()) {
        (Some(host), true) => Ok(Site {
            host,
            upstream: upstream.to_string(),
        }),
        _ => Err(ApiError::Invalid { fields }),
    }
}

pub async fn add_route(
    _admin: AdminUser,
    State(app): State<CaddyApp>,
    audit: AuditCtx,
    Json(body): Json<NewRoute>,
) -> ApiResult<Response> {
    let site = match validate(&body) {
        Ok(s) => s,
        Err(err) => {
            return Err(audit
                .refuse(&app.db, "caddy_route", "", json!({}), err)
                .await)
        }
    };
    let stored = site.clone();
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "caddy_route".into();
            entry.target_id = stored.host.clone();
            entry.detail = json!({ "upstream": stored.upstream });
            store::add_route(tx, &stored)
        })
        .await?;
    app.request_reconcile();
    Ok((StatusCode::CREATED, Json(json!(site))).into_response())
}

pub async fn delete_route(
    _admin: AdminUser,
    State(app): State<CaddyApp>,
    audit: AuditCtx,
    Path(host): Path<String>,
) -> ApiResult<Json<Value>> {
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "caddy_route".into();
            entry.target_id = host.clone();
            store::delete_route(tx, &host.to_ascii_lowercase())
        })
        .await?;
    app.request_reconcile();
    Ok(Json(json!({ "deleted": true })))
}
