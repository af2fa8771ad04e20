//! Who is on the other end of a request: the client's real address and whether it came over
//! https. Caddy reaches picd on the unix socket (`listen_socket`), which only Caddy's group and
//! root can open, and says who its client is in X-Forwarded-For / X-Forwarded-Proto. Those
//! headers are believed on that socket only: on TCP, any local process (a service container,
//! a user's script) could forge them to dodge the per-address throttles or to write a false
//! address into the audit log, so there the connection's own address is the client.

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, UnixListener};

use crate::state::Core;

/// The address of a request that came from the local proxy without naming a client (or
/// naming none that parses): the proxy itself, on this machine.
pub const LOCAL_PROXY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    pub addr: IpAddr,
    /// The browser reached Caddy over https (only ever true on the socket).
    pub https: bool,
}

/// How a connection reached picd: which listener accepted it.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    /// `listen`: anyone on the machine can connect; the peer address is all that counts.
    Tcp(SocketAddr),
    /// `listen_socket`: the reverse proxy, whose forwarded headers are believed.
    Socket,
}

impl Connected<IncomingStream<'_, TcpListener>> for Transport {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Transport::Tcp(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, UnixListener>> for Transport {
    fn connect_info(_stream: IncomingStream<'_, UnixListener>) -> Self {
        Transport::Socket
    }
}

pub async fn identify_client(State(app): State<Core>, mut req: Request, next: Next) -> Response {
    // A request without connection info did not come through a listener of picd's; treat it
    // as the least trusted kind, a local TCP client.
    let transport = req
        .extensions()
        .get::<ConnectInfo<Transport>>()
        .map_or(Transport::Tcp(SocketAddr::from((LOCAL_PROXY, 0))), |c| c.0);
    let info = resolve(transport, req.headers(), &app.settings.trusted_proxies);
    req.extensions_mut().insert(info);
    next.run(req).await
}

/// On TCP the peer is the client, whatever the headers say. On the socket the client is the
/// right-most X-Forwarded-For entry that is not itself a trusted proxy (entries to the left of
/// it were written by the client and prove nothing); with none, the proxy itself.
pub fn resolve(transport: Transport, headers: &HeaderMap, trusted: &[IpAddr]) -> ClientInfo {
    if let Transport::Tcp(peer) = transport {
        return ClientInfo {
            addr: canonical(peer.ip()),
            https: false,
        };
    }
    let mut addr = LOCAL_PROXY;
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
    fn forwarded_headers_are_ignored_on_tcp_even_from_loopback() {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let trusted = ["127.0.0.1".parse().unwrap()];
        let info = resolve(Transport::Tcp(peer), &headers("1.2.3.4"), &trusted);
        assert_eq!(info.addr, peer.ip());
        assert!(!info.https);
    }

    #[test]
    fn on_the_socket_the_rightmost_untrusted_hop_is_the_client() {
        let front: IpAddr = "192.0.2.1".parse().unwrap();
        let info = resolve(
            Transport::Socket,
            &headers("6.6.6.6, 203.0.113.9, 192.0.2.1"),
            &[front],
        );
        assert_eq!(info.addr, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(info.https);
    }

    #[test]
    fn on_the_socket_without_a_usable_address_the_client_is_the_local_proxy() {
        let info = resolve(Transport::Socket, &HeaderMap::new(), &[]);
        assert_eq!((info.addr, info.https), (LOCAL_PROXY, false));
        let info = resolve(Transport::Socket, &headers("not-an-address"), &[]);
        assert_eq!(info.addr, LOCAL_PROXY);
    }
}
