//! Connectivity: named connections ("exits") a peer's internet traffic may leave the cell
//! through instead of the cell's own uplink, and each peer's choice of exit. Types:
//! `wireguard_ext` (a provider's wg-quick file), `openvpn` (a provider's .ovpn, see
//! `openvpn`), `socks5` and `http` proxies (see `proxy`) and `tor` (see `tor`). Each exit gets
//! a slot 1..254 that
//! fixes its firewall mark, its routing table and its `ip rule`; the driver keeps the
//! interface, the table (a real default while the exit is up, an `unreachable` default always)
//! and the rules; the exits' part of picd's nftables table (the peer -> mark map, the kill
//! switch, DNS that follows the exit, masquerade) is rendered here and applied by routing in
//! its one `nft -f` transaction.

mod child;
pub mod driver;
mod health;
mod interface;
mod kernel;
pub mod openvpn;
pub mod passes;
pub mod peer_routes;
pub mod proxy;
pub mod render;
pub mod routes;
pub mod store;
pub mod tor;
pub mod traffic;
pub mod wgquick;

use std::net::{Ipv4Addr, Ipv6Addr};

use rusqlite::Connection;

/// The bits of the packet mark picd's exits use: the slot in the top byte, so the marks of
/// other software on the host (Tailscale 0xff0000, wg-quick 0xca6c, Docker 0x2000) stay clear.
pub const MARK_MASK: u32 = 0xff00_0000;
/// The rule that keeps traffic between peers (and back to them) in `main`, ahead of the exits'.
pub const PEERS_RULE_PREF: u32 = 10000;
const EXIT_RULE_PREF_BASE: u32 = 10100;
const EXIT_TABLE_BASE: u32 = 1000;

pub fn mark(slot: u8) -> u32 {
    u32::from(slot) << 24
}

pub fn table_id(slot: u8) -> u32 {
    EXIT_TABLE_BASE + u32::from(slot)
}

pub fn rule_pref(slot: u8) -> u32 {
    EXIT_RULE_PREF_BASE + u32::from(slot)
}

/// The exit's interface: the cell's WireGuard interface name (cut to fit) with `e<slot>`, so
/// two cells on one host (or in the tests' namespaces) never share a name; userspace
/// WireGuard keeps its control socket by name in /var/run/wireguard, whatever the namespace.
pub fn interface_name(wireguard_interface: &str, slot: u8) -> String {
    let suffix = format!("e{slot}");
    let keep = 15 - suffix.len();
    let base: String = wireguard_interface.chars().take(keep).collect();
    format!("{base}{suffix}")
}

/// The device an exit of type `kind` answers as its own: WireGuard and OpenVPN exits have
/// one; proxy and tor exits are redirects to a local process and have none.
pub fn device_name(kind: &str, wireguard_interface: &str, slot: u8) -> Option<String> {
    [store::TYPE_WIREGUARD_EXT, store::TYPE_OPENVPN]
        .contains(&kind)
        .then(|| interface_name(wireguard_interface, slot))
}

/// The cell's peer subnets (None before setup).
pub type Subnets = (ipnet::Ipv4Net, ipnet::Ipv6Net);

/// One exit as the nftables table needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitRules {
    pub slot: u8,
    pub interface: String,
    pub dns4: Option<Ipv4Addr>,
    pub dns6: Option<Ipv6Addr>,
    /// A proxy exit: its peers' TCP and DNS are redirected to picd's ports (no interface).
    pub proxy: Option<ProxyRedirect>,
}

/// Where a proxy or tor exit's peers' packets are redirected on the cell: TCP to redsocks or
/// tor's TransPort, DNS to picd's forwarder (udp and tcp 53) or tor's DNSPort (udp only); TCP
/// to the peers' own subnet (the cell's services, other peers) is left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRedirect {
    pub tcp_port: u16,
    pub dns_port: u16,
    pub internal4: Option<ipnet::Ipv4Net>,
    /// A tor exit (rendered by `tor::render_redirect`).
    pub tor: bool,
    /// False while a tor exit is down: nothing is redirected, so its peers that stay (the
    /// fail-closed ones) meet the `unreachable` table. A proxy's is always open.
    pub open: bool,
}

/// What a redirect exit sends where: its name in the rules' comments, and the matches of the
/// DNS it takes and of the TCP it takes.
pub struct RedirectLines {
    pub kind: &'static str,
    pub dns: &'static str,
    pub tcp: &'static str,
}

