//! Tor exits: a transparent Tor client per connection, the torproject's "anonymizing
//! middlebox" recipe. picd writes a torrc (see `torrc`), checks it with `tor --verify-config`,
//! and runs one supervised `tor` (see `supervisor`); nft redirects the exit's peers' TCP to
//! its TransPort and their UDP/53 to its DNSPort, both on the cell's WireGuard address. The
//! exit's table holds only `unreachable`, so everything else of theirs (UDP and QUIC, ICMP,
//! IPv6, tcp/53, which DNSPort does not take) is refused at once instead of leaving through
//! the uplink, the classic leak of that recipe. Health is what tor's control port says:
//! bootstrapped to 100 % and a circuit established (see `control`). While the exit is down
//! nothing is redirected: its fail-closed peers meet `unreachable`, its fail-open ones go
//! direct.

pub mod control;
pub mod driver;
pub mod routes;
pub mod supervisor;
pub mod torrc;

use serde::{Deserialize, Serialize};

pub const TYPE_TOR: &str = "tor";

/// Where an exit's TransPort listens (on the cell's WireGuard address): base + slot.
const TRANS_PORT_BASE: u16 = 13000;
/// Where an exit's DNSPort listens (UDP, same address): base + slot.
const DNS_PORT_BASE: u16 = 13300;

pub fn is_tor(kind: &str) -> bool {
    kind == TYPE_TOR
}

pub fn trans_port(slot: u8) -> u16 {
    TRANS_PORT_BASE + u16::from(slot)
}

pub fn dns_port(slot: u8) -> u16 {
    DNS_PORT_BASE + u16::from(slot)
}

/// A tor connection has nothing to set but its name: picd chooses the ports and paths, and
/// options such as bridges or exit countries are deliberately not offered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorSettings {}

/// A tor exit's lines of the DNS-and-redirect chain (nat prerouting), while it is up: its
/// peers' UDP/53, to any resolver, goes to DNSPort; their TCP (not to the peers' subnet, and
/// not to port 53: DNSPort is UDP only, so tcp/53 is refused like all else) to TransPort.
/// IPv4 only: their IPv6 meets the exit's `unreachable`.
pub fn render_redirect(
    out: &mut String,
    wireguard_interface: &str,
    mark: u32,
    slot: u8,
    redirect: &super::ProxyRedirect,
) {
    if !redirect.open {
        return;
    }
    let lines = super::RedirectLines {
        kind: "tor",
        dns: "udp dport 53",
        tcp: "tcp dport != 53",
    };
    redirect.render(out, wireguard_interface, mark, slot, &lines);
}

#[cfg(test)]
mod tests {
    use super::super::{render, ExitRules, ExitTable, ProxyRedirect};

    fn table(open: bool) -> ExitTable {
        ExitTable {
            exits: vec![ExitRules {
                slot: 3,
                interface: "picd0e3".into(),
                dns4: None,
                dns6: None,
                proxy: Some(ProxyRedirect {
                    tcp_port: super::trans_port(3),
                    dns_port: super::dns_port(3),
                    internal4: Some("10.8.0.0/24".parse().unwrap()),
                    tor: true,
                    open,
                }),
            }],
            peers4: vec![("10.8.0.4".parse().unwrap(), 3)],
            peers6: vec![("fd00::4".parse().unwrap(), 3)],
            counted: vec![],
        }
    }

    #[test]
    fn a_tor_exit_redirects_udp_dns_and_tcp_but_not_tcp_53() {
        let mut out = String::new();
        render::chains(&mut out, &table(true), "picd0");
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert!(
            lines.contains(
                &"iifname \"picd0\" meta mark 0x03000000 meta nfproto ipv4 udp dport 53 \
                  redirect to :13303 comment \"tor-dns:3\""
            ),
            "{out}"
        );
        assert!(
            lines.contains(
                &"iifname \"picd0\" meta mark 0x03000000 meta nfproto ipv4 ip daddr != \
                  10.8.0.0/24 tcp dport != 53 redirect to :13003 comment \"tor-tcp:3\""
            ),
            "{out}"
        );
        assert!(!out.contains("dnat") && !out.contains("th dport"), "{out}");
        let mut rest = String::new();
        render::sets(&mut rest, &table(true));
        render::masquerade(&mut rest, &table(true));
        assert!(
            !rest.contains("picd0e3"),
            "no egress, no masquerade: {rest}"
        );
        assert!(rest.contains("10.8.0.4 : 0x03000000"), "{rest}");
        assert!(rest.contains("fd00::4 : 0x03000000"), "{rest}");
    }

    #[test]
    fn a_down_tor_exit_redirects_nothing_and_keeps_its_peers_marked() {
        let mut out = String::new();
        render::chains(&mut out, &table(false), "picd0");
        assert!(!out.contains("redirect"), "{out}");
        render::sets(&mut out, &table(false));
        assert!(out.contains("10.8.0.4 : 0x03000000"), "{out}");
    }
}
