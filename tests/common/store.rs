//! Direct access to picd's SQLite file: inspecting stored state, inserting what no API can
//! create yet, and tampering with the audit log.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use serde_json::Value;

/// Opens a picd database for inspection, waiting on picd's locks rather than failing.
pub fn open_db(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("opening picd.db");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    conn
}

pub fn audit_count(conn: &Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .expect("counting audit entries")
}

/// One stored audit row, as the table holds it (detail as its JSON text).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub seq: i64,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub result: String,
    pub client_addr: String,
    pub detail: Value,
}

pub fn last_audit(conn: &Connection) -> AuditRow {
    conn.query_row(
        "SELECT seq, actor, action, target_type, target_id, result, client_addr, detail
         FROM audit_log ORDER BY seq DESC LIMIT 1",
        [],
        |r| {
            let detail: String = r.get(7)?;
            Ok(AuditRow {
                seq: r.get(0)?,
                actor: r.get(1)?,
                action: r.get(2)?,
                target_type: r.get(3)?,
                target_id: r.get(4)?,
                result: r.get(5)?,
                client_addr: r.get(6)?,
                detail: serde_json::from_str(&detail).unwrap_or(Value::String(detail)),
            })
        },
    )
    .expect("the newest audit entry")
}

/// Every column of every user, password hash included, in a stable order: what "nothing
/// changed" means for the users table.
pub fn users_snapshot(conn: &Connection) -> Vec<Vec<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT id, username, role, password_hash, created_at, password_changed_at
             FROM users ORDER BY id",
        )
        .expect("users query");
    stmt.query_map([], |r| (0..6).map(|i| r.get::<_, String>(i)).collect())
        .expect("users rows")
        .collect::<Result<_, _>>()
        .expect("users")
}

/// Inserts a user with an argon2id hash of `password`, as a future peers API would.
pub fn insert_user(conn: &Connection, username: &str, role: &str, password: &str) {
    use argon2::password_hash::rand_core::OsRng;
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing")
        .to_string();
    let now = "2026-01-01T00:00:00.000000Z";
    conn.execute(
        "INSERT INTO users (id, username, role, password_hash, created_at, password_changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        rusqlite::params![uuid::Uuid::now_v7().to_string(), username, role, hash, now],
    )
    .expect("inserting a user");
}
/// SHA-256 of a session id, hex: how the sessions table keys a session.
pub fn session_key(cookie_value: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(cookie_value.as_bytes()))
}

pub fn session_stored(conn: &Connection, cookie_value: &str) -> bool {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sessions WHERE id_hash = ?1)",
        [session_key(cookie_value)],
        |r| r.get(0),
    )
    .expect("sessions query")
}
