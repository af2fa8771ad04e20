//! The cell's DNS settings: upstream resolvers and split horizon.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::validation::{object, Problems};

/// An upstream resolver: an address, on port 53 unless one is given (`ip:port`,
/// `[v6]:port`). Shown as the plain address when the port is 53.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upstream(pub std::net::SocketAddr);

impl Upstream {
    pub fn parse(text: &str) -> Option<Upstream> {
        let text = text.trim();
        let addr = text.parse::<std::net::SocketAddr>().ok().or_else(|| {
            text.parse::<IpAddr>()
                .ok()
                .map(|ip| std::net::SocketAddr::new(ip, 53))
        })?;
        (!addr.ip().is_unspecified() && !addr.ip().is_multicast() && addr.port() != 0)
            .then_some(Upstream(addr))
    }
}

impl Upstream {
    /// Whether this upstream would reach picd itself: one of its listeners, or an address of
    /// this machine (loopback, or one it can bind) on port 53 or on a port picd listens on.
    pub fn is_own(&self, own_listeners: &[std::net::SocketAddr]) -> bool {
        let addr = self.0;
        if own_listeners.contains(&addr) {
            return true;
        }
        let dns_port = addr.port() == 53 || own_listeners.iter().any(|l| l.port() == addr.port());
        dns_port && is_local_address(addr.ip())
    }
}

/// An address of this machine: loopback, or one a socket can bind (binding port 0 on an
/// address no interface holds fails with EADDRNOTAVAIL).
fn is_local_address(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_ok()
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.port() == 53 {
            write!(f, "{}", self.0.ip())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl Serialize for Upstream {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Upstream {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Upstream::parse(&text).ok_or_else(|| serde::de::Error::custom("not a resolver address"))
    }
}

/// The DNS step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsSettings {
    pub upstreams: Vec<Upstream>,
    pub split_horizon: bool,
}

pub const MAX_UPSTREAMS: usize = 4;

/// The DNS step. `own_listeners` are picd's own DNS addresses (`dns_listen`): an upstream
/// that is one of them, or any address of this machine on a DNS port, would send every
/// forwarded query back to picd, which would forward it again until the descriptors ran out.
pub fn dns_step(
    value: &Value,
    prefix: &str,
    own_listeners: &[std::net::SocketAddr],
) -> Result<DnsSettings, ApiError> {
    let mut p = Problems::default();
    let mut settings = DnsSettings {
        upstreams: Vec::new(),
        split_horizon: true,
    };
    let f = |k: &str| format!("{prefix}{k}");
    if let Some(map) = object(value, &["upstreams", "split_horizon"], &mut p, prefix) {
        match map.get("upstreams") {
            Some(Value::Array(items)) if (1..=MAX_UPSTREAMS).contains(&items.len()) => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_str().and_then(Upstream::parse) {
                        Some(upstream) if upstream.is_own(own_listeners) => p.add(
                            &format!("{prefix}upstreams[{i}]"),
                            "is this cell's own DNS server: give a resolver elsewhere",
                        ),
                        Some(upstream) => settings.upstreams.push(upstream),
                        None => p.add(
                            &format!("{prefix}upstreams[{i}]"),
                            "must be a DNS resolver's IP address (optionally ip:port)",
                        ),
                    }
                }
            }
            Some(Value::Array(_)) => p.add(
                &f("upstreams"),
                format!("must list 1 to {MAX_UPSTREAMS} resolvers"),
            ),
            Some(_) => p.add(&f("upstreams"), "must be a list of IP addresses"),
            None => p.add(&f("upstreams"), "is required"),
        }
        match map.get("split_horizon") {
            Some(Value::Bool(b)) => settings.split_horizon = *b,
            Some(_) => p.add(&f("split_horizon"), "must be true or false"),
            None => p.add(&f("split_horizon"), "is required"),
        }
    }
    p.into_result(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::tests::fields;
    use serde_json::json;

    #[test]
    fn dns_step_bounds() {
        let own: [std::net::SocketAddr; 0] = [];
        assert!(dns_step(
            &json!({"upstreams": ["192.0.2.53", "2001:db8::53"], "split_horizon": true}),
            "",
            &own
        )
        .is_ok());
        assert_eq!(
            fields(dns_step(&json!({"upstreams": [], "split_horizon": 1}), "", &own).unwrap_err()),
            ["upstreams", "split_horizon"]
        );
        assert_eq!(
            fields(
                dns_step(
                    &json!({"upstreams": ["nope"], "split_horizon": false}),
                    "",
                    &own
                )
                .unwrap_err()
            ),
            ["upstreams[0]"]
        );
    }

    #[test]
    fn own_listeners_are_not_upstreams() {
        let own: Vec<std::net::SocketAddr> = vec!["127.0.0.1:5397".parse().unwrap()];
        let step = |upstreams: Value| {
            dns_step(
                &json!({"upstreams": upstreams, "split_horizon": true}),
                "",
                &own,
            )
        };
        for bad in [
            "127.0.0.1:5397",
            "127.0.0.2:5397",
            "127.0.0.1",
            "::1",
            "[::ffff:127.0.0.1]:5397",
        ] {
            assert_eq!(
                fields(step(json!([bad])).unwrap_err()),
                ["upstreams[0]"],
                "{bad}"
            );
        }
        // A loopback stand-in on another port, and a remote resolver on 53, are fine.
        assert!(step(json!(["127.0.0.1:5398", "192.0.2.53"])).is_ok());
        // Listening on every address: any local address on that port is picd.
        let any: Vec<std::net::SocketAddr> = vec!["[::]:53".parse().unwrap()];
        let err = dns_step(
            &json!({"upstreams": ["127.0.0.9"], "split_horizon": true}),
            "",
            &any,
        );
        assert_eq!(fields(err.unwrap_err()), ["upstreams[0]"]);
    }
}
