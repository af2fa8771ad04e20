//! Which view a client gets. A source address proves nothing (anyone on the path can put a
//! cell-subnet address on a packet that reaches the DNS port), so a UDP client is a peer only
//! when its packet arrived on the WireGuard interface, where WireGuard has already checked the
//! sender's key against its allowed addresses; the cell itself is a peer when both the source
//! and the interface are loopback. Everything else gets the world's view.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use nix::net::if_::if_nametoindex;

use super::zone::Snapshot;

/// How often the interface indexes are looked up again (WireGuard's interface may come up
/// after the DNS server, or be recreated with another index).
const REFRESH: Duration = Duration::from_secs(1);

/// The interfaces that decide the view, as one UDP thread last looked them up.
pub struct Interfaces {
    wireguard_name: String,
    wireguard: Option<u32>,
    loopback: Option<u32>,
    checked: Option<Instant>,
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl Interfaces {
    pub fn new(wireguard_name: &str) -> Self {
        let mut interfaces = Interfaces {
            wireguard_name: wireguard_name.to_string(),
            wireguard: None,
            loopback: None,
            checked: None,
        };
        interfaces.refresh();
        interfaces
    }

    /// Looks the indexes up again when they are older than `REFRESH`.
    pub fn refresh(&mut self) {
        let now = Instant::now();
        if self
            .checked
            .is_some_and(|t| now.duration_since(t) < REFRESH)
        {
            return;
        }
        self.checked = Some(now);
        self.wireguard = if_nametoindex(self.wireguard_name.as_str()).ok();
        self.loopback = if_nametoindex("lo").ok();
    }

    /// Whether a datagram from `source` that arrived on interface `ifindex` is a peer's.
    pub fn is_peer(&self, source: IpAddr, ifindex: Option<u32>) -> bool {
        let Some(ifindex) = ifindex else {
            return false;
        };
        if self.wireguard == Some(ifindex) {
            return true;
        }
        self.loopback == Some(ifindex) && unmapped(source).is_loopback()
    }
}

/// The view of a TCP client. TCP carries no arrival interface; a connection is a peer's when
/// both ends are loopback, or when it came from the cell's subnets to an address of the
/// WireGuard interface. A forged cell-subnet source cannot complete the handshake from
/// outside: the SYN-ACK goes out through WireGuard to the real peer.
pub fn tcp_is_peer(
    snapshot: &Snapshot,
    client: IpAddr,
    local: SocketAddr,
    wireguard: &str,
) -> bool {
    let (client, local) = (unmapped(client), unmapped(local.ip()));
    if client.is_loopback() {
        return local.is_loopback();
    }
    if !snapshot
        .internal_subnets
        .iter()
        .any(|n| n.contains(&client))
    {
        return false;
    }
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return false;
    };
    addresses
        .filter(|a| a.interface_name == wireguard)
        .filter_map(|a| a.address)
        .any(|a| {
            let ip = a
                .as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())));
            ip == Some(local)
        })
}
