//! SQL for the extra routes Caddy serves.

use rusqlite::{params, Connection};

use super::config::Site;
use crate::error::ApiError;

pub fn routes(conn: &Connection) -> rusqlite::Result<Vec<Site>> {
    conn.prepare("SELECT host, upstream FROM caddy_routes ORDER BY host")?
        .query_map([], |r| {
            Ok(Site {
                host: r.get(0)?,
                upstream: r.get(1)?,
            })
        })?
        .collect()
}

pub fn add_route(conn: &Connection, site: &Site) -> Result<(), ApiError> {
    conn.execute(
        "INSERT INTO caddy_routes (host, upstream, created_at) VALUES (?1, ?2, ?3)",
        params![site.host, site.upstream, crate::time::now_rfc3339()],
    )
    .map_err(|e| crate::db::conflict_on_unique(e, "a route for this host exists"))?;
    Ok(())
}

pub fn delete_route(conn: &Connection, host: &str) -> Result<(), ApiError> {
    match conn.execute("DELETE FROM caddy_routes WHERE host = ?1", [host])? {
        0 => Err(ApiError::not_found("route")),
        _ => Ok(()),
    }
}
