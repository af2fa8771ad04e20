//! Rate-limit rules on the cell's ports, in the manner of an XDP engine's slots but in
//! nftables (XDP is out of reach on this kernel): each rule matches a protocol and a port
//! range in the prerouting chain of picd's table, at priority raw, before connection tracking,
//! which is as early as nftables gets without a per-device ingress hook. A rule blocks the
//! ports to every source, limits each source address to `max_pps` packets a second (a dynamic set keyed by
//! source, one per family) and the ports in total to `max_port_pps`, or lets only the
//! whitelist's addresses through (whitelisted sources pass every rule here).

use std::fmt::Write;

use rusqlite::{params, Connection, Row};
use serde::{Deserialize, Serialize};

use super::input::{one_of, port_range, valid_name};
use super::render::Counter;
use crate::error::ApiError;

/// Packets a second a rule may allow per source or per port: more limits nothing here.
const PPS_MAX: u32 = 10_000_000;
/// Sources a rule's dynamic set tracks at once; past it, new sources are not limited by
/// source (the per-port limit still holds), so an attacker cannot grow picd's kernel memory.
const SOURCES_TRACKED: u32 = 65_536;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RateLimit {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub port_start: u16,
    pub port_end: u16,
    pub rule_type: String,
    pub max_pps: u32,
    pub max_port_pps: u32,
    pub created_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRateLimit {
    pub name: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port_start: Option<u16>,
    #[serde(default)]
    pub port_end: Option<u16>,
    pub rule_type: String,
    #[serde(default)]
    pub max_pps: Option<u32>,
    #[serde(default)]
    pub max_port_pps: Option<u32>,
}

fn pps(field: &str, value: Option<u32>) -> Result<u32, ApiError> {
    match value.unwrap_or(0) {
        v if v <= PPS_MAX => Ok(v),
        _ => Err(ApiError::invalid(field, format!("must be 0 to {PPS_MAX}"))),
    }
}

impl NewRateLimit {
    pub fn validate(self) -> Result<RateLimit, ApiError> {
        let name = valid_name(&self.name)?;
        let protocol = one_of(
            "protocol",
            self.protocol.as_deref().unwrap_or("any"),
            &["tcp", "udp", "icmp", "any"],
        )?;
        let rule_type = one_of(
            "rule_type",
            &self.rule_type,
            &["block", "rate_limit", "allow_only"],
        )?;
        let (port_start, port_end) = port_range(&protocol, self.port_start, self.port_end)?;
        let (max_pps, max_port_pps) = (
            pps("max_pps", self.max_pps)?,
            pps("max_port_pps", self.max_port_pps)?,
        );
        match rule_type.as_str() {
            "rate_limit" if max_pps == 0 && max_port_pps == 0 => {
                return Err(ApiError::invalid(
                    "max_pps",
                    "a rate_limit rule needs max_pps, max_port_pps or both",
                ))
            }
            "block" | "allow_only" if max_pps != 0 || max_port_pps != 0 => {
                return Err(ApiError::invalid(
                    "max_pps",
                    "only a rate_limit rule takes max_pps and max_port_pps",
                ))
            }
            "block" | "allow_only" if port_start == 0 => {
                // A block of every port would cut the owner off from their own cell.
                return Err(ApiError::invalid(
                    "port_start",
                    "a block or allow_only rule needs ports (tcp or udp)",
                ));
            }
            _ => {}
        }
        Ok(RateLimit {
            id: uuid::Uuid::now_v7().to_string(),
            name,
            protocol,
            port_start,
            port_end,
            rule_type,
            max_pps,
            max_port_pps,
            created_at: crate::time::now_rfc3339(),
        })
    }
}

impl RateLimit {
    fn from_row(row: &Row) -> rusqlite::Result<Self> {
        Ok(RateLimit {
            id: row.get(0)?,
            name: row.get(1)?,
            protocol: row.get(2)?,
            port_start: row.get(3)?,
            port_end: row.get(4)?,
            rule_type: row.get(5)?,
            max_pps: row.get(6)?,
            max_port_pps: row.get(7)?,
            created_at: row.get(8)?,
        })
    }
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<RateLimit>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, protocol, port_start, port_end, rule_type, max_pps, max_port_pps,
                created_at
         FROM routing_rate_limits ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([], RateLimit::from_row)?;
    rows.collect()
}

/// Stores a rule; a second rule on the same protocol and ports is a unique violation.
pub fn insert(conn: &Connection, rule: &RateLimit) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO routing_rate_limits (id, name, protocol, port_start, port_end, rule_type,
             max_pps, max_port_pps, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            rule.id,
            rule.name,
            rule.protocol,
            rule.port_start,
            rule.port_end,
            rule.rule_type,
            rule.max_pps,
            rule.max_port_pps,
            rule.created_at
        ],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM routing_rate_limits WHERE id = ?1", [id])
}

/// The comment of one of a rule's lines in the kernel (`part`: block, source4, source6, port).
pub fn comment(id: &str, part: &str) -> String {
    format!("ratelimit:{id}:{part}")
}

/// The dynamic sets the rules' per-source limits keep their sources in.
pub fn render_sets(out: &mut String, rules: &[RateLimit]) {
    for (i, rule) in rules.iter().enumerate() {
        if rule.rule_type != "rate_limit" || rule.max_pps == 0 {
            continue;
        }
        for (family, kind) in [("4", "ipv4_addr"), ("6", "ipv6_addr")] {
            let _ = writeln!(
                out,
                "  set ratelimit{family}_{i} {{ type {kind}; size {SOURCES_TRACKED}; \
                 flags dynamic,timeout; timeout 60s; }}"
            );
        }
    }
}

