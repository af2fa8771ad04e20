//! Per-peer policy applied for real: a cell (picd in its namespace), two WireGuard peers with
//! full tunnels and an "internet" namespace behind the cell. A peer whose internet is off is
//! refused at once (an ICMP "administratively prohibited", not a timeout) on its way out but
//! still reaches the cell and the other peer; a peer with peer_to_peer off and the other peer
//! cannot reach each other; turning either back on restores the path.

mod common;

use std::time::{Duration, Instant};

use common::netns::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PEERS: &str = "/api/routing/peers";
/// A reconcile pass every second, so a change shows quickly.
const RECONCILE_SECONDS: u64 = 1;
const APPLY_TIMEOUT: Duration = Duration::from_secs(20);
/// A fresh tunnel answers within this (first handshake included).
const FIRST_PING: Duration = Duration::from_secs(15);
/// How long a refused ping waits for an answer; a reject must come back well within it.
const PING_WAIT_SECONDS: u64 = 3;
const FAST_REFUSAL: Duration = Duration::from_millis(1500);

struct PolicyLab {
    lab: Lab,
    admin: TestClient,
    alice: WgClient,
    bob: WgClient,
    /// The internet host's IPv4 and IPv6 addresses.
    internet: [String; 2],
}

/// One ping from `client` to `target`: whether it was answered, what ping printed, and how
/// long it took.
fn ping_once(client: &WgClient, target: &str) -> (bool, String, Duration) {
    let started = Instant::now();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &client.ns, "ping", "-n", "-c", "1"])
        .args(["-W", &PING_WAIT_SECONDS.to_string(), target])
        .output()
        .expect("ping");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text, started.elapsed())
}

fn reaches(client: &WgClient, target: &str) -> bool {
    ping_once(client, target).0
}

/// The peer's tunnel addresses, IPv4 then IPv6 (the config's Address, without prefixes).
fn tunnel_addrs(client: &WgClient) -> [String; 2] {
    let family = |v6: bool| {
        let address = client
            .config
            .addresses
            .iter()
            .find(|a| a.contains(':') == v6)
            .expect("an address of each family");
        address.split('/').next().unwrap().to_string()
    };
    [family(false), family(true)]
}

async fn peer_on_tunnel(lab: &mut Lab, admin: &TestClient, name: &str) -> WgClient {
    create_peer(admin, json!({ "name": name, "tunnel": "full" })).await;
    let config = config_text(admin, &format!("/api/peers/{name}/config")).await;
    let client = lab.connect(&config);
    assert!(
        lab.tunnel_works_within(&client, FIRST_PING),
        "{name}'s tunnel does not carry pings"
    );
    client
}

async fn policy_lab() -> PolicyLab {
    require_root_and_tools(&["nft", "ping", "sysctl"]);
    let options = LabOptions {
        reconcile_interval_seconds: RECONCILE_SECONDS,
        ..LabOptions::default()
    };
    let mut lab = Lab::start(options).await;
    let admin = lab.admin().await;
    let alice = peer_on_tunnel(&mut lab, &admin, "alice").await;
    let bob = peer_on_tunnel(&mut lab, &admin, "bob").await;
    let (internet4, internet6) = lab.internet_host();
    lab.enable_forwarding();
    let lab = PolicyLab {
        lab,
        admin,
        alice,
        bob,
        internet: [internet4, internet6],
    };
    // Before any policy: every path is open.
    lab.assert_paths(true, true, "before any policy");
    lab
}

impl PolicyLab {
    async fn set(&self, peer: &str, body: Value) -> Value {
        let path = format!("{PEERS}/{peer}");
        let resp = self.admin.send_json(Method::PUT, &path, &body).await;
        let (status, policy) = json_of(resp).await;
        assert_eq!(status, StatusCode::OK, "PUT {path} {body}: {policy}");
        policy
    }

    fn alice_and_bob(&self) -> ([String; 2], [String; 2]) {
        (tunnel_addrs(&self.alice), tunnel_addrs(&self.bob))
    }

