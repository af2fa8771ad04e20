//! `/api/connectivity/connections`, `/exits` and `/status`: the owner's connections. A change is
//! stored with its audit entry (secrets into the vault in the same transaction), then the
//! driver brings the interface, routes and rules in line and routing rebuilds the table; the
//! answer does not wait for either.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::store::{self, ConnectionRow, ConnectionSettings, TYPE_OPENVPN, TYPE_WIREGUARD_EXT};
use super::wgquick;
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::connectivity::ConnectivityApp;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::validation::{object, Problems};
use crate::vault::Vault;

const TARGET: &str = "connection";
const NAME_MAX: usize = 64;
/// Longest id looked up: a UUID; longer cannot be a connection.
const ID_MAX: usize = 64;

/// A connection as answered: its stored row (no secret), where it lives in the kernel, and
/// the peers that use it.
pub(super) fn connection_json(
    app: &ConnectivityApp,
    row: &ConnectionRow,
    used_by: &[String],
) -> Value {
    let mut value = serde_json::to_value(row).unwrap_or_else(|_| json!({}));
    value["interface"] = json!(super::device_name(
        &row.kind,
        &app.settings.wireguard_interface,
        row.slot
    ));
    value["mark"] = json!(format!("{:#010x}", super::mark(row.slot)));
    value["table"] = json!(super::table_id(row.slot));
    value["used_by"] = json!(used_by);
    value
}

pub async fn list(_admin: AdminUser, State(app): State<ConnectivityApp>) -> ApiResult<Json<Value>> {
    let rows = app
        .db
        .call(|conn| {
            let rows = store::list(conn)?;
            rows.into_iter()
                .map(|r| Ok((store::users(conn, &r.id)?, r)))
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|(users, row)| connection_json(&app, row, users))
        .collect();
    Ok(Json(json!({ "connections": list })))
}

pub(super) fn valid_name(name: &str) -> Result<String, String> {
    let printable = name
        .chars()
        .all(|c| !c.is_control() && c != '"' && c != '\\');
    match !name.is_empty() && name.chars().count() <= NAME_MAX && printable {
        true => Ok(name.to_string()),
        false => Err(format!(
            "must be 1 to {NAME_MAX} printable characters, without quotes or backslashes"
        )),
    }
}

/// A provider's file, parsed by its type.
enum Parsed {
    WireGuard(wgquick::Settings, wgquick::Secrets),
    OpenVpn(super::openvpn::Settings, super::openvpn::Secrets),
}

impl Parsed {
    fn kind(&self) -> &'static str {
        match self {
            Parsed::WireGuard(..) => TYPE_WIREGUARD_EXT,
            Parsed::OpenVpn(..) => TYPE_OPENVPN,
        }
    }

    fn settings(&self) -> ConnectionSettings {
        match self {
            Parsed::WireGuard(s, _) => ConnectionSettings::WireGuard(s.clone()),
            Parsed::OpenVpn(s, _) => ConnectionSettings::OpenVpn(s.clone()),
        }
    }

    /// Stores a new row with these secrets, or a changed row with them (in the caller's
    /// transaction).
    fn store(
        &self,
        tx: &rusqlite::Connection,
        vault: &Vault,
        row: &ConnectionRow,
        new: bool,
    ) -> ApiResult<()> {
        match (self, new) {
            (Parsed::WireGuard(_, secrets), true) => store::insert(tx, vault, row, secrets),
            (Parsed::WireGuard(_, secrets), false) => store::update(tx, vault, row, Some(secrets)),
            (Parsed::OpenVpn(_, secrets), new) => {
                match new {
                    true => store::insert_row(tx, row)?,
                    false => store::update_row(tx, row)?,
                }
                super::openvpn::store::put_secrets(tx, vault, &row.id, secrets)
            }
        }
    }
}

/// What a body asks for: a name and/or a provider file (parsed). `creating` makes both
/// required; `stored` is the type of the connection a PUT changes (when there is one).
type Asked = (Option<String>, Option<Parsed>);

