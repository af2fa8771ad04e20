//! `/api/dns/tsig-keys` and `/api/dns/secondaries/{address}/tsig-key`: the TSIG keys zone
//! transfers and NOTIFY are signed with, and which key each secondary must use. A key's secret
//! is shown once, in the answer that creates it, and is kept in the vault.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::store;
use super::tsig::{self, ALGORITHM, GENERATED_SECRET_BYTES};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::dns::DnsApp;
use crate::error::{ApiError, ApiResult, Json, Path};

/// Bounds of a secret brought by the caller (decoded bytes): RFC 8945 section 6 asks for
/// at least the hash output's length halved; more than 64 bytes is hashed down by HMAC anyway.
const SECRET_MIN_BYTES: usize = 16;
const SECRET_MAX_BYTES: usize = 64;

const TARGET: &str = "dns_tsig_key";

pub async fn list(_admin: AdminUser, State(app): State<DnsApp>) -> ApiResult<Json<Value>> {
    let keys = app.db.call(|conn| Ok(tsig::list_keys(conn)?)).await?;
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|k| {
            json!({
                "name": k.name,
                "algorithm": k.algorithm,
                "created_at": k.created_at,
                "secondaries": k.secondaries,
            })
        })
        .collect();
    Ok(Json(json!({ "keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
    #[serde(default)]
    algorithm: Option<String>,
    /// A secret the secondary already has (base64); one is generated when absent.
    #[serde(default)]
    secret: Option<String>,
}

fn decode_secret(text: &str) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let invalid = || {
        ApiError::invalid(
            "secret",
            format!("must be base64 of {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes"),
        )
    };
    // Bounded before decoding: 64 bytes are 88 base64 characters.
    if text.len() > 100 {
        return Err(invalid());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| invalid())?;
    let bytes = Zeroizing::new(bytes);
    match (SECRET_MIN_BYTES..=SECRET_MAX_BYTES).contains(&bytes.len()) {
        true => Ok(bytes),
        false => Err(invalid()),
    }
}

fn validate(body: &NewKey) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    if !tsig::valid_key_name(&body.name) {
        return Err(ApiError::invalid(
            "name",
            "must be a DNS name of lowercase letters, digits, hyphens and dots, without the final dot",
        ));
    }
    if body.algorithm.as_deref().is_some_and(|a| a != ALGORITHM) {
        return Err(ApiError::invalid("algorithm", "must be hmac-sha256"));
    }
    match &body.secret {
        Some(text) => decode_secret(text),
        None => {
            let mut secret = Zeroizing::new(vec![0u8; GENERATED_SECRET_BYTES]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            Ok(secret)
        }
    }
}

pub async fn create(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Json(body): Json<NewKey>,
) -> ApiResult<Response> {
    let secret = match validate(&body) {
        Ok(secret) => secret,
        Err(err) => return Err(audit.refuse(&app.db, TARGET, "", json!({}), err).await),
    };
    let name = body.name;
    let vault = app.vault.clone();
    let (key, stored) = (name.clone(), secret.clone());
    let created_at = audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = key.clone();
            entry.detail = json!({ "algorithm": ALGORITHM });
            let now = crate::time::now_rfc3339();
            tx.execute(
                "INSERT INTO dns_tsig_keys (name, algorithm, created_at) VALUES (?1, ?2, ?3)",
                rusqlite::params![key, ALGORITHM, now],
            )
            .map_err(|e| crate::db::conflict_on_unique(e, "a TSIG key with this name exists"))?;
            vault.put(tx, &tsig::secret_name(&key), &stored)?;
            Ok(now)
        })
        .await?;
    // The one time the secret is shown: the secondary's configuration needs it.
    let shown = base64::engine::general_purpose::STANDARD.encode(&*secret);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": name,
            "algorithm": ALGORITHM,
            "secret": shown,
            "created_at": created_at,
        })),
    )
        .into_response())
}

pub async fn delete(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    if !tsig::valid_key_name(&name) {
        return Err(ApiError::not_found("TSIG key"));
    }
    let vault = app.vault.clone();
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = TARGET.into();
            entry.target_id = name.clone();
            let in_use: i64 = tx.query_row(
                "SELECT COUNT(*) FROM dns_secondary_tsig WHERE key_name = ?1",
                [&name],
                |r| r.get(0),
            )?;
            if in_use > 0 {
                return Err(ApiError::conflict(
                    "tsig_key_in_use",
                    "a secondary uses this key; give it another key or none first",
                ));
            }
            match tx.execute("DELETE FROM dns_tsig_keys WHERE name = ?1", [&name])? {
                0 => Err(ApiError::not_found("TSIG key")),
                _ => {
                    vault.delete(tx, &tsig::secret_name(&name))?;
                    Ok(())
                }
            }
        })
        .await?;
    Ok(Json(json!({ "deleted": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The key's name, or null for none (transfers unsigned, by address alone).
    key: Option<String>,
}

/// Names the key a secondary must sign its transfer requests with (and NOTIFY to it is
/// signed with), or none.
pub async fn bind_secondary(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Path(address): Path<String>,
    Json(body): Json<Binding>,
) -> ApiResult<Json<Value>> {
    let Some(addr) = store::parse_secondary(&address) else {
        return Err(ApiError::not_found("secondary"));
    };
    if body
        .key
        .as_deref()
        .is_some_and(|k| !tsig::valid_key_name(k))
    {
        let err = ApiError::invalid("key", "no TSIG key has this name");
        return Err(audit
            .refuse(&app.db, "dns_secondary", &addr.to_string(), json!({}), err)
            .await);
    }
    let key = body.key.clone();
    audit
        .transact(&app.db, move |tx, entry| {
            let address = addr.to_string();
            entry.target_type = "dns_secondary".into();
            entry.target_id = address.clone();
            entry.detail = json!({ "tsig_key": key });
            let listed: i64 = tx.query_row(
                "SELECT COUNT(*) FROM dns_secondaries WHERE address = ?1",
                [&address],
                |r| r.get(0),
            )?;
            if listed == 0 {
                return Err(ApiError::not_found("secondary"));
            }
            tx.execute(
                "DELETE FROM dns_secondary_tsig WHERE address = ?1",
                [&address],
            )?;
            if let Some(key) = &key {
                if !tsig::key_exists(tx, key)? {
                    return Err(ApiError::invalid("key", "no TSIG key has this name"));
                }
                tx.execute(
                    "INSERT INTO dns_secondary_tsig (address, key_name) VALUES (?1, ?2)",
                    rusqlite::params![address, key],
                )?;
            }
            Ok(())
        })
        .await?;
    app.dns.refresh(&app.db);
    Ok(Json(
        json!({ "address": addr.to_string(), "tsig_key": body.key }),
    ))
}
