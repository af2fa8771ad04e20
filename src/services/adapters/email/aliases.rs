//! `/api/email/aliases`: a local part at the cell's domain that delivers into an account's
//! mailbox. Admin only; every change audited; the maps are rewritten after the commit.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::store::{self, Alias};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::services::accounts::store as accounts;
use crate::services::manifests::MAIL;
use crate::services::store as installed;
use crate::services::ServicesApp;

const TARGET: &str = "mail_alias";
/// RFC 5321's longest local part.
const LOCAL_PART_MAX: usize = 64;

/// A local part picd writes into a Postfix map as it is: lowercase (Postfix folds lookups, so
/// two spellings could not be told apart), letters, digits and `.`, `-`, `_` inside, no two
/// dots in a row. Nothing that could end a map line or start a regexp or a comment.
pub fn local_part(raw: &str) -> Result<(), String> {
    let inner = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = (1..=LOCAL_PART_MAX).contains(&raw.len())
        && raw.chars().all(inner)
        && edge(raw.chars().next())
        && edge(raw.chars().last())
        && !raw.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be a local part of 1 to {LOCAL_PART_MAX} of a-z, 0-9, '.', '-' and '_', \
             starting and ending with a letter or digit"
        ))
    }
}

pub async fn list(_admin: AdminUser, State(app): State<ServicesApp>) -> ApiResult<Json<Value>> {
    super::super::require_installed(&app, &MAIL).await?;
    let (aliases, domain) = app
        .db
        .call(|conn| {
            let place = crate::services::listen::cell_place(conn, &MAIL)?;
            Ok((store::aliases(conn)?, place.map(|p| p.domain)))
        })
        .await?;
    let aliases: Vec<Value> = aliases
        .into_iter()
        .map(|a| {
            let mut value = json!(a);
            if let Some(domain) = &domain {
                value["address"] = json!(format!("{}@{domain}", a.alias));
            }
            value
        })
        .collect();
    Ok(Json(json!({ "aliases": aliases })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAlias {
    alias: String,
    /// The account (mailbox) the alias delivers into.
    target: String,
}

fn checked(body: &NewAlias) -> Result<(), ApiError> {
    local_part(&body.alias).map_err(|m| ApiError::invalid("alias", m))?;
    crate::cell::settings::dns_label(&body.target).map_err(|m| ApiError::invalid("target", m))
}

pub async fn create(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Json(body): Json<NewAlias>,
) -> ApiResult<Response> {
    if let Err(err) = checked(&body) {
        return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await);
    }
    let alias = Alias {
        alias: body.alias,
        target: body.target,
        created_at: crate::time::now_rfc3339(),
    };
    let alias = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = alias.alias.clone();
            entry.detail = json!({ "target": alias.target });
            installed::installed_one(tx, MAIL.id)?
                .ok_or(ApiError::NotInstalled { service: MAIL.id })?;
            if accounts::get(tx, MAIL.id, &alias.target)?.is_none() {
                return Err(ApiError::not_found("mailbox"));
            }
            if accounts::get(tx, MAIL.id, &alias.alias)?.is_some() {
                return Err(ApiError::conflict(
                    "mailbox_exists",
                    "a mailbox has this name: an alias may not take its address",
                ));
            }
            if store::alias(tx, &alias.alias)?.is_some() {
                return Err(ApiError::conflict("alias_exists", "the alias exists"));
            }
            store::insert_alias(tx, &alias)?;
            Ok(alias)
        })
        .await?;
    super::apply_maps(&app).await?;
    Ok((StatusCode::CREATED, Json(json!(alias))).into_response())
}

pub async fn remove(
    _admin: AdminUser,
    State(app): State<ServicesApp>,
    audit: AuditCtx,
    Path(alias): Path<String>,
) -> ApiResult<Json<Value>> {
    // Only what could have been created is looked up (and nothing else reaches the log).
    if local_part(&alias).is_err() {
        let err = ApiError::not_found("alias");
        return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await);
    }
    let name = alias.clone();
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = name.clone();
            installed::installed_one(tx, MAIL.id)?
                .ok_or(ApiError::NotInstalled { service: MAIL.id })?;
            if !store::delete_alias(tx, &name)? {
                return Err(ApiError::not_found("alias"));
            }
            Ok(())
        })
        .await?;
    super::apply_maps(&app).await?;
    Ok(Json(json!({ "deleted": alias })))
}

#[cfg(test)]
mod tests {
    use super::local_part;

    #[test]
    fn a_local_part_is_lowercase_and_cannot_break_a_map_line() {
        for good in ["info", "first.last", "a", "team-2", "x_y"] {
            assert!(local_part(good).is_ok(), "{good}");
        }
        let long = "a".repeat(65);
        for bad in [
            "", "Info", ".a", "a.", "a..b", "a b", "a@b", "a\nb", "#a", "a:b", "/a/", &long,
        ] {
            assert!(local_part(bad).is_err(), "{bad:?}");
        }
    }
}
