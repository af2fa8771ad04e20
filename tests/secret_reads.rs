//! Routes that return secrets (a peer's config and QR code carry its PrivateKey and
//! PresharedKey; its service credentials): a `read-only` or `dns` API key is refused them
//! (403 `secret_requires_admin` / `insufficient_scope`) while still reading everything else;
//! an admin key, an admin session and the peer itself on its portal get them, and every such
//! read leaves one audit entry naming who read whose secret, never the secret itself.

mod common;

use common::keys::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PEER: &str = "laptop";
const PEER_PORTAL_PASSWORD: &str = "laptop has a long password";
const SECRET_REFUSED: &str = "secret_requires_admin";

/// The base64 keys of a wg-quick config (PrivateKey, PresharedKey).
fn config_secrets(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| matches!(k.trim(), "PrivateKey" | "PresharedKey"))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// Audit entries of `action`, oldest first: (actor, target_id, result, detail).
fn entries(picd: &Picd, action: &str) -> Vec<(String, String, String, Value)> {
    let conn = picd.db();
    let mut stmt = conn
        .prepare(
            "SELECT actor, target_id, result, detail FROM audit_log WHERE action = ?1 ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([action], |r| {
        let detail: String = r.get(3)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            serde_json::from_str(&detail).unwrap_or(Value::Null),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[tokio::test]
async fn secrets_need_the_admin_scope_and_every_read_is_audited() {
    let (picd, admin) = picd_with_admin().await;
    let body = json!({ "name": PEER, "portal_password": PEER_PORTAL_PASSWORD });
    let resp = admin.send_json(Method::POST, "/api/peers", &body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, reader) = create_key_with(&admin, "reader", &["read-only"]).await;
    let (_, dns) = create_key_with(&admin, "acme", &["dns"]).await;
    let (_, ops) = create_key_with(&admin, "ops", &["admin"]).await;
    let (reader, dns, ops) = (
        KeyClient::new(&picd, &reader),
        KeyClient::new(&picd, &dns),
        KeyClient::new(&picd, &ops),
    );
    let secret_paths = [
        ("config", format!("/api/peers/{PEER}/config")),
        ("qr", format!("/api/peers/{PEER}/qr")),
        ("qr", format!("/api/peers/{PEER}/qr?format=svg")),
        (
            "service_credentials",
            format!("/api/peers/{PEER}/service-credentials"),
        ),
    ];

    // read-only: the cell's state yes, its secrets no, with a code that says why.
    for path in ["/api/peers", &format!("/api/peers/{PEER}"), "/api/config"] {
        expect_status(reader.get(path).await, StatusCode::OK).await;
    }
    for (_, path) in &secret_paths {
        let body = expect_error(
            reader.get(path).await,
            StatusCode::FORBIDDEN,
            SECRET_REFUSED,
        )
        .await;
        assert!(
            body["error"].as_str().unwrap().contains("admin scope"),
            "{body}"
        );
        let refusal = last_audit(&picd.db());
        assert_eq!(
            (refusal.actor.as_str(), refusal.result.as_str()),
            ("key:reader", "denied"),
            "{path}"
        );
        expect_error(
            dns.get(path).await,
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        )
        .await;
    }

    // An admin key and an admin session read them; each read is one entry.
    let config = ops.get(&secret_paths[0].1).await.text().await.unwrap();
    let secrets = config_secrets(&config);
    assert_eq!(
        secrets.len(),
        2,
        "PrivateKey and PresharedKey expected: {config}"
    );
    for (_, path) in &secret_paths[1..] {
        expect_status(ops.get(path).await, StatusCode::OK).await;
    }
    let session_config = admin.get(&secret_paths[0].1).await.text().await.unwrap();
    assert_eq!(config_secrets(&session_config), secrets);

    // (The refusals above are entries of the same action, with result "denied".)
    let reads: Vec<_> = entries(&picd, "peers.config.read")
        .into_iter()
        .filter(|(_, _, result, _)| result == "success")
        .collect();
    let actors: Vec<&str> = reads.iter().map(|(a, ..)| a.as_str()).collect();
    assert_eq!(actors, ["key:ops", ADMIN_USER], "{reads:?}");
    for (_, target, result, detail) in &reads {
        assert_eq!((target.as_str(), result.as_str()), (PEER, "success"));
        assert_eq!(
            detail["secret_read"], "/api/peers/{name}/config",
            "{detail}"
        );
    }
    let successes = |action: &str| {
        entries(&picd, action)
            .iter()
            .filter(|(_, _, result, _)| result == "success")
            .count()
    };
    assert_eq!(successes("peers.qr.read"), 2);
    assert_eq!(successes("peers.service_credentials.read"), 1);

    // The peer's own copy stays the peer's, and is audited too, under its name.
    let peer = picd.client();
    peer.login_ok(PEER, PEER_PORTAL_PASSWORD).await;
    let own = peer.get("/api/peer/config").await.text().await.unwrap();
    assert_eq!(config_secrets(&own), secrets);
    expect_status(peer.get("/api/peer/qr").await, StatusCode::OK).await;
    let own_reads = entries(&picd, "peer.config.read");
    assert_eq!(own_reads.len(), 1, "{own_reads:?}");
    assert_eq!(
        (own_reads[0].0.as_str(), own_reads[0].1.as_str()),
        (PEER, PEER)
    );
    assert_eq!(entries(&picd, "peer.qr.read")[0].1, PEER);

    // Reads that fail hand out nothing and are not recorded as reads.
    let before = audit_count(&picd.db());
    expect_error(
        ops.get("/api/peers/nobody/config").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let resp = ops.get(&format!("/api/peers/{PEER}/qr?format=gif")).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(audit_count(&picd.db()), before);

    // The audit log never holds the secrets it records reads of.
    let export = admin.get("/api/audit/export").await.text().await.unwrap();
    for secret in &secrets {
        assert!(
            !export.contains(secret.as_str()),
            "a key is in the audit log"
        );
    }
    assert_no_internal_errors(&picd);
}
