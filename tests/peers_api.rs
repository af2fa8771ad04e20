//! The peers API without a tunnel (picd runs with WireGuard off, in the machine's own
//! namespace, so nothing here touches the network): QR codes that decode to the served config,
//! bad input refused with the right status and never a 500, address allocation up to an
//! exhausted subnet, secrets that never leave the vault, and desired state recorded while
//! WireGuard is unavailable.

mod common;

use common::netns::{config_text, create_peer, decoded_qr, parse_wg_config};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A valid WireGuard public key a device could bring (32 bytes, base64).
const CLIENT_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
/// 31 bytes in base64: looks like a key, is not one.
const SHORT_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8A==";
/// A /29 holds the network, the cell, five peers and the broadcast address.
const SMALL_SUBNET: &str = "10.77.0.0/29";
const SMALL_SUBNET_PEERS: usize = 5;

#[tokio::test]
async fn the_qr_code_decodes_to_exactly_the_served_config() {
    let (picd, admin) = picd_with_admin().await;
    create_peer(&admin, json!({ "name": "alice", "tunnel": "split" })).await;
    let config = config_text(&admin, "/api/peers/alice/config").await;
    assert!(config.contains("PrivateKey = "), "{config}");
    let decoded = decoded_qr(&admin, "/api/peers/alice/qr", picd.root()).await;
    assert_eq!(decoded, config, "the QR code holds exactly the config");

    let resp = admin.get("/api/peers/alice/qr?format=svg").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(content_type, "image/svg+xml");
    let svg = resp.text().await.unwrap();
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    let resp = admin.get("/api/peers/alice/qr?format=gif").await;
    expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;

    // A device that brought its own key gets a config without one, and no QR code to scan.
    let peer = create_peer(&admin, json!({ "name": "own", "public_key": CLIENT_KEY })).await;
    assert_eq!(
        (peer["key_source"].as_str(), peer["public_key"].as_str()),
        (Some("client"), Some(CLIENT_KEY))
    );
    let config = parse_wg_config(&config_text(&admin, "/api/peers/own/config").await);
    assert_eq!(config.private_key, None, "{config:?}");
    expect_error(
        admin.get("/api/peers/own/qr").await,
        StatusCode::CONFLICT,
        "no_private_key",
    )
    .await;
}

/// Requests the admin sends that must be refused, after `bob` exists.
fn refused_requests(bob_key: &str) -> Vec<Refused> {
    use common::Body::{Empty, Json as J, Raw};
    use common::Who::Admin;
    let invalid = (400, "validation_failed");
    let post =
        |body: Value, expected| refused(Admin, Method::POST, "/api/peers", J(body), expected);
    let put = |body: Value| refused(Admin, Method::PUT, "/api/peers/bob", J(body), invalid);
    // A new peer "carol" with one bad field.
    let carol = |field: &str, value: Value| {
        let mut body = json!({ "name": "carol" });
        body[field] = value;
        post(body, invalid)
    };
    let missing = |method, path: &str, body| refused(Admin, method, path, body, (404, "not_found"));
    let invite = |body: Value, expected| {
        refused(
            Admin,
            Method::POST,
            "/api/peers/bob/invite",
            J(body),
            expected,
        )
    };
    let mut table = vec![
        post(json!({ "name": "bob" }), (409, "peer_exists")),
        post(
            json!({ "name": "robert", "public_key": bob_key }),
            (409, "peer_exists"),
        ),
        post(json!({}), invalid),
        post(json!([1, 2]), invalid),
        refused(
            Admin,
            Method::POST,
            "/api/peers",
            Raw(JSON, b"{\"name\":".to_vec()),
            (400, "malformed_json"),
        ),
        put(json!({ "enabled": "no" })),
        put(json!({ "public_key": "nope" })),
        put(json!({ "name": "robert" })),
        put(json!({ "persistent_keepalive": -1 })),
        missing(
            Method::PUT,
            "/api/peers/nobody",
            J(json!({ "enabled": false })),
        ),
        missing(Method::DELETE, "/api/peers/nobody", Empty),
        missing(Method::GET, "/api/peers/nobody", Empty),
        missing(Method::GET, "/api/peers/nobody/config", Empty),
        missing(Method::GET, "/api/peers/nobody/qr", Empty),
        missing(Method::POST, "/api/peers/nobody/invite", J(json!({}))),
        invite(json!({ "valid_hours": 0 }), invalid),
        invite(json!({ "valid_hours": "x" }), (422, "invalid_body")),
    ];
    let long = "a".repeat(64);
    for name in [
        json!("Bob"),
        json!(long),
        json!("-bob"),
        json!("bob-"),
        json!("b.ob"),
        json!(""),
        json!(5),
    ] {
        table.push(post(json!({ "name": name }), invalid));
    }
    let bad_fields = [
        ("public_key", json!("not a key")),
        ("public_key", json!(SHORT_KEY)),
        ("public_key", json!(42)),
        ("enabled", json!("yes")),
        ("persistent_keepalive", json!("often")),
        ("persistent_keepalive", json!(100000)),
        ("allowed_ips", json!("10.0.0.0/8")),
        ("allowed_ips", json!(["nowhere"])),
        ("tunnel", json!("half")),
        ("expires_at", json!("tomorrow")),
        ("expires_at", json!("2001-01-01T00:00:00Z")),
        ("portal_password", json!("short")),
        ("colour", json!("red")),
    ];
    table.extend(
        bad_fields
            .into_iter()
            .map(|(field, value)| carol(field, value)),
    );
    table
}

