//! The audit log's entries: exactly one per mutating request, refused ones included, none for
//! reads; and GET /api/audit's filters and paging.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

/// Failed logins made by the filter test, for a username that does not exist.
const FAILED_LOGINS: usize = 3;
const CONFIG_UPDATES: usize = 3;
const UNKNOWN_USER: &str = "carol";

/// Sends a request and checks that it added exactly one audit entry; returns the entry.
async fn one_entry_for(
    picd: &Picd,
    request: reqwest::RequestBuilder,
    status: StatusCode,
) -> AuditRow {
    let db = picd.db();
    let before = audit_count(&db);
    let resp = request.send().await.expect("request");
    let got = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert_eq!(audit_count(&db), before + 1, "entries written for: {body}");
    last_audit(&db)
}

#[tokio::test]
async fn every_mutating_request_leaves_exactly_one_entry() {
    let (picd, admin) = picd_with_admin().await;
    let (_, config) = admin.get_json("/api/config").await;
    let token = admin.csrf_token().await;
    let put = || {
        admin
            .http
            .put(admin.url("/api/config"))
            .header("x-csrf-token", &token)
    };

    let e = one_entry_for(&picd, put().json(&config), StatusCode::OK).await;
    assert_eq!(
        (e.actor.as_str(), e.action.as_str(), e.result.as_str()),
        (ADMIN_USER, "config.update", "success")
    );
    assert_eq!(
        (e.target_type.as_str(), e.target_id.as_str()),
        ("config", "cell")
    );
    assert_eq!(e.client_addr, "127.0.0.1");

    let mut bad = config.clone();
    bad["cell"]["domain"] = json!("not a domain");
    let e = one_entry_for(&picd, put().json(&bad), StatusCode::BAD_REQUEST).await;
    assert_eq!(
        (e.action.as_str(), e.result.as_str()),
        ("config.update", "failure")
    );
    assert_eq!(e.detail["error"], "validation_failed");

    let no_csrf = admin.http.put(admin.url("/api/config")).json(&config);
    let e = one_entry_for(&picd, no_csrf, StatusCode::FORBIDDEN).await;
    assert_eq!(
        (e.actor.as_str(), e.action.as_str(), e.result.as_str()),
        (ADMIN_USER, "config.update", "denied")
    );
    assert_eq!(e.detail["error"], "csrf_invalid");

    let stranger = picd.client();
    let anonymous = stranger.http.put(stranger.url("/api/config")).json(&config);
    let e = one_entry_for(&picd, anonymous, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        (e.actor.as_str(), e.result.as_str()),
        ("anonymous", "denied")
    );
    assert_eq!(e.detail["error"], "unauthorized");

    let unknown = admin
        .http
        .post(admin.url("/api/no-such-route"))
        .header("x-csrf-token", &token)
        .json(&json!({}));
    let e = one_entry_for(&picd, unknown, StatusCode::NOT_FOUND).await;
    assert_eq!(
        (e.action.as_str(), e.result.as_str()),
        ("unknown_route", "failure")
    );
    assert_eq!(e.target_id, "/api/no-such-route");
    assert_eq!(e.detail["error"], "not_found");

    let malformed = put()
        .header("content-type", "application/json")
        .body("{\"cell\": ");
    let e = one_entry_for(&picd, malformed, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        (e.action.as_str(), e.result.as_str()),
        ("config.update", "failure")
    );
    assert_eq!(e.detail["error"], "malformed_json");

    let wrong_method = admin
        .http
        .delete(admin.url("/api/config"))
        .header("x-csrf-token", &token);
    let e = one_entry_for(&picd, wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(e.detail["error"], "method_not_allowed");

    let oversize = put()
        .header("content-type", "application/json")
        .body(format!("\"{}\"", "x".repeat(DEFAULT_BODY_LIMIT + 1)));
    let e = one_entry_for(&picd, oversize, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(e.detail["error"], "payload_too_large");

    let wizard = admin
        .http
        .post(admin.url("/api/setup/step"))
        .json(&json!({ "step": "admin", "data": admin_step() }));
    let e = one_entry_for(&picd, wizard, StatusCode::CONFLICT).await;
    assert_eq!(e.detail["error"], "setup_complete");

    let wrong_login = stranger
        .http
        .post(stranger.url("/api/auth/login"))
        .json(&json!({ "username": ADMIN_USER, "password": "not the password" }));
    let e = one_entry_for(&picd, wrong_login, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        (e.action.as_str(), e.result.as_str()),
        ("auth.login", "denied")
    );
    assert_eq!(e.detail["username"], ADMIN_USER);
    let login = stranger
        .http
        .post(stranger.url("/api/auth/login"))
        .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }));
    let e = one_entry_for(&picd, login, StatusCode::OK).await;
    assert_eq!(
        (e.actor.as_str(), e.action.as_str(), e.result.as_str()),
        (ADMIN_USER, "auth.login", "success")
    );
    let no_token = stranger.http.post(stranger.url("/api/auth/logout"));
    let e = one_entry_for(&picd, no_token, StatusCode::FORBIDDEN).await;
    assert_eq!(
        (e.action.as_str(), e.result.as_str()),
        ("auth.logout", "denied")
    );
    assert_eq!(e.detail["error"], "csrf_invalid");
    let stranger_token = stranger.csrf_token().await;
    let logout = stranger
        .http
        .post(stranger.url("/api/auth/logout"))
        .header("x-csrf-token", stranger_token);
    let e = one_entry_for(&picd, logout, StatusCode::OK).await;
    assert_eq!(e.action, "auth.logout");

    // Reads write nothing.
    let db = picd.db();
    let before = audit_count(&db);
    for path in [
        "/health",
        "/api/config",
        "/api/status",
        "/api/audit",
        "/api/audit/verify",
        "/api/audit/export?format=csv",
        "/api/no-such-route",
        "/api/auth/me",
    ] {
        admin.get(path).await;
    }
    assert_eq!(audit_count(&db), before);

    // No password reached the log.
    let details: Vec<String> = db
        .prepare("SELECT actor || action || target_id || detail FROM audit_log")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for text in details {
        assert!(!text.contains(ADMIN_PASSWORD), "{text}");
        assert!(!text.contains("argon2"), "{text}");
    }
}

