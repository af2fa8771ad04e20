//! GET/PUT /api/config: the cell's settings. PUT takes exactly what GET returns, so a round
//! trip changes nothing; the read-only fields (`setup_completed_at`, `updated_at`) are ignored.

use axum::extract::State;
use serde_json::{json, Value};

use super::store::{self, CellConfig};
use super::tls::{self, TlsSettings};
use super::{dns_settings, settings, CellSettings, DnsSettings};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json};
use crate::state::Core;
use crate::validation::{self, Problems};

const READ_ONLY: &[&str] = &["setup_completed_at", "updated_at"];

fn render(config: &CellConfig, completed_at: Option<String>) -> Value {
    json!({
        "cell": config.cell,
        "dns": config.dns,
        "tls": config.tls,
        "setup_completed_at": completed_at,
        "updated_at": config.updated_at,
    })
}

fn current_in(conn: &rusqlite::Connection) -> ApiResult<Value> {
    let config =
        store::read_cell_config(conn)?.ok_or_else(|| ApiError::not_found("cell config"))?;
    Ok(render(&config, store::setup_completed_at(conn)?))
}

pub async fn get(_admin: AdminUser, State(app): State<Core>) -> ApiResult<Json<Value>> {
    Ok(Json(app.db.call(|conn| current_in(conn)).await?))
}

/// The sections of PUT /api/config, validated.
struct Sections {
    cell: CellSettings,
    dns: DnsSettings,
    tls: TlsSettings,
}

fn parse(body: &Value, own_listeners: &[std::net::SocketAddr]) -> Result<Sections, ApiError> {
    let mut allowed = vec!["cell", "dns", "tls"];
    allowed.extend_from_slice(READ_ONLY);
    let mut problems = Problems::default();
    let Some(map) = validation::object(body, &allowed, &mut problems, "") else {
        return Err(problems.into_error(""));
    };
    let mut fields = Vec::new();
    let cell = settings::cell_step(map.get("cell").unwrap_or(&Value::Null), "cell.");
    let dns = dns_settings::dns_step(
        map.get("dns").unwrap_or(&Value::Null),
        "dns.",
        own_listeners,
    );
    let domain = cell.as_ref().ok().map(|c| c.domain.as_str());
    let tls = tls::tls_step(map.get("tls").unwrap_or(&Value::Null), "tls.", domain);
    for result in [cell.as_ref().err(), dns.as_ref().err(), tls.as_ref().err()]
        .into_iter()
        .flatten()
    {
        if let ApiError::Invalid { fields: f } = result {
            fields.extend(f.iter().cloned());
        }
    }
    problems.into_result(())?;
    match (cell, dns, tls) {
        (Ok(cell), Ok(dns), Ok(tls)) => Ok(Sections { cell, dns, tls }),
        _ => Err(ApiError::Invalid { fields }),
    }
}

fn changed_fields(old: &CellConfig, new: &Sections) -> Vec<String> {
    let (old_v, new_v) = (
        json!({ "cell": old.cell, "dns": old.dns, "tls": old.tls }),
        json!({ "cell": new.cell, "dns": new.dns, "tls": new.tls }),
    );
    let mut changed = Vec::new();
    for section in ["cell", "dns", "tls"] {
        if let (Some(a), Some(b)) = (old_v[section].as_object(), new_v[section].as_object()) {
            for (key, value) in b {
                if a.get(key) != Some(value) {
                    changed.push(format!("{section}.{key}"));
                }
            }
        }
    }
    changed
}

pub async fn put(
    _admin: AdminUser,
    State(app): State<Core>,
    audit: AuditCtx,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let new = match parse(&body, &app.settings.dns_listen) {
        Ok(parsed) => parsed,
        Err(err) => {
            return Err(audit
                .refuse(&app.db, "config", "cell", json!({}), err)
                .await)
        }
    };
    let vault = app.vault.clone();
    let updated = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "config".into();
            entry.target_id = "cell".into();
            let old =
                store::read_cell_config(tx)?.ok_or_else(|| ApiError::not_found("cell config"))?;
            let changed = changed_fields(&old, &new);
            if !changed.is_empty() {
                store::write_cell_config(tx, &new.cell, &new.dns, &new.tls)?;
            }
            // A new domain or subnet gets a new CA constrained to it (the old one is retired).
            let ca = crate::vault::ca::ensure_ca(tx, &vault, &new.cell.name, &store::ca_scope(&new.cell))?;
            entry.detail = match ca {
                crate::vault::ca::CaChange::Reissued { retired_serial } => {
                    json!({ "changed": changed, "ca_reissued": true, "retired_ca_serial": retired_serial })
                }
                _ => json!({ "changed": changed }),
            };
            // The answer is read in the same transaction: it is what was committed, and the
            // request needs no second trip to the store.
            current_in(tx)
        })
        .await?;
    app.request_reconcile();
    Ok(Json(updated))
}