#[tokio::test]
async fn bad_input_is_refused_with_the_right_status_and_never_a_500() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    let bob = create_peer(&admin, json!({ "name": "bob" })).await;
    let before = admin.get_json("/api/peers/bob").await.1;
    let table = refused_requests(bob["public_key"].as_str().unwrap());
    let mutating = table.iter().filter(|r| r.method != Method::GET).count() as i64;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    let audited_before = audit_count(&picd.db());
    clients.check_all(&table).await;

    // Every refused change left exactly one audit entry, and nothing changed.
    assert_eq!(
        audit_count(&picd.db()) - audited_before,
        mutating,
        "one entry per refused change"
    );
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let (_, list) = admin.get_json("/api/peers").await;
    assert_eq!(list["peers"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(admin.get_json("/api/peers/bob").await.1, before);
    assert_no_internal_errors(&picd);
}

/// A picd whose cell was set up with `subnet_v4`, and its admin.
async fn picd_with_subnet(subnet_v4: &str) -> (tempfile::TempDir, Picd, TestClient) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let answers = dir.path().join("answers.toml");
    let toml = answers_toml().replace(&format!("\"{SUBNET_V4}\""), &format!("\"{subnet_v4}\""));
    std::fs::write(&answers, toml).expect("answers");
    let state = dir.path().join("state");
    let (answers, state_arg) = (answers.to_string_lossy(), state.to_string_lossy());
    let out = picd_cli(
        &["setup", "--answers", &answers, "--state-dir", &state_arg],
        None,
    );
    assert!(out.status.success(), "setup: {}", stderr_of(&out));
    let options = PicdOptions {
        state_dir: Some(state),
        ..PicdOptions::default()
    };
    let picd = Picd::start_with(options).await;
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    (dir, picd, admin)
}

#[tokio::test]
async fn an_exhausted_subnet_is_a_conflict_and_a_deleted_peer_frees_its_address() {
    let (_dir, picd, admin) = picd_with_subnet(SMALL_SUBNET).await;
    let mut peers = Vec::new();
    for i in 0..SMALL_SUBNET_PEERS {
        peers.push(create_peer(&admin, json!({ "name": format!("p{i}") })).await);
    }
    let v4: Vec<&str> = peers
        .iter()
        .map(|p| p["address_v4"].as_str().unwrap())
        .collect();
    assert_eq!(
        v4,
        [
            "10.77.0.2",
            "10.77.0.3",
            "10.77.0.4",
            "10.77.0.5",
            "10.77.0.6"
        ]
    );
    let mut v6: Vec<&str> = peers
        .iter()
        .map(|p| p["address_v6"].as_str().unwrap())
        .collect();
    v6.dedup();
    assert_eq!(
        v6.len(),
        SMALL_SUBNET_PEERS,
        "distinct IPv6 addresses: {v6:?}"
    );

    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "late" }))
        .await;
    let body = expect_error(resp, StatusCode::CONFLICT, "subnet_exhausted").await;
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains(SMALL_SUBNET) && message.contains("no free address"),
        "{message}"
    );
    assert_eq!(
        last_audit(&picd.db()).result,
        "failure",
        "the refusal is audited"
    );

    let resp = admin
        .send_json(Method::DELETE, "/api/peers/p2", &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let late = create_peer(&admin, json!({ "name": "late" })).await;
    assert_eq!(
        late["address_v4"], peers[2]["address_v4"],
        "the freed address is reused"
    );
    assert_eq!(
        late["address_v6"], peers[2]["address_v6"],
        "the freed address is reused"
    );
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "later" }))
        .await;
    expect_error(resp, StatusCode::CONFLICT, "subnet_exhausted").await;
    assert_no_internal_errors(&picd);
}

