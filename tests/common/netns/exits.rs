//! What the exits' tests and benchmark start from: the lab with picd's passes every
//! `reconcile_seconds`, an admin, full-tunnel peers connected (each tunnel answering), a
//! WireGuard provider and forwarding on the cell; and adding the provider as a `wireguard_ext`
//! exit.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::common::*;

/// The first ping through a new peer's tunnel.
const FIRST_PING: Duration = Duration::from_secs(15);
/// A refusal must come back well within curl's own limit (5 s).
pub const FAST_REFUSAL: Duration = Duration::from_millis(1500);

/// The peer's HTTP to the internet is refused at once (not a timeout) over IPv4 and IPv6,
/// and none of its packets left through the uplink (counted since `watch_uplink_for`).
pub fn assert_refused_at_once(lab: &Lab, peer: &WgClient, when: &str) {
    for (family, (seen, took)) in [("IPv4", fetch(peer)), ("IPv6", fetch6(peer))] {
        assert_eq!(
            seen, None,
            "{when}: the peer reached the internet over {family}"
        );
        assert!(
            took < FAST_REFUSAL,
            "{when}: {family} refused only after {took:?}, not at once"
        );
    }
    assert_eq!(
        lab.uplink_leaks(),
        0,
        "{when}: the peer's packets on the uplink"
    );
    eprintln!("{when}: refused at once, 0 packets on the uplink");
}

/// `assert_refused_at_once`, and the peer's DNS to a hard-coded resolver goes unanswered
/// (UDP and TCP) and a ping leaves nothing on the uplink either.
pub fn assert_cut_off(lab: &Lab, peer: &WgClient, when: &str) {
    assert_refused_at_once(lab, peer, when);
    assert!(!dns_answered(peer, false), "{when}: DNS over UDP answered");
    assert!(!dns_answered(peer, true), "{when}: DNS over TCP answered");
    let _ = lab.ping(peer, INTERNET_SERVER);
    assert_eq!(
        lab.uplink_leaks(),
        0,
        "{when}: the peer's packets on the uplink"
    );
}

pub struct ExitsLab {
    pub lab: Lab,
    pub admin: TestClient,
    /// The peers, in the order their names were given.
    pub peers: Vec<WgClient>,
    pub provider: Provider,
}

impl ExitsLab {
    pub async fn start(reconcile_seconds: u64, peers: &[&str]) -> ExitsLab {
        let options = LabOptions {
            reconcile_interval_seconds: reconcile_seconds,
            ..LabOptions::default()
        };
        ExitsLab::start_with(options, peers).await
    }

    /// `start` with the lab's options given (more settings for picd, say).
    pub async fn start_with(options: LabOptions, peers: &[&str]) -> ExitsLab {
        let mut lab = Lab::start(options).await;
        let admin = lab.admin().await;
        let mut clients = Vec::new();
        for name in peers {
            create_peer(&admin, json!({ "name": name, "tunnel": "full" })).await;
            let config = config_text(&admin, &format!("/api/peers/{name}/config")).await;
            let client = lab.connect(&config);
            assert!(
                lab.tunnel_works_within(&client, FIRST_PING),
                "{name}'s tunnel"
            );
            clients.push(client);
        }
        let provider = lab.provider();
        lab.enable_forwarding();
        ExitsLab {
            lab,
            admin,
            peers: clients,
            provider,
        }
    }

    /// Adds the provider as a `wireguard_ext` exit named "provider"; answers its id and its
    /// interface, whose userspace control socket is removed with the lab.
    pub async fn add_wireguard_exit(&mut self) -> (String, String) {
        let body = json!({ "name": "provider", "type": "wireguard_ext",
                           "config": self.provider.customer_config });
        let resp = self
            .admin
            .send_json(Method::POST, "/api/connectivity/connections", &body)
            .await;
        let (status, created) = json_of(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let exit_if = created["interface"].as_str().expect("interface");
        self.lab.forget_socket_later(exit_if);
        let id = created["id"].as_str().expect("id");
        (id.to_string(), exit_if.to_string())
    }
}
