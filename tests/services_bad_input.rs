//! The store's routes refuse the wrong actor, a missing CSRF token and bad bodies with the
//! API's JSON error shape, never a 500; and without a Docker engine an install is recorded,
//! `docker` is `unavailable` in /api/status, and the install's events say it waits.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const UNAUTHORIZED: (u16, &str) = (401, "unauthorized");
const ADMIN_ONLY: (u16, &str) = (403, "admin_only");
const CSRF_INVALID: (u16, &str) = (403, "csrf_invalid");
const MALFORMED: (u16, &str) = (400, "malformed_json");
const INVALID_BODY: (u16, &str) = (422, "invalid_body");
const INVALID_FIELDS: (u16, &str) = (400, "validation_failed");
const NOT_FOUND: (u16, &str) = (404, "not_found");
const TOO_LARGE: (u16, &str) = (413, "payload_too_large");

const STORE: &str = "/api/store";
const INSTALL: &str = "/api/store/install";
const REMOVE: &str = "/api/store/remove";
const ACTIVE: &str = "/api/services/active";
/// A socket path where no engine listens.
const NO_ENGINE: &str = "/nonexistent/picd-test/docker.sock";

fn table() -> Vec<Refused> {
    use Who::*;
    let mut table = Vec::new();
    for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
        for path in [STORE, ACTIVE] {
            table.push(refused(who, Method::GET, path, Body::Empty, answer));
        }
    }
    for (who, answer) in [
        (Anonymous, UNAUTHORIZED),
        (Peer, ADMIN_ONLY),
        (AdminNoCsrf, CSRF_INVALID),
    ] {
        let files = || Body::Json(json!({ "id": "files" }));
        table.push(refused(who, Method::POST, INSTALL, files(), answer));
        table.push(refused(who, Method::POST, REMOVE, files(), answer));
    }
    for path in [INSTALL, REMOVE] {
        let bad_bodies = [
            (raw(JSON, "{\"id\": "), MALFORMED),
            (Body::Json(json!({ "id": 5 })), INVALID_BODY),
            (Body::Json(json!({})), INVALID_BODY),
            (
                Body::Json(json!({ "id": "files", "extra": true })),
                INVALID_BODY,
            ),
            (Body::Json(json!(["files"])), INVALID_FIELDS),
            (Body::Json(json!({ "id": "nope" })), NOT_FOUND),
            (Body::Json(json!({ "id": "../files" })), NOT_FOUND),
            (Body::Json(json!({ "id": "x".repeat(200_000) })), TOO_LARGE),
        ];
        for (body, answer) in bad_bodies {
            table.push(refused(Admin, Method::POST, path, body, answer));
        }
    }
    table.push(refused(
        Admin,
        Method::POST,
        REMOVE,
        Body::Json(json!({ "id": "files", "purge": "yes" })),
        INVALID_BODY,
    ));
    table
}

fn no_engine() -> PicdOptions {
    PicdOptions {
        env: vec![("PICD_DOCKER_SOCKET".into(), NO_ENGINE.into())],
        ..PicdOptions::default()
    }
}

/// The `data:` payloads of a server-sent event stream.
pub fn progress_events(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).expect("event data is JSON"))
        .collect()
}

#[tokio::test]
async fn store_routes_refuse_with_json_errors_and_install_nothing() {
    let (picd, admin) = picd_with_admin_using(no_engine()).await;
    insert_user(&picd.db(), PEER_USER, "peer", PEER_PASSWORD);
    let peer = picd.client();
    peer.login_ok(PEER_USER, PEER_PASSWORD).await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    clients.check_all(&table()).await;

    let installed: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM services_installed", [], |r| r.get(0))
        .unwrap();
    assert_eq!(installed, 0, "a refused request installed a service");
    let resp = clients
        .admin
        .send_json(Method::POST, REMOVE, &json!({ "id": "files" }))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    assert_no_internal_errors(&picd);
}

#[tokio::test]
async fn without_an_engine_docker_is_unavailable_and_an_install_is_recorded() {
    let (picd, admin) = picd_with_admin_using(no_engine()).await;
    let (status, body) = admin.get_json("/api/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let docker = body["subsystems"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["name"] == "docker"))
        .cloned()
        .unwrap_or_else(|| panic!("no docker subsystem in {body}"));
    assert_eq!(docker["state"], "unavailable", "{docker}");

    let resp = admin
        .send_json(Method::POST, INSTALL, &json!({ "id": "files" }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let events = progress_events(&resp.text().await.unwrap());
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["step"], "image", "{events:?}");
    assert_eq!(events[0]["state"], "waiting", "{events:?}");
    assert_eq!(
        events[1],
        json!({ "step": "done", "state": "ok", "applied": false })
    );

    let (_, store) = admin.get_json(STORE).await;
    let files = &store["services"][0];
    assert_eq!(files["id"], "files", "{store}");
    assert_eq!(files["installed"], true, "{store}");
    let (_, active) = admin.get_json(ACTIVE).await;
    assert_eq!(active["engine"], false, "{active}");
    assert_eq!(active["services"][0]["health"], "unknown", "{active}");
    // Installing twice is a conflict, not a second row.
    let resp = admin
        .send_json(Method::POST, INSTALL, &json!({ "id": "files" }))
        .await;
    expect_error(resp, StatusCode::CONFLICT, "already_installed").await;
    let audit: i64 = picd
        .db()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE target_type = 'service' AND result = 'success'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audit, 1, "one audited install");
    assert_no_internal_errors(&picd);
}