fn read_body(body: &Value, creating: bool, stored: Option<&str>) -> Result<Asked, ApiError> {
    let mut p = Problems::default();
    let fields = ["name", "type", "config", "username", "password"];
    let Some(map) = object(body, &fields, &mut p, "") else {
        return Err(p.into_error(""));
    };
    let text = |p: &mut Problems, map: &Map<String, Value>, key: &str| match map.get(key) {
        None if creating => {
            p.add(key, "is required");
            None
        }
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            p.add(key, "must be a string");
            None
        }
    };
    let name = text(&mut p, map, "name").and_then(|n| match valid_name(n.trim()) {
        Ok(n) => Some(n),
        Err(e) => {
            p.add("name", e);
            None
        }
    });
    let kind = text(&mut p, map, "type");
    let kind = match kind.as_deref().or(stored).unwrap_or(TYPE_WIREGUARD_EXT) {
        TYPE_WIREGUARD_EXT => TYPE_WIREGUARD_EXT,
        TYPE_OPENVPN => TYPE_OPENVPN,
        _ => {
            let message =
                "must be wireguard_ext, openvpn, socks5, http or tor (a connection keeps its type)";
            p.add("type", message);
            TYPE_WIREGUARD_EXT
        }
    };
    let credentials = super::openvpn::body::credentials(map, kind, &mut p);
    let mut refused = None;
    let config = text(&mut p, map, "config").and_then(|c| match kind {
        TYPE_OPENVPN => match super::openvpn::parse::parse(&c, credentials.clone()) {
            Ok((settings, secrets)) => Some(Parsed::OpenVpn(settings, secrets)),
            Err(e) => {
                refused = Some(e);
                None
            }
        },
        _ => match wgquick::parse(&c) {
            Ok((settings, secrets)) => Some(Parsed::WireGuard(settings, secrets)),
            Err(e) => {
                p.add("config", e);
                None
            }
        },
    });
    if credentials.is_some() && !map.contains_key("config") {
        p.add("config", "is required with a username and password");
    }
    if p.is_empty() && name.is_none() && config.is_none() && refused.is_none() {
        p.add("name", "name a new name, a new config or both");
    }
    // A well-formed request whose .ovpn picd will not run: 422, naming the file's line.
    match refused {
        Some(e) if p.is_empty() => Err(ApiError::Unprocessable {
            message: format!("config {e}"),
        }),
        _ => p.into_result((name, config)),
    }
}

pub async fn create(
    _admin: AdminUser,
    State(app): State<ConnectivityApp>,
    audit: AuditCtx,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    if super::proxy::input::asks_for_proxy(&body) {
        return super::proxy::routes::create(app, audit, body).await;
    }
    if super::tor::routes::asks_for_tor(&body) {
        return super::tor::routes::create(app, audit, body).await;
    }
    // With `creating`, read_body answers both fields or an error.
    let asked = read_body(&body, true, None).and_then(|asked| match asked {
        (Some(name), Some(config)) => Ok((name, config)),
        _ => Err(ApiError::invalid("config", "is required")),
    });
    let (name, config) = match asked {
        Ok(asked) => asked,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await),
    };
    let vault = app.vault.clone();
    let row = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            let row = store::new_row(tx, name, config.kind(), config.settings())?;
            entry.target_id = row.id.clone();
            // Never the keys: only what the listing shows too.
            entry.detail = json!({ "name": row.name, "type": row.kind, "slot": row.slot,
                                   "endpoint": endpoints(&row.settings) });
            config.store(tx, &vault, &row, true)?;
            Ok(row)
        })
        .await?;
    super::passes::apply_soon(&app);
    let body = connection_json(&app, &row, &[]);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn update(
    _admin: AdminUser,
    State(app): State<ConnectivityApp>,
    audit: AuditCtx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    if id.len() > ID_MAX {
        let err = ApiError::not_found("connection");
        return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await);
    }
    let lookup = id.clone();
    let stored = app
        .db
        .call(move |conn| Ok(store::get(conn, &lookup)?.map(|r| r.kind)))
        .await?;
    if stored.as_deref().is_some_and(super::proxy::is_proxy) {
        return super::proxy::routes::update(app, audit, id, body).await;
    }
    if stored.as_deref().is_some_and(super::tor::is_tor) {
        return super::tor::routes::update(app, audit, id, body).await;
    }
    let (name, config) = match read_body(&body, false, stored.as_deref()) {
        Ok(asked) => asked,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, &id, json!({}), err).await),
    };
    let vault = app.vault.clone();
    let (row, users) = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = id.clone();
            let mut row = store::get(tx, &id)?
                .ok_or_else(|| ApiError::not_found(format!("connection '{id}'")))?;
            let config_changed = config.is_some();
            if let Some(config) = &config {
                if config.kind() != row.kind {
                    let message = "cannot change: delete the connection and add another";
                    return Err(ApiError::invalid("type", message));
                }
                row.settings = config.settings();
            }
            row.name = name.unwrap_or(row.name);
            row.updated_at = crate::time::now_rfc3339();
            entry.detail = json!({ "name": row.name, "config_changed": config_changed });
            match &config {
                Some(config) => config.store(tx, &vault, &row, false)?,
                None => store::update(tx, &vault, &row, None)?,
            }
            let users = store::users(tx, &row.id)?;
            Ok((row, users))
        })
        .await?;
    super::passes::apply_soon(&app);
    Ok(Json(connection_json(&app, &row, &users)))
}

