//! The exits' part of picd's nftables table, rendered as text for routing's renderer (which
//! applies the whole table in one `nft -f` transaction, so a peer's move from one exit to
//! another, or to direct, is atomic). Pure: tests compare strings.
//!
//! - `exit_mark4/6` map a peer's address to its exit's mark; a chain at the mangle priority of
//!   prerouting sets it on every packet from the WireGuard interface (a miss leaves mark 0:
//!   direct). The `ip rule fwmark` of each exit sends marked packets to the exit's table.
//! - The kill switch, first in the forward chain: a marked packet bound anywhere but the
//!   peers' subnet may leave only through its own exit's interface (`exit_egress`), else it
//!   is refused at once. It holds when the routing does not (a deleted `ip rule`, a flushed
//!   table), and it comes before any accept, so an old flow cannot keep the wrong way out.
//! - DNS of exit peers (udp and tcp 53, to whatever resolver, the cell's included) goes to the
//!   exit's DNS server; when the exit is down it fails with everything else. Their DNS over
//!   IPv6 where the exit has no IPv6 resolver (nft cannot send it to an IPv4 one) is refused
//!   at once, so the stub asks its IPv4 server instead: else a query to the cell's own IPv6
//!   address would be answered by the cell's upstream, by the uplink.
//! - Masquerade out of each exit's interface.

use std::fmt::Write;

use ipnet::{Ipv4Net, Ipv6Net};

use super::{mark, ExitTable};
use crate::routing::render::Counter;

const REJECT: &str = "reject with icmpx admin-prohibited";
/// The comments of the kill-switch lines (their counters are carried by these).
pub const KILL_SWITCH: [&str; 2] = ["killswitch4", "killswitch6"];

/// The maps from peer to mark and the set of allowed (mark, interface) pairs.
pub fn sets(out: &mut String, table: &ExitTable) {
    let elements = |items: Vec<String>| match items.is_empty() {
        true => String::new(),
        false => format!(" elements = {{ {} }}", items.join(", ")),
    };
    let v4 = table
        .peers4
        .iter()
        .map(|(a, s)| format!("{a} : {:#010x}", mark(*s)));
    let v6 = table
        .peers6
        .iter()
        .map(|(a, s)| format!("{a} : {:#010x}", mark(*s)));
    let _ = writeln!(
        out,
        "  map exit_mark4 {{ type ipv4_addr : mark;{} }}",
        elements(v4.collect())
    );
    let _ = writeln!(
        out,
        "  map exit_mark6 {{ type ipv6_addr : mark;{} }}",
        elements(v6.collect())
    );
    let egress = table
        .exits
        .iter()
        .filter(|e| e.proxy.is_none())
        .map(|e| format!("{:#010x} . \"{}\"", mark(e.slot), e.interface));
    let _ = writeln!(
        out,
        "  set exit_egress {{ typeof meta mark . oifname;{} }}",
        elements(egress.collect())
    );
}

/// The marking chain and the DNS chain.
pub fn chains(out: &mut String, table: &ExitTable, wireguard_interface: &str) {
    let wg = wireguard_interface;
    let _ = writeln!(
        out,
        "  chain exits_mark {{ type filter hook prerouting priority mangle; policy accept;"
    );
    let _ = writeln!(
        out,
        "    iifname \"{wg}\" meta mark set ip saddr map @exit_mark4"
    );
    let _ = writeln!(
        out,
        "    iifname \"{wg}\" meta mark set ip6 saddr map @exit_mark6"
    );
    let _ = writeln!(out, "  }}");
    let _ = writeln!(
        out,
        "  chain exits_dns {{ type nat hook prerouting priority dstnat; policy accept;"
    );
    for exit in &table.exits {
        let m = mark(exit.slot);
        let dns = "meta l4proto { tcp, udp } th dport 53";
        if let Some(redirect) = &exit.proxy {
            match redirect.tor {
                true => super::tor::render_redirect(out, wg, m, exit.slot, redirect),
                false => super::proxy::render_redirect(out, wg, m, exit.slot, redirect),
            }
            continue;
        }
        if let Some(dns4) = exit.dns4 {
            let _ = writeln!(
                out,
                "    iifname \"{wg}\" meta mark {m:#010x} meta nfproto ipv4 {dns} dnat ip to {dns4} \
                 comment \"exit-dns4:{}\"",
                exit.slot
            );
        }
        if let Some(dns6) = exit.dns6 {
            let _ = writeln!(
                out,
                "    iifname \"{wg}\" meta mark {m:#010x} meta nfproto ipv6 {dns} dnat ip6 to {dns6} \
                 comment \"exit-dns6:{}\"",
                exit.slot
            );
        }
    }
    let _ = writeln!(out, "  }}");
}

/// The kill-switch lines of the forward chain (none before setup: no peers yet).
pub fn kill_switch(
    out: &mut String,
    subnets: Option<(Ipv4Net, Ipv6Net)>,
    wireguard_interface: &str,
    counter: &dyn Fn(&str) -> Counter,
) {
    let Some((v4, v6)) = subnets else {
        return;
    };
    let wg = wireguard_interface;
    for (comment, daddr) in KILL_SWITCH
        .iter()
        .zip([format!("ip daddr != {v4}"), format!("ip6 daddr != {v6}")])
    {
        let c = counter(comment);
        let _ = writeln!(
            out,
            "    iifname \"{wg}\" meta mark != 0 {daddr} meta mark . oifname != @exit_egress \
             counter packets {} bytes {} {REJECT} comment \"{comment}\"",
            c.packets, c.bytes
        );
    }
}

