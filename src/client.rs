//! Who is on the other end of a request: the client's real address and whether it came over
//! https. picd sits behind Caddy, so X-Forwarded-For and X-Forwarded-Proto are believed only
//! when the TCP peer is one of the configured trusted proxies; anyone else could forge them to
//! dodge the login throttle or to write a false address into the audit log.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    pub addr: IpAddr,
    pub https: bool,
}

pub async fn identify_client(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let info = resolve(peer, req.headers(), &app.settings.trusted_proxies);
    req.extensions_mut().insert(info);
    next.run(req).await
}

/// The client address is the right-most X-Forwarded-For entry that is not itself a trusted
/// proxy: entries to the left of it were written by the client and prove nothing.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> ClientInfo {
    let peer = canonical(peer);
    if !trusted.contains(&peer) {
        return ClientInfo {
            addr: peer,
            https: false,
        };
    }
    let mut addr = peer;
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                addr = canonical(ip);
                if !trusted.contains(&addr) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    ClientInfo { addr, https }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h
    }

    #[test]
    fn forwarded_headers_are_ignored_from_untrusted_peers() {
        let peer: IpAddr = "198.51.100.7".parse().unwrap();
        let info = resolve(peer, &headers("1.2.3.4"), &["127.0.0.1".parse().unwrap()]);
        assert_eq!(info.addr, peer);
        assert!(!info.https);
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let info = resolve(proxy, &headers("6.6.6.6, 203.0.113.9"), &[proxy]);
        assert_eq!(info.addr, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(info.https);
    }
}
