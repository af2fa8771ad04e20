//! Per-peer policy: whether a peer's traffic may leave the cell for the internet ("cell
//! services only" when it may not) and whether it may reach the other peers. Stored in
//! `routing_peer_policy` (a peer without a row has the defaults, both on), rendered as four
//! sets and the first lines of the forward chain.
//!
//! The cell itself is reached through the input chain, which these lines never touch: a
//! peer with internet off still reaches the cell's services and DNS.

use std::collections::HashMap;
use std::fmt::Write;

use ipnet::{Ipv4Net, Ipv6Net};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::render::Counter;

/// What a refused packet gets: an ICMP "administratively prohibited", so the peer's
/// program fails at once instead of waiting for a timeout.
const REJECT: &str = "reject with icmpx admin-prohibited";

/// A peer's effective policy, with the addresses it is enforced on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PeerPolicy {
    pub peer: String,
    pub address_v4: String,
    pub address_v6: String,
    pub internet: bool,
    pub peer_to_peer: bool,
    /// When the owner last changed it; None while the peer has the defaults.
    pub updated_at: Option<String>,
}

/// A change to one peer's policy: the fields left None keep their value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyChange {
    pub internet: Option<bool>,
    pub peer_to_peer: Option<bool>,
}

/// The stored rows by peer name: (internet, peer_to_peer, updated_at).
fn stored(conn: &Connection) -> rusqlite::Result<HashMap<String, (bool, bool, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT peer_name, internet, peer_to_peer, updated_at FROM routing_peer_policy",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?;
    rows.collect()
}

fn effective(
    peer: crate::peers::store::PeerRecord,
    row: Option<&(bool, bool, String)>,
) -> PeerPolicy {
    let (internet, peer_to_peer, updated_at) = match row {
        Some((i, p, at)) => (*i, *p, Some(at.clone())),
        None => (true, true, None),
    };
    PeerPolicy {
        peer: peer.name,
        address_v4: peer.address_v4,
        address_v6: peer.address_v6,
        internet,
        peer_to_peer,
        updated_at,
    }
}

/// Every peer with its effective policy, by name. The peers come from the peers domain; a
/// row whose peer is gone cannot exist (the foreign key cascades on delete).
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<PeerPolicy>> {
    let rows = stored(conn)?;
    Ok(crate::peers::store::list(conn)?
        .into_iter()
        .map(|peer| {
            let row = rows.get(&peer.name);
            effective(peer, row)
        })
        .collect())
}

/// One peer's effective policy; None when there is no such peer.
pub fn get(conn: &Connection, name: &str) -> rusqlite::Result<Option<PeerPolicy>> {
    let Some(peer) = crate::peers::store::get(conn, name)? else {
        return Ok(None);
    };
    let rows = stored(conn)?;
    let row = rows.get(name);
    Ok(Some(effective(peer, row)))
}

/// Applies `change` to the peer's policy and stores the whole row; None when there is no
/// such peer.
pub fn update(
    conn: &Connection,
    name: &str,
    change: PolicyChange,
    now: &str,
) -> rusqlite::Result<Option<PeerPolicy>> {
    let Some(current) = get(conn, name)? else {
        return Ok(None);
    };
    let internet = change.internet.unwrap_or(current.internet);
    let peer_to_peer = change.peer_to_peer.unwrap_or(current.peer_to_peer);
    conn.execute(
        "INSERT INTO routing_peer_policy (peer_name, internet, peer_to_peer, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (peer_name) DO UPDATE SET internet = excluded.internet,
             peer_to_peer = excluded.peer_to_peer, updated_at = excluded.updated_at",
        params![name, internet, peer_to_peer, now],
    )?;
    Ok(Some(PeerPolicy {
        internet,
        peer_to_peer,
        updated_at: Some(now.to_string()),
        ..current
    }))
}

/// The comments of the forward chain's policy lines (their counters are carried by these).
pub const COMMENTS: [&str; 6] = [
    "peer-isolated4-from",
    "peer-isolated4-to",
    "peer-isolated6-from",
    "peer-isolated6-to",
    "peer-no-internet4",
    "peer-no-internet6",
];

/// `no_internet4/6` (peers whose internet is off) and `isolated4/6` (peers with
/// peer_to_peer off), holding the peers' addresses.
pub fn render_sets(out: &mut String, policies: &[PeerPolicy]) {
    let no_internet: Vec<&PeerPolicy> = policies.iter().filter(|p| !p.internet).collect();
    let isolated: Vec<&PeerPolicy> = policies.iter().filter(|p| !p.peer_to_peer).collect();
    for (name, peers) in [("no_internet", &no_internet), ("isolated", &isolated)] {
        let v4 = peers.iter().map(|p| p.address_v4.as_str());
        address_set(out, &format!("{name}4"), "ipv4_addr", v4);
        let v6 = peers.iter().map(|p| p.address_v6.as_str());
        address_set(out, &format!("{name}6"), "ipv6_addr", v6);
    }
}

