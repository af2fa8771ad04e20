//! Per-peer traffic through its exit: counting lines in the forward chain (after the kill
//! switch, with no verdict) for each peer on an interface exit, one for its packets out
//! through the exit's interface and one for the replies back, per family. Their comments
//! name the peer and the exit, so routing carries the counters across rebuilds like any
//! other line, and a peer moved to another exit starts a new count.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::ExitTable;
use crate::routing::render::Counter;

/// A peer on an interface exit, as its counting lines need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedPeer {
    pub peer: String,
    pub connection: String,
    /// The exit's interface.
    pub interface: String,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

/// The parts of one peer's count: out and back, per family.
const PARTS: [&str; 4] = ["out4", "in4", "out6", "in6"];

/// The comment of one counting line. Peer names are DNS labels and ids UUIDs, so the text
/// needs no quoting and stays within nft's 128 bytes.
fn comment(peer: &str, connection: &str, part: &str) -> String {
    format!("exit-traffic:{peer}:{connection}:{part}")
}

/// The comments of every counting line of one peer on one exit.
pub fn comments(peer: &str, connection: &str) -> Vec<String> {
    PARTS
        .iter()
        .map(|part| comment(peer, connection, part))
        .collect()
}

/// A peer's traffic through an exit from counters read back (by comment); None when the
/// table holds no counting line for it (a direct peer, a proxy exit, not yet applied).
pub fn sum(counters: &HashMap<String, Counter>, peer: &str, connection: &str) -> Option<Counter> {
    let mut found = None;
    for key in comments(peer, connection) {
        if let Some(c) = counters.get(&key) {
            let total: &mut Counter = found.get_or_insert_with(Counter::default);
            total.packets += c.packets;
            total.bytes += c.bytes;
        }
    }
    found
}

/// The counting lines of the forward chain.
pub fn render(
    out: &mut String,
    table: &ExitTable,
    wireguard_interface: &str,
    counter: &dyn Fn(&str) -> Counter,
) {
    let wg = wireguard_interface;
    for p in &table.counted {
        let exit = &p.interface;
        let addrs = [
            p.v4.map(|a| ("ip", a.to_string(), "4")),
            p.v6.map(|a| ("ip6", a.to_string(), "6")),
        ];
        for (family, addr, n) in addrs.into_iter().flatten() {
            for (part, matches) in [
                (
                    "out",
                    format!("iifname \"{wg}\" oifname \"{exit}\" {family} saddr {addr}"),
                ),
                (
                    "in",
                    format!("iifname \"{exit}\" oifname \"{wg}\" {family} daddr {addr}"),
                ),
            ] {
                let key = comment(&p.peer, &p.connection, &format!("{part}{n}"));
                let c = counter(&key);
                let _ = writeln!(
                    out,
                    "    {matches} counter packets {} bytes {} comment \"{key}\"",
                    c.packets, c.bytes
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_counted_out_through_its_exit_and_back_and_keeps_its_counter() {
        let table = ExitTable {
            counted: vec![CountedPeer {
                peer: "alice".into(),
                connection: "c1".into(),
                interface: "picd0e1".into(),
                v4: Some("10.8.0.2".parse().unwrap()),
                v6: None,
            }],
            ..ExitTable::default()
        };
        let kept = |key: &str| match key {
            "exit-traffic:alice:c1:in4" => Counter {
                packets: 3,
                bytes: 300,
            },
            _ => Counter::default(),
        };
        let mut out = String::new();
        render(&mut out, &table, "picd0", &kept);
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert_eq!(
            lines,
            [
                "iifname \"picd0\" oifname \"picd0e1\" ip saddr 10.8.0.2 counter packets 0 \
                 bytes 0 comment \"exit-traffic:alice:c1:out4\"",
                "iifname \"picd0e1\" oifname \"picd0\" ip daddr 10.8.0.2 counter packets 3 \
                 bytes 300 comment \"exit-traffic:alice:c1:in4\"",
            ]
        );
        let read = HashMap::from([
            (
                comment("alice", "c1", "out4"),
                Counter {
                    packets: 2,
                    bytes: 100,
                },
            ),
            (
                comment("alice", "c1", "in4"),
                Counter {
                    packets: 3,
                    bytes: 300,
                },
            ),
        ]);
        assert_eq!(
            sum(&read, "alice", "c1"),
            Some(Counter {
                packets: 5,
                bytes: 400
            })
        );
        assert_eq!(sum(&read, "alice", "c2"), None);
    }
}
