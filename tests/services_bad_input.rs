//! The store's routes refuse the wrong actor, a missing CSRF token and bad bodies with the
//! API's JSON error shape, never a 500; and without a Docker engine an install is recorded,
//! `docker` is `unavailable` in /api/status, and the install's events say it waits.

mod common;

use common::keys::{create_key_with, KeyClient};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[path = "services_bad_input/containers.rs"]
mod containers;
#[path = "services_bad_input/email.rs"]
mod email;
#[path = "services_bad_input/status.rs"]
mod status;

const UNAUTHORIZED: (u16, &str) = (401, "unauthorized");
const ADMIN_ONLY: (u16, &str) = (403, "admin_only");
const CSRF_INVALID: (u16, &str) = (403, "csrf_invalid");
const MALFORMED: (u16, &str) = (400, "malformed_json");
const INVALID_BODY: (u16, &str) = (422, "invalid_body");
const INVALID_FIELDS: (u16, &str) = (400, "validation_failed");
const NOT_FOUND: (u16, &str) = (404, "not_found");
const TOO_LARGE: (u16, &str) = (413, "payload_too_large");
const NOT_INSTALLED: (u16, &str) = (404, "not_installed");
const INVALID_QUERY: (u16, &str) = (400, "invalid_query");

const STORE: &str = "/api/store";
const INSTALL: &str = "/api/store/install";
const REMOVE: &str = "/api/store/remove";
const BUILD: &str = "/api/store/build-images";
const ACTIVE: &str = "/api/services/active";
const CONTAINERS: &str = "/api/containers";
/// A socket path where no engine listens.
const NO_ENGINE: &str = "/nonexistent/picd-test/docker.sock";

fn table() -> Vec<Refused> {
    use Who::*;
    let mut table = Vec::new();
    for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
        for path in [STORE, ACTIVE, CONTAINERS] {
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
        let empty = Body::Json(json!({}));
        table.push(refused(who, Method::POST, BUILD, empty, answer));
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
    for (body, answer) in [
        (raw(JSON, "{"), MALFORMED),
        (Body::Json(json!({ "services": ["files"] })), INVALID_BODY),
        (Body::Json(json!({ "x": "y".repeat(200_000) })), TOO_LARGE),
    ] {
        table.push(refused(Admin, Method::POST, BUILD, body, answer));
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
    // A build needs the engine: without one it is refused, not started.
    let resp = clients
        .admin
        .send_json(Method::POST, BUILD, &json!({}))
        .await;
    let body = expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(body["subsystem"], "docker", "{body}");
    // So do the engine's containers: 503, not an empty list.
    let resp = clients.admin.get(CONTAINERS).await;
    let body = expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(body["subsystem"], "docker", "{body}");
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

const ACCOUNTS: &str = "/api/services/catalog/files/accounts";
const SETTINGS: &str = "/api/services/settings";

fn accounts_table() -> Vec<Refused> {
    use Who::*;
    let one = format!("{ACCOUNTS}/peer1");
    let credentials = format!("{ACCOUNTS}/peer1/credentials");
    let mut table = Vec::new();
    for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
        for path in [ACCOUNTS, credentials.as_str(), SETTINGS] {
            table.push(refused(who, Method::GET, path, Body::Empty, answer));
        }
    }
    for (who, answer) in [
        (Anonymous, UNAUTHORIZED),
        (Peer, ADMIN_ONLY),
        (AdminNoCsrf, CSRF_INVALID),
    ] {
        let peer = Body::Json(json!({ "peer": "peer1" }));
        table.push(refused(who, Method::POST, ACCOUNTS, peer, answer));
        table.push(refused(who, Method::DELETE, &one, Body::Empty, answer));
        let days = Body::Json(json!({ "archive_retention_days": 7 }));
        table.push(refused(who, Method::PUT, SETTINGS, days, answer));
    }
    let bad_accounts = [
        (raw(JSON, "{\"peer\": "), MALFORMED),
        (Body::Json(json!({ "peer": 5 })), INVALID_BODY),
        (Body::Json(json!({ "peer": "peer1", "x": 1 })), INVALID_BODY),
        (Body::Json(json!({ "owner": "yes" })), INVALID_BODY),
        (Body::Json(json!({})), INVALID_FIELDS),
        (
            Body::Json(json!({ "peer": "peer1", "owner": true })),
            INVALID_FIELDS,
        ),
        (Body::Json(json!({ "peer": "../etc" })), INVALID_FIELDS),
        (
            Body::Json(json!({ "peer": "x".repeat(200_000) })),
            TOO_LARGE,
        ),
        // Not installed yet.
        (Body::Json(json!({ "peer": "peer1" })), NOT_FOUND),
    ];
    for (body, answer) in bad_accounts {
        table.push(refused(Admin, Method::POST, ACCOUNTS, body, answer));
    }
    for path in [
        "/api/files/status",
        "/api/files/users",
        "/api/files/users/peer1/files",
        "/api/calendar/status",
        "/api/calendar/users",
        "/api/email/status",
        "/api/email/mailboxes",
    ] {
        for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
            table.push(refused(who, Method::GET, path, Body::Empty, answer));
        }
    }
    // Not installed: the per-service routes but status answer 404 not_installed.
    for path in [
        "/api/files/users",
        "/api/files/users/peer1/files",
        "/api/calendar/users",
        "/api/email/mailboxes",
    ] {
        table.push(refused(
            Admin,
            Method::GET,
            path,
            Body::Empty,
            NOT_INSTALLED,
        ));
    }
    let files = "/api/files/users/peer1/files";
    for (query, answer) in [
        ("?path=../x", INVALID_FIELDS),
        ("?path=%0A", INVALID_FIELDS),
        ("?nope=1", INVALID_QUERY),
    ] {
        let path = format!("{files}{query}");
        table.push(refused(Admin, Method::GET, &path, Body::Empty, answer));
    }
    let nope = "/api/services/catalog/nope/accounts";
    table.push(refused(Admin, Method::GET, nope, Body::Empty, NOT_FOUND));
    let peer = Body::Json(json!({ "peer": "peer1" }));
    table.push(refused(Admin, Method::POST, nope, peer, NOT_FOUND));
    for path in [format!("{ACCOUNTS}/..%2Fx"), format!("{ACCOUNTS}/nobody")] {
        table.push(refused(
            Admin,
            Method::DELETE,
            &path,
            Body::Empty,
            NOT_FOUND,
        ));
        let creds = format!("{path}/credentials");
        table.push(refused(Admin, Method::GET, &creds, Body::Empty, NOT_FOUND));
    }
    let bad_settings = [
        (raw(JSON, "{"), MALFORMED),
        (
            Body::Json(json!({ "archive_retention_days": "x" })),
            INVALID_BODY,
        ),
        (
            Body::Json(json!({ "archive_retention_days": -1 })),
            INVALID_BODY,
        ),
        (Body::Json(json!({})), INVALID_BODY),
        (
            Body::Json(json!({ "archive_retention_days": 0 })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "archive_retention_days": 4000 })),
            INVALID_FIELDS,
        ),
    ];
    for (body, answer) in bad_settings {
        table.push(refused(Admin, Method::PUT, SETTINGS, body, answer));
    }
    table
}