fn address_set<'a>(
    out: &mut String,
    name: &str,
    family: &str,
    addresses: impl Iterator<Item = &'a str>,
) {
    // Addresses come from the peers' rows; anything else (or the other family) would make
    // nft refuse the whole table.
    let v4 = family == "ipv4_addr";
    let elements: Vec<&str> = addresses
        .filter(|a| {
            a.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_ipv4() == v4)
        })
        .collect();
    let _ = write!(out, "  set {name} {{ type {family};");
    if !elements.is_empty() {
        let _ = write!(out, " elements = {{ {} }}", elements.join(", "));
    }
    let _ = writeln!(out, " }}");
}

/// The first lines of the forward chain: a packet between two peers where either is
/// isolated is refused, and so is a packet from a peer without internet that goes anywhere
/// but another peer (the peers' subnet). They come before the allow list and the owner's
/// rules: neither may open what the owner closed for a peer.
pub fn render_forward(
    out: &mut String,
    subnets: Option<(Ipv4Net, Ipv6Net)>,
    counter: &dyn Fn(&str) -> Counter,
) {
    // Without the cell's subnets there are no peers yet, so nothing to refuse.
    let Some((v4, v6)) = subnets else {
        return;
    };
    let mut line = |matches: String, comment: &str| {
        let c = counter(comment);
        let _ = writeln!(
            out,
            "    {matches} counter packets {} bytes {} {REJECT} comment \"{comment}\"",
            c.packets, c.bytes
        );
    };
    let [from4, to4, from6, to6, no4, no6] = COMMENTS;
    line(format!("ip saddr @isolated4 ip daddr {v4}"), from4);
    line(format!("ip daddr @isolated4 ip saddr {v4}"), to4);
    line(format!("ip6 saddr @isolated6 ip6 daddr {v6}"), from6);
    line(format!("ip6 daddr @isolated6 ip6 saddr {v6}"), to6);
    line(format!("ip saddr @no_internet4 ip daddr != {v4}"), no4);
    line(format!("ip6 saddr @no_internet6 ip6 daddr != {v6}"), no6);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(peer: &str, n: u8, internet: bool, peer_to_peer: bool) -> PeerPolicy {
        PeerPolicy {
            peer: peer.into(),
            address_v4: format!("10.8.0.{n}"),
            address_v6: format!("fd00::{n}"),
            internet,
            peer_to_peer,
            updated_at: None,
        }
    }

    #[test]
    fn the_sets_hold_the_addresses_of_the_peers_each_policy_names() {
        let mut out = String::new();
        let policies = [
            policy("alice", 2, false, true),
            policy("bob", 3, true, false),
            policy("carol", 4, false, false),
            policy("dave", 5, true, true),
        ];
        render_sets(&mut out, &policies);
        assert_eq!(
            out,
            "  set no_internet4 { type ipv4_addr; elements = { 10.8.0.2, 10.8.0.4 } }\n\
             \x20 set no_internet6 { type ipv6_addr; elements = { fd00::2, fd00::4 } }\n\
             \x20 set isolated4 { type ipv4_addr; elements = { 10.8.0.3, 10.8.0.4 } }\n\
             \x20 set isolated6 { type ipv6_addr; elements = { fd00::3, fd00::4 } }\n"
        );
    }

    #[test]
    fn peers_with_the_defaults_leave_the_sets_empty() {
        let mut out = String::new();
        render_sets(&mut out, &[policy("dave", 5, true, true)]);
        assert!(!out.contains("elements"), "{out}");
        assert_eq!(out.lines().count(), 4, "{out}");
    }

    #[test]
    fn the_forward_lines_reject_isolated_pairs_and_a_no_internet_peer_leaving_the_subnet() {
        let mut out = String::new();
        let subnets = ("10.8.0.0/24".parse().unwrap(), "fd00::/64".parse().unwrap());
        let counter = |c: &str| match c {
            "peer-no-internet4" => Counter {
                packets: 3,
                bytes: 180,
            },
            _ => Counter::default(),
        };
        render_forward(&mut out, Some(subnets), &counter);
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert_eq!(
            lines,
            [
                "ip saddr @isolated4 ip daddr 10.8.0.0/24 counter packets 0 bytes 0 \
                 reject with icmpx admin-prohibited comment \"peer-isolated4-from\"",
                "ip daddr @isolated4 ip saddr 10.8.0.0/24 counter packets 0 bytes 0 \
                 reject with icmpx admin-prohibited comment \"peer-isolated4-to\"",
                "ip6 saddr @isolated6 ip6 daddr fd00::/64 counter packets 0 bytes 0 \
                 reject with icmpx admin-prohibited comment \"peer-isolated6-from\"",
                "ip6 daddr @isolated6 ip6 saddr fd00::/64 counter packets 0 bytes 0 \
                 reject with icmpx admin-prohibited comment \"peer-isolated6-to\"",
                "ip saddr @no_internet4 ip daddr != 10.8.0.0/24 counter packets 3 bytes 180 \
                 reject with icmpx admin-prohibited comment \"peer-no-internet4\"",
                "ip6 saddr @no_internet6 ip6 daddr != fd00::/64 counter packets 0 bytes 0 \
                 reject with icmpx admin-prohibited comment \"peer-no-internet6\"",
            ]
        );
        let mut none = String::new();
        render_forward(&mut none, None, &counter);
        assert_eq!(none, "");
    }
}
