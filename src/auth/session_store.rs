//! Sessions kept in SQLite so they survive a restart of picd. Rows are keyed by the SHA-256 of
//! the session id: the database never holds a usable cookie value.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::User;
use crate::db::Db;

/// The session key holding the user's id, also kept in its own column so that a password
/// change can end the user's other sessions.
pub const USER_ID_KEY: &str = "user_id";

#[derive(Clone)]
pub struct SqliteSessionStore {
    db: Db,
}

impl std::fmt::Debug for SqliteSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteSessionStore")
    }
}

impl SqliteSessionStore {
    pub fn new(db: Db) -> Self {
        SqliteSessionStore { db }
    }
}

fn id_hash(id: &Id) -> String {
    hex::encode(Sha256::digest(id.to_string().as_bytes()))
}

/// A record as its row: the id's hash, the user (its own column), the data, the expiry.
fn row_of(record: &Record) -> session_store::Result<(String, Option<String>, String, i64)> {
    let data = serde_json::to_string(&record.data).map_err(backend)?;
    let user_id = record
        .data
        .get(USER_ID_KEY)
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Ok((
        id_hash(&record.id),
        user_id,
        data,
        record.expiry_date.unix_timestamp(),
    ))
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh id that collides with a live one would hand one user another's session:
        // insert without replacing, and draw a new id on conflict.
        loop {
            let (key, user_id, data, expires) = row_of(record)?;
            let inserted = self
                .db
                .write(move |tx| {
                    Ok(tx.execute(
                        "INSERT OR IGNORE INTO sessions (id_hash, user_id, data, expires_at)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![key, user_id, data, expires],
                    )?)
                })
                .await
                .map_err(backend)?;
            if inserted == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// Updates a session that exists; never brings back one that was ended meanwhile. (A
    /// request that loaded the session before a logout or a password change ended it would
    /// otherwise write it back when it finished. New sessions, and new ids at login, go
    /// through `create`.)
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (key, user_id, data, expires) = row_of(record)?;
        let now = crate::time::now().unix_timestamp();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE sessions SET user_id = ?2, data = ?3, expires_at = ?4
                     WHERE id_hash = ?1 AND expires_at > ?5",
                )?
                .execute(params![key, user_id, data, expires, now])?;
                Ok(())
            })
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let id = *id;
        let row = self
            .db
            .call(move |conn| Ok(live_row(conn, &id)?))
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Record {
            id,
            data: serde_json::from_str(&row.data).map_err(backend)?,
            expiry_date: time::OffsetDateTime::from_unix_timestamp(row.expires_at)
                .map_err(backend)?,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let key = id_hash(id);
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM sessions WHERE id_hash = ?1", [key])?;
                Ok(())
            })
            .await
            .map_err(backend)
    }
}

/// A session's row, while it has not expired.
struct LiveRow {
    data: String,
    expires_at: i64,
    user_id: Option<String>,
}

fn live_row(conn: &Connection, id: &Id) -> rusqlite::Result<Option<LiveRow>> {
    conn.prepare_cached(
        "SELECT data, expires_at, user_id FROM sessions WHERE id_hash = ?1 AND expires_at > ?2",
    )?
    .query_row(
        params![id_hash(id), crate::time::now().unix_timestamp()],
        |r| {
            Ok(LiveRow {
                data: r.get(0)?,
                expires_at: r.get(1)?,
                user_id: r.get(2)?,
            })
        },
    )
    .optional()
}

/// A live session's data with its user, read in one trip to the store: what the guard needs
/// on every request. (tower-sessions loads the session again only when it is changed.)
pub struct SignedIn {
    pub data: HashMap<String, Value>,
    /// None when the session names no user, or a user that no longer exists.
    pub user: Option<User>,
    pub names_user: bool,
}

impl SignedIn {
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.data
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

pub fn load_signed_in(conn: &Connection, id: &Id) -> anyhow::Result<Option<SignedIn>> {
    let Some(row) = live_row(conn, id)? else {
        return Ok(None);
    };
    let user = match &row.user_id {
        Some(user_id) => super::store::get(conn, user_id)?,
        None => None,
    };
    Ok(Some(SignedIn {
        data: serde_json::from_str(&row.data)?,
        user,
        names_user: row.user_id.is_some(),
    }))
}

/// Removes expired sessions; run periodically.
pub fn delete_expired(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1",
        [crate::time::now().unix_timestamp()],
    )
}

/// Ends every session of a user except, optionally, the one making the request.
pub fn delete_user_sessions(
    conn: &Connection,
    user_id: &str,
    keep: Option<&Id>,
) -> rusqlite::Result<usize> {
    let keep = keep.map(id_hash).unwrap_or_default();
    conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND id_hash != ?2",
        params![user_id, keep],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data: serde_json::Value) -> Record {
        Record {
            id: Id::default(),
            data: serde_json::from_value(data).unwrap(),
            expiry_date: crate::time::now() + time::Duration::hours(1),
        }
    }

    #[tokio::test]
    async fn saving_changes_a_live_session_and_never_revives_an_ended_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteSessionStore::new(Db::open(&dir.path().join("picd.db")).unwrap());
        let mut session = record(serde_json::json!({"seen_at": 1}));
        store.create(&mut session).await.unwrap();
        session.data.insert("seen_at".into(), 2.into());
        store.save(&session).await.unwrap();
        let loaded = store.load(&session.id).await.unwrap().expect("live");
        assert_eq!(loaded.data["seen_at"], 2);

        // A request that loaded the session before it was ended saves it afterwards.
        store.delete(&session.id).await.unwrap();
        session.data.insert("seen_at".into(), 3.into());
        store.save(&session).await.unwrap();
        assert!(store.load(&session.id).await.unwrap().is_none());
    }
}
