//! The DNS routes that hold or count secrets (`/api/dns/tsig-keys`, a secondary's key,
//! `/api/dns/stats`) refuse the wrong actor (a read-only API key included, for every write),
//! a missing CSRF token and bad bodies with the API's JSON error shape, never a 500, and store
//! nothing.

mod common;

use common::keys::{create_key_with, KeyClient};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const UNAUTHORIZED: (u16, &str) = (401, "unauthorized");
const ADMIN_ONLY: (u16, &str) = (403, "admin_only");
const CSRF_INVALID: (u16, &str) = (403, "csrf_invalid");
const MALFORMED: (u16, &str) = (400, "malformed_json");
const INVALID_BODY: (u16, &str) = (422, "invalid_body");
const INVALID_FIELDS: (u16, &str) = (400, "validation_failed");
const TOO_LARGE: (u16, &str) = (413, "payload_too_large");
const INSUFFICIENT_SCOPE: (u16, &str) = (403, "insufficient_scope");

const KEYS: &str = "/api/dns/tsig-keys";
const KEY: &str = "/api/dns/tsig-keys/transfer.key";
const SECONDARY_KEY: &str = "/api/dns/secondaries/127.0.0.1/tsig-key";
const STATS: &str = "/api/dns/stats";

fn good_key() -> Body {
    Body::Json(json!({ "name": "transfer.key" }))
}

fn table() -> Vec<Refused> {
    use Who::*;
    let mut table = Vec::new();
    for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
        for path in [KEYS, STATS] {
            table.push(refused(who, Method::GET, path, Body::Empty, answer));
        }
    }
    for (who, answer) in [
        (Anonymous, UNAUTHORIZED),
        (Peer, ADMIN_ONLY),
        (AdminNoCsrf, CSRF_INVALID),
    ] {
        table.push(refused(who, Method::POST, KEYS, good_key(), answer));
        table.push(refused(who, Method::DELETE, KEY, Body::Empty, answer));
        let bind = Body::Json(json!({ "key": "transfer.key" }));
        table.push(refused(who, Method::PUT, SECONDARY_KEY, bind, answer));
    }
    let bad_bodies = [
        (raw(JSON, "{\"name\": "), MALFORMED),
        (Body::Json(json!({ "name": 5 })), INVALID_BODY),
        (Body::Json(json!(["transfer.key"])), INVALID_FIELDS),
        (Body::Json(json!({ "name": "Not A Name!" })), INVALID_FIELDS),
        (
            Body::Json(json!({ "name": "transfer.key", "algorithm": "hmac-md5" })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "name": "transfer.key", "secret": "not base64 !" })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "name": "transfer.key", "secret": "A".repeat(200_000) })),
            TOO_LARGE,
        ),
    ];
    for (body, answer) in bad_bodies {
        table.push(refused(Admin, Method::POST, KEYS, body, answer));
    }
    table.push(refused(
        Admin,
        Method::PUT,
        SECONDARY_KEY,
        raw(JSON, "{\"key\": tru"),
        MALFORMED,
    ));
    table.push(refused(
        Admin,
        Method::PUT,
        SECONDARY_KEY,
        Body::Json(json!({ "key": 7 })),
        INVALID_BODY,
    ));
    table
}

/// What a `read-only` API key may not do here: every write, whatever its body.
fn read_only_key_writes() -> Vec<(Method, &'static str, Option<serde_json::Value>)> {
    vec![
        (Method::POST, KEYS, Some(json!({ "name": "transfer.key" }))),
        (Method::POST, KEYS, Some(json!({ "name": 5 }))),
        (Method::DELETE, KEY, None),
        (
            Method::PUT,
            SECONDARY_KEY,
            Some(json!({ "key": "transfer.key" })),
        ),
    ]
}

/// A read-only key reads the key names and the counters (no secret is in either) and is
/// refused every write with 403 `insufficient_scope`, before its body is looked at.
async fn check_read_only_key(picd: &Picd, admin: &TestClient) {
    let (_, token) = create_key_with(admin, "dns-reader", &["read-only"]).await;
    let key = KeyClient::new(picd, &token);
    for path in [KEYS, STATS] {
        let (status, body) = key.get_json(path).await;
        assert_eq!(status, StatusCode::OK, "read-only key GET {path}: {body}");
    }
    let (status, stats) = key.get_json(STATS).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        stats["rrl"].is_object() && stats["limits"].is_object(),
        "{stats}"
    );
    for (method, path, body) in read_only_key_writes() {
        let what = format!("read-only key {method} {path} {body:?}");
        let (status, answer) = json_of(key.send(method, path, body.as_ref()).await).await;
        assert_eq!(
            (status.as_u16(), answer["code"].as_str().unwrap_or("")),
            INSUFFICIENT_SCOPE,
            "{what}: {answer}"
        );
        assert_error_shape(&answer, &what);
    }
}

#[tokio::test]
async fn tsig_key_and_stats_routes_refuse_with_json_errors_and_store_nothing() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    check_read_only_key(&picd, &admin).await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    clients.check_all(&table()).await;

    let stored: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM dns_tsig_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0, "a refused request stored a key");
    let vault: i64 = picd
        .db()
        .query_row(
            "SELECT COUNT(*) FROM secrets WHERE name LIKE 'dns/tsig/%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(vault, 0, "a refused request stored a secret");
    let (status, keys) = clients.admin.get_json(KEYS).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(keys["keys"], json!([]), "{keys}");
    assert_no_internal_errors(&picd);
}