/// The refusal of exit peers' DNS over IPv6 where their exit has no IPv6 resolver to send it
/// to (in the input chain, for the cell's own resolver, and in forward, for any other).
pub fn dns6_refusal(out: &mut String, table: &ExitTable, wireguard_interface: &str) {
    let marks: Vec<String> = table
        .exits
        .iter()
        .filter(|e| e.dns6.is_none())
        .map(|e| format!("{:#010x}", mark(e.slot)))
        .collect();
    if marks.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "    iifname \"{wireguard_interface}\" meta mark {{ {} }} meta nfproto ipv6 \
         meta l4proto {{ tcp, udp }} th dport 53 {REJECT} comment \"exit-dns6-refused\"",
        marks.join(", ")
    );
}

/// Masquerade out of each exit (in the postrouting nat chain): IPv4 and IPv6 alike (NAT66 to
/// the tunnel's address), as the table is `inet`.
pub fn masquerade(out: &mut String, table: &ExitTable) {
    for exit in table.exits.iter().filter(|e| e.proxy.is_none()) {
        let _ = writeln!(
            out,
            "    oifname \"{}\" masquerade comment \"exit-nat:{}\"",
            exit.interface, exit.slot
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::ExitRules;
    use super::*;

    fn table() -> ExitTable {
        ExitTable {
            exits: vec![ExitRules {
                slot: 1,
                interface: "picd0e1".into(),
                dns4: Some("10.64.0.1".parse().unwrap()),
                dns6: None,
                proxy: None,
            }],
            peers4: vec![("10.8.0.2".parse().unwrap(), 1)],
            peers6: vec![("fd00::2".parse().unwrap(), 1)],
            counted: vec![],
        }
    }

    #[test]
    fn the_maps_hold_each_exit_peer_and_the_egress_set_each_exit() {
        let mut out = String::new();
        sets(&mut out, &table());
        assert_eq!(
            out,
            "  map exit_mark4 { type ipv4_addr : mark; elements = { 10.8.0.2 : 0x01000000 } }\n\
             \x20 map exit_mark6 { type ipv6_addr : mark; elements = { fd00::2 : 0x01000000 } }\n\
             \x20 set exit_egress { typeof meta mark . oifname; elements = { 0x01000000 . \"picd0e1\" } }\n"
        );
        let mut empty = String::new();
        sets(&mut empty, &ExitTable::default());
        assert!(!empty.contains("elements"), "{empty}");
    }

    #[test]
    fn the_kill_switch_refuses_a_marked_packet_on_any_other_way_out() {
        let mut out = String::new();
        let subnets = ("10.8.0.0/24".parse().unwrap(), "fd00::/64".parse().unwrap());
        kill_switch(&mut out, Some(subnets), "picd0", &|_| Counter::default());
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert_eq!(
            lines,
            [
                "iifname \"picd0\" meta mark != 0 ip daddr != 10.8.0.0/24 meta mark . oifname != \
                 @exit_egress counter packets 0 bytes 0 reject with icmpx admin-prohibited \
                 comment \"killswitch4\"",
                "iifname \"picd0\" meta mark != 0 ip6 daddr != fd00::/64 meta mark . oifname != \
                 @exit_egress counter packets 0 bytes 0 reject with icmpx admin-prohibited \
                 comment \"killswitch6\"",
            ]
        );
    }

    #[test]
    fn dns_of_an_exit_peer_goes_to_the_exit_and_its_traffic_is_masqueraded() {
        let mut out = String::new();
        chains(&mut out, &table(), "picd0");
        masquerade(&mut out, &table());
        assert!(out.contains(
            "iifname \"picd0\" meta mark 0x01000000 meta nfproto ipv4 meta l4proto { tcp, udp } \
             th dport 53 dnat ip to 10.64.0.1 comment \"exit-dns4:1\""
        ), "{out}");
        assert!(!out.contains("exit-dns6"), "{out}");
        assert!(out.contains("oifname \"picd0e1\" masquerade comment \"exit-nat:1\""));
    }

    #[test]
    fn dns_over_ipv6_is_refused_only_where_the_exit_has_no_ipv6_resolver() {
        let mut out = String::new();
        dns6_refusal(&mut out, &table(), "picd0");
        assert_eq!(
            out.trim(),
            "iifname \"picd0\" meta mark { 0x01000000 } meta nfproto ipv6 meta l4proto \
             { tcp, udp } th dport 53 reject with icmpx admin-prohibited comment \
             \"exit-dns6-refused\""
        );
        let mut with_dns6 = table();
        with_dns6.exits[0].dns6 = Some("fd65::1".parse().unwrap());
        let mut out = String::new();
        dns6_refusal(&mut out, &with_dns6, "picd0");
        assert_eq!(out, "");
        chains(&mut out, &with_dns6, "picd0");
        assert!(
            out.contains(
                "meta mark 0x01000000 meta nfproto ipv6 meta l4proto { tcp, udp } th dport 53 \
             dnat ip6 to fd65::1 comment \"exit-dns6:1\""
            ),
            "{out}"
        );
    }
}
