//! Shared helpers of the integration tests: a real `picd` process on a free port with its own
//! state directory (`Picd`), an HTTP client with a cookie jar that knows the API's habits
//! (`TestClient`), the wizard's fixtures, the command line, and direct access to the SQLite
//! file for checking (and tampering with) stored state; and for DNS (`dns`), the real tools
//! and servers the DNS tests ask and run.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code, unused_imports)]

pub mod caddy;
mod client;
mod dns;
pub mod docker;
mod fixtures;
pub mod keys;
pub mod mail;
pub mod netns;
mod ports;
mod process;
mod requests;
pub mod routing_lab;
pub mod socket;
mod store;
mod tools;

pub use client::*;
pub use dns::*;
pub use fixtures::*;
pub use ports::*;
pub use process::*;
pub use requests::*;
pub use store::*;
pub use tools::*;

/// A started picd whose wizard is complete, and the admin's signed-in client.
pub async fn picd_with_admin() -> (Picd, TestClient) {
    picd_with_admin_using(PicdOptions::default()).await
}

pub async fn picd_with_admin_using(options: PicdOptions) -> (Picd, TestClient) {
    let picd = Picd::start_with(options).await;
    let admin = picd.client();
    admin.run_setup().await;
    (picd, admin)
}
/// A picd with a completed wizard, its admin client, and a signed-in peer-role client.
pub async fn picd_with_admin_and_peer() -> (Picd, TestClient, TestClient) {
    let (picd, admin) = picd_with_admin().await;
    insert_user(&picd.db(), PEER_USER, "peer", PEER_PASSWORD);
    let peer = picd.client();
    let body = peer.login_ok(PEER_USER, PEER_PASSWORD).await;
    assert_eq!(body["user"]["role"], "peer", "{body}");
    (picd, admin, peer)
}
