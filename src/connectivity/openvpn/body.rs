//! The request fields only `openvpn` connections have: `username` and `password`, both or
//! neither, for a provider file with `auth-user-pass`. Kept in the vault, never answered.

use serde_json::{Map, Value};

use crate::connectivity::store::TYPE_OPENVPN;
use crate::validation::Problems;

/// The credentials a body gives (None when it gives none, or when they are wrong: the
/// problem is noted).
pub fn credentials(
    map: &Map<String, Value>,
    kind: &str,
    p: &mut Problems,
) -> Option<(String, String)> {
    let mut read = |key: &str| match map.get(key) {
        None => None,
        Some(_) if kind != TYPE_OPENVPN => {
            p.add(key, "is only for openvpn connections");
            None
        }
        Some(Value::String(s)) => match super::parse::credential(s) {
            Ok(s) => Some(s),
            Err(e) => {
                p.add(key, e);
                None
            }
        },
        Some(_) => {
            p.add(key, "must be a string");
            None
        }
    };
    let (user, pass) = (read("username"), read("password"));
    let given = (map.contains_key("username"), map.contains_key("password"));
    if given.0 != given.1 && kind == TYPE_OPENVPN {
        let missing = if given.0 { "password" } else { "username" };
        p.add(missing, "is required with the other credential");
    }
    user.zip(pass)
}
