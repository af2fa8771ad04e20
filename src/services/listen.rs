//! Where a service's endpoints listen, and the values picd writes into its config templates
//! besides the ports: `{{host}}`, `{{domain}}`, `{{domain_regexp}}` and, per endpoint,
//! `{{<name>_addresses}}`.
//!
//! A peers endpoint listens on loopback and on the cell's own WireGuard addresses, but only
//! those this machine holds right now: a server cannot bind an address the WireGuard
//! interface does not have yet (picd's userspace interface lives in picd's process), and
//! one missing address would keep the whole server from starting. The addresses are part of
//! the container's spec hash, so the container is recreated once the interface has them.

use std::net::IpAddr;

use rusqlite::Connection;

use super::catalog::{Endpoint, Exposure, Manifest};
use super::store::Installed;
use crate::error::ApiError;

/// What a service's config needs to know of the cell (None before the wizard set it up).
#[derive(Debug, Clone)]
pub struct CellPlace {
    pub domain: String,
    /// `<subdomain>.<domain>`.
    pub host: String,
    pub own_v4: IpAddr,
    pub own_v6: IpAddr,
}

pub fn cell_place(conn: &Connection, manifest: &Manifest) -> Result<Option<CellPlace>, ApiError> {
    let Some(config) = crate::cell::store::read_cell_config(conn)? else {
        return Ok(None);
    };
    let (own_v4, own_v6) = config.cell.own_addresses();
    let domain = config.cell.domain.to_string();
    Ok(Some(CellPlace {
        host: format!("{}.{domain}", manifest.subdomain),
        domain,
        own_v4,
        own_v6,
    }))
}

/// Whether this machine holds the address now (a bind to it succeeds).
fn held(address: IpAddr) -> bool {
    std::net::TcpListener::bind((address, 0)).is_ok()
}

/// Dovecot's and Postfix's spelling of an address in a listen list.
fn spelled(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The addresses the endpoint listens on, in the servers' spelling.
pub fn addresses(endpoint: &Endpoint, place: Option<&CellPlace>) -> Vec<String> {
    match endpoint.exposure {
        Exposure::Loopback => vec!["127.0.0.1".into()],
        Exposure::World => vec!["0.0.0.0".into(), "[::]".into()],
        Exposure::Peers => {
            let mut list = vec!["127.0.0.1".to_string()];
            if let Some(place) = place {
                let own = [place.own_v4, place.own_v6];
                list.extend(own.into_iter().filter(|a| held(*a)).map(spelled));
            }
            list
        }
    }
}

/// Every `{{name}}` of the templates and its value. Before setup the domain is a name that
/// cannot be anyone's (`invalid`, RFC 6761), so nothing is delivered to a real domain.
pub fn template_values(
    manifest: &Manifest,
    installed: &Installed,
    place: Option<&CellPlace>,
) -> Vec<(String, String)> {
    let domain = place.map_or("invalid", |p| p.domain.as_str());
    let host = place.map_or_else(
        || format!("{}.invalid", manifest.subdomain),
        |p| p.host.clone(),
    );
    let mut values = vec![
        ("host".to_string(), host),
        ("domain".to_string(), domain.to_string()),
        ("domain_regexp".to_string(), regexp_escape(domain)),
    ];
    for (endpoint, port) in &installed.ports {
        values.push((format!("{endpoint}_port"), port.to_string()));
    }
    for endpoint in manifest.endpoints {
        let list = addresses(endpoint, place).join(", ");
        values.push((format!("{}_addresses", endpoint.name), list));
    }
    values
}

/// What the container's spec hash covers of the listening: the addresses of every endpoint
/// that is not loopback-only (so a loopback-only service hashes as it did before).
pub fn spec_part(manifest: &Manifest, place: Option<&CellPlace>) -> String {
    manifest
        .endpoints
        .iter()
        .filter(|e| e.exposure != Exposure::Loopback)
        .map(|e| format!("{}={};", e.name, addresses(e, place).join(",")))
        .collect()
}

/// A domain as a literal in a POSIX extended regular expression (Postfix's regexp tables).
fn regexp_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if !c.is_ascii_alphanumeric() && c != '-' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Replaces every `{{name}}` of the values in a template.
pub fn fill(template: &str, values: &[(String, String)]) -> String {
    let mut text = template.to_string();
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::catalog::{Protocol, MAIL};

    #[test]
    fn a_loopback_endpoint_listens_on_loopback_and_a_peers_one_on_the_held_addresses_too() {
        let place = CellPlace {
            domain: "home.example".into(),
            host: "mail.home.example".into(),
            own_v4: "127.0.0.1".parse().unwrap(),
            // Not this machine's: left out rather than keeping the server from starting.
            own_v6: "fd00:dead:beef::1".parse().unwrap(),
        };
        let loopback = Endpoint::loopback("imap", Protocol::Imap);
        assert_eq!(addresses(&loopback, Some(&place)), ["127.0.0.1"]);
        let imaps = MAIL.endpoints.iter().find(|e| e.name == "imaps").unwrap();
        assert_eq!(addresses(imaps, Some(&place)), ["127.0.0.1", "127.0.0.1"]);
        assert_eq!(addresses(imaps, None), ["127.0.0.1"]);
        assert_eq!(regexp_escape("home.example"), "home\\.example");
        let values = [("domain".to_string(), "x.example".to_string())];
        assert_eq!(
            fill("@{{domain}} {{other}}", &values),
            "@x.example {{other}}"
        );
    }
}
