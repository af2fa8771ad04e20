//! The peers' self-service portal: a peer signs in (with the password set when it was created,
//! or through a one-time invitation), sees and downloads its own config and QR code, changes
//! its password and rotates its keys, and never sees another peer. Key rotation is proven on a
//! real tunnel (root and `packaging/install-test-deps`); the rest runs with WireGuard off.

mod common;

use std::time::Duration;

use common::netns::{config_text, create_peer, decoded_qr, parse_wg_config, Lab, LabOptions};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const AMY_PASSWORD: &str = "amy keeps a long passphrase";
const AMY_NEW_PASSWORD: &str = "amy changed her long passphrase";
const CAROL_PASSWORD: &str = "carol chose this passphrase";

/// A client signed in as `name` with `password`, checked to have the peer role.
async fn peer_client(base: &Picd, name: &str, password: &str) -> TestClient {
    let client = base.client();
    let body = client.login_ok(name, password).await;
    assert_eq!(body["user"]["role"], "peer", "{body}");
    client
}

#[tokio::test]
async fn a_peer_sees_its_own_config_and_qr_code_and_nothing_of_another_peer() {
    let (picd, admin) = picd_with_admin().await;
    let amy = create_peer(
        &admin,
        json!({ "name": "amy", "portal_password": AMY_PASSWORD }),
    )
    .await;
    assert_eq!(amy["has_portal_login"], true, "{amy}");
    create_peer(&admin, json!({ "name": "bob" })).await;
    let peer = peer_client(&picd, "amy", AMY_PASSWORD).await;

    let (status, me) = peer.get_json("/api/peer/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (me["name"].as_str(), me["public_key"].as_str()),
        (Some("amy"), amy["public_key"].as_str())
    );
    let own = config_text(&peer, "/api/peer/config").await;
    assert_eq!(
        own,
        config_text(&admin, "/api/peers/amy/config").await,
        "the portal serves the same config"
    );
    assert!(parse_wg_config(&own).private_key.is_some(), "{own}");
    assert!(!me
        .to_string()
        .contains(parse_wg_config(&own).private_key.unwrap().as_str()));
    assert_eq!(decoded_qr(&peer, "/api/peer/qr", picd.root()).await, own);
    let svg = peer.get("/api/peer/qr?format=svg").await;
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let (status, creds) = peer.get_json("/api/peer/service-credentials").await;
    assert_eq!(
        (status, creds["credentials"].clone()),
        (StatusCode::OK, json!([])),
        "{creds}"
    );

    // Another peer's data, or the admin's views: refused, and each attempt is on record.
    let reads = [
        "/api/peers",
        "/api/peers/bob",
        "/api/peers/bob/config",
        "/api/peers/bob/qr",
        "/api/wireguard/status",
    ];
    for path in reads {
        expect_error(peer.get(path).await, StatusCode::FORBIDDEN, "admin_only").await;
    }
    for (method, path) in [
        (Method::POST, "/api/peers"),
        (Method::PUT, "/api/peers/bob"),
        (Method::DELETE, "/api/peers/bob"),
    ] {
        let resp = peer
            .send_json(
                method,
                path,
                &json!({ "name": "mallory", "enabled": false }),
            )
            .await;
        expect_error(resp, StatusCode::FORBIDDEN, "admin_only").await;
    }
    let (status, audit) = admin
        .get_json("/api/audit?actor=amy&result=denied&limit=1000")
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit["entries"].as_array().cloned().unwrap_or_default();
    for path in reads {
        let recorded = entries
            .iter()
            .any(|e| e["detail"]["path"] == path && e["detail"]["status"] == 403);
        assert!(recorded, "no denied entry for {path}: {audit}");
    }
    assert_eq!(
        entries.len(),
        reads.len() + 3,
        "one entry per refused request: {audit}"
    );
    let (_, bob) = admin.get_json("/api/peers/bob").await;
    assert_eq!(bob["enabled"], true, "bob is unchanged: {bob}");
    // The admin has no portal of its own.
    expect_error(
        admin.get("/api/peer/me").await,
        StatusCode::FORBIDDEN,
        "peer_only",
    )
    .await;
}

#[tokio::test]
async fn a_peer_changes_its_own_password() {
    let (picd, admin) = picd_with_admin().await;
    create_peer(
        &admin,
        json!({ "name": "amy", "portal_password": AMY_PASSWORD }),
    )
    .await;
    let peer = peer_client(&picd, "amy", AMY_PASSWORD).await;
    let change =
        |current: &str| json!({ "current_password": current, "new_password": AMY_NEW_PASSWORD });
    let resp = peer
        .post_with_csrf("/api/auth/change-password", &change("not the password"))
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    let resp = peer
        .post_with_csrf("/api/auth/change-password", &change(AMY_PASSWORD))
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], true, "{body}");

    let resp = picd.client().login("amy", AMY_PASSWORD).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    peer_client(&picd, "amy", AMY_NEW_PASSWORD).await;
    let (status, _) = peer.get_json("/api/peer/me").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the session that changed it stays signed in"
    );
}

