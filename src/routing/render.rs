//! Renders desired state into the text of one `nft -f` transaction that replaces picd's
//! table whole: `table inet picd {}` (so the delete cannot fail on a fresh host), `delete
//! table inet picd`, then the full table. nft applies a file atomically, so no packet ever
//! sees a half-built table. Rendering is pure: tests compare it as a string.

use std::collections::HashMap;
use std::fmt::Write;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use time::OffsetDateTime;

use super::peer_policy::{self, PeerPolicy};
use super::rate_limits::{self, RateLimit};
use super::store::{FirewallRule, IpEntry};
use super::TABLE;
use crate::connectivity::render as exits;

/// Everything the table is made from.
pub struct Desired {
    pub rules: Vec<FirewallRule>,
    pub entries: Vec<IpEntry>,
    pub rate_limits: Vec<RateLimit>,
    /// The peers' subnets, masqueraded when they leave the cell (None before setup).
    pub peer_subnets: Option<(Ipv4Net, Ipv6Net)>,
    /// Every peer's effective policy (internet, peer to peer) with its addresses.
    pub peer_policies: Vec<PeerPolicy>,
    pub wireguard_interface: String,
    /// Ports of the cell's services that only the peers may reach (services' exposure).
    pub peers_only_ports: Vec<u16>,
    /// The exits' part: peer -> exit marks, the kill switch's allowed ways out, exit DNS.
    pub exits: crate::connectivity::ExitTable,
    /// Counters read from the table before it is replaced, so they do not reset: a firewall
    /// rule's by its id, a rate-limit rule's lines by their comment.
    pub counters: HashMap<String, Counter>,
    pub now: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// The comment that ties a rule in the kernel to its row.
pub fn rule_comment(id: &str) -> String {
    format!("rule:{id}")
}

pub fn ruleset(desired: &Desired) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "table inet {TABLE} {{}}");
    let _ = writeln!(out, "delete table inet {TABLE}");
    let _ = writeln!(out, "table inet {TABLE} {{");
    sets(&mut out, desired);
    peer_policy::render_sets(&mut out, &desired.peer_policies);
    rate_limits::render_sets(&mut out, &desired.rate_limits);
    exits::sets(&mut out, &desired.exits);
    let _ = writeln!(
        out,
        "  chain prerouting {{ type filter hook prerouting priority raw; policy accept;"
    );
    super::metrics::render_seen(&mut out, desired);
    let counter = |key: &str| desired.counters.get(key).copied().unwrap_or_default();
    rate_limits::render_blocks(&mut out, &desired.rate_limits, &counter);
    let _ = writeln!(out, "    ip saddr @allow4 accept");
    let _ = writeln!(out, "    ip6 saddr @allow6 accept");
    let _ = writeln!(
        out,
        "    ip saddr @block4 counter drop comment \"blocklist4\""
    );
    let _ = writeln!(
        out,
        "    ip6 saddr @block6 counter drop comment \"blocklist6\""
    );
    rate_limits::render_rules(&mut out, &desired.rate_limits, &counter);
    let _ = writeln!(out, "  }}");
    exits::chains(&mut out, &desired.exits, &desired.wireguard_interface);
    for chain in ["input", "forward", "output"] {
        filter_chain(&mut out, desired, chain);
    }
    nat_chain(&mut out, desired);
    let _ = writeln!(out, "}}");
    out
}

fn sets(out: &mut String, desired: &Desired) {
    for (name, list, family) in [
        ("block4", "blacklist", "ipv4_addr"),
        ("block6", "blacklist", "ipv6_addr"),
        ("allow4", "whitelist", "ipv4_addr"),
        ("allow6", "whitelist", "ipv6_addr"),
    ] {
        let v4 = family == "ipv4_addr";
        let elements: Vec<String> = desired
            .entries
            .iter()
            .filter(|e| e.list_type == list)
            .filter_map(|e| element(e, v4, desired.now))
            .collect();
        let _ = write!(
            out,
            "  set {name} {{ type {family}; flags interval,timeout; auto-merge;"
        );
        if !elements.is_empty() {
            let _ = write!(out, " elements = {{ {} }}", elements.join(", "));
        }
        let _ = writeln!(out, " }}");
    }
}

/// A set element; one with an expiry carries its whole timeout and the time left, so a
/// rebuild keeps its remaining time. None for the other family or an expired entry.
fn element(entry: &IpEntry, v4: bool, now: OffsetDateTime) -> Option<String> {
    let net: IpNet = entry
        .ip_address
        .parse()
        .or_else(|_| {
            entry
                .ip_address
                .parse::<std::net::IpAddr>()
                .map(IpNet::from)
        })
        .ok()?;
    if matches!(net, IpNet::V4(_)) != v4 {
        return None;
    }
    let text = match net.prefix_len() == net.max_prefix_len() {
        true => net.addr().to_string(),
        false => net.to_string(),
    };
    let Some(expires) = entry.expires_at.as_deref() else {
        return Some(text);
    };
    let expires = crate::time::parse_rfc3339(expires)?;
    let created = crate::time::parse_rfc3339(&entry.created_at).unwrap_or(now);
    let left = (expires - now).whole_seconds();
    if left <= 0 {
        return None;
    }
    let total = (expires - created).whole_seconds().max(left);
    // nft refuses longer timeouts ("value too large"), which would refuse the whole table.
    // A later expiry is held at the longest nft takes; every rebuild renders the time left
    // again, so the entry still goes at its own time.
    let (total, left) = (
        total.min(TIMEOUT_MAX_SECONDS),
        left.min(TIMEOUT_MAX_SECONDS),
    );
    Some(format!("{text} timeout {total}s expires {left}s"))
}

