//! API keys against the real binary: the token shown once and stored as a hash, both headers
//! accepted without CSRF, uses attributed in the audit log, rotation and revocation effective
//! at once, expiry, scopes (admin, read-only, dns), routes no key may use, the per-key rate
//! limit with its headers, and refused bad input.

mod common;

use std::time::Duration;

use common::keys::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TOKEN_PREFIX: &str = "picd_";
/// Characters of a token kept to recognise it in listings (src/auth/api_keys.rs).
const SHOWN_PREFIX_LEN: usize = 13;
const DEFAULT_RATE_LIMIT: u64 = 60;
/// The rate limiter's window, in seconds.
const WINDOW_SECS: u64 = 60;
const INVALID: (u16, &str) = (400, "validation_failed");
const WRONG_SHAPE: (u16, &str) = (422, "invalid_body");
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;

#[tokio::test]
async fn token_is_shown_once_and_works_in_both_headers_without_csrf() {
    let (picd, admin) = picd_with_admin().await;
    let expires_at = rfc3339_in(86_400);
    let body = json!({
        "name": "backup", "scopes": ["admin"], "rate_limit_per_minute": 120,
        "expires_at": expires_at,
    });
    let created = create_key(&admin, &body).await;
    let token = created["token"].as_str().expect("token").to_string();
    let id = created["id"].as_str().expect("id").to_string();
    assert!(
        token.starts_with(TOKEN_PREFIX) && token.len() > 40,
        "{token}"
    );
    assert_eq!(created["prefix"], token[..SHOWN_PREFIX_LEN]);
    assert_eq!(created["scopes"], json!(["admin"]));
    assert_eq!(created["rate_limit_per_minute"], 120);
    let stored_expiry = created["expires_at"].as_str().expect("expires_at");
    assert_eq!(parse_rfc3339(stored_expiry), parse_rfc3339(&expires_at));
    assert!(created.get("token_hash").is_none(), "{created}");

    // The listing has what identifies the key, never the token or its hash.
    let hash = sha256_hex(&token);
    let (text, entry) = listed_key(&admin, &id).await;
    let fields = [
        "prefix",
        "name",
        "scopes",
        "created_at",
        "last_used_at",
        "expires_at",
    ];
    for field in fields {
        assert!(entry.get(field).is_some(), "no {field}: {entry}");
    }
    assert_eq!(entry["name"], "backup");
    assert_eq!(entry["prefix"], created["prefix"]);
    assert_eq!(entry["last_used_at"], Value::Null);
    assert!(entry.get("token").is_none(), "{entry}");
    assert!(entry.get("token_hash").is_none(), "{entry}");
    assert!(!text.contains(&token) && !text.contains(&hash), "{text}");
    // Stored as its hash only.
    let sql = "SELECT token_hash FROM api_keys WHERE id = ?1";
    let stored: String = picd.db().query_row(sql, [&id], |r| r.get(0)).unwrap();
    assert_eq!(stored, hash);

    // Both headers work; the key is no session and needs no CSRF token to write; the audit
    // entry names it.
    for header in [KeyHeader::Bearer, KeyHeader::XApiKey] {
        let key = KeyClient::with_header(&picd, &token, header);
        let (status, me) = key.get_json("/api/auth/me").await;
        assert_eq!(status, StatusCode::OK, "{header:?}: {me}");
        assert_eq!(me["api_key"]["id"], id.as_str(), "{me}");
        assert!(!me.to_string().contains(&token), "{me}");
        let (status, config) = key.get_json("/api/config").await;
        assert_eq!(status, StatusCode::OK, "{header:?}: {config}");
        let resp = key.send(Method::PUT, "/api/config", Some(&config)).await;
        expect_status(resp, StatusCode::OK).await;
        let audit = last_audit(&picd.db());
        assert_eq!(audit.actor, "key:backup", "{audit:?}");
        assert_eq!(audit.result, "success", "{audit:?}");
    }
    // The same write from a session without its CSRF token is refused: the check is real.
    let (_, config) = admin.get_json("/api/config").await;
    let resp = admin.http.put(admin.url("/api/config")).json(&config);
    expect_error(resp.send().await.unwrap(), FORBIDDEN, "csrf_invalid").await;
    // A key header wins over a session cookie: a wrong key is refused, not the session used.
    let resp = admin
        .http
        .get(admin.url("/api/config"))
        .header("x-api-key", "picd_wrong");
    expect_error(resp.send().await.unwrap(), UNAUTHORIZED, "unauthorized").await;

    let (_, entry) = listed_key(&admin, &id).await;
    assert!(
        entry["last_used_at"].is_string(),
        "last use not recorded: {entry}"
    );
    // The token is in no file, log or export.
    assert_absent_from_state(&picd, token.as_bytes(), "the token");
    let export = admin.get("/api/audit/export").await.text().await.unwrap();
    assert!(!export.contains(&token), "the token is in the audit export");
    assert!(
        stored_in_state(&picd, hash.as_bytes()),
        "control: the hash is stored"
    );
}