async fn invite(admin: &TestClient, name: &str) -> Value {
    let path = format!("/api/peers/{name}/invite");
    let (status, body) = json_of(admin.send_json(Method::POST, &path, &json!({})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["token"].as_str().is_some_and(|t| t.len() >= 32),
        "{body}"
    );
    body
}

async fn accept(client: &TestClient, token: &str, password: &str) -> reqwest::Response {
    let body = json!({ "token": token, "password": password });
    client.post_json("/api/invite/accept", &body).await
}

#[tokio::test]
async fn an_invitation_creates_the_login_once_and_expires() {
    let (picd, admin) = picd_with_admin().await;
    create_peer(&admin, json!({ "name": "carol" })).await;
    create_peer(&admin, json!({ "name": "dave" })).await;
    let invitation = invite(&admin, "carol").await;
    let token = invitation["token"].as_str().unwrap();
    assert!(
        invitation["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(token)),
        "{invitation}"
    );

    // A weak password is refused without using the invitation up.
    let carol = picd.client();
    expect_error(
        accept(&carol, token, "short").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    let (status, body) = json_of(accept(&carol, token, CAROL_PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["user"]["username"].as_str(),
            body["user"]["role"].as_str()
        ),
        (Some("carol"), Some("peer"))
    );
    let (status, me) = carol.get_json("/api/peer/me").await;
    assert_eq!(
        (status, me["name"].as_str()),
        (StatusCode::OK, Some("carol")),
        "signed in: {me}"
    );
    let (_, stored) = admin.get_json("/api/peers/carol").await;
    assert_eq!(stored["has_portal_login"], true, "{stored}");
    peer_client(&picd, "carol", CAROL_PASSWORD).await;

    let again = accept(&picd.client(), token, "another long passphrase").await;
    expect_error(again, StatusCode::FORBIDDEN, "invalid_invitation").await;
    assert_eq!(
        last_audit(&picd.db()).result,
        "denied",
        "a refused invitation is audited"
    );
    let unknown = accept(&picd.client(), "bm90IGEgdG9rZW4gYXQgYWxs", CAROL_PASSWORD).await;
    expect_error(unknown, StatusCode::FORBIDDEN, "invalid_invitation").await;
    let resp = admin
        .send_json(Method::POST, "/api/peers/carol/invite", &json!({}))
        .await;
    expect_error(resp, StatusCode::CONFLICT, "has_login").await;

    let dave = invite(&admin, "dave").await;
    picd.db()
        .execute("UPDATE invitations SET expires_at = '2001-01-01T00:00:00.000000Z' WHERE peer_name = 'dave'", [])
        .expect("expiring the invitation");
    let expired = accept(
        &picd.client(),
        dave["token"].as_str().unwrap(),
        CAROL_PASSWORD,
    )
    .await;
    expect_error(expired, StatusCode::FORBIDDEN, "invalid_invitation").await;
    let (_, dave) = admin.get_json("/api/peers/dave").await;
    assert_eq!(dave["has_portal_login"], false, "{dave}");

    // Deleting the peer removes its login with it.
    let resp = admin
        .send_json(Method::DELETE, "/api/peers/carol", &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = picd.client().login("carol", CAROL_PASSWORD).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let (status, body) = carol.get_json("/api/peer/me").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the deleted peer's session ended: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_keys_cuts_the_old_key_off_at_once() {
    let mut lab = Lab::start(LabOptions::default()).await;
    let admin = lab.admin().await;
    let body = json!({ "name": "erin", "portal_password": AMY_PASSWORD });
    let before = create_peer(&admin, body).await;
    let old_config = config_text(&admin, "/api/peers/erin/config").await;
    let old = lab.connect(&old_config);
    assert!(
        lab.tunnel_works_within(&old, Duration::from_secs(15)),
        "erin's first tunnel"
    );

    let erin = lab.client();
    erin.login_ok("erin", AMY_PASSWORD).await;
    let resp = erin.post_json("/api/peer/rotate-keys", &json!({})).await;
    expect_error(resp, StatusCode::FORBIDDEN, "csrf_invalid").await;
    let resp = erin
        .send_json(Method::POST, "/api/peer/rotate-keys", &json!({}))
        .await;
    let (status, after) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_ne!(after["public_key"], before["public_key"], "{after}");
    assert_eq!(after["address_v4"], before["address_v4"], "{after}");

    let answered = lab.pings_answered(&old, 3);
    assert_eq!(
        answered, 0,
        "the old key still carries traffic after the rotation"
    );
    let new_key = after["public_key"].as_str().unwrap().to_string();
    assert_eq!(
        lab.interface_peers(),
        vec![new_key],
        "only the new key is on the interface"
    );
    let new_config = config_text(&erin, "/api/peer/config").await;
    assert_eq!(
        new_config,
        config_text(&admin, "/api/peers/erin/config").await
    );
    let (old_c, new_c) = (parse_wg_config(&old_config), parse_wg_config(&new_config));
    assert_ne!(old_c.private_key, new_c.private_key, "a new private key");
    assert_ne!(
        old_c.preshared_key, new_c.preshared_key,
        "a new preshared key"
    );
    let new = lab.connect(&new_config);
    assert!(
        lab.tunnel_works_within(&new, Duration::from_secs(15)),
        "the new config's tunnel"
    );
    assert_eq!(lab.pings_answered(&old, 2), 0, "the old key stays cut off");
}
