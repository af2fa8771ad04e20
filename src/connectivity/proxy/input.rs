//! Reading a proxy connection's body: strict, every problem on its field. The username and
//! password end up in redsocks' config file between quotes and on the wire in SOCKS5's
//! one-byte-length fields, so they are 1..255 printable ASCII characters without quotes or
//! backslashes; the host is an IPv4 address or a DNS name (redsocks reaches proxies over
//! IPv4).

use std::net::IpAddr;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::{ProxySettings, TYPE_HTTP, TYPE_SOCKS5};
use crate::error::ApiError;
use crate::validation::{object, Problems};

const FIELDS: [&str; 8] = [
    "name",
    "type",
    "host",
    "port",
    "username",
    "password",
    "dns",
    "probe_target",
];
const CREDENTIAL_MAX: usize = 255;
const HOST_MAX: usize = 253;
const DNS_MAX: usize = 4;

/// What happens to the stored password.
pub enum Password {
    Keep,
    Set(Zeroizing<String>),
    Remove,
}

/// A body read against the connection it changes (None: a new one).
pub struct Read {
    pub name: Option<String>,
    pub kind: String,
    pub settings: ProxySettings,
    pub password: Password,
}

/// Whether a new connection's body asks for a proxy type (the routes dispatch on it).
pub fn asks_for_proxy(body: &Value) -> bool {
    body.get("type")
        .and_then(Value::as_str)
        .is_some_and(super::is_proxy)
}

fn credential(text: &str) -> Result<(), String> {
    let ok = (1..=CREDENTIAL_MAX).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "must be 1 to {CREDENTIAL_MAX} printable ASCII characters, without quotes or backslashes"
        )),
    }
}

/// An IPv4 address or a DNS name.
pub fn valid_host(host: &str) -> Result<(), String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return match ip {
            IpAddr::V4(v4) if !v4.is_unspecified() && !v4.is_broadcast() && !v4.is_multicast() => {
                Ok(())
            }
            IpAddr::V4(_) => Err("must be a unicast address".into()),
            IpAddr::V6(_) => {
                Err("must be an IPv4 address or a name (redsocks reaches proxies over IPv4)".into())
            }
        };
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    match host.len() <= HOST_MAX && name.split('.').all(label_ok) {
        true => Ok(()),
        false => Err("must be an IPv4 address or a DNS name".into()),
    }
}

fn probe_target(text: &str) -> Result<(), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or("must be host:port (IPv6 as [address]:port)")?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host_ok = host.parse::<IpAddr>().is_ok() || valid_host(host).is_ok();
    match port_ok && host_ok {
        true => Ok(()),
        false => Err("must be host:port with a port 1 to 65535".into()),
    }
}

fn resolvers(value: &Value) -> Result<Vec<IpAddr>, String> {
    let message = format!("must be a list of at most {DNS_MAX} resolver addresses");
    let list = value.as_array().ok_or(message.clone())?;
    if list.len() > DNS_MAX {
        return Err(message);
    }
    list.iter()
        .map(|v| {
            let ip: IpAddr = v
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| "each must be an IP address".to_string())?;
            match ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                true => Err(format!("{ip} cannot be a resolver")),
                false => Ok(ip),
            }
        })
        .collect()
}

/// A string field: Some(None) for an explicit null where `nullable`.
fn text(
    p: &mut Problems,
    map: &Map<String, Value>,
    key: &str,
    nullable: bool,
) -> Option<Option<String>> {
    match map.get(key)? {
        Value::String(s) => Some(Some(s.clone())),
        Value::Null if nullable => Some(None),
        _ => {
            let what = if nullable {
                "a string or null"
            } else {
                "a string"
            };
            p.add(key, format!("must be {what}"));
            None
        }
    }
}

