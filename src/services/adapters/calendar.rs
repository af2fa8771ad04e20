//! `/api/calendar/*`: the calendar service's accounts with their calendars and address books,
//! read from Radicale's storage (a folder per collection, its properties in `.Radicale.props`).

use axum::extract::State;
use serde_json::{json, Value};

use crate::auth::AdminUser;
use crate::error::ApiResult;
use crate::error::Json;
use crate::services::catalog::CALENDAR;
use crate::services::ServicesApp;

/// Most collections read per account.
const COLLECTIONS_MAX: usize = 200;
/// Largest properties file read.
const PROPS_MAX: u64 = 64 * 1024;

pub async fn status(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    Ok(Json(super::status(&app, &CALENDAR).await?))
}

/// One collection: its kind from the properties' `tag`, its display name, its item count.
fn collection(dir: &std::path::Path, name: String) -> std::io::Result<Option<Value>> {
    let props = dir.join(".Radicale.props");
    let props: Value = match std::fs::metadata(&props) {
        Ok(meta) if meta.is_file() && meta.len() <= PROPS_MAX => {
            serde_json::from_slice(&std::fs::read(&props)?).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    };
    let kind = match props.get("tag").and_then(Value::as_str) {
        Some("VCALENDAR") => "calendar",
        Some("VADDRESSBOOK") => "address_book",
        _ => return Ok(None),
    };
    let mut items = 0u64;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.starts_with('.') && entry.metadata()?.is_file() {
            items += 1;
        }
    }
    Ok(Some(json!({
        "name": name,
        "kind": kind,
        "display_name": props.get("D:displayname"),
        "items": items,
    })))
}

fn collections_of(folder: &std::path::Path) -> std::io::Result<Vec<Value>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries.take(COLLECTIONS_MAX) {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.metadata()?.is_dir() {
            continue;
        }
        if let Some(c) = collection(&entry.path(), name)? {
            found.push(c);
        }
    }
    found.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(found)
}

pub async fn users(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    let accounts = super::accounts_with_folders(&app, &CALENDAR).await?;
    let users = super::blocking(move || {
        accounts
            .into_iter()
            .map(|(account, folder)| {
                let collections = collections_of(&folder)?;
                Ok(json!({
                    "username": account.username,
                    "peer": account.peer_name,
                    "calendars": collections.iter().filter(|c| c["kind"] == "calendar").collect::<Vec<_>>(),
                    "address_books": collections.iter().filter(|c| c["kind"] == "address_book").collect::<Vec<_>>(),
                }))
            })
            .collect::<std::io::Result<Vec<Value>>>()
    })
    .await?;
    Ok(Json(json!({ "users": users })))
}

pub fn router<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    ServicesApp: axum::extract::FromRef<S>,
{
    use axum::routing::get;
    axum::Router::new()
        .route("/api/calendar/status", get(status))
        .route("/api/calendar/users", get(users))
}
