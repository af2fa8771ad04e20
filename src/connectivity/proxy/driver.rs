//! The connectivity driver's proxy part: reading the proxy exits with their passwords,
//! resolving them into what redsocks and the forwarder need, and the health probe (a TCP
//! connect and a SOCKS5 or CONNECT handshake with the proxy, through `main`: the proxy is
//! the cell's own traffic).

use std::net::Ipv4Addr;
use std::time::Duration;

use zeroize::Zeroizing;

use super::client::{self, Target};
use super::supervisor::ProxyExit;
use super::{ProxySettings, Upstream};
use crate::connectivity::store::{self, ConnectionRow, ConnectionSettings};
use crate::error::ApiError;
use crate::vault::Vault;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const DNS_PORT: u16 = 53;

/// A proxy connection with its password.
pub struct ProxyRow {
    pub row: ConnectionRow,
    pub settings: ProxySettings,
    pub password: Option<Zeroizing<String>>,
}

/// Every proxy connection, and the cell's WireGuard IPv4 address (None before setup).
pub fn read(
    conn: &rusqlite::Connection,
    vault: &Vault,
) -> Result<(Vec<ProxyRow>, Option<Ipv4Addr>), ApiError> {
    let mut rows = Vec::new();
    for row in store::list(conn)? {
        let ConnectionSettings::Proxy(settings) = row.settings.clone() else {
            continue;
        };
        let password = super::routes::password(conn, vault, &row.id)?;
        rows.push(ProxyRow {
            row,
            settings,
            password,
        });
    }
    Ok((rows, cell_listen(conn)?))
}

/// The cell's WireGuard IPv4 address, where redirected exits' processes listen (None before
/// setup).
pub fn cell_listen(conn: &rusqlite::Connection) -> Result<Option<Ipv4Addr>, ApiError> {
    Ok(crate::cell::store::read_cell_config(conn)?.and_then(|c| {
        match crate::wireguard::cell_addresses(&c.cell).0 {
            std::net::IpAddr::V4(v4) => Some(v4),
            _ => None,
        }
    }))
}

pub async fn upstream(p: &ProxyRow) -> Result<Upstream, String> {
    Ok(Upstream {
        kind: p.row.kind.clone(),
        address: super::resolve(&p.settings).await?,
        username: p.settings.username.clone(),
        password: p.password.clone(),
    })
}

/// What the supervisor runs for each proxy connection; the ones whose host does not resolve
/// are left out (their peers meet `unreachable`) and named in the problems.
pub async fn exits(rows: &[ProxyRow], problems: &mut Vec<String>) -> Vec<ProxyExit> {
    let mut exits = Vec::new();
    for p in rows {
        match upstream(p).await {
            Ok(upstream) => exits.push(ProxyExit {
                id: p.row.id.clone(),
                name: p.row.name.clone(),
                slot: p.row.slot,
                upstream,
                dns: p.settings.dns.clone(),
            }),
            Err(e) => problems.push(format!("{}: {e}", p.row.name)),
        }
    }
    exits
}

/// The target a probe opens through the proxy: the configured one, else the first resolver.
fn probe_target(settings: &ProxySettings) -> Option<String> {
    settings.probe_target.clone().or_else(|| {
        settings
            .dns
            .first()
            .map(|ip| std::net::SocketAddr::new(*ip, DNS_PORT).to_string())
    })
}

/// One probe: the proxy answers the handshake (and opens the target, when there is one).
/// Answers the target tried.
pub async fn probe(p: &ProxyRow) -> (bool, Option<String>) {
    let target_text = probe_target(&p.settings);
    let Ok(upstream) = upstream(p).await else {
        return (false, target_text);
    };
    let target = target_text.as_deref().and_then(Target::parse);
    let ok = client::open(&upstream, target.as_ref(), PROBE_TIMEOUT)
        .await
        .is_ok();
    (ok, target_text)
}