/// Reads a body; `current` is the connection it changes (kind and settings), None to create.
pub fn read(body: &Value, current: Option<(&str, &ProxySettings)>) -> Result<Read, ApiError> {
    let mut p = Problems::default();
    let Some(map) = object(body, &FIELDS, &mut p, "") else {
        return Err(p.into_error(""));
    };
    let creating = current.is_none();
    for key in ["name", "type", "host", "port"] {
        if creating && !map.contains_key(key) {
            p.add(key, "is required");
        }
    }
    let name = text(&mut p, map, "name", false).flatten().and_then(|n| {
        match super::super::routes::valid_name(n.trim()) {
            Ok(n) => Some(n),
            Err(e) => {
                p.add("name", e);
                None
            }
        }
    });
    let kind = text(&mut p, map, "type", false).flatten();
    let kind = match (kind, current) {
        (Some(k), None) if k == TYPE_SOCKS5 || k == TYPE_HTTP => k,
        (Some(_), None) => {
            p.add("type", "must be socks5 or http");
            String::new()
        }
        (Some(k), Some((was, _))) if k != was => {
            p.add(
                "type",
                "cannot change: delete the connection and add a new one",
            );
            String::new()
        }
        (_, Some((was, _))) => was.to_string(),
        (None, None) => String::new(),
    };
    let mut settings = current.map(|c| c.1.clone()).unwrap_or(ProxySettings {
        host: String::new(),
        port: 0,
        username: None,
        has_password: false,
        dns: Vec::new(),
        probe_target: None,
    });
    if let Some(host) = text(&mut p, map, "host", false).flatten() {
        match valid_host(&host) {
            Ok(()) => settings.host = host.trim_end_matches('.').to_ascii_lowercase(),
            Err(e) => p.add("host", e),
        }
    }
    match map.get("port") {
        None => {}
        Some(v) => match v.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(port) if port != 0 => settings.port = port,
            _ => p.add("port", "must be a whole number from 1 to 65535"),
        },
    }
    let mut password = Password::Keep;
    match text(&mut p, map, "username", true) {
        Some(Some(user)) => match credential(&user) {
            Ok(()) => settings.username = Some(user),
            Err(e) => p.add("username", e),
        },
        // No username: no password either.
        Some(None) => {
            settings.username = None;
            password = Password::Remove;
        }
        None => {}
    }
    match text(&mut p, map, "password", true) {
        Some(Some(secret)) => {
            let secret = Zeroizing::new(secret);
            // The message never quotes the value.
            match credential(&secret) {
                Ok(()) => password = Password::Set(secret),
                Err(e) => p.add("password", e),
            }
        }
        Some(None) => password = Password::Remove,
        None => {}
    }
    settings.has_password = match &password {
        Password::Keep => settings.has_password,
        Password::Set(_) => true,
        Password::Remove => false,
    };
    if p.is_empty() && settings.username.is_some() != settings.has_password {
        match settings.username.is_some() {
            true => p.add("password", "is required with a username"),
            false => p.add("username", "is required with a password"),
        }
    }
    if let Some(value) = map.get("dns") {
        match resolvers(value) {
            Ok(dns) => settings.dns = dns,
            Err(e) => p.add("dns", e),
        }
    }
    match text(&mut p, map, "probe_target", true) {
        Some(Some(target)) => match probe_target(&target) {
            Ok(()) => settings.probe_target = Some(target),
            Err(e) => p.add("probe_target", e),
        },
        Some(None) => settings.probe_target = None,
        None => {}
    }
    if p.is_empty() && !creating && map.is_empty() {
        p.add("name", "name what changes");
    }
    p.into_result(Read {
        name,
        kind,
        settings,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Invalid { fields } => fields.into_iter().map(|f| f.0).collect(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn a_full_socks5_body_is_read_and_the_password_kept_apart() {
        let body = json!({ "name": "office", "type": "socks5", "host": "Proxy.Example.net.",
                           "port": 1080, "username": "u", "password": "p w", "dns": ["192.0.2.53"] });
        let read = read(&body, None).expect("valid");
        assert_eq!(read.kind, "socks5");
        assert_eq!(read.settings.host, "proxy.example.net");
        assert_eq!(
            (read.settings.port, read.settings.has_password),
            (1080, true)
        );
        assert!(matches!(read.password, Password::Set(ref s) if s.as_str() == "p w"));
        assert!(!serde_json::to_string(&read.settings)
            .unwrap()
            .contains("p w"));
    }

    #[test]
    fn wrong_fields_are_each_named() {
        let body = json!({ "name": "", "type": "socks4", "host": "::1", "port": 70000,
                           "username": "a\"b", "password": 5, "dns": ["127.0.0.1"],
                           "probe_target": "nowhere", "extra": 1 });
        let mut got = fields(read(&body, None).err().expect("refused"));
        got.sort();
        assert_eq!(
            got,
            [
                "dns",
                "extra",
                "host",
                "name",
                "password",
                "port",
                "probe_target",
                "type",
                "username"
            ]
        );
        let missing = fields(read(&json!({}), None).err().expect("refused"));
        assert_eq!(missing, ["name", "type", "host", "port"]);
        let half =
            json!({ "name": "a", "type": "http", "host": "10.0.0.1", "port": 1, "username": "u" });
        assert_eq!(fields(read(&half, None).err().unwrap()), ["password"]);
    }

    #[test]
    fn an_update_keeps_what_it_does_not_name_and_cannot_change_the_type() {
        let body = json!({ "name": "a", "type": "http", "host": "10.0.0.1", "port": 3128,
                           "username": "u", "password": "p" });
        let first = read(&body, None).unwrap().settings;
        let moved = read(&json!({ "port": 8080 }), Some(("http", &first))).unwrap();
        assert_eq!(
            (moved.settings.port, moved.settings.has_password),
            (8080, true)
        );
        assert!(matches!(moved.password, Password::Keep));
        let anonymous = read(&json!({ "username": null }), Some(("http", &first))).unwrap();
        assert!(anonymous.settings.username.is_none() && !anonymous.settings.has_password);
        let retyped = read(&json!({ "type": "socks5" }), Some(("http", &first)));
        assert_eq!(fields(retyped.err().unwrap()), ["type"]);
        assert_eq!(
            fields(read(&json!({}), Some(("http", &first))).err().unwrap()),
            ["name"]
        );
    }
}
