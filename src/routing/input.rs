//! What a caller may ask of the routing API, decoded then validated into store types.

use ipnet::IpNet;
use serde::Deserialize;

use super::store::{FirewallRule, IpEntry};
use crate::error::ApiError;

const NAME_MAX: usize = 64;
const REASON_MAX: usize = 200;
/// Bounds of a `limit` rule's rate: nft takes any u32, but a rate of millions a second
/// limits nothing and is more likely a typo.
const LIMIT_RATE_MAX: u32 = 1_000_000;
/// The longest expiry an entry may have (nft timeouts are kept in milliseconds as u64, so
/// this is for the owner's sake, not the kernel's): ten years.
const EXPIRY_MAX_SECONDS: i64 = 10 * 365 * 24 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    name: String,
    #[serde(default)]
    chain: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    port_start: Option<u16>,
    #[serde(default)]
    port_end: Option<u16>,
    action: String,
    #[serde(default)]
    limit_rate: Option<u32>,
    #[serde(default)]
    limit_unit: Option<String>,
    /// `new`, `established`, `related`, or a comma-separated combination.
    #[serde(default)]
    conntrack: Option<String>,
}

pub(super) fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<String, ApiError> {
    match allowed.contains(&value) {
        true => Ok(value.to_string()),
        false => Err(ApiError::invalid(
            field,
            format!("must be one of {}", allowed.join(", ")),
        )),
    }
}

pub(super) fn valid_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let printable = name
        .chars()
        .all(|c| !c.is_control() && c != '"' && c != '\\');
    match !name.is_empty() && name.chars().count() <= NAME_MAX && printable {
        true => Ok(name.to_string()),
        false => Err(ApiError::invalid(
            "name",
            format!("must be 1 to {NAME_MAX} printable characters, without quotes or backslashes"),
        )),
    }
}

/// The conntrack states in a fixed order, so `new,established` and `established,new` are the
/// same rule (and the duplicate check finds them).
fn conntrack_states(text: &str) -> Result<String, ApiError> {
    const STATES: [&str; 3] = ["new", "established", "related"];
    if text.len() > 40 {
        return Err(ApiError::invalid("conntrack", "too long"));
    }
    let asked: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = asked.iter().find(|s| !STATES.contains(s)) {
        let _ = bad;
        return Err(ApiError::invalid(
            "conntrack",
            "must be new, established, related, or a comma-separated combination",
        ));
    }
    let states: Vec<&str> = STATES.into_iter().filter(|s| asked.contains(s)).collect();
    Ok(states.join(","))
}

/// A rule's ports: none (0, 0), one, or a range; ports only with tcp or udp.
pub(super) fn port_range(
    protocol: &str,
    start: Option<u16>,
    end: Option<u16>,
) -> Result<(u16, u16), ApiError> {
    let (port_start, port_end) = match (start, end) {
        (None, None) => (0, 0),
        (Some(start), end) => (start, end.unwrap_or(start)),
        (None, Some(_)) => {
            return Err(ApiError::invalid("port_start", "is required with port_end"))
        }
    };
    if port_start != 0 || port_end != 0 {
        if !matches!(protocol, "tcp" | "udp") {
            return Err(ApiError::invalid(
                "protocol",
                "must be tcp or udp when ports are given",
            ));
        }
        if port_start == 0 || port_end < port_start {
            return Err(ApiError::invalid(
                "port_end",
                "ports are 1 to 65535, and port_end is at least port_start",
            ));
        }
    }
    Ok((port_start, port_end))
}

impl NewRule {
    /// A rule that drops new connections to `port` over `rate` per `unit` (a template's).
    pub fn limit_new_connections(
        name: String,
        protocol: &str,
        port: u16,
        rate: u32,
        unit: &str,
    ) -> Self {
        NewRule {
            name,
            chain: Some("input".into()),
            protocol: Some(protocol.into()),
            port_start: Some(port),
            port_end: None,
            action: "limit".into(),
            limit_rate: Some(rate),
            limit_unit: Some(unit.into()),
            conntrack: Some("new".into()),
        }
    }

