//! At `trace` verbosity, picd's dependencies stay below trace: their trace lines carry raw
//! protocol data (defguard_wireguard_rs logs whole netlink replies, keys included). A real
//! cell (picd's userspace WireGuard in a network namespace, a `wireguard-go` client) is set
//! to `trace`, a peer is added, connected, changed and listed; `/api/logs` and picd's own
//! output then hold none of the peer's keys in any form, and no third-party line at trace,
//! while the same crate's debug lines are still there. Needs root and
//! `packaging/install-test-deps`.

mod common;

use std::time::Duration;

use base64::Engine;
use common::netns::{config_text, create_peer, update_peer, Lab, LabOptions};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PEER: &str = "alice";
const FIRST_PING: Duration = Duration::from_secs(15);
/// picd's own services (its modules), which may log at trace.
const PICD_SERVICES: &[&str] = &[
    "app",
    "audit",
    "auth",
    "caddy",
    "cli",
    "client",
    "config",
    "db",
    "dns",
    "driver",
    "health",
    "logs",
    "main",
    "peers",
    "picd",
    "serve",
    "setup",
    "state",
    "vault",
    "web",
    "wireguard",
];
/// The dependency that drives WireGuard, and a debug line it writes on every status read.
const WIREGUARD_CRATE: &str = "defguard_wireguard_rs";
const ITS_DEBUG_LINE: &str = "Reading interface configuration and statistics";

/// Every way a 32-byte key may be printed: base64 (the config's), hex, and Rust's byte list.
fn spellings(key_b64: &str) -> Vec<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .expect("a base64 key");
    assert_eq!(bytes.len(), 32, "{key_b64}");
    let list = |sep: &str| {
        bytes
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(sep)
    };
    vec![
        key_b64.to_string(),
        key_b64.trim_end_matches('=').to_string(),
        hex::encode(&bytes),
        hex::encode_upper(&bytes),
        list(", "),
        list(","),
    ]
}

fn config_keys(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| matches!(k.trim(), "PrivateKey" | "PresharedKey"))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_trace_no_dependency_logs_at_trace_and_no_key_reaches_the_logs() {
    let mut lab = Lab::start(LabOptions::default()).await;
    let admin = lab.admin().await;
    let resp = admin
        .send_json(
            Method::PUT,
            "/api/logs/verbosity",
            &json!({ "filter": "trace" }),
        )
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!((status, &body["filter"]), (StatusCode::OK, &json!("trace")));

    // A peer change the real WireGuard device carries out, a tunnel, more changes, reads.
    create_peer(&admin, json!({ "name": PEER })).await;
    let config = config_text(&admin, &format!("/api/peers/{PEER}/config")).await;
    let keys = config_keys(&config);
    assert_eq!(
        keys.len(),
        2,
        "PrivateKey and PresharedKey expected: {config}"
    );
    let client = lab.connect(&config);
    assert!(
        lab.tunnel_works_within(&client, FIRST_PING),
        "the tunnel carries no pings"
    );
    // Changes that take the peer off the device and put it back (the userspace device
    // cannot modify a peer in place).
    update_peer(&admin, PEER, json!({ "enabled": false })).await;
    update_peer(&admin, PEER, json!({ "enabled": true })).await;
    let all_keys = keys.clone();
    for path in [
        "/api/wireguard/status",
        "/api/peers",
        &format!("/api/peers/{PEER}"),
    ] {
        let (status, _) = admin.get_json(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    let (status, logs) = admin.get_json("/api/logs?lines=5000").await;
    assert_eq!(status, StatusCode::OK);
    let lines = logs["lines"].as_array().expect("lines").clone();
    let text = serde_json::to_string(&logs).unwrap();
    let stderr = lab.picd_log();
    for key in &all_keys {
        for spelling in spellings(key) {
            assert!(
                !text.contains(&spelling),
                "a key is in /api/logs ({spelling})"
            );
            assert!(
                !stderr.contains(&spelling),
                "a key is in picd's output ({spelling})"
            );
        }
    }
    let field = |l: &Value, f: &str| l[f].as_str().unwrap_or_default().to_string();
    let foreign_trace: Vec<&Value> = lines
        .iter()
        .filter(|l| field(l, "level") == "trace")
        .filter(|l| !PICD_SERVICES.contains(&field(l, "service").as_str()))
        .collect();
    assert!(
        foreign_trace.is_empty(),
        "third-party trace lines: {foreign_trace:#?}"
    );
    // Control: the crate's lines below trace are kept, so it did run and log meanwhile.
    assert!(
        lines.iter().any(|l| field(l, "service") == WIREGUARD_CRATE
            && field(l, "level") == "debug"
            && field(l, "message").contains(ITS_DEBUG_LINE)),
        "no debug line of {WIREGUARD_CRATE}: is the filter at trace at all?"
    );
    // Naming the crate at trace explicitly changes nothing either.
    let filter = format!("info,{WIREGUARD_CRATE}=trace");
    let resp = admin
        .send_json(
            Method::PUT,
            "/api/logs/verbosity",
            &json!({ "filter": filter }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    admin.get_json("/api/wireguard/status").await;
    let (_, logs) = admin
        .get_json("/api/logs?lines=5000&service=defguard_wireguard_rs")
        .await;
    let levels: Vec<String> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| field(l, "level"))
        .collect();
    assert!(!levels.iter().any(|l| l == "trace"), "{logs}");
}
