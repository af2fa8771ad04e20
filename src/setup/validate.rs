//! The wizard's validation, shared by the web wizard, `picd setup --answers` and
//! PUT /api/config. Input arrives as a JSON object (TOML answers are converted first), and
//! every problem, a wrong type included, comes back as a message on its field.

use std::net::IpAddr;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Field errors collected while reading one step.
#[derive(Default)]
pub struct Problems(Vec<(String, String)>);

impl Problems {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push((field.to_string(), message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The collected problems as an error (for paths where a field was missing or wrong).
    pub fn into_error(self, prefix: &str) -> ApiError {
        match self.into_result(()) {
            Err(e) => e,
            Ok(()) => ApiError::invalid(prefix.trim_end_matches('.'), "is incomplete"),
        }
    }

    pub fn into_result<T>(self, value: T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::Invalid { fields: self.0 })
        }
    }
}

/// Reads a step's object: refuses keys the step does not have.
pub fn object<'a>(
    value: &'a Value,
    allowed: &[&str],
    problems: &mut Problems,
    prefix: &str,
) -> Option<&'a Map<String, Value>> {
    let Some(map) = value.as_object() else {
        problems.add(prefix.trim_end_matches('.'), "must be an object");
        return None;
    };
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            problems.add(&format!("{prefix}{key}"), "is not a known field");
        }
    }
    Some(map)
}

pub(crate) fn string(
    map: &Map<String, Value>,
    key: &str,
    problems: &mut Problems,
    prefix: &str,
) -> Option<String> {
    match map.get(key) {
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => {
            problems.add(&format!("{prefix}{key}"), "must be a string");
            None
        }
        None => {
            problems.add(&format!("{prefix}{key}"), "is required");
            None
        }
    }
}

fn check<T>(problems: &mut Problems, field: &str, result: Result<T, String>) -> Option<T> {
    result.map_err(|m| problems.add(field, m)).ok()
}

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

/// The admin account step. The password is hashed before anything is stored.
pub struct AdminStep {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for AdminStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("AdminStep")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub fn admin_step(value: &Value) -> Result<AdminStep, ApiError> {
    let mut problems = Problems::default();
    let mut step = AdminStep {
        username: String::new(),
        password: String::new(),
    };
    if let Some(map) = object(value, &["username", "password"], &mut problems, "") {
        if let Some(u) = string(map, "username", &mut problems, "") {
            let u = u.to_lowercase();
            if let Err(ApiError::Invalid { fields }) =
                crate::auth::store::validate_username("username", &u)
            {
                fields.into_iter().for_each(|(f, m)| problems.add(&f, m));
            }
            step.username = u;
        }
        match map.get("password") {
            Some(Value::String(p)) => {
                if let Err(ApiError::Invalid { fields }) =
                    crate::auth::password::check_policy("password", p, &step.username)
                {
                    fields.into_iter().for_each(|(f, m)| problems.add(&f, m));
                }
                step.password = p.clone();
            }
            Some(_) => problems.add("password", "must be a string"),
            None => problems.add("password", "is required"),
        }
    }
    problems.into_result(step)
}

/// The cell's identity, as stored and as /api/config shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSettings {
    pub name: String,
    pub domain: String,
    pub public_endpoint: String,
    pub wireguard_port: u16,
    pub subnet_v4: Ipv4Net,
    pub subnet_v6: Ipv6Net,
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
        .and_then(|v| check(&mut p, &f("name"), dns_label(&v).map(|_| v)));
    let domain = string(map, "domain", &mut p, prefix)
        .and_then(|v| check(&mut p, &f("domain"), domain_name(&v)));
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
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// The names of the fields a validation error lists, in order.
    pub(crate) fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Invalid { fields } => fields.into_iter().map(|(f, _)| f).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

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

    #[test]
    fn admin_step_never_echoes_the_password() {
        let err = admin_step(&json!({"username": "admin", "password": "short"})).unwrap_err();
        assert!(!format!("{err:?}").contains("short\""));
    }
}