#[tokio::test]
async fn account_routes_refuse_bad_input_and_without_an_engine_an_account_is_still_written() {
    let (picd, admin) = picd_with_admin_using(no_engine()).await;
    insert_user(&picd.db(), PEER_USER, "peer", PEER_PASSWORD);
    let peer = picd.client();
    peer.login_ok(PEER_USER, PEER_PASSWORD).await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    clients.check_all(&accounts_table()).await;
    let (_, status) = clients.admin.get_json("/api/files/status").await;
    assert_eq!(status["installed"], false, "{status}");
    let (_, settings) = clients.admin.get_json(SETTINGS).await;
    assert_eq!(settings["archive_retention_days"], 30, "{settings}");

    // Installed while the engine is away: the account is recorded and its line written.
    let admin = &clients.admin;
    let resp = admin
        .send_json(Method::POST, INSTALL, &json!({ "id": "files" }))
        .await;
    resp.text().await.unwrap();
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "peer1" }))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = admin
        .send_json(Method::POST, ACCOUNTS, &json!({ "peer": "ghost" }))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = admin
        .send_json(Method::POST, ACCOUNTS, &json!({ "peer": "peer1" }))
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["live"], false, "{body}");
    assert!(body.get("password").is_none(), "{body}");
    let users = picd.state_dir().join("services/files/config/users");
    let text = std::fs::read_to_string(users).expect("the account file");
    assert!(text.starts_with("peer1:$6$rounds=1000$"), "{text}");
    let (status, creds) = admin
        .get_json(&format!("{ACCOUNTS}/peer1/credentials"))
        .await;
    assert_eq!(status, StatusCode::OK, "{creds}");
    let password = creds["password"].as_str().expect("a password");
    assert_eq!(password.len(), 32);
    // A secret read: a read-only key is refused, and the admin's read is audited.
    let (_, reader) = create_key_with(admin, "reader", &["read-only"]).await;
    let reader = KeyClient::new(&picd, &reader);
    let path = format!("{ACCOUNTS}/peer1/credentials");
    expect_error(
        reader.get(&path).await,
        StatusCode::FORBIDDEN,
        "secret_requires_admin",
    )
    .await;
    let read: String = picd
        .db()
        .query_row(
            "SELECT detail FROM audit_log WHERE result = 'success' AND detail LIKE '%secret_read%'
             ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        read.contains("/api/services/catalog/{id}/accounts/{username}/credentials"),
        "{read}"
    );
    // The password is in the vault only: not in the row, the audit log or picd's log.
    let audit: String = picd
        .db()
        .query_row("SELECT group_concat(detail, ' ') FROM audit_log", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!audit.contains(password));
    assert!(!picd.log().contains(password));
    assert_no_internal_errors(&picd);
}

