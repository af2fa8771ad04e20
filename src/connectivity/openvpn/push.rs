//! What an OpenVPN server pushed, read from the client's `PUSH: Received control message:
//! 'PUSH_REPLY,...'` line (printed at `verb 3`): the resolvers the exit's peers' DNS goes to,
//! and the tunnel's IPv6 address (`ifconfig-ipv6`), without which the exit carries no IPv6.

use std::net::{IpAddr, Ipv6Addr};

/// The options of a PUSH_REPLY line (None for any other line).
fn reply(line: &str) -> Option<&str> {
    let (_, reply) = line.split_once("PUSH: Received control message: '")?;
    let reply = reply.strip_prefix("PUSH_REPLY,")?;
    Some(reply.trim_end_matches('\''))
}

/// The DNS servers of a PUSH_REPLY line: `dhcp-option DNS` (either family) and `dhcp-option
/// DNS6`, the IPv6 resolver of a tunnel with IPv6. The IPv4 ones come first: the health probe
/// pings the first, and the tunnel has IPv4 always.
pub fn pushed_dns(line: &str) -> Option<Vec<IpAddr>> {
    let mut dns: Vec<IpAddr> = reply(line)?
        .split(',')
        .filter_map(|item| {
            let item = item.strip_prefix("dhcp-option ")?;
            item.strip_prefix("DNS ")
                .or_else(|| item.strip_prefix("DNS6 "))
        })
        .filter_map(|ip| ip.trim().parse().ok())
        .take(4)
        .collect();
    dns.sort_by_key(IpAddr::is_ipv6);
    Some(dns)
}

/// The tunnel's IPv6 address a PUSH_REPLY line gives (`ifconfig-ipv6 <addr>/<bits> <gw>`;
/// None without one), and whether the reply goes on in another message (`push-continuation
/// 2`). None for any other line.
pub fn pushed_ipv6(line: &str) -> Option<(Option<Ipv6Addr>, bool)> {
    let options = reply(line)?;
    let address = options.split(',').find_map(|item| {
        let rest = item.strip_prefix("ifconfig-ipv6 ")?;
        rest.split(['/', ' ']).next()?.parse().ok()
    });
    let continues = options
        .split(',')
        .any(|item| item.trim() == "push-continuation 2");
    Some((address, continues))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4_ONLY: &str = "2026-12-07 17:00:00 PUSH: Received control message: 'PUSH_REPLY,\
        dhcp-option DNS 10.65.0.1,route-gateway 10.65.0.1,topology subnet,ping 2,\
        ifconfig 10.65.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM'";
    const DUAL: &str = "PUSH: Received control message: 'PUSH_REPLY,dhcp-option DNS6 fd65::1,\
        dhcp-option DNS 10.65.0.1,route-ipv6 2000::/3,tun-ipv6,ifconfig-ipv6 fd65::1000/64 \
        fd65::1,ifconfig 10.65.0.2 255.255.255.0'";

    #[test]
    fn the_servers_dns_is_read_from_its_push_reply_ipv4_first() {
        assert_eq!(
            pushed_dns(V4_ONLY),
            Some(vec!["10.65.0.1".parse().unwrap()])
        );
        let both: Vec<IpAddr> = vec!["10.65.0.1".parse().unwrap(), "fd65::1".parse().unwrap()];
        assert_eq!(pushed_dns(DUAL), Some(both));
        assert_eq!(
            pushed_dns("PUSH: Received control message: 'PUSH_REPLY,ping 2'"),
            Some(vec![])
        );
        assert_eq!(pushed_dns("Initialization Sequence Completed"), None);
    }

    #[test]
    fn the_tunnels_ipv6_is_its_pushed_ifconfig_ipv6() {
        assert_eq!(pushed_ipv6(V4_ONLY), Some((None, false)));
        let v6 = "fd65::1000".parse().unwrap();
        assert_eq!(pushed_ipv6(DUAL), Some((Some(v6), false)));
        let first_part = "PUSH: Received control message: 'PUSH_REPLY,ping 2,push-continuation 2'";
        assert_eq!(pushed_ipv6(first_part), Some((None, true)));
        assert_eq!(pushed_ipv6("Initialization Sequence Completed"), None);
    }
}