/// Where the connection goes, for its audit entry (never a key).
fn endpoints(settings: &ConnectionSettings) -> Value {
    match settings {
        ConnectionSettings::WireGuard(s) => json!(s.endpoint),
        ConnectionSettings::OpenVpn(s) => {
            json!(s
                .remotes
                .iter()
                .map(|r| format!("{}:{}/{}", r.host, r.port, r.proto))
                .collect::<Vec<_>>())
        }
        ConnectionSettings::Proxy(s) => json!(format!("{}:{}", s.host, s.port)),
        ConnectionSettings::Tor(_) => json!(null),
    }
}

pub async fn delete(
    _admin: AdminUser,
    State(app): State<ConnectivityApp>,
    audit: AuditCtx,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if id.len() > ID_MAX {
        let err = ApiError::not_found("connection");
        return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await);
    }
    let vault = app.vault.clone();
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = id.clone();
            let users = store::users(tx, &id)?;
            if !users.is_empty() {
                entry.detail = json!({ "used_by": users });
                return Err(ApiError::conflict(
                    "in_use",
                    format!("peers use this connection: {}", users.join(", ")),
                ));
            }
            match store::delete(tx, &vault, &id)? {
                true => Ok(()),
                false => Err(ApiError::not_found(format!("connection '{id}'"))),
            }
        })
        .await?;
    super::passes::apply_soon(&app);
    Ok(StatusCode::NO_CONTENT)
}

/// Each exit with where it lives in the kernel and its health.
pub async fn exits(
    _admin: AdminUser,
    State(app): State<ConnectivityApp>,
) -> ApiResult<Json<Value>> {
    let exits = app.connectivity.exits(&app.db).await?;
    Ok(Json(json!({ "exits": exits })))
}

/// Probes one connection now: whether its provider's DNS address answered through the exit.
pub async fn health(
    _admin: AdminUser,
    State(app): State<ConnectivityApp>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    if id.len() > ID_MAX {
        return Err(ApiError::not_found("connection"));
    }
    let not_found = ApiError::not_found(format!("connection '{id}'"));
    let probed = app.connectivity.probe_now(&app.db, id).await?;
    probed.map(Json).ok_or(not_found)
}

/// The driver's state and each connection's health.
pub async fn status(
    _admin: AdminUser,
    State(app): State<ConnectivityApp>,
) -> ApiResult<Json<Value>> {
    let exits = app.connectivity.exits(&app.db).await?;
    let driver = crate::driver::Driver::status(app.connectivity.as_ref()).await;
    Ok(Json(json!({ "driver": driver, "connections": exits })))
}

/// The domain's routes, for any router whose state holds this domain's.
pub fn router<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    ConnectivityApp: axum::extract::FromRef<S>,
{
    use axum::routing::{get, put};
    axum::Router::new()
        .route("/api/connectivity/connections", get(list).post(create))
        .route(
            "/api/connectivity/connections/{id}",
            put(update).delete(delete),
        )
        .route("/api/connectivity/connections/{id}/health", get(health))
        .route("/api/connectivity/exits", get(exits))
        .route("/api/connectivity/status", get(status))
        .route("/api/connectivity/peers", get(super::peer_routes::list))
        .route(
            "/api/connectivity/peers/{peer}/exit",
            put(super::peer_routes::set_exit),
        )
        .route(
            "/api/connectivity/peers/{peer}/failopen",
            put(super::peer_routes::set_fail_open),
        )
}