/// The longest element timeout nft 1.0.6 accepts, in seconds (about 3 years 2 months).
const TIMEOUT_MAX_SECONDS: i64 = 99_999_999;

fn filter_chain(out: &mut String, desired: &Desired, chain: &str) {
    let _ = writeln!(
        out,
        "  chain {chain} {{ type filter hook {chain} priority filter; policy accept;"
    );
    if chain == "forward" {
        // First: neither the allow list nor the owner's rules may open what a peer's policy
        // closes.
        let counter = |key: &str| desired.counters.get(key).copied().unwrap_or_default();
        // Before everything: an exit peer's packet leaves through its exit or not at all.
        let wg = &desired.wireguard_interface;
        exits::kill_switch(out, desired.peer_subnets, wg, &counter);
        exits::dns6_refusal(out, &desired.exits, wg);
        peer_policy::render_forward(out, desired.peer_subnets, &counter);
        // After the policy's drops, before any accept: what an exit peer sent and got back.
        crate::connectivity::traffic::render(out, &desired.exits, wg, &counter);
    }
    if chain == "input" {
        // First, before the allow list: a service for the peers is never the world's.
        peers_only_ports(out, desired);
        // An exit peer's DNS over IPv6 to the cell's resolver would be answered by the uplink.
        exits::dns6_refusal(out, &desired.exits, &desired.wireguard_interface);
    }
    if chain != "output" {
        // Listed addresses pass the owner's rules (a whitelist means "never lock these out").
        let _ = writeln!(out, "    ip saddr @allow4 accept");
        let _ = writeln!(out, "    ip6 saddr @allow6 accept");
    }
    for rule in desired.rules.iter().filter(|r| r.chain == chain) {
        let counter = desired.counters.get(&rule.id).copied().unwrap_or_default();
        let _ = writeln!(out, "    {}", rule_text(rule, counter));
    }
    let _ = writeln!(out, "  }}");
}

/// Drops the peers-only service ports on every interface but loopback and WireGuard.
fn peers_only_ports(out: &mut String, desired: &Desired) {
    if desired.peers_only_ports.is_empty() {
        return;
    }
    let ports: Vec<String> = desired
        .peers_only_ports
        .iter()
        .map(u16::to_string)
        .collect();
    let _ = writeln!(
        out,
        "    iifname != {{ \"lo\", \"{}\" }} tcp dport {{ {} }} counter drop comment \"service-peers-only\"",
        desired.wireguard_interface,
        ports.join(", ")
    );
}

/// One rule: its matches, a counter (carried over), the verdict, and its id as comment.
pub fn rule_text(rule: &FirewallRule, counter: Counter) -> String {
    let mut parts: Vec<String> = Vec::new();
    match rule.protocol.as_str() {
        "tcp" | "udp" => parts.push(format!("meta l4proto {}", rule.protocol)),
        "icmp" => parts.push("meta l4proto { icmp, ipv6-icmp }".into()),
        _ => {}
    }
    if rule.port_start != 0 {
        let ports = match rule.port_end > rule.port_start {
            true => format!("{}-{}", rule.port_start, rule.port_end),
            false => rule.port_start.to_string(),
        };
        parts.push(format!("th dport {ports}"));
    }
    if !rule.conntrack.is_empty() {
        parts.push(format!(
            "ct state {{ {} }}",
            rule.conntrack.replace(',', ", ")
        ));
    }
    if rule.action == "limit" {
        // Packets within the rate go on to the rest of the chain; those over it are dropped.
        parts.push(format!(
            "limit rate over {}/{}",
            rule.limit_rate, rule.limit_unit
        ));
    }
    parts.push(format!(
        "counter packets {} bytes {}",
        counter.packets, counter.bytes
    ));
    parts.push(
        match rule.action.as_str() {
            "accept" => "accept",
            "reject" => "reject",
            _ => "drop",
        }
        .into(),
    );
    parts.push(format!("comment \"{}\"", rule_comment(&rule.id)));
    parts.join(" ")
}

fn nat_chain(out: &mut String, desired: &Desired) {
    let _ = writeln!(
        out,
        "  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;"
    );
    exits::masquerade(out, &desired.exits);
    if let Some((v4, v6)) = desired.peer_subnets {
        let wg = &desired.wireguard_interface;
        let _ = writeln!(
            out,
            "    oifname != \"{wg}\" ip saddr {v4} ip daddr != {v4} masquerade comment \"nat4\""
        );
        let _ = writeln!(
            out,
            "    oifname != \"{wg}\" ip6 saddr {v6} ip6 daddr != {v6} masquerade comment \"nat6\""
        );
    }
    let _ = writeln!(out, "  }}");
}

#[cfg(test)]
mod tests;
