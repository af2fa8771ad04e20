//! The cell's identity (name, domain, public endpoint, WireGuard port, subnets) and the
//! validation of its fields, shared by the wizard, `picd setup --answers` and PUT /api/config.

use std::net::IpAddr;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::labels::{DnsLabel, DomainName};
use crate::error::ApiError;
use crate::validation::{check, object, string, Problems};

/// A DNS label: 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'.
pub fn dns_label(label: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&label.len())
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("must be a lowercase DNS label: 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'".into())
    }
}

/// A host name of two labels or more; a trailing dot is dropped, case folded.
pub fn domain_name(name: &str) -> Result<String, String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    if name.len() > 253 || labels.len() < 2 {
        return Err("must be a domain name of two labels or more, e.g. home.example".into());
    }
    for label in &labels {
        dns_label(label).map_err(|_| format!("label '{label}' is not a valid DNS label"))?;
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("must not end in a numeric label".into());
    }
    Ok(name)
}

fn endpoint(value: &str) -> Result<String, String> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
            return Err(
                "must be an address peers can reach (not loopback, unspecified or multicast)"
                    .into(),
            );
        }
        return Ok(ip.to_string());
    }
    domain_name(value)
        .map_err(|_| "must be an IP address or a host name that peers can dial".to_string())
}

fn subnet_v4(value: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = value
        .parse()
        .map_err(|_| "must be an IPv4 network in CIDR form, e.g. 10.77.0.0/24".to_string())?;
    let private = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
    ]
    .iter()
    .any(|p| p.parse::<Ipv4Net>().is_ok_and(|p| p.contains(&net)));
    if !private {
        return Err(
            "must be inside a private range (10/8, 172.16/12, 192.168/16 or 100.64/10)".into(),
        );
    }
    if !(16..=29).contains(&net.prefix_len()) {
        return Err("prefix length must be between /16 and /29".into());
    }
    if net.trunc() != net {
        return Err(format!("host bits are set; the network is {}", net.trunc()));
    }
    Ok(net)
}

fn subnet_v6(value: &str) -> Result<Ipv6Net, String> {
    let net: Ipv6Net = value
        .parse()
        .map_err(|_| "must be an IPv6 network in CIDR form, e.g. fd77:77::/64".to_string())?;
    let ula: Ipv6Net = "fd00::/8".parse().expect("literal");
    if !ula.contains(&net) {
        return Err("must be a unique local (ULA) network inside fd00::/8".into());
    }
    if !(48..=120).contains(&net.prefix_len()) {
        return Err("prefix length must be between /48 and /120".into());
    }
    if net.trunc() != net {
        return Err(format!("host bits are set; the network is {}", net.trunc()));
    }
    Ok(net)
}

/// The cell's identity, as stored and as /api/config shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSettings {
    pub name: DnsLabel,
    pub domain: DomainName,
    pub public_endpoint: String,
    pub wireguard_port: u16,
    pub subnet_v4: Ipv4Net,
    pub subnet_v6: Ipv6Net,
}

impl CellSettings {
    /// The cell's own address in each of its subnets: the first host.
    pub fn own_addresses(&self) -> (IpAddr, IpAddr) {
        let v4 = u32::from(self.subnet_v4.network()) + 1;
        let v6 = u128::from(self.subnet_v6.network()) + 1;
        (IpAddr::V4(v4.into()), IpAddr::V6(v6.into()))
    }
}

pub const CELL_FIELDS: &[&str] = &[
    "name",
    "domain",
    "public_endpoint",
    "wireguard_port",
    "subnet_v4",
    "subnet_v6",
];

pub fn cell_step(value: &Value, prefix: &str) -> Result<CellSettings, ApiError> {
    let mut p = Problems::default();
    let Some(map) = object(value, CELL_FIELDS, &mut p, prefix) else {
        return Err(p.into_error(prefix));
    };
    let f = |k: &str| format!("{prefix}{k}");
    let name = string(map, "name", &mut p, prefix)
        .and_then(|v| check(&mut p, &f("name"), DnsLabel::parse(&v)));
    let domain = string(map, "domain", &mut p, prefix)
        .and_then(|v| check(&mut p, &f("domain"), DomainName::parse(&v)));
    let public_endpoint = string(map, "public_endpoint", &mut p, prefix)
        .and_then(|v| check(&mut p, &f("public_endpoint"), endpoint(&v)));
    let wireguard_port = match map.get("wireguard_port") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(port @ 1..=65535) => Some(port as u16),
            _ => {
                p.add(
                    &f("wireguard_port"),
                    "must be a port number from 1 to 65535",
                );
                None
            }
        },
        Some(_) => {
            p.add(&f("wireguard_port"), "must be a number");
            None
        }
        None => {
            p.add(&f("wireguard_port"), "is required");
            None
        }
    };
    let subnet_v4 = string(map, "subnet_v4", &mut p, prefix)
        .and_then(|v| check(&mut p, &f("subnet_v4"), subnet_v4(&v)));
    let subnet_v6 = string(map, "subnet_v6", &mut p, prefix)
        .and_then(|v| check(&mut p, &f("subnet_v6"), subnet_v6(&v)));
    match (
        name,
        domain,
        public_endpoint,
        wireguard_port,
        subnet_v4,
        subnet_v6,
    ) {
        (
            Some(name),
            Some(domain),
            Some(public_endpoint),
            Some(wireguard_port),
            Some(subnet_v4),
            Some(subnet_v6),
        ) => p.into_result(CellSettings {
            name,
            domain,
            public_endpoint,
            wireguard_port,
            subnet_v4,
            subnet_v6,
        }),
        _ => Err(p.into_error(prefix)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::tests::fields;
    use serde_json::json;

    #[test]
    fn a_good_cell_step_is_accepted_and_normalised() {
        let cell = cell_step(
            &json!({"name": "home", "domain": "Home.Example.", "public_endpoint": "203.0.113.10",
                    "wireguard_port": 51820, "subnet_v4": "10.77.0.0/24", "subnet_v6": "fd77:77::/64"}),
            "",
        )
        .unwrap();
        assert_eq!(cell.domain, "home.example");
    }

    #[test]
    fn every_bad_field_is_named() {
        let err = cell_step(
            &json!({"name": "Not A Label", "domain": "x", "public_endpoint": "127.0.0.1",
                    "wireguard_port": 70000, "subnet_v4": "8.8.8.0/24", "subnet_v6": "2001:db8::/64", "extra": 1}),
            "",
        )
        .unwrap_err();
        let mut f = fields(err);
        f.sort();
        assert_eq!(
            f,
            [
                "domain",
                "extra",
                "name",
                "public_endpoint",
                "subnet_v4",
                "subnet_v6",
                "wireguard_port"
            ]
        );
    }

    #[test]
    fn host_bits_and_wrong_types_are_refused() {
        let err = cell_step(
            &json!({"name": "home", "domain": "home.example", "public_endpoint": "vpn.home.example",
                    "wireguard_port": "51820", "subnet_v4": "10.77.0.1/24", "subnet_v6": "fd77:77::/64"}),
            "",
        )
        .unwrap_err();
        assert_eq!(fields(err), ["wireguard_port", "subnet_v4"]);
    }
}
