//! The fixtures: the wizard's answers (as the issue's answers-file example has them) and the
//! users the tests sign in as.

use serde_json::{json, Value};

/// Name of the session cookie over plain http (src/session_layer.rs).
pub const SESSION_COOKIE: &str = "picd_session";
/// Where picd keeps the setup code while setup is pending, in its state directory.
pub const SETUP_TOKEN_FILE: &str = "setup-token";
/// Name of the session cookie over https, behind Caddy on picd's socket.
pub const SECURE_SESSION_COOKIE: &str = "__Host-picd_session";
/// The default request body limit (64 KiB).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

// The wizard's answers, as the issue's answers-file example has them.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const CELL_NAME: &str = "home";
pub const CELL_DOMAIN: &str = "home.example";
pub const PUBLIC_ENDPOINT: &str = "203.0.113.10";
pub const WIREGUARD_PORT: u16 = 51820;
pub const SUBNET_V4: &str = "10.77.0.0/24";
pub const SUBNET_V6: &str = "fd77:77::/64";
/// Loopback stand-ins on the discard port: a forwarded query never leaves the machine (and no
/// test listens there, so it is simply not answered).
pub const DNS_UPSTREAMS: [&str; 2] = ["127.0.0.1:9", "[::1]:9"];
pub const SPLIT_HORIZON: bool = true;

/// A peer-role user, inserted straight into the store (there is no peer API yet).
pub const PEER_USER: &str = "alice";
pub const PEER_PASSWORD: &str = "alice has a long password";

pub fn admin_step() -> Value {
    json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD })
}

pub fn cell_step() -> Value {
    json!({
        "name": CELL_NAME,
        "domain": CELL_DOMAIN,
        "public_endpoint": PUBLIC_ENDPOINT,
        "wireguard_port": WIREGUARD_PORT,
        "subnet_v4": SUBNET_V4,
        "subnet_v6": SUBNET_V6,
    })
}

pub fn dns_step() -> Value {
    json!({ "upstreams": DNS_UPSTREAMS, "split_horizon": SPLIT_HORIZON })
}

/// The TLS step as the wizard proposes it: certificates from the cell's own CA.
pub fn tls_step() -> Value {
    json!({ "mode": "internal", "acme_email": "", "acme_ca": "" })
}

/// The answers file for `picd setup --answers`, with the same values as the wizard fixtures.
pub fn answers_toml() -> String {
    format!(
        r#"[admin]
username = "{ADMIN_USER}"
password = "{ADMIN_PASSWORD}"
[cell]
name = "{CELL_NAME}"
domain = "{CELL_DOMAIN}"
public_endpoint = "{PUBLIC_ENDPOINT}"
wireguard_port = {WIREGUARD_PORT}
subnet_v4 = "{SUBNET_V4}"
subnet_v6 = "{SUBNET_V6}"
[dns]
upstreams = ["{}", "{}"]
split_horizon = {SPLIT_HORIZON}
"#,
        DNS_UPSTREAMS[0], DNS_UPSTREAMS[1]
    )
}
