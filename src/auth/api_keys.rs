//! API keys for scripts: a random token shown once (`picd_...`), stored as its SHA-256 only,
//! with scopes, an optional expiry and a per-key rate limit. The token carries 256 random
//! bits, so a fast hash is safe here and keeps argon2 off the request path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub const TOKEN_PREFIX: &str = "picd_";
/// Characters of the token kept to recognise it in listings (`picd_` and 8 more).
const SHOWN_PREFIX_LEN: usize = 13;
pub const DEFAULT_RATE_LIMIT: u32 = 60;
pub const MAX_RATE_LIMIT: u32 = 100_000;
/// last_used_at is refreshed at most this often, so a busy key does not write on every call.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Everything an admin session may do.
    #[serde(rename = "admin")]
    Admin,
    /// Reading admin routes only (GET), except those that return secrets.
    #[serde(rename = "read-only")]
    ReadOnly,
    /// /api/dns/* only: ACME DNS-01 clients and DDNS scripts.
    #[serde(rename = "dns")]
    Dns,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "admin" => Some(Scope::Admin),
            "read-only" => Some(Scope::ReadOnly),
            "dns" => Some(Scope::Dns),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub rate_limit_per_minute: u32,
    pub created_at: String,
    pub rotated_at: Option<String>,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
}

impl ApiKey {
    /// Whether the key's scopes allow `method` on `path`.
    pub fn allows(&self, method: &axum::http::Method, path: &str) -> bool {
        let read = matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD);
        self.scopes.iter().any(|scope| match scope {
            Scope::Admin => true,
            Scope::ReadOnly => read,
            Scope::Dns => path.starts_with("/api/dns/") || path == "/api/dns",
        })
    }

    /// Whether the key may read the routes that return secrets (`secret_routes`): only with
    /// the admin scope. `read-only` means reading the cell's state, not its keys.
    pub fn may_read_secrets(&self) -> bool {
        self.scopes.contains(&Scope::Admin)
    }

    pub fn is_expired(&self) -> bool {
        self.expires_at
            .as_deref()
            .and_then(crate::time::parse_rfc3339)
            .is_some_and(|t| t <= crate::time::now())
    }
}

const COLUMNS: &str =
    "id, name, prefix, scopes, rate_limit_per_minute, created_at, rotated_at, last_used_at, expires_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let scopes: String = row.get(3)?;
    Ok(ApiKey {
        id: row.get(0)?,
        name: row.get(1)?,
        prefix: row.get(2)?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        rate_limit_per_minute: row.get(4)?,
        created_at: row.get(5)?,
        rotated_at: row.get(6)?,
        last_used_at: row.get(7)?,
        expires_at: row.get(8)?,
    })
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token and its shown prefix.
pub fn new_token() -> (String, String) {
    let token = format!("{TOKEN_PREFIX}{}", crate::auth::random_token());
    let prefix = token.chars().take(SHOWN_PREFIX_LEN).collect();
    (token, prefix)
}

pub struct NewKey<'a> {
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub rate_limit_per_minute: u32,
    pub expires_at: Option<&'a str>,
}

/// Creates a key; returns it and its token (to be shown once).
pub fn create(conn: &Connection, key: &NewKey<'_>) -> Result<(ApiKey, String), ApiError> {
    let (token, prefix) = new_token();
    let id = uuid::Uuid::now_v7().to_string();
    conn.execute(
        &format!("INSERT INTO api_keys ({COLUMNS}, token_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, ?7, ?8)"),
        params![
            id,
            key.name,
            prefix,
            serde_json::to_string(key.scopes).unwrap_or_default(),
            key.rate_limit_per_minute,
            crate::time::now_rfc3339(),
            key.expires_at,
            token_hash(&token)
        ],
    )?;
    let created = get(conn, &id)?.ok_or_else(|| ApiError::not_found("API key"))?;
    Ok((created, token))
}

/// Replaces a key's token: the old one stops working with this commit.
pub fn rotate(conn: &Connection, id: &str) -> Result<(ApiKey, String), ApiError> {
    let (token, prefix) = new_token();
    let changed = conn.execute(
        "UPDATE api_keys SET token_hash = ?1, prefix = ?2, rotated_at = ?3 WHERE id = ?4",
        params![token_hash(&token), prefix, crate::time::now_rfc3339(), id],
    )?;
    if changed == 0 {
        return Err(ApiError::not_found("API key"));
    }
    let key = get(conn, id)?.ok_or_else(|| ApiError::not_found("API key"))?;
    Ok((key, token))
}

pub fn delete(conn: &Connection, id: &str) -> Result<ApiKey, ApiError> {
    let key = get(conn, id)?.ok_or_else(|| ApiError::not_found("API key"))?;
    conn.execute("DELETE FROM api_keys WHERE id = ?1", [id])?;
    Ok(key)
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<ApiKey>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<ApiKey>> {
    conn.prepare(&format!(
        "SELECT {COLUMNS} FROM api_keys ORDER BY created_at"
    ))?
    .query_map([], from_row)?
    .collect()
}

/// The key a token belongs to. A read: the caller records the use with `touch_last_used`
/// when `needs_last_used_touch` says so.
pub fn find_by_token(conn: &Connection, token: &str) -> rusqlite::Result<Option<ApiKey>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE token_hash = ?1"
    ))?
    .query_row([token_hash(token)], from_row)
    .optional()
}

/// Whether the key's last use is stale enough to be written again. A refused (expired)
/// key's attempt is not a use.
pub fn needs_last_used_touch(key: &ApiKey) -> bool {
    !key.is_expired()
        && key
            .last_used_at
            .as_deref()
            .and_then(crate::time::parse_rfc3339)
            .is_none_or(|t| (crate::time::now() - t).whole_seconds() >= LAST_USED_GRANULARITY_SECS)
}

pub fn touch_last_used(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2",
        params![crate::time::now_rfc3339(), id],
    )?;
    Ok(())
}

/// Fixed one-minute windows per key.
pub struct KeyRateLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

/// What the X-RateLimit-* headers say.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitState {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

const WINDOW: Duration = Duration::from_secs(60);

impl KeyRateLimiter {
    pub fn new() -> Self {
        KeyRateLimiter {
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request; `Err` with the state when the key is over its limit.
    pub fn hit(&self, key_id: &str, limit: u32) -> Result<RateLimitState, RateLimitState> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = windows.entry(key_id.to_string()).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        let left = WINDOW.saturating_sub(now.duration_since(*start));
        let reset_secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        if *count >= limit {
            return Err(RateLimitState {
                limit,
                remaining: 0,
                reset_secs: reset_secs.max(1),
            });
        }
        *count += 1;
        Ok(RateLimitState {
            limit,
            remaining: limit - *count,
            reset_secs,
        })
    }
}

impl Default for KeyRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}