async fn list(admin: &TestClient, query: &str) -> (Vec<Value>, u64) {
    let (status, body) = admin.get_json(&format!("/api/audit?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let entries = body["entries"].as_array().expect("entries").clone();
    (entries, body["total"].as_u64().expect("total"))
}

fn ids(entries: &[Value]) -> Vec<i64> {
    entries.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn the_audit_list_filters_and_pages() {
    let (picd, admin) = picd_with_admin().await;
    let (_, config) = admin.get_json("/api/config").await;
    for _ in 0..CONFIG_UPDATES {
        let resp = admin.send_json(Method::PUT, "/api/config", &config).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let anonymous = picd.client();
    for _ in 0..FAILED_LOGINS {
        let resp = anonymous.login(UNKNOWN_USER, "wrong password here").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let all_count = audit_count(&picd.db()) as u64;

    let (all, total) = list(&admin, "limit=1000").await;
    assert_eq!(total, all_count);
    assert_eq!(all.len() as u64, all_count);
    let all_ids = ids(&all);
    let mut sorted = all_ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(all_ids, sorted, "newest first");
    for key in [
        "id",
        "time",
        "actor",
        "action",
        "target_type",
        "target_id",
        "result",
        "client_addr",
        "detail",
        "prev_hash",
        "hash",
    ] {
        assert!(all[0].get(key).is_some(), "{key} missing in {}", all[0]);
    }

    let (updates, total) = list(&admin, "action=config.update").await;
    assert_eq!(total, CONFIG_UPDATES as u64);
    assert!(updates
        .iter()
        .all(|e| e["action"] == "config.update" && e["actor"] == ADMIN_USER));
    let (_, total) = list(
        &admin,
        "actor=admin&action=config.update&target_type=config&target_id=cell",
    )
    .await;
    assert_eq!(total, CONFIG_UPDATES as u64);
    let (denied, total) = list(&admin, "result=denied").await;
    assert_eq!(total, FAILED_LOGINS as u64);
    assert!(
        denied
            .iter()
            .all(|e| e["detail"]["username"] == UNKNOWN_USER),
        "{denied:?}"
    );
    let (_, total) = list(&admin, "actor=setup").await;
    assert_eq!(total, 5, "the claim, and one entry per wizard step");
    let (none, total) = list(&admin, "actor=nobody").await;
    assert_eq!((none.len(), total), (0, 0));

    // Pages tile the whole list without overlap.
    let mut paged = Vec::new();
    for offset in (0..all_count).step_by(2) {
        let (page, total) = list(&admin, &format!("limit=2&offset={offset}")).await;
        assert_eq!(total, all_count);
        assert!(page.len() <= 2);
        paged.extend(ids(&page));
    }
    assert_eq!(paged, all_ids);
    let (beyond, _) = list(&admin, &format!("offset={all_count}")).await;
    assert!(beyond.is_empty());

    // since is inclusive, until exclusive; any offset is understood.
    let pivot = &all[all.len() / 2];
    let pivot_time = pivot["time"].as_str().unwrap();
    let at_or_after: Vec<i64> = all
        .iter()
        .filter(|e| e["time"].as_str().unwrap() >= pivot_time)
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let (since, _) = list(&admin, &format!("limit=1000&since={pivot_time}")).await;
    assert_eq!(ids(&since), at_or_after);
    assert!(ids(&since).contains(&pivot["id"].as_i64().unwrap()));
    let shifted = time::OffsetDateTime::parse(pivot_time, &Rfc3339)
        .unwrap()
        .to_offset(time::macros::offset!(+2))
        .format(&Rfc3339)
        .unwrap();
    let (since_shifted, _) = list(
        &admin,
        &format!("limit=1000&since={}", shifted.replace('+', "%2B")),
    )
    .await;
    assert_eq!(ids(&since_shifted), at_or_after);
    let (until, _) = list(&admin, &format!("limit=1000&until={pivot_time}")).await;
    let before: Vec<i64> = all_ids
        .iter()
        .copied()
        .filter(|id| !at_or_after.contains(id))
        .collect();
    assert_eq!(ids(&until), before);
}

#[tokio::test]
async fn bad_audit_queries_are_refused() {
    let (_picd, admin) = picd_with_admin().await;
    for (query, code, field) in [
        ("limit=0", "validation_failed", Some("limit")),
        ("limit=1001", "validation_failed", Some("limit")),
        ("limit=abc", "invalid_query", None),
        ("offset=-1", "invalid_query", None),
        ("since=yesterday", "validation_failed", Some("since")),
        (
            "until=2026-13-01T00:00:00Z",
            "validation_failed",
            Some("until"),
        ),
        ("result=maybe", "validation_failed", Some("result")),
        ("colour=blue", "invalid_query", None),
    ] {
        let resp = admin.get(&format!("/api/audit?{query}")).await;
        let body = expect_error(resp, StatusCode::BAD_REQUEST, code).await;
        if let Some(field) = field {
            assert!(body["fields"][field].is_string(), "{query}: {body}");
        }
    }
}
