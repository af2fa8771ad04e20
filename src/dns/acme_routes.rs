//! ACME DNS-01 challenge records under /api/dns/acme: present, clean up, and sweep the stale.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::input;
use super::store;
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::dns::DnsApp;
use crate::error::{ApiError, ApiResult, Json};

/// TTL of ACME challenge records: short, they live for minutes.
const ACME_TTL: u32 = 60;
const DEFAULT_STALE_MINUTES: u32 = 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    /// The domain being validated (`_acme-challenge.` is prepended) or the full record name.
    domain: String,
    value: Option<String>,
}

fn challenge_name(domain: &str) -> String {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.starts_with("_acme-challenge.") {
        format!("{d}.")
    } else {
        format!("_acme-challenge.{d}.")
    }
}

/// The zone holding a name: the longest zone name it ends with.
fn zone_of(conn: &rusqlite::Connection, name: &str) -> ApiResult<String> {
    store::zones(conn)?
        .into_iter()
        .map(|z| z.name)
        .filter(|z| name.ends_with(&format!(".{z}")) || name == z)
        .max_by_key(String::len)
        .ok_or_else(|| ApiError::not_found(format!("a zone for {name}")))
}

fn acme_value(value: Option<&str>) -> ApiResult<String> {
    let value = value.map(str::trim).unwrap_or_default();
    // Key authorisation digests are base64url (43 characters); accept that alphabet only.
    if value.is_empty()
        || value.len() > 512
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid(
            "value",
            "must be the base64url challenge digest",
        ));
    }
    Ok(value.to_string())
}

pub async fn acme_present(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Json(body): Json<Challenge>,
) -> ApiResult<Response> {
    let name = challenge_name(&body.domain);
    let value = match acme_value(body.value.as_deref()) {
        Ok(v) => v,
        Err(err) => {
            return Err(audit
                .refuse(&app.db, "dns_acme", &name, json!({}), err)
                .await)
        }
    };
    let row = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_acme".into();
            entry.target_id = name.clone();
            let zone = zone_of(tx, &name)?;
            let zone_row = store::require_zone(tx, &zone)?;
            let input = input::RecordInput {
                name: name.clone(),
                rtype: "TXT".into(),
                ttl: Some(ACME_TTL),
                data: format!("\"{value}\""),
                view: Some("public".into()),
            };
            let (record, view) = input::record(&zone_row, &input)?;
            let row = store::insert_record(tx, &zone, &record, &view)?;
            store::bump_serial(tx, &zone)?;
            entry.detail = json!({ "zone": zone });
            Ok(row)
        })
        .await?;
    app.dns.refresh(&app.db);
    Ok((StatusCode::CREATED, Json(json!(row))).into_response())
}

pub async fn acme_cleanup(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Json(body): Json<Challenge>,
) -> ApiResult<Json<Value>> {
    let name = challenge_name(&body.domain);
    let value = body
        .value
        .as_deref()
        .map(|v| acme_value(Some(v)))
        .transpose()?;
    let removed = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_acme".into();
            entry.target_id = name.clone();
            let zone = zone_of(tx, &name)?;
            let mut removed = 0;
            for row in store::records(tx, &zone)? {
                let matches = row.name == name
                    && row.rtype == "TXT"
                    && value
                        .as_ref()
                        .is_none_or(|v| row.data == format!("\"{v}\""));
                if matches {
                    removed += store::delete_record(tx, &row.id)?;
                }
            }
            if removed > 0 {
                store::bump_serial(tx, &zone)?;
            }
            entry.detail = json!({ "removed": removed });
            Ok(removed)
        })
        .await?;
    app.dns.refresh(&app.db);
    Ok(Json(json!({ "removed": removed })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Stale {
    max_age_minutes: Option<u32>,
    #[serde(default)]
    dry_run: bool,
}

/// Removes challenge records older than `max_age_minutes` (default 60); `dry_run` only lists.
pub async fn acme_cleanup_stale(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Json(body): Json<Stale>,
) -> ApiResult<Json<Value>> {
    let minutes = body.max_age_minutes.unwrap_or(DEFAULT_STALE_MINUTES);
    let cutoff = crate::time::format_rfc3339(
        crate::time::now() - time::Duration::minutes(i64::from(minutes)),
    );
    let dry_run = body.dry_run;
    let stale = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_acme".into();
            let mut stale = Vec::new();
            for zone in store::zones(tx)? {
                let mut removed = false;
                for row in store::records(tx, &zone.name)? {
                    if row.name.starts_with("_acme-challenge.")
                        && row.rtype == "TXT"
                        && row.created_at < cutoff
                    {
                        if !dry_run {
                            store::delete_record(tx, &row.id)?;
                            removed = true;
                        }
                        stale.push(
                            json!({ "id": row.id, "name": row.name, "created_at": row.created_at }),
                        );
                    }
                }
                if removed {
                    store::bump_serial(tx, &zone.name)?;
                }
            }
            entry.detail =
                json!({ "dry_run": dry_run, "records": stale.len(), "max_age_minutes": minutes });
            Ok(stale)
        })
        .await?;
    if !dry_run {
        app.dns.refresh(&app.db);
    }
    Ok(Json(json!({ "dry_run": dry_run, "stale": stale })))
}