    pub fn validate(self) -> Result<FirewallRule, ApiError> {
        let name = valid_name(&self.name)?;
        let chain = one_of(
            "chain",
            self.chain.as_deref().unwrap_or("input"),
            &["input", "forward", "output"],
        )?;
        let protocol = one_of(
            "protocol",
            self.protocol.as_deref().unwrap_or("any"),
            &["tcp", "udp", "icmp", "any"],
        )?;
        let action = one_of(
            "action",
            &self.action,
            &["drop", "accept", "reject", "limit"],
        )?;
        let (port_start, port_end) = port_range(&protocol, self.port_start, self.port_end)?;
        let (limit_rate, limit_unit) = match (action.as_str(), self.limit_rate, self.limit_unit) {
            ("limit", Some(rate), Some(unit)) => {
                if !(1..=LIMIT_RATE_MAX).contains(&rate) {
                    return Err(ApiError::invalid(
                        "limit_rate",
                        format!("must be 1 to {LIMIT_RATE_MAX}"),
                    ));
                }
                (
                    rate,
                    one_of("limit_unit", &unit, &["second", "minute", "hour"])?,
                )
            }
            ("limit", _, _) => {
                return Err(ApiError::invalid(
                    "limit_rate",
                    "a limit rule needs limit_rate and limit_unit",
                ))
            }
            (_, None, None) => (0, String::new()),
            _ => {
                return Err(ApiError::invalid(
                    "limit_rate",
                    "only a limit rule takes limit_rate and limit_unit",
                ))
            }
        };
        let conntrack = conntrack_states(self.conntrack.as_deref().unwrap_or(""))?;
        Ok(FirewallRule {
            id: uuid::Uuid::now_v7().to_string(),
            name,
            chain,
            protocol,
            port_start,
            port_end,
            action,
            limit_rate,
            limit_unit,
            conntrack,
            is_system: false,
            created_at: crate::time::now_rfc3339(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIpEntry {
    list_type: String,
    ip_address: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
}

impl NewIpEntry {
    pub fn validate(self) -> Result<IpEntry, ApiError> {
        let list_type = one_of("list_type", &self.list_type, &["blacklist", "whitelist"])?;
        let ip_address = parse_address(&self.ip_address)?;
        let reason = self.reason.unwrap_or_default();
        if reason.chars().count() > REASON_MAX || reason.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "reason",
                format!("must be at most {REASON_MAX} printable characters"),
            ));
        }
        let now = crate::time::now();
        let expires_at = match self.expires_at {
            None => None,
            Some(_) if list_type == "whitelist" => {
                return Err(ApiError::invalid(
                    "expires_at",
                    "only a blacklist entry expires",
                ))
            }
            Some(text) => {
                let at = (text.len() <= 40)
                    .then(|| crate::time::parse_rfc3339(&text))
                    .flatten()
                    .ok_or_else(|| ApiError::invalid("expires_at", "must be an RFC 3339 time"))?;
                let seconds = (at - now).whole_seconds();
                if !(1..=EXPIRY_MAX_SECONDS).contains(&seconds) {
                    return Err(ApiError::invalid(
                        "expires_at",
                        "must be in the future, at most ten years away",
                    ));
                }
                Some(crate::time::format_rfc3339(at))
            }
        };
        Ok(IpEntry {
            id: uuid::Uuid::now_v7().to_string(),
            list_type,
            ip_address,
            reason,
            status: "pending_add".into(),
            expires_at,
            created_at: crate::time::format_rfc3339(now),
        })
    }
}

/// An address or a network; a network is stored truncated to its prefix, so
/// `203.0.113.7/24` and `203.0.113.0/24` are the same entry.
fn parse_address(text: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid("ip_address", "must be an IPv4 or IPv6 address or network");
    if text.len() > 64 {
        return Err(invalid());
    }
    let text = text.trim();
    if let Ok(addr) = text.parse::<std::net::IpAddr>() {
        return Ok(addr.to_string());
    }
    let net: IpNet = text.parse().map_err(|_| invalid())?;
    if net.prefix_len() == 0 {
        return Err(ApiError::invalid(
            "ip_address",
            "a /0 would take in every address; list narrower networks",
        ));
    }
    Ok(net.trunc().to_string())
}
