//! Where an installed service meets the rest of the cell: its Caddy route at
//! `<subdomain>.<cell domain>` and its name in DNS. Kept in one place so the coupling to the
//! cell's settings, Caddy and DNS is these few functions.

use rusqlite::Connection;

use super::catalog::Manifest;
use crate::error::ApiError;

/// The service's host name, or None before the wizard has set the cell's domain.
pub fn host(conn: &Connection, manifest: &Manifest) -> Result<Option<String>, ApiError> {
    let config = crate::setup::store::read_cell_config(conn)?;
    Ok(config.map(|c| format!("{}.{}", manifest.http.subdomain, c.cell.domain)))
}

/// Adds the Caddy route to the service's loopback port (in the caller's transaction).
pub fn publish_route(conn: &Connection, host: &str, port: u16) -> Result<(), ApiError> {
    let site = crate::caddy::config::Site {
        host: host.to_string(),
        upstream: format!("127.0.0.1:{port}"),
    };
    crate::caddy::store::add_route(conn, &site)
}

pub fn withdraw_route(conn: &Connection, host: &str) -> Result<(), ApiError> {
    match crate::caddy::store::delete_route(conn, host) {
        Ok(()) | Err(ApiError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Publishes the service's name in the cell's DNS. The cell's zone already answers for its
/// domain; a per-name publish API (`dns::names`) is being added, and this is the one call the
/// store makes for it. Until then nothing is written and the step reports so.
pub fn publish_name(_conn: &Connection, _host: &str) -> Result<&'static str, ApiError> {
    Ok("pending")
}

pub fn withdraw_name(_conn: &Connection, _host: &str) -> Result<(), ApiError> {
    Ok(())
}
