//! Peers on a real tunnel: picd runs with its userspace WireGuard in a network namespace, and
//! `wireguard-go` clients in namespaces of their own are configured from the config picd
//! served. A peer's tunnel carries pings to the cell's WireGuard address; disabling, deleting
//! or expiring it cuts that tunnel off at once while a second peer's keeps working; a restart
//! of picd puts every peer back. Needs root and `packaging/install-test-deps`.

mod common;

use std::time::Duration;

use common::netns::{
    config_text, create_peer, live_status, update_peer, Lab, LabOptions, WgClient,
};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// WireGuard starts a new handshake this long after its packets stop being answered
/// (keepalive timeout 10 s + rekey timeout 5 s); polls for a tunnel coming back allow twice
/// that on a loaded machine.
const REHANDSHAKE: Duration = Duration::from_secs(30);
/// A fresh tunnel answers within this (first handshake included).
const FIRST_PING: Duration = Duration::from_secs(15);
/// Pings sent to show that a tunnel is cut: none of them may be answered.
const CUT_PINGS: usize = 3;

/// Adds a peer and brings up its client from the config picd served.
async fn peer_on_tunnel(lab: &mut Lab, admin: &TestClient, name: &str) -> (Value, WgClient) {
    let peer = create_peer(admin, json!({ "name": name })).await;
    let config = config_text(admin, &format!("/api/peers/{name}/config")).await;
    let client = lab.connect(&config);
    assert!(
        lab.tunnel_works_within(&client, FIRST_PING),
        "{name}'s tunnel does not carry pings to {}",
        lab.cell_wg_addr()
    );
    (peer, client)
}

fn assert_cut(lab: &Lab, client: &WgClient, why: &str) {
    let answered = lab.pings_answered(client, CUT_PINGS);
    assert_eq!(
        answered, 0,
        "{why}: {answered} of {CUT_PINGS} pings still answered"
    );
}

fn assert_works(lab: &Lab, client: &WgClient, why: &str) {
    let answered = lab.pings_answered(client, CUT_PINGS);
    assert_eq!(
        answered, CUT_PINGS,
        "{why}: only {answered} of {CUT_PINGS} pings answered"
    );
}

