//! Users: the owner (admin) and the peers' portal logins.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::db::conflict_on_unique;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Peer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Peer => "peer",
        }
    }

    fn parse(s: &str) -> Role {
        // The column has a CHECK constraint; anything else cannot be stored.
        if s == "admin" {
            Role::Admin
        } else {
            Role::Peer
        }
    }
}

/// A user as the API shows it. The password hash is never part of this type, so it cannot be
/// serialised into a response by accident.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub created_at: String,
    pub password_changed_at: String,
}

const USER_COLUMNS: &str = "id, username, role, created_at, password_changed_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(2)?;
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        role: Role::parse(&role),
        created_at: row.get(3)?,
        password_changed_at: row.get(4)?,
    })
}

/// Usernames: lowercase letter first, then lowercase letters, digits, `.`, `_`, `-`; 2 to 32.
pub fn validate_username(field: &str, name: &str) -> Result<(), ApiError> {
    let ok = (2..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            "must be 2 to 32 characters: a lowercase letter, then lowercase letters, digits, '.', '_' or '-'",
        ))
    }
}

pub fn create(
    conn: &Connection,
    username: &str,
    role: Role,
    password_hash: &str,
) -> Result<User, ApiError> {
    let now = crate::time::now_rfc3339();
    let id = uuid::Uuid::now_v7().to_string();
    conn.execute(
        "INSERT INTO users (id, username, role, password_hash, created_at, password_changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![id, username, role.as_str(), password_hash, now],
    )
    .map_err(|e| conflict_on_unique(e, "a user with this username exists"))?;
    Ok(User {
        id,
        username: username.into(),
        role,
        created_at: now.clone(),
        password_changed_at: now,
    })
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// The user and their password hash, for login and password changes only.
pub fn find_with_hash(
    conn: &Connection,
    username: &str,
) -> rusqlite::Result<Option<(User, String)>> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1"),
        [username],
        |r| Ok((from_row(r)?, r.get(5)?)),
    )
    .optional()
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<User>> {
    conn.prepare(&format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY role, username"
    ))?
    .query_map([], from_row)?
    .collect()
}

pub fn set_password(conn: &Connection, id: &str, password_hash: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE users SET password_hash = ?1, password_changed_at = ?2 WHERE id = ?3",
        params![password_hash, crate::time::now_rfc3339(), id],
    )
}