/// The private and preshared keys in a served config.
fn secrets_of(config: &str) -> Vec<String> {
    let c = parse_wg_config(config);
    c.private_key.into_iter().chain(c.preshared_key).collect()
}

#[tokio::test]
async fn private_and_preshared_keys_never_appear_in_listings_or_the_audit_log() {
    let (picd, admin) = picd_with_admin().await;
    create_peer(&admin, json!({ "name": "gina" })).await;
    create_peer(&admin, json!({ "name": "hank", "preshared_key": false })).await;
    let mut secrets = secrets_of(&config_text(&admin, "/api/peers/gina/config").await);
    secrets.extend(secrets_of(
        &config_text(&admin, "/api/peers/hank/config").await,
    ));
    assert_eq!(
        secrets.len(),
        3,
        "gina's private and preshared key, hank's private key"
    );
    // A new preshared key for hank: the change is audited, its value is not.
    let resp = admin
        .send_json(
            Method::PUT,
            "/api/peers/hank",
            &json!({ "preshared_key": true }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let hank = parse_wg_config(&config_text(&admin, "/api/peers/hank/config").await);
    secrets.extend(hank.preshared_key.clone());
    assert_eq!(secrets.len(), 4, "hank now has a preshared key: {hank:?}");

    let mut seen = String::new();
    for path in [
        "/api/peers",
        "/api/peers/gina",
        "/api/peers/hank",
        "/api/wireguard/status",
        "/api/audit?limit=1000",
    ] {
        let resp = admin.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        seen += &resp.text().await.unwrap();
    }
    let export = admin.get("/api/audit/export").await;
    assert_eq!(export.status(), StatusCode::OK);
    let csv = export.text().await.unwrap();
    assert!(
        csv.contains("peers.create") && csv.contains("gina"),
        "the export holds the peers' entries"
    );
    let stored: String = picd
        .db()
        .query_row("SELECT group_concat(detail, ' ') FROM audit_log", [], |r| {
            r.get(0)
        })
        .unwrap();
    for secret in &secrets {
        assert!(
            !seen.contains(secret.as_str()),
            "a key appears in an API response"
        );
        assert!(
            !csv.contains(secret.as_str()),
            "a key appears in the audit export"
        );
        assert!(
            !stored.contains(secret.as_str()),
            "a key appears in the stored audit log"
        );
        assert!(
            !picd.log().contains(secret.as_str()),
            "a key appears in picd's log"
        );
    }
}

#[tokio::test]
async fn without_wireguard_the_api_still_records_desired_state() {
    let (_picd, admin) = picd_with_admin().await;
    let (status, body) = admin.get_json("/api/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let wg = body["subsystems"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "wireguard"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(wg["state"], "unavailable", "{body}");
    assert!(
        wg["reason"]
            .as_str()
            .is_some_and(|r| r.contains("wireguard_mode = off")),
        "{wg}"
    );

    let peer = create_peer(&admin, json!({ "name": "ida" })).await;
    assert_eq!(peer["address_v4"], "10.77.0.2", "{peer}");
    let (_, stored) = admin.get_json("/api/peers/ida").await;
    assert_eq!(stored["public_key"], peer["public_key"], "{stored}");
    assert_eq!(
        stored["wireguard"],
        Value::Null,
        "no live data without an interface"
    );
    let disabled = admin
        .send_json(Method::PUT, "/api/peers/ida", &json!({ "enabled": false }))
        .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    let config = parse_wg_config(&config_text(&admin, "/api/peers/ida/config").await);
    assert_eq!(
        config.endpoint,
        format!("{PUBLIC_ENDPOINT}:{WIREGUARD_PORT}")
    );

    let (status, wg) = admin.get_json("/api/wireguard/status").await;
    assert_eq!(status, StatusCode::OK, "{wg}");
    assert_eq!(
        (wg["mode"].as_str(), wg["state"].as_str()),
        (Some("unavailable"), Some("unavailable")),
        "{wg}"
    );
    assert!(wg["reason"].as_str().is_some_and(|r| !r.is_empty()), "{wg}");
    assert_eq!(wg["peers"], json!([]), "{wg}");
    assert!(
        wg["public_key"].is_string(),
        "the cell's key exists for the configs: {wg}"
    );
}