/// Whether a peer's live data shows a completed handshake and traffic both ways.
fn handshake_seen(live: &Value) -> bool {
    live["latest_handshake"].is_string()
        && live["rx_bytes"].as_u64().is_some_and(|b| b > 0)
        && live["tx_bytes"].as_u64().is_some_and(|b| b > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_reaches_the_cell_through_the_tunnel_and_its_handshake_shows() {
    let mut lab = Lab::start(LabOptions::default()).await;
    let admin = lab.admin().await;
    let (status, wg) = admin.get_json("/api/wireguard/status").await;
    assert_eq!(status, StatusCode::OK, "{wg}");
    assert_eq!(
        (wg["mode"].as_str(), wg["state"].as_str()),
        (Some("userspace"), Some("ok")),
        "{wg}"
    );
    assert_eq!(wg["interface"], json!(lab.ifname), "{wg}");
    assert_eq!(wg["listen_port"], json!(WIREGUARD_PORT), "{wg}");

    let peer = create_peer(&admin, json!({ "name": "alice" })).await;
    let key = peer["public_key"].as_str().expect("public_key").to_string();
    assert_eq!(
        lab.interface_peers(),
        vec![key.clone()],
        "the interface holds the new peer"
    );
    let text = config_text(&admin, "/api/peers/alice/config").await;
    let config = common::netns::parse_wg_config(&text);
    assert_eq!(
        config.public_key,
        wg["public_key"].as_str().unwrap_or("-"),
        "{text}"
    );
    assert_eq!(
        config.endpoint,
        format!("{}:{WIREGUARD_PORT}", lab.cell_addr()),
        "{text}"
    );
    let address = format!("{}/32", peer["address_v4"].as_str().unwrap_or("-"));
    assert!(config.addresses.contains(&address), "{text}");
    assert_eq!(
        config.dns.first(),
        Some(&lab.cell_wg_addr()),
        "DNS is the cell: {text}"
    );
    assert!(
        config.preshared_key.is_some(),
        "a preshared key by default: {text}"
    );

    let client = lab.connect(&text);
    assert!(
        lab.tunnel_works_within(&client, FIRST_PING),
        "no answer from {} through the tunnel",
        lab.cell_wg_addr()
    );
    // The handshake and the traffic, as picd reads them off its interface.
    let live = live_after_handshake(&admin, &key).await;
    assert!(
        handshake_seen(&live),
        "no handshake in /api/wireguard/status: {live}"
    );
    assert_eq!(live["name"], "alice", "{live}");
    let (status, list) = admin.get_json("/api/peers").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed = &list["peers"][0];
    assert_eq!(listed["name"], "alice", "{list}");
    assert!(
        handshake_seen(&listed["wireguard"]),
        "no handshake in /api/peers: {list}"
    );
    assert!(listed["wireguard"]["endpoint"].is_string(), "{list}");
    // The driver logs peers as it configures them: never with their keys' secret halves.
    let log = lab.picd_log();
    let secrets = config.private_key.iter().chain(&config.preshared_key);
    for secret in secrets.flat_map(|k| [k.clone(), hex_of(k)]) {
        assert!(!log.contains(&secret), "a secret key appears in picd's log");
    }
}

/// A base64 key as hex, the other form WireGuard tooling prints keys in.
fn hex_of(key: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("a base64 key");
    hex::encode(bytes)
}

/// Polls /api/wireguard/status until the peer's handshake shows (or the wait ends).
async fn live_after_handshake(admin: &TestClient, key: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let live = live_status(admin, key).await;
        if handshake_seen(&live) || std::time::Instant::now() > deadline {
            return live;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_or_deleting_a_peer_cuts_only_its_tunnel() {
    let mut lab = Lab::start(LabOptions::default()).await;
    let admin = lab.admin().await;
    let (a, client_a) = peer_on_tunnel(&mut lab, &admin, "anna").await;
    let (b, client_b) = peer_on_tunnel(&mut lab, &admin, "bert").await;
    let (key_a, key_b) = (
        a["public_key"].as_str().unwrap(),
        b["public_key"].as_str().unwrap(),
    );

    let disabled = update_peer(&admin, "anna", json!({ "enabled": false })).await;
    assert_eq!(disabled["enabled"], false, "{disabled}");
    assert_cut(&lab, &client_a, "a disabled peer's tunnel");
    assert_works(
        &lab,
        &client_b,
        "another peer's tunnel while anna is disabled",
    );
    assert_eq!(
        lab.interface_peers(),
        vec![key_b.to_string()],
        "only bert on the interface"
    );

    update_peer(&admin, "anna", json!({ "enabled": true })).await;
    assert!(
        lab.tunnel_works_within(&client_a, REHANDSHAKE),
        "a re-enabled peer's tunnel did not come back within {REHANDSHAKE:?}"
    );
    assert_works(&lab, &client_b, "bert's tunnel after anna came back");

    let resp = admin
        .send_json(Method::DELETE, "/api/peers/anna", &json!({}))
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_cut(&lab, &client_a, "a deleted peer's tunnel");
    assert_works(&lab, &client_b, "bert's tunnel after anna was deleted");
    let peers = lab.interface_peers();
    assert!(
        !peers.contains(&key_a.to_string()) && peers.contains(&key_b.to_string()),
        "{peers:?}"
    );
}

/// The cell's preshared key for a peer, as `wg` reads it from picd's interface.
fn interface_psk(lab: &Lab, key: &str) -> String {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.cell_ns,
            "wg",
            "show",
            &lab.ifname,
            "preshared-keys",
        ])
        .output()
        .expect("wg show preshared-keys");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|rest| rest.trim().to_string()))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_peer_whose_preshared_key_changes_stays_on_the_interface() {
    let mut lab = Lab::start(LabOptions::default()).await;
    let admin = lab.admin().await;
    let (a, client_a) = peer_on_tunnel(&mut lab, &admin, "anna").await;
    let (_, client_b) = peer_on_tunnel(&mut lab, &admin, "bert").await;
    let key_a = a["public_key"].as_str().unwrap().to_string();
    let with_psk = interface_psk(&lab, &key_a);
    assert!(
        with_psk.len() == 44,
        "anna starts with a preshared key: {with_psk:?}"
    );

    // The same public key with its preshared key taken away, then a new one given: the
    // interface follows each change, and the client with the config picd serves reconnects.
    for (psk, why) in [
        (false, "without a preshared key"),
        (true, "with a new preshared key"),
    ] {
        let updated = update_peer(&admin, "anna", json!({ "preshared_key": psk })).await;
        assert_eq!(updated["public_key"], key_a.as_str(), "{updated}");
        let on_interface = interface_psk(&lab, &key_a);
        match psk {
            false => assert_eq!(on_interface, "(none)", "{why}"),
            true => assert!(
                on_interface.len() == 44 && on_interface != with_psk,
                "{why}: {on_interface:?}"
            ),
        }
        let config = config_text(&admin, "/api/peers/anna/config").await;
        let client = lab.reconfigure(&client_a, &config);
        assert!(
            lab.tunnel_works_within(&client, REHANDSHAKE),
            "anna's tunnel {why} did not come back within {REHANDSHAKE:?}"
        );
        assert_works(&lab, &client_b, "bert's tunnel while anna's key changed");
    }
    assert!(
        !lab.picd_log().contains("panicked"),
        "picd panicked:\n{}",
        lab.picd_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_peer_is_retired_by_the_reconcile() {
    let options = LabOptions {
        reconcile_interval_seconds: 1,
        ..LabOptions::default()
    };
    let mut lab = Lab::start(options).await;
    let admin = lab.admin().await;
    let (_, steady) = peer_on_tunnel(&mut lab, &admin, "steady").await;
    let lifetime = Duration::from_secs(10);
    let expiry = time::OffsetDateTime::now_utc() + lifetime;
    let expires_at = expiry
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let body = json!({ "name": "brief", "expires_at": expires_at });
    let peer = create_peer(&admin, body).await;
    let config = config_text(&admin, "/api/peers/brief/config").await;
    let brief = lab.connect(&config);
    assert!(
        lab.tunnel_works_within(&brief, FIRST_PING),
        "the peer's tunnel did not work before it expired at {expires_at}"
    );
    let retired = common::netns::eventually(lifetime + Duration::from_secs(15), || {
        !lab.ping(&brief, &lab.cell_wg_addr())
    });
    assert!(
        retired,
        "the tunnel of a peer that expired at {expires_at} still works"
    );
    // Pings take up to a second each: a cut more than that before the expiry is too early.
    let early = expiry - time::OffsetDateTime::now_utc();
    assert!(
        early < time::Duration::seconds(2),
        "cut {early} before its expiry"
    );
    assert_cut(&lab, &brief, "an expired peer's tunnel");
    assert_works(&lab, &steady, "a peer without expiry");
    let key = peer["public_key"].as_str().unwrap().to_string();
    assert!(
        !lab.interface_peers().contains(&key),
        "the expired key is off the interface"
    );
    // Retired from the interface, not deleted: the desired state still lists it.
    let (status, stored) = admin.get_json("/api/peers/brief").await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["expires_at"], json!(peer["expires_at"]), "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_picd_puts_every_peer_back() {
    let mut lab = Lab::start(LabOptions::default()).await;
    let admin = lab.admin().await;
    let (a, client_a) = peer_on_tunnel(&mut lab, &admin, "carl").await;
    let (b, client_b) = peer_on_tunnel(&mut lab, &admin, "dora").await;
    let c = create_peer(&admin, json!({ "name": "eve", "enabled": false })).await;

    lab.restart_picd().await;
    let mut expected: Vec<String> = [&a, &b]
        .iter()
        .map(|p| p["public_key"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    // The start-up reconcile runs beside the HTTP server: give it a moment.
    let mut keys = Vec::new();
    let back = common::netns::eventually(Duration::from_secs(10), || {
        keys = lab.interface_peers();
        keys == expected
    });
    assert!(
        back,
        "after a restart the interface holds {keys:?}, not every enabled peer {expected:?}"
    );
    assert!(
        !keys.contains(&c["public_key"].as_str().unwrap().to_string()),
        "eve is disabled"
    );
    for client in [&client_a, &client_b] {
        assert!(
            lab.tunnel_works_within(client, REHANDSHAKE),
            "{}'s tunnel did not come back after the restart",
            client.ifname
        );
    }
    let admin = lab.admin().await;
    let key = a["public_key"].as_str().unwrap();
    let live = live_status(&admin, key).await;
    assert!(handshake_seen(&live), "handshake after the restart: {live}");
}

/// systemd stops picd with SIGTERM; with the userspace interface up it must still stop, and
/// soon (its interface goes with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picd_stops_on_sigterm_with_its_interface_up() {
    let mut lab = Lab::start(LabOptions::default()).await;
    let admin = lab.admin().await;
    let _ = peer_on_tunnel(&mut lab, &admin, "fred").await;
    for round in 0..5 {
        assert!(
            lab.stop_picd(),
            "round {round}: picd was still running {:?} after SIGTERM",
            common::netns::STOP_TIMEOUT
        );
        let stops = lab.picd_log().matches("picd stopped").count();
        assert_eq!(stops, round + 1, "round {round}: no clean stop in the log");
        lab.restart_picd().await;
    }
}
