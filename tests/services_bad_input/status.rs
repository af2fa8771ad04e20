//! One service's status and restart routes refuse the wrong actor, unknown ids and a service
//! that is not installed with JSON errors, each refused restart on record once; without an
//! engine an installed service's restart is 503 and its status says the engine is away.

use super::*;

const FILES_STATUS: &str = "/api/services/catalog/files/status";
const FILES_RESTART: &str = "/api/services/catalog/files/restart";
const INSUFFICIENT_SCOPE: (u16, &str) = (403, "insufficient_scope");

fn status_table() -> Vec<Refused> {
    use Who::*;
    let mut table = Vec::new();
    for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
        table.push(refused(who, Method::GET, FILES_STATUS, Body::Empty, answer));
    }
    for (who, answer) in [
        (Anonymous, UNAUTHORIZED),
        (Peer, ADMIN_ONLY),
        (AdminNoCsrf, CSRF_INVALID),
        (ReadOnlyKey, INSUFFICIENT_SCOPE),
    ] {
        let empty = Body::Json(json!({}));
        table.push(refused(who, Method::POST, FILES_RESTART, empty, answer));
    }
    let long = "x".repeat(5000);
    for id in ["nope", "..%2Ffiles", "FILES", long.as_str()] {
        let status = format!("/api/services/catalog/{id}/status");
        table.push(refused(Admin, Method::GET, &status, Body::Empty, NOT_FOUND));
        let restart = format!("/api/services/catalog/{id}/restart");
        let empty = Body::Json(json!({}));
        table.push(refused(Admin, Method::POST, &restart, empty, NOT_FOUND));
    }
    // Not installed yet. The route takes no body: one sent, malformed, oversize or of
    // another type, is never read, and the answer is the same.
    for body in [
        Body::Json(json!({})),
        raw(JSON, "{\"id\": "),
        Body::Json(json!({ "x": "y".repeat(200_000) })),
        Body::Json(json!(["files"])),
    ] {
        table.push(refused(
            Admin,
            Method::POST,
            FILES_RESTART,
            body,
            NOT_INSTALLED,
        ));
    }
    table
}

#[tokio::test]
async fn service_status_and_restart_refuse_with_json_errors() {
    let (picd, admin) = picd_with_admin_using(no_engine()).await;
    insert_user(&picd.db(), PEER_USER, "peer", PEER_PASSWORD);
    let peer = picd.client();
    peer.login_ok(PEER_USER, PEER_PASSWORD).await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    let table = status_table();
    let before = audit_count(&picd.db());
    clients.check_all(&table).await;
    // Each restart the admin (or a key) asked for and was refused is on record once; the
    // anonymous and peer refusals are the access layer's, recorded by it.
    let refused_restarts: i64 = picd
        .db()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE target_type = 'service' AND result != 'success'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let admin_restarts = table
        .iter()
        .filter(|r| r.method == Method::POST && matches!(r.who, Who::Admin))
        .count() as i64;
    assert_eq!(
        refused_restarts, admin_restarts,
        "one entry per refused restart of the admin"
    );
    assert!(audit_count(&picd.db()) > before);

    let (status, body) = clients.admin.get_json(FILES_STATUS).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "id": "files", "installed": false }));
    // Installed without an engine: recorded, its status says so, a restart is 503.
    let resp = clients
        .admin
        .send_json(Method::POST, INSTALL, &json!({ "id": "files" }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let _ = resp.text().await;
    let (status, body) = clients.admin.get_json(FILES_STATUS).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["installed"], &body["engine"], &body["health"]),
        (&json!(true), &json!(false), &json!("unknown")),
        "{body}"
    );
    let resp = clients
        .admin
        .send_json(Method::POST, FILES_RESTART, &json!({}))
        .await;
    let body = expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(body["subsystem"], "docker", "{body}");
    assert_no_internal_errors(&picd);
}
