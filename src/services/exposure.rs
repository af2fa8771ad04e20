//! Where an installed service meets the rest of the cell: its Caddy route at
//! `<subdomain>.<cell domain>` and its name in DNS. Kept in one place so the coupling to the
//! cell's settings, Caddy and DNS is these few functions.

use rusqlite::Connection;

use super::catalog::Manifest;
use crate::error::ApiError;

/// The service's host name, or None before the wizard has set the cell's domain.
pub fn host(conn: &Connection, manifest: &Manifest) -> Result<Option<String>, ApiError> {
    let config = crate::cell::store::read_cell_config(conn)?;
    Ok(config.map(|c| format!("{}.{}", manifest.subdomain, c.cell.domain)))
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

/// The owner of a service's published name in `dns::names`.
fn name_owner(manifest: &Manifest) -> String {
    format!("service:{}", manifest.id)
}

/// Publishes `<subdomain>.<cell domain>` in the cell's internal view at the cell's own
/// WireGuard addresses (in the caller's transaction); false before the wizard set the cell up.
pub fn publish_name(conn: &Connection, manifest: &Manifest) -> Result<bool, ApiError> {
    let Some(config) = crate::cell::store::read_cell_config(conn)? else {
        return Ok(false);
    };
    let (v4, v6) = config.cell.own_addresses();
    crate::dns::names::publish(
        conn,
        &name_owner(manifest),
        manifest.subdomain,
        crate::dns::names::NameView::Internal,
        &[v4, v6],
    )?;
    Ok(true)
}

pub fn withdraw_name(conn: &Connection, manifest: &Manifest) -> Result<(), ApiError> {
    crate::dns::names::withdraw(conn, &name_owner(manifest), manifest.subdomain)?;
    Ok(())
}

/// The TCP ports of installed services that only the peers (and this machine) may reach: the
/// firewall drops them on every interface but loopback and the WireGuard one. A service
/// binds them on the cell's WireGuard addresses only, but Linux accepts a packet for a local
/// address on any interface, so a host on the uplink that routes the cell's subnet to it
/// would reach them without this. Sorted, once each.
pub fn peers_only_ports(conn: &Connection) -> Result<Vec<u16>, ApiError> {
    let mut ports = Vec::new();
    for row in super::store::installed(conn)? {
        let Some(manifest) = super::catalog::find(&row.service_id) else {
            continue;
        };
        let peers = manifest
            .endpoints
            .iter()
            .filter(|e| e.exposure == super::catalog::Exposure::Peers);
        ports.extend(peers.filter_map(|e| row.port(e.name)));
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}