impl ProxyRedirect {
    /// The exit's two lines of the DNS-and-redirect chain (nat prerouting), for its peers'
    /// IPv4 (their IPv6 meets the exit's `unreachable`): DNS to `dns_port`, TCP not to the
    /// peers' subnet to `tcp_port`.
    pub fn render(
        &self,
        out: &mut String,
        wireguard_interface: &str,
        mark: u32,
        slot: u8,
        lines: &RedirectLines,
    ) {
        use std::fmt::Write;
        let RedirectLines { kind, dns, tcp } = lines;
        let head =
            format!("iifname \"{wireguard_interface}\" meta mark {mark:#010x} meta nfproto ipv4");
        let _ = writeln!(
            out,
            "    {head} {dns} redirect to :{} comment \"{kind}-dns:{slot}\"",
            self.dns_port
        );
        let internal = self
            .internal4
            .map(|net| format!(" ip daddr != {net}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    {head}{internal} {tcp} redirect to :{} comment \"{kind}-tcp:{slot}\"",
            self.tcp_port
        );
    }
}

/// The exits' part of picd's nftables table, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitTable {
    pub exits: Vec<ExitRules>,
    /// Each exit peer's addresses with its exit's slot. A fail-open peer whose exit is down is
    /// left out (it goes direct); a fail-closed one stays, and meets the `unreachable` route.
    pub peers4: Vec<(Ipv4Addr, u8)>,
    pub peers6: Vec<(Ipv6Addr, u8)>,
    /// Each peer whose traffic through an interface exit is counted (proxy and tor exits'
    /// traffic is not forwarded, so it has no forward-chain counter).
    pub counted: Vec<traffic::CountedPeer>,
}

/// Reads the exits' part of the table from the store (routing's driver calls this).
pub fn exit_table(conn: &Connection, wireguard_interface: &str) -> rusqlite::Result<ExitTable> {
    let connections = store::list(conn)?;
    let health = store::health(conn)?;
    let mut table = ExitTable::default();
    // Unreadable settings only widen the TCP redirect to the cell's own services (nothing
    // leaves that way); they do not stop the table.
    let internal4 = crate::cell::store::read_cell_config(conn)
        .ok()
        .flatten()
        .map(|c| c.cell.subnet_v4);
    for c in &connections {
        let down = health.get(&c.id).is_some_and(|(state, _)| state == "down");
        let proxy = match &c.kind {
            k if proxy::is_proxy(k) => Some(ProxyRedirect {
                tcp_port: proxy::redsocks_port(c.slot),
                dns_port: proxy::dns_port(c.slot),
                internal4,
                tor: false,
                open: true,
            }),
            k if tor::is_tor(k) => Some(ProxyRedirect {
                tcp_port: tor::trans_port(c.slot),
                dns_port: tor::dns_port(c.slot),
                internal4,
                tor: true,
                open: !down,
            }),
            _ => None,
        };
        // A proxy exit's resolvers are asked by the forwarder, not by a DNAT.
        let dns = match proxy {
            Some(_) => &[][..],
            None => c.settings.dns(),
        };
        table.exits.push(ExitRules {
            slot: c.slot,
            interface: interface_name(wireguard_interface, c.slot),
            dns4: dns.iter().find_map(|ip| match ip {
                std::net::IpAddr::V4(v4) => Some(*v4),
                _ => None,
            }),
            dns6: dns.iter().find_map(|ip| match ip {
                std::net::IpAddr::V6(v6) => Some(*v6),
                _ => None,
            }),
            proxy,
        });
    }
    for peer in store::peer_exits(conn)? {
        let Some(id) = &peer.connection else {
            continue;
        };
        let Some(c) = connections.iter().find(|c| &c.id == id) else {
            continue;
        };
        let down = health.get(id).is_some_and(|(state, _)| state == "down");
        if down && peer.fail_open {
            continue;
        }
        if let Ok(v4) = peer.address_v4.parse() {
            table.peers4.push((v4, c.slot));
        }
        if let Ok(v6) = peer.address_v6.parse() {
            table.peers6.push((v6, c.slot));
        }
        if !proxy::is_proxy(&c.kind) && !tor::is_tor(&c.kind) {
            table.counted.push(traffic::CountedPeer {
                peer: peer.peer.clone(),
                connection: c.id.clone(),
                interface: interface_name(wireguard_interface, c.slot),
                v4: peer.address_v4.parse().ok(),
                v6: peer.address_v6.parse().ok(),
            });
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_interface_name_fits_and_the_slot_fixes_mark_table_and_rule() {
        assert_eq!(interface_name("picd0", 3), "picd0e3");
        assert_eq!(interface_name("a-very-long-name", 254), "a-very-longe254");
        assert!(interface_name("a-very-long-name", 254).len() <= 15);
        assert_eq!(mark(1), 0x0100_0000);
        assert_eq!(mark(254) & !MARK_MASK, 0);
        assert_eq!((table_id(7), rule_pref(7)), (1007, 10107));
    }
}

/// The connectivity routes' and health loop's state: the core, the exits' driver and routing's
/// driver (a change of exits is applied in routing's one table).
#[derive(Clone)]
pub struct ConnectivityApp {
    pub core: crate::state::Core,
    pub connectivity: std::sync::Arc<driver::ConnectivityDriver>,
    pub routing: std::sync::Arc<crate::routing::driver::RoutingDriver>,
}
crate::reads_through_to_core!(ConnectivityApp);