const PEER_QR: &str = "/api/peer/service-credentials/files/qr";
const QR_PEER: &str = "peer1";
const QR_PEER_PASSWORD: &str = "peer1 keeps a long passphrase";
const PEER_ONLY: (u16, &str) = (403, "peer_only");
const BAD_QUERY: (u16, &str) = (400, "invalid_query");
const WRONG_METHOD: (u16, &str) = (405, "method_not_allowed");

fn peer_qr_table() -> Vec<Refused> {
    use Who::*;
    let get = |who, path: &str, answer| refused(who, Method::GET, path, Body::Empty, answer);
    vec![
        get(Anonymous, PEER_QR, UNAUTHORIZED),
        get(Admin, PEER_QR, PEER_ONLY),
        get(Peer, &format!("{PEER_QR}?password=yes"), BAD_QUERY),
        get(Peer, &format!("{PEER_QR}?password=1"), BAD_QUERY),
        get(Peer, &format!("{PEER_QR}?format=svg"), BAD_QUERY),
        get(Peer, "/api/peer/service-credentials/nope/qr", NOT_FOUND),
        get(
            Peer,
            "/api/peer/service-credentials/..%2Ffiles/qr",
            NOT_FOUND,
        ),
        get(
            Peer,
            &format!("/api/peer/service-credentials/{}/qr", "x".repeat(5000)),
            NOT_FOUND,
        ),
        // Not installed yet, so no account either.
        get(Peer, PEER_QR, NOT_FOUND),
        refused(
            Peer,
            Method::POST,
            PEER_QR,
            Body::Json(json!({})),
            WRONG_METHOD,
        ),
    ]
}

#[tokio::test]
async fn a_peers_service_qr_refuses_bad_input_and_holds_the_password_only_when_asked() {
    let (picd, admin) = picd_with_admin_using(no_engine()).await;
    let body = json!({ "name": QR_PEER, "portal_password": QR_PEER_PASSWORD });
    common::netns::create_peer(&admin, body).await;
    let peer = picd.client();
    peer.login_ok(QR_PEER, QR_PEER_PASSWORD).await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    clients.check_all(&peer_qr_table()).await;

    let admin = &clients.admin;
    let resp = admin
        .send_json(Method::POST, INSTALL, &json!({ "id": "files" }))
        .await;
    resp.text().await.unwrap();
    // Installed, but the peer has no account in it yet.
    expect_error(
        clients.peer.get(PEER_QR).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let resp = admin
        .send_json(Method::POST, ACCOUNTS, &json!({ "peer": QR_PEER }))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, creds) = admin
        .get_json(&format!("{ACCOUNTS}/{QR_PEER}/credentials"))
        .await;
    let (url, password) = (
        creds["url"].as_str().unwrap(),
        creds["password"].as_str().unwrap(),
    );
    let host = url.strip_prefix("https://").expect("an https URL");

    let plain = common::netns::decoded_qr(&clients.peer, PEER_QR, picd.root()).await;
    assert_eq!(plain, format!("https://{QR_PEER}@{host}"));
    let with_password = format!("{PEER_QR}?password=true");
    let full = common::netns::decoded_qr(&clients.peer, &with_password, picd.root()).await;
    assert_eq!(full, format!("https://{QR_PEER}:{password}@{host}"));
    let resp = clients.peer.get(PEER_QR).await;
    assert_eq!(resp.headers()["cache-control"], "no-store");

    // Every read is a secret read on record under the peer's name; the admin's too.
    let reads: Vec<(String, String)> = {
        let conn = picd.db();
        let mut stmt = conn
            .prepare(
                "SELECT target_id, json_extract(detail, '$.secret_read') FROM audit_log
                 WHERE result = 'success' AND json_extract(detail, '$.secret_read') IS NOT NULL
                 ORDER BY seq",
            )
            .unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    let qr_route = "/api/peer/service-credentials/{service}/qr";
    let admin_route = "/api/services/catalog/{id}/accounts/{username}/credentials";
    let qr_reads = reads.iter().filter(|(t, r)| t == QR_PEER && r == qr_route);
    assert_eq!(qr_reads.count(), 3, "{reads:?}");
    assert_eq!(
        reads.iter().filter(|(_, r)| r == admin_route).count(),
        1,
        "{reads:?}"
    );
    assert_no_internal_errors(&picd);
}