    /// Asserts, over IPv4 and IPv6, whether alice reaches the internet host and whether the
    /// peers reach each other; bob's internet and both peers' way to the cell stay open
    /// throughout.
    fn assert_paths(&self, alice_internet: bool, peer_to_peer: bool, when: &str) {
        let (a, b) = self.alice_and_bob();
        for family in 0..2 {
            let internet = &self.internet[family];
            let reached = reaches(&self.alice, internet);
            assert_eq!(reached, alice_internet, "{when}: alice to {internet}");
            assert!(reaches(&self.bob, internet), "{when}: bob to {internet}");
            let reached = reaches(&self.alice, &b[family]);
            assert_eq!(reached, peer_to_peer, "{when}: alice to bob {}", b[family]);
            let reached = reaches(&self.bob, &a[family]);
            assert_eq!(reached, peer_to_peer, "{when}: bob to alice {}", a[family]);
        }
        for target in [self.lab.cell_wg_addr(), self.lab.cell_addr()] {
            assert!(
                reaches(&self.alice, &target),
                "{when}: alice to the cell {target}"
            );
            assert!(
                reaches(&self.bob, &target),
                "{when}: bob to the cell {target}"
            );
        }
    }

    async fn shown(&self, peer: &str) -> Value {
        let (status, body) = self.admin.get_json(PEERS).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["peers"]
            .as_array()
            .and_then(|peers| peers.iter().find(|p| p["peer"] == peer).cloned())
            .unwrap_or_else(|| panic!("{peer} not in {body}"))
    }
}

/// Asserts that the ping was refused with an ICMP "administratively prohibited" (ping says
/// "Packet filtered" for IPv4) well before its wait ran out.
fn assert_refused_fast(client: &WgClient, target: &str) {
    let (answered, text, took) = ping_once(client, target);
    assert!(!answered, "{target} answered: {text}");
    let text_lower = text.to_lowercase();
    let prohibited = text_lower.contains("filtered") || text_lower.contains("prohibited");
    assert!(
        took < FAST_REFUSAL && prohibited,
        "not refused at once ({took:?}, wait {PING_WAIT_SECONDS} s): {text}"
    );
    eprintln!("{target} refused in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_internet_reaches_the_cell_and_peers_but_is_refused_outside() {
    let lab = policy_lab().await;
    let policy = lab.set("alice", json!({ "internet": false })).await;
    assert_eq!(
        (&policy["internet"], &policy["peer_to_peer"]),
        (&json!(false), &json!(true)),
        "{policy}"
    );
    let [internet4, internet6] = &lab.internet;
    assert!(
        eventually(APPLY_TIMEOUT, || !reaches(&lab.alice, internet4)),
        "alice still reaches the internet host; log:\n{}",
        lab.lab.picd_log()
    );
    assert_refused_fast(&lab.alice, internet4);
    assert_refused_fast(&lab.alice, internet6);
    lab.assert_paths(false, true, "alice's internet off");
    let shown = lab.shown("alice").await;
    assert_eq!(shown["internet"], false, "{shown}");
    assert!(shown["updated_at"].is_string(), "{shown}");
    let bob = lab.shown("bob").await;
    assert_eq!(
        (&bob["internet"], &bob["updated_at"]),
        (&json!(true), &Value::Null)
    );

    lab.set("alice", json!({ "internet": true })).await;
    assert!(
        eventually(APPLY_TIMEOUT, || reaches(&lab.alice, internet4)),
        "alice's internet did not come back"
    );
    lab.assert_paths(true, true, "alice's internet on again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_peer_and_the_others_cannot_reach_each_other() {
    let lab = policy_lab().await;
    let (alice, bob) = lab.alice_and_bob();
    lab.set("bob", json!({ "peer_to_peer": false })).await;
    assert!(
        eventually(APPLY_TIMEOUT, || !reaches(&lab.alice, &bob[0])),
        "alice still reaches the isolated bob; log:\n{}",
        lab.lab.picd_log()
    );
    for family in 0..2 {
        assert_refused_fast(&lab.alice, &bob[family]);
        assert_refused_fast(&lab.bob, &alice[family]);
    }
    lab.assert_paths(true, false, "bob isolated");

    lab.set("bob", json!({ "peer_to_peer": true })).await;
    assert!(
        eventually(APPLY_TIMEOUT, || reaches(&lab.alice, &bob[0])),
        "alice does not reach bob again"
    );
    lab.assert_paths(true, true, "bob no longer isolated");
}
