//! Validation of peer input. Fields are read from the JSON object one by one so that every
//! problem, a wrong type included, is reported on its field, and so that an explicit `null`
//! (clear the value) differs from a missing field (keep it).

use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::cell::{dns_label, CellSettings};
use crate::validation::Problems;

pub const MAX_KEEPALIVE: u64 = 3600;
pub const DEFAULT_KEEPALIVE: u16 = 25;
const MAX_ALLOWED_IPS: usize = 64;

/// A field that may be absent, null, or set.
pub enum Field<T> {
    Missing,
    Null,
    Set(T),
}

pub fn peer_name(p: &mut Problems, value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => match dns_label(s) {
            Ok(()) => Some(s.clone()),
            Err(m) => {
                p.add("name", m);
                None
            }
        },
        Some(_) => {
            p.add("name", "must be a string");
            None
        }
        None => {
            p.add("name", "is required");
            None
        }
    }
}

pub fn public_key(p: &mut Problems, map: &Map<String, Value>) -> Field<String> {
    match map.get("public_key") {
        None => Field::Missing,
        Some(Value::Null) => Field::Null,
        Some(Value::String(s)) if crate::wireguard::parse_key(s).is_some() => {
            Field::Set(s.trim().to_string())
        }
        Some(_) => {
            p.add(
                "public_key",
                "must be a WireGuard public key (32 bytes, base64)",
            );
            Field::Missing
        }
    }
}

pub fn boolean(p: &mut Problems, map: &Map<String, Value>, key: &str) -> Option<bool> {
    match map.get(key) {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            p.add(key, "must be true or false");
            None
        }
    }
}

pub fn tunnel(p: &mut Problems, map: &Map<String, Value>) -> Option<String> {
    match map.get("tunnel") {
        None => None,
        Some(Value::String(s)) if s == "full" || s == "split" => Some(s.clone()),
        Some(_) => {
            p.add(
                "tunnel",
                "must be full (all traffic through the cell) or split",
            );
            None
        }
    }
}

pub fn allowed_ips(p: &mut Problems, map: &Map<String, Value>) -> Option<Vec<String>> {
    match map.get("allowed_ips") {
        None => None,
        Some(Value::Array(items)) if (1..=MAX_ALLOWED_IPS).contains(&items.len()) => {
            let mut nets = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().and_then(|s| s.trim().parse::<IpNet>().ok()) {
                    Some(net) => nets.push(net.trunc().to_string()),
                    None => p.add(
                        &format!("allowed_ips[{i}]"),
                        "must be a network in CIDR form",
                    ),
                }
            }
            Some(nets)
        }
        Some(_) => {
            p.add(
                "allowed_ips",
                format!("must be a list of 1 to {MAX_ALLOWED_IPS} networks"),
            );
            None
        }
    }
}

pub fn keepalive(p: &mut Problems, map: &Map<String, Value>) -> Field<u16> {
    match map.get("persistent_keepalive") {
        None => Field::Missing,
        Some(Value::Null) => Field::Null,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|k| k <= MAX_KEEPALIVE) => {
            Field::Set(n.as_u64().unwrap_or(0) as u16)
        }
        Some(_) => {
            p.add(
                "persistent_keepalive",
                format!("must be seconds from 0 to {MAX_KEEPALIVE}, or null"),
            );
            Field::Missing
        }
    }
}

pub fn expires_at(p: &mut Problems, map: &Map<String, Value>) -> Field<String> {
    match map.get("expires_at") {
        None => Field::Missing,
        Some(Value::Null) => Field::Null,
        Some(Value::String(s)) => match crate::time::parse_rfc3339(s) {
            Some(t) if t > crate::time::now() => Field::Set(crate::time::format_rfc3339(t)),
            Some(_) => {
                p.add("expires_at", "must be in the future");
                Field::Missing
            }
            None => {
                p.add("expires_at", "must be an RFC 3339 time");
                Field::Missing
            }
        },
        Some(_) => {
            p.add("expires_at", "must be an RFC 3339 time or null");
            Field::Missing
        }
    }
}

pub fn password(
    p: &mut Problems,
    map: &Map<String, Value>,
    key: &str,
    username: &str,
) -> Option<String> {
    match map.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            if let Err(crate::error::ApiError::Invalid { fields }) =
                crate::auth::password::check_policy(key, s, username)
            {
                fields.into_iter().for_each(|(f, m)| p.add(&f, m));
            }
            Some(s.clone())
        }
        Some(_) => {
            p.add(key, "must be a string");
            None
        }
    }
}

/// The client's AllowedIPs for a tunnel kind: everything for `full`, the cell's subnets (or
/// the given list) for `split`.
pub fn client_allowed_ips(
    tunnel: &str,
    custom: Option<Vec<String>>,
    cell: &CellSettings,
) -> Vec<String> {
    match (tunnel, custom) {
        ("full", _) => vec!["0.0.0.0/0".into(), "::/0".into()],
        (_, Some(list)) => list,
        _ => vec![cell.subnet_v4.to_string(), cell.subnet_v6.to_string()],
    }
}