#[tokio::test]
async fn rotation_and_revocation_take_effect_at_once() {
    let (picd, admin) = picd_with_admin().await;
    let (id, old_token) = create_key_with(&admin, "ddns", &["admin"]).await;
    let old = KeyClient::new(&picd, &old_token);
    expect_status(old.get("/api/config").await, StatusCode::OK).await;

    let rotate = format!("/api/keys/{id}/rotate");
    let resp = admin.send_json(Method::POST, &rotate, &json!(null)).await;
    let (status, rotated) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_token = rotated["token"].as_str().expect("new token").to_string();
    assert!(new_token.starts_with(TOKEN_PREFIX), "{new_token}");
    assert_ne!(new_token, old_token);
    assert_eq!(rotated["id"], id.as_str());
    assert_eq!(rotated["prefix"], new_token[..SHOWN_PREFIX_LEN]);
    assert!(rotated["rotated_at"].is_string(), "{rotated}");
    expect_error(old.get("/api/config").await, UNAUTHORIZED, "unauthorized").await;
    let new = KeyClient::with_header(&picd, &new_token, KeyHeader::XApiKey);
    expect_status(new.get("/api/config").await, StatusCode::OK).await;
    let (text, _) = listed_key(&admin, &id).await;
    assert!(!text.contains(&new_token), "{text}");

    let key_path = format!("/api/keys/{id}");
    let resp = admin
        .send_json(Method::DELETE, &key_path, &json!(null))
        .await;
    expect_status(resp, StatusCode::OK).await;
    expect_error(new.get("/api/config").await, UNAUTHORIZED, "unauthorized").await;
    let (_, list) = admin.get_json("/api/keys").await;
    assert_eq!(list["keys"], json!([]), "{list}");
    let resp = admin
        .send_json(Method::DELETE, &key_path, &json!(null))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = admin.send_json(Method::POST, &rotate, &json!(null)).await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    // A token of the right shape that was never issued.
    let never = KeyClient::new(&picd, &format!("{TOKEN_PREFIX}{}", "A".repeat(43)));
    expect_error(never.get("/api/config").await, UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn expired_key_is_refused() {
    let (picd, admin) = picd_with_admin().await;
    let expires_at = rfc3339_in(3);
    let body = json!({ "name": "short", "scopes": ["read-only"], "expires_at": expires_at });
    let created = create_key(&admin, &body).await;
    let key = KeyClient::new(&picd, created["token"].as_str().unwrap());
    expect_status(key.get("/api/config").await, StatusCode::OK).await;
    // A bounded wait: until a second past the expiry (at most 4 s).
    let left = parse_rfc3339(&expires_at) - time::OffsetDateTime::now_utc();
    let left = Duration::from_millis(left.whole_milliseconds().clamp(0, 3_000) as u64);
    tokio::time::sleep(left + Duration::from_secs(1)).await;
    expect_error(key.get("/api/config").await, UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn scopes_decide_what_a_key_may_do() {
    let (picd, admin) = picd_with_admin().await;
    let (_, dns_token) = create_key_with(&admin, "acme", &["dns"]).await;
    let (_, reader_token) = create_key_with(&admin, "reader", &["read-only"]).await;
    let (_, admin_token) = create_key_with(&admin, "ops", &["admin"]).await;
    let dns = KeyClient::new(&picd, &dns_token);
    let reader = KeyClient::with_header(&picd, &reader_token, KeyHeader::XApiKey);
    let ops = KeyClient::new(&picd, &admin_token);

    // dns: only /api/dns/*, and the refusal is audited under the key's name.
    expect_error(dns.get("/api/peers").await, FORBIDDEN, "insufficient_scope").await;
    let audit = last_audit(&picd.db());
    assert_eq!(
        (audit.actor.as_str(), audit.result.as_str()),
        ("key:acme", "denied")
    );
    for path in [
        "/api/config",
        "/api/vault/ca.crt",
        "/api/keys",
        "/api/auth/me",
    ] {
        expect_error(dns.get(path).await, FORBIDDEN, "insufficient_scope").await;
    }
    // There may be no /api/dns route yet (404 then); the key must get past the guard.
    let record = json!({ "name": "_acme-challenge", "type": "TXT", "value": "x" });
    for resp in [
        dns.get("/api/dns/zones").await,
        dns.send(Method::POST, "/api/dns/records", Some(&record))
            .await,
    ] {
        let status = resp.status();
        assert!(status != UNAUTHORIZED && status != FORBIDDEN, "{status}");
    }

    // read-only: reads, never writes (not even a new key for itself).
    for path in [
        "/api/config",
        "/api/peers",
        "/api/vault/certs",
        "/api/audit",
    ] {
        expect_status(reader.get(path).await, StatusCode::OK).await;
    }
    let (_, config) = reader.get_json("/api/config").await;
    let resp = reader.send(Method::PUT, "/api/config", Some(&config)).await;
    expect_error(resp, FORBIDDEN, "insufficient_scope").await;
    assert_eq!(last_audit(&picd.db()).actor, "key:reader");
    let body = json!({ "name": "escalate", "scopes": ["admin"] });
    let resp = reader.send(Method::POST, "/api/keys", Some(&body)).await;
    expect_error(resp, FORBIDDEN, "insufficient_scope").await;

    // No key reaches the session endpoints (but GET /api/auth/me) or the peers' portal.
    let login = json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD });
    let change = json!({ "current_password": ADMIN_PASSWORD, "new_password": "a new password!" });
    let reset = json!({ "username": ADMIN_USER, "password": "another new password" });
    for (method, path, body) in [
        (Method::POST, "/api/auth/logout", None),
        (Method::GET, "/api/auth/csrf-token", None),
        (Method::GET, "/api/auth/users", None),
        (Method::POST, "/api/auth/change-password", Some(&change)),
        (Method::POST, "/api/auth/admin/reset-password", Some(&reset)),
        (Method::POST, "/api/auth/login", Some(&login)),
        (Method::GET, "/api/peer/me", None),
        (Method::GET, "/api/peer/config", None),
    ] {
        let resp = ops.send(method, path, body).await;
        expect_error(resp, FORBIDDEN, "api_key_not_allowed").await;
    }
    for key in [&reader, &ops] {
        expect_status(key.get("/api/auth/me").await, StatusCode::OK).await;
    }
    // The password is the one the refused changes above did not change.
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_headers_and_recovers() {
    let (picd, admin) = picd_with_admin().await;
    let (_, config) = admin.get_json("/api/config").await;
    let body = json!({ "name": "tight", "scopes": ["admin"], "rate_limit_per_minute": 3 });
    let key = KeyClient::new(
        &picd,
        create_key(&admin, &body).await["token"].as_str().unwrap(),
    );
    let (_, other) = create_key_with(&admin, "other", &["read-only"]).await;
    let other = KeyClient::new(&picd, &other);

    for remaining in [2, 1, 0] {
        let resp = key.get("/api/config").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header_u64(&resp, "x-ratelimit-limit"), 3);
        assert_eq!(header_u64(&resp, "x-ratelimit-remaining"), remaining);
        let reset = header_u64(&resp, "x-ratelimit-reset");
        assert!((1..=WINDOW_SECS).contains(&reset), "reset {reset}");
    }
    // Over the limit, a write is refused before it happens, and the refusal is audited.
    let resp = key.send(Method::PUT, "/api/config", Some(&config)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = header_u64(&resp, "retry-after");
    assert!(
        (1..=WINDOW_SECS).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(header_u64(&resp, "x-ratelimit-limit"), 3);
    assert_eq!(header_u64(&resp, "x-ratelimit-remaining"), 0);
    assert!(header_u64(&resp, "x-ratelimit-reset") >= 1);
    let body = expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(body["retry_after"], retry_after, "{body}");
    let audit = last_audit(&picd.db());
    assert_eq!(
        (audit.actor.as_str(), audit.result.as_str()),
        ("key:tight", "denied")
    );
    let resp = key.get("/api/config").await;
    expect_status(resp, StatusCode::TOO_MANY_REQUESTS).await;

    // The limit is per key: another key and the admin's session are not affected.
    let resp = other.get("/api/config").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header_u64(&resp, "x-ratelimit-limit"), DEFAULT_RATE_LIMIT);
    let resp = admin.get("/api/config").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get("x-ratelimit-limit").is_none());

    // After Retry-After (the suite's one long wait, at most a minute) it answers again.
    tokio::time::sleep(Duration::from_secs(retry_after) + Duration::from_millis(500)).await;
    let resp = key.get("/api/config").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header_u64(&resp, "x-ratelimit-remaining"), 2);
}

/// A valid create body with `changes` applied.
fn key_body(changes: Value) -> Value {
    let mut body = json!({ "name": "k", "scopes": ["admin"] });
    let fields = body.as_object_mut().unwrap();
    fields.extend(changes.as_object().expect("an object").clone());
    body
}

#[tokio::test]
async fn bad_key_requests_are_refused() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    let sql = "SELECT COUNT(*) FROM api_keys";
    let count = || -> i64 { picd.db().query_row(sql, [], |r| r.get(0)).unwrap() };
    // The clients' own read-only key.
    let keys_before = count();
    let keys = "/api/keys";
    let create = |changes: Value, expect| {
        refused(
            Who::Admin,
            Method::POST,
            keys,
            Body::Json(key_body(changes)),
            expect,
        )
    };
    let past = "2020-01-01T00:00:00Z";
    const ADMIN_ONLY: (u16, &str) = (403, "admin_only");
    let as_peer = |method, path: &str| refused(Who::Peer, method, path, Body::Empty, ADMIN_ONLY);
    let valid = || Body::Json(key_body(json!({})));
    clients
        .check_all(&[
            create(json!({ "scopes": [] }), INVALID),
            create(json!({ "scopes": ["superuser"] }), INVALID),
            create(json!({ "scopes": ["admin", "root"] }), INVALID),
            create(json!({ "name": "" }), INVALID),
            create(json!({ "name": "x".repeat(65) }), INVALID),
            create(json!({ "rate_limit_per_minute": 0 }), INVALID),
            create(json!({ "rate_limit_per_minute": 100_001 }), INVALID),
            create(json!({ "expires_at": past }), INVALID),
            create(json!({ "expires_at": "tomorrow" }), INVALID),
            create(json!({ "scopes": "admin" }), WRONG_SHAPE),
            create(json!({ "rate_limit_per_minute": "fast" }), WRONG_SHAPE),
            create(json!({ "rate_limit_per_minute": -1 }), WRONG_SHAPE),
            create(json!({ "expires_at": 1_900_000_000 }), WRONG_SHAPE),
            create(json!({ "token": "picd_mine" }), WRONG_SHAPE),
            create(json!({ "name": null }), WRONG_SHAPE),
            refused(
                Who::Admin,
                Method::POST,
                keys,
                raw(JSON, "{\"name\":"),
                (400, "malformed_json"),
            ),
            refused(
                Who::AdminNoCsrf,
                Method::POST,
                keys,
                valid(),
                (403, "csrf_invalid"),
            ),
            refused(
                Who::Anonymous,
                Method::GET,
                keys,
                Body::Empty,
                (401, "unauthorized"),
            ),
            refused(Who::Peer, Method::POST, keys, valid(), ADMIN_ONLY),
            as_peer(Method::GET, keys),
            as_peer(Method::POST, "/api/keys/x/rotate"),
            as_peer(Method::DELETE, "/api/keys/x"),
        ])
        .await;
    // Each wrong field is named, and only those.
    let changes =
        json!({ "scopes": ["dns", "nope"], "rate_limit_per_minute": 0, "expires_at": past });
    let resp = clients
        .admin
        .send_json(Method::POST, keys, &key_body(changes))
        .await;
    let body = expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    let mut named: Vec<&String> = body["fields"].as_object().expect("fields").keys().collect();
    named.sort();
    assert_eq!(
        named,
        ["expires_at", "rate_limit_per_minute", "scopes[1]"],
        "{body}"
    );
    assert_eq!(count(), keys_before, "a refused request created a key");
    assert_no_internal_errors(&picd);
}
