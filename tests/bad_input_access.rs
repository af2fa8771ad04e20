//! Requests refused before any body matters: missing auth, a peer on admin routes, a missing
//! CSRF token, bad query parameters, unknown paths and wrong methods. Each is answered with a
//! 4xx and the API's JSON error shape, never a 500, and nothing stored changes.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "a perfectly good new password";

const UNAUTHORIZED: (u16, &str) = (401, "unauthorized");
const ADMIN_ONLY: (u16, &str) = (403, "admin_only");
const CSRF_INVALID: (u16, &str) = (403, "csrf_invalid");
const BAD_QUERY: (u16, &str) = (400, "invalid_query");
const INVALID_FIELDS: (u16, &str) = (400, "validation_failed");
const NOT_FOUND: (u16, &str) = (404, "not_found");
const WRONG_METHOD: (u16, &str) = (405, "method_not_allowed");

/// Every GET route that needs a session.
const SIGNED_IN_GETS: [&str; 9] = [
    "/api/auth/me",
    "/api/auth/csrf-token",
    "/api/auth/users",
    "/api/status",
    "/api/config",
    "/api/health/history",
    "/api/audit",
    "/api/audit/export",
    "/api/audit/verify",
];

fn who_may_not(config: &Value) -> Vec<Refused> {
    use Who::*;
    let mut table = Vec::new();
    for path in SIGNED_IN_GETS {
        table.push(refused(
            Anonymous,
            Method::GET,
            path,
            Body::Empty,
            UNAUTHORIZED,
        ));
    }
    for path in [
        "/api/auth/logout",
        "/api/auth/change-password",
        "/api/auth/admin/reset-password",
    ] {
        let body = Body::Json(json!({}));
        table.push(refused(Anonymous, Method::POST, path, body, UNAUTHORIZED));
    }
    let put_config = || Body::Json(config.clone());
    table.push(refused(
        Anonymous,
        Method::PUT,
        "/api/config",
        put_config(),
        UNAUTHORIZED,
    ));
    for path in [
        "/api/config",
        "/api/status",
        "/api/audit",
        "/api/auth/users",
    ] {
        table.push(refused(Peer, Method::GET, path, Body::Empty, ADMIN_ONLY));
    }
    table.push(refused(
        Peer,
        Method::PUT,
        "/api/config",
        put_config(),
        ADMIN_ONLY,
    ));
    // A read-only key reads the settings but never changes them.
    table.push(refused(
        ReadOnlyKey,
        Method::PUT,
        "/api/config",
        put_config(),
        (403, "insufficient_scope"),
    ));
    let reset = Body::Json(json!({ "username": ADMIN_USER, "new_password": NEW_PASSWORD }));
    let reset_path = "/api/auth/admin/reset-password";
    table.push(refused(Peer, Method::POST, reset_path, reset, ADMIN_ONLY));
    table.push(refused(
        AdminNoCsrf,
        Method::PUT,
        "/api/config",
        put_config(),
        CSRF_INVALID,
    ));
    table.push(refused(
        AdminNoCsrf,
        Method::DELETE,
        "/api/config",
        Body::Empty,
        CSRF_INVALID,
    ));
    // /api/auth/* takes the token like every other route (login aside).
    for path in [
        "/api/auth/logout",
        "/api/auth/change-password",
        "/api/auth/admin/reset-password",
    ] {
        let body = Body::Json(json!({}));
        table.push(refused(AdminNoCsrf, Method::POST, path, body, CSRF_INVALID));
    }
    let peers = Body::Json(json!({ "name": "bob" }));
    table.push(refused(
        AdminNoCsrf,
        Method::POST,
        "/api/peers",
        peers,
        CSRF_INVALID,
    ));
    table
}

fn bad_queries() -> Vec<Refused> {
    [
        ("/api/audit?limit=abc", BAD_QUERY),
        ("/api/audit?limit=0", INVALID_FIELDS),
        ("/api/audit?limit=-1", BAD_QUERY),
        ("/api/audit?offset=-5", BAD_QUERY),
        ("/api/audit?since=not-a-time", INVALID_FIELDS),
        ("/api/audit?result=maybe", INVALID_FIELDS),
        ("/api/audit?unknown=1", BAD_QUERY),
        ("/api/audit/export?format=pdf", INVALID_FIELDS),
        ("/api/audit/export?until=never", INVALID_FIELDS),
        ("/api/health/history?limit=0", INVALID_FIELDS),
        ("/api/health/history?limit=99999999999", BAD_QUERY),
        ("/api/health/history?verbose=1", BAD_QUERY),
    ]
    .into_iter()
    .map(|(path, answer)| refused(Who::Admin, Method::GET, path, Body::Empty, answer))
    .collect()
}

fn nowhere() -> Vec<Refused> {
    let mut table: Vec<Refused> = [
        "/api/nope",
        "/api/audit/nope",
        "/api/config/extra",
        "/api/setup/nope",
        "/nope",
        "/assets/nope.js",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
    ]
    .into_iter()
    .map(|path| refused(Who::Admin, Method::GET, path, Body::Empty, NOT_FOUND))
    .collect();
    let empty = || Body::Json(json!({}));
    table.push(refused(
        Who::Admin,
        Method::POST,
        "/api/nope",
        empty(),
        NOT_FOUND,
    ));
    table.push(refused(
        Who::Admin,
        Method::DELETE,
        "/api/peers/alice",
        Body::Empty,
        NOT_FOUND,
    ));
    for (method, path) in [
        (Method::DELETE, "/api/config"),
        (Method::POST, "/api/config"),
        (Method::PUT, "/api/audit"),
        (Method::POST, "/api/audit/verify"),
        (Method::POST, "/api/status"),
        (Method::PATCH, "/api/auth/me"),
        (Method::GET, "/api/auth/logout"),
        (Method::DELETE, "/api/auth/users"),
        (Method::POST, "/health"),
        (Method::PUT, "/api/setup/step"),
        (Method::DELETE, "/api/setup/status"),
        (Method::POST, "/setup"),
    ] {
        table.push(refused(Who::Admin, method, path, empty(), WRONG_METHOD));
    }
    table.push(refused(
        Who::Anonymous,
        Method::GET,
        "/api/auth/login",
        Body::Empty,
        WRONG_METHOD,
    ));
    table
}

#[tokio::test]
async fn refused_access_is_a_json_4xx_and_changes_nothing() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    let (_, config) = clients.admin.get_json("/api/config").await;
    let users = users_snapshot(&picd.db());
    let setup: (String, String) = picd
        .db()
        .query_row(
            "SELECT current_step, completed_at FROM setup_state",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();

    let mut table = who_may_not(&config);
    table.extend(bad_queries());
    table.extend(nowhere());
    clients.check_all(&table).await;

    let (status, after) = clients.admin.get_json("/api/config").await;
    assert_eq!(status, StatusCode::OK, "the admin's session is gone");
    assert_eq!(after, config);
    assert_eq!(users_snapshot(&picd.db()), users);
    let setup_after: (String, String) = picd
        .db()
        .query_row(
            "SELECT current_step, completed_at FROM setup_state",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(setup_after, setup);
    let (status, _) = clients.peer.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK, "the peer's session is gone");
    assert_no_internal_errors(&picd);
}
