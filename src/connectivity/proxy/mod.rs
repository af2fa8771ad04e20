//! Proxy exits: `socks5` and `http` (CONNECT) connections. Debian's `redsocks`, one process
//! per connection that picd starts, watches and stops, takes the TCP of the connection's
//! peers (nft redirects it from the WireGuard interface to redsocks' port) and opens each flow
//! through the proxy; picd's own forwarder answers their DNS (udp and tcp 53, whatever
//! resolver they ask) by asking the connection's resolver over a stream through the same
//! proxy. Nothing else of theirs has a way out: the exit's table holds only `unreachable`,
//! and the kill switch refuses a marked packet bound for the uplink.
//!
//! Why redsocks and not an embedded tun2proxy: tun2proxy 0.8.7 brings about 25 direct
//! crates (a userspace TCP/IP stack in `ipstack`, `tun`, `hickory-proto`, `tproxy-config`,
//! and a CLI's `clap`, `ctrlc2`, `env_logger`, `dotenvy`) into picd's process, for a path
//! that carries TCP only anyway (HTTP CONNECT always; SOCKS5 UDP is rare at providers). That
//! is what redsocks does, as a separate process with its own user, kept by Debian.

pub mod client;
pub mod config;
pub mod dns;
pub mod driver;
pub mod input;
pub mod routes;
pub mod supervisor;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub const TYPE_SOCKS5: &str = "socks5";
pub const TYPE_HTTP: &str = "http";

/// Where an exit's redsocks listens (on the cell's WireGuard address): base + slot.
const REDSOCKS_PORT_BASE: u16 = 12300;
/// Where an exit's DNS forwarder listens (udp and tcp, same address): base + slot.
const DNS_PORT_BASE: u16 = 12600;

pub fn is_proxy(kind: &str) -> bool {
    kind == TYPE_SOCKS5 || kind == TYPE_HTTP
}

pub fn redsocks_port(slot: u8) -> u16 {
    REDSOCKS_PORT_BASE + u16::from(slot)
}

pub fn dns_port(slot: u8) -> u16 {
    DNS_PORT_BASE + u16::from(slot)
}

/// What may be stored in the clear and shown: everything but the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxySettings {
    /// An IPv4 address or a host name (resolved by the cell, over its own uplink).
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub has_password: bool,
    /// Resolvers asked through the proxy for the peers' DNS (none: their queries fail).
    pub dns: Vec<IpAddr>,
    /// `host:port` the health check opens through the proxy, if any.
    pub probe_target: Option<String>,
}

/// A proxy as the client, the forwarder and redsocks need it: where, how, and the password.
#[derive(Clone)]
pub struct Upstream {
    pub kind: String,
    pub address: std::net::SocketAddr,
    pub username: Option<String>,
    pub password: Option<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for Upstream {
    // Never the password, also not in a debug line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("kind", &self.kind)
            .field("address", &self.address)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The proxy's address: a host name is resolved here (the cell's own resolver, direct), to
/// IPv4, which is what redsocks takes.
pub async fn resolve(settings: &ProxySettings) -> Result<std::net::SocketAddr, String> {
    let target = format!("{}:{}", settings.host, settings.port);
    let found = tokio::net::lookup_host(target.clone())
        .await
        .map_err(|e| format!("resolving {}: {e}", settings.host))?;
    found
        .into_iter()
        .find(|a| a.is_ipv4())
        .ok_or_else(|| format!("{} has no IPv4 address", settings.host))
}

/// A proxy exit's lines of the DNS-and-redirect chain (nat prerouting): its peers' DNS, to
/// any resolver the cell's own included, goes to picd's forwarder; their other TCP (not to
/// the peers' subnet) to redsocks. IPv4 only: their IPv6 meets the exit's `unreachable`.
pub fn render_redirect(
    out: &mut String,
    wireguard_interface: &str,
    mark: u32,
    slot: u8,
    redirect: &super::ProxyRedirect,
) {
    let lines = super::RedirectLines {
        kind: "proxy",
        dns: "meta l4proto { tcp, udp } th dport 53",
        tcp: "meta l4proto tcp",
    };
    redirect.render(out, wireguard_interface, mark, slot, &lines);
}

#[cfg(test)]
mod tests {
    use super::super::{render, ExitRules, ExitTable, ProxyRedirect};

    fn table() -> ExitTable {
        ExitTable {
            exits: vec![ExitRules {
                slot: 2,
                interface: "picd0e2".into(),
                dns4: None,
                dns6: None,
                proxy: Some(ProxyRedirect {
                    tcp_port: super::redsocks_port(2),
                    dns_port: super::dns_port(2),
                    internal4: Some("10.8.0.0/24".parse().unwrap()),
                    tor: false,
                    open: true,
                }),
            }],
            peers4: vec![("10.8.0.3".parse().unwrap(), 2)],
            peers6: vec![],
            counted: vec![],
        }
    }

    #[test]
    fn a_proxy_exit_redirects_dns_then_tcp_and_has_no_way_out_of_its_own() {
        let mut out = String::new();
        render::chains(&mut out, &table(), "picd0");
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert!(lines.contains(
            &"iifname \"picd0\" meta mark 0x02000000 meta nfproto ipv4 meta l4proto { tcp, udp } \
              th dport 53 redirect to :12602 comment \"proxy-dns:2\""
        ), "{out}");
        let dns = lines
            .iter()
            .position(|l| l.contains("proxy-dns:2"))
            .unwrap();
        let tcp = lines
            .iter()
            .position(|l| {
                *l == "iifname \"picd0\" meta mark 0x02000000 meta nfproto ipv4 ip daddr != \
                       10.8.0.0/24 meta l4proto tcp redirect to :12302 comment \"proxy-tcp:2\""
            })
            .expect("the TCP redirect");
        assert!(dns < tcp, "tcp 53 goes to the forwarder, not to redsocks");
        assert!(!out.contains("dnat"), "{out}");
        let mut rest = String::new();
        render::sets(&mut rest, &table());
        render::masquerade(&mut rest, &table());
        assert!(!rest.contains("picd0e2"), "no egress or masquerade: {rest}");
        assert!(rest.contains("10.8.0.3 : 0x02000000"), "{rest}");
    }
}