/// The block rules' lines, first in the prerouting chain: a blocked port is closed to every
/// source, whitelisted or not.
pub fn render_blocks(out: &mut String, rules: &[RateLimit], counters: &CounterLookup<'_>) {
    for rule in rules.iter().filter(|r| r.rule_type == "block") {
        let key = comment(&rule.id, "block");
        let c = counters(&key);
        let _ = writeln!(
            out,
            "    {}counter packets {} bytes {} drop comment \"{key}\"",
            matches(rule),
            c.packets,
            c.bytes
        );
    }
}

/// The rate_limit and allow_only rules' lines, for the prerouting chain after the lists' lines
/// (so the whitelist's sources have passed them already).
pub fn render_rules(out: &mut String, rules: &[RateLimit], counters: &CounterLookup<'_>) {
    for (i, rule) in rules.iter().enumerate() {
        if rule.rule_type == "block" {
            continue;
        }
        let matches = matches(rule);
        let mut line = |part: &str, middle: String| {
            let key = comment(&rule.id, part);
            let c = counters(&key);
            let _ = writeln!(
                out,
                "    {matches}{middle}counter packets {} bytes {} drop comment \"{key}\"",
                c.packets, c.bytes
            );
        };
        match rule.rule_type.as_str() {
            // The whitelist's sources were accepted before these lines.
            "allow_only" => line("block", String::new()),
            _ => {
                if rule.max_pps > 0 {
                    let rate = rule.max_pps;
                    line(
                        "source4",
                        format!(
                            "meta nfproto ipv4 update @ratelimit4_{i} \
                             {{ ip saddr limit rate over {rate}/second }} "
                        ),
                    );
                    line(
                        "source6",
                        format!(
                            "meta nfproto ipv6 update @ratelimit6_{i} \
                             {{ ip6 saddr limit rate over {rate}/second }} "
                        ),
                    );
                }
                if rule.max_port_pps > 0 {
                    let rate = rule.max_port_pps;
                    line("port", format!("limit rate over {rate}/second "));
                }
            }
        }
    }
}

/// Looks a counter up by the comment of its line (carried over a rebuild).
pub type CounterLookup<'a> = dyn Fn(&str) -> Counter + 'a;

fn matches(rule: &RateLimit) -> String {
    let mut out = String::new();
    match rule.protocol.as_str() {
        "tcp" | "udp" => out.push_str(&format!("meta l4proto {} ", rule.protocol)),
        "icmp" => out.push_str("meta l4proto { icmp, ipv6-icmp } "),
        _ => {}
    }
    if rule.port_start != 0 {
        match rule.port_end > rule.port_start {
            true => out.push_str(&format!("th dport {}-{} ", rule.port_start, rule.port_end)),
            false => out.push_str(&format!("th dport {} ", rule.port_start)),
        }
    }
    out
}

/// The packets and bytes a rule dropped, summed over its lines.
pub fn dropped(rule: &RateLimit, counters: &CounterLookup<'_>) -> Counter {
    ["block", "source4", "source6", "port"]
        .iter()
        .map(|part| counters(&comment(&rule.id, part)))
        .fold(Counter::default(), |a, b| Counter {
            packets: a.packets + b.packets,
            bytes: a.bytes + b.bytes,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rule_type: &str, max_pps: u32, max_port_pps: u32) -> RateLimit {
        RateLimit {
            id: "r".into(),
            name: "n".into(),
            protocol: "udp".into(),
            port_start: 5000,
            port_end: 5010,
            rule_type: rule_type.into(),
            max_pps,
            max_port_pps,
            created_at: String::new(),
        }
    }

    #[test]
    fn a_rate_limit_rule_limits_each_source_and_the_port() {
        let mut out = String::new();
        let counters = |_: &str| Counter {
            packets: 3,
            bytes: 90,
        };
        render_rules(&mut out, &[rule("rate_limit", 100, 1000)], &counters);
        assert_eq!(
            out,
            "    meta l4proto udp th dport 5000-5010 meta nfproto ipv4 update @ratelimit4_0 \
             { ip saddr limit rate over 100/second } counter packets 3 bytes 90 drop \
             comment \"ratelimit:r:source4\"\n    \
             meta l4proto udp th dport 5000-5010 meta nfproto ipv6 update @ratelimit6_0 \
             { ip6 saddr limit rate over 100/second } counter packets 3 bytes 90 drop \
             comment \"ratelimit:r:source6\"\n    \
             meta l4proto udp th dport 5000-5010 limit rate over 1000/second counter packets \
             3 bytes 90 drop comment \"ratelimit:r:port\"\n"
        );
        let mut sets = String::new();
        render_sets(
            &mut sets,
            &[rule("block", 0, 0), rule("rate_limit", 100, 0)],
        );
        assert!(sets.contains("set ratelimit4_1 "), "{sets}");
        assert!(!sets.contains("_0 "), "{sets}");
    }

    #[test]
    fn a_block_needs_ports_and_takes_no_rates() {
        let new = |rule_type: &str, port: Option<u16>, pps: Option<u32>| NewRateLimit {
            name: "x".into(),
            protocol: Some("tcp".into()),
            port_start: port,
            port_end: None,
            rule_type: rule_type.into(),
            max_pps: pps,
            max_port_pps: None,
        };
        assert!(new("block", None, None).validate().is_err());
        assert!(new("block", Some(22), Some(5)).validate().is_err());
        assert!(new("rate_limit", Some(22), None).validate().is_err());
        assert!(new("rate_limit", None, Some(5)).validate().is_ok());
        assert!(new("allow_only", Some(22), None).validate().is_ok());
    }
}
