//! The `/api/containers/*` routes refuse the wrong actor, a missing CSRF token, a read-only
//! key on a change, a reference that cannot name a container (404, as an unknown one) and a
//! bad `lines` (400) with JSON errors; without an engine they answer 503 `unavailable`, and
//! every refused change is on record once.

use super::*;

const IMAGES: &str = "/api/containers/images";
const VOLUMES: &str = "/api/containers/volumes";
/// A reference that could name a container: without an engine it cannot be looked up.
const SOME_ID: &str = "/api/containers/picd-0123456789ab-files";
const INSUFFICIENT_SCOPE: (u16, &str) = (403, "insufficient_scope");
const UNAVAILABLE: (u16, &str) = (503, "unavailable");
const BAD_REFERENCES: [&str; 5] = ["..%2Fx", "-x", "a%20b", "x%0A", "%00"];

fn containers_table() -> Vec<Refused> {
    use Who::*;
    let logs = format!("{SOME_ID}/logs");
    let start = format!("{SOME_ID}/start");
    let stop = format!("{SOME_ID}/stop");
    let mut table = Vec::new();
    for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
        for path in [IMAGES, VOLUMES, SOME_ID, logs.as_str()] {
            table.push(refused(who, Method::GET, path, Body::Empty, answer));
        }
    }
    for (who, answer) in [
        (Anonymous, UNAUTHORIZED),
        (Peer, ADMIN_ONLY),
        (AdminNoCsrf, CSRF_INVALID),
        (ReadOnlyKey, INSUFFICIENT_SCOPE),
    ] {
        for path in [&start, &stop] {
            table.push(refused(who, Method::POST, path, Body::Empty, answer));
        }
    }
    let long = "x".repeat(129);
    let references = BAD_REFERENCES.iter().copied().chain([long.as_str()]);
    for reference in references {
        let one = format!("{CONTAINERS}/{reference}");
        table.push(refused(Admin, Method::GET, &one, Body::Empty, NOT_FOUND));
        let logs = format!("{one}/logs");
        table.push(refused(Admin, Method::GET, &logs, Body::Empty, NOT_FOUND));
        for action in ["start", "stop"] {
            let path = format!("{one}/{action}");
            table.push(refused(Admin, Method::POST, &path, Body::Empty, NOT_FOUND));
        }
    }
    for (query, answer) in [
        ("lines=0", INVALID_FIELDS),
        ("lines=1001", INVALID_FIELDS),
        ("lines=-1", INVALID_QUERY),
        ("lines=abc", INVALID_QUERY),
        ("lines=1e3", INVALID_QUERY),
        ("lines=99999999999", INVALID_QUERY),
        ("tail=5", INVALID_QUERY),
    ] {
        let path = format!("{logs}?{query}");
        table.push(refused(Admin, Method::GET, &path, Body::Empty, answer));
    }
    table
}

#[tokio::test]
async fn container_routes_refuse_bad_input_and_answer_unavailable_without_an_engine() {
    let (picd, admin) = picd_with_admin_using(no_engine()).await;
    insert_user(&picd.db(), PEER_USER, "peer", PEER_PASSWORD);
    let peer = picd.client();
    peer.login_ok(PEER_USER, PEER_PASSWORD).await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    let entries = || -> i64 {
        picd.db()
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
            .unwrap()
    };
    let table = containers_table();
    let before = entries();
    clients.check_all(&table).await;
    let changes = table
        .iter()
        .filter(|r| r.method != Method::GET || matches!(r.who, Who::Peer))
        .count();
    assert_eq!(
        entries() - before,
        changes as i64,
        "one audit entry per refused change or peer's read"
    );
    // The routes' own refusals name their target; none wrote a desired state.
    let by_route: i64 = picd
        .db()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE target_type = 'container' AND result = 'failure'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(by_route >= 12, "the routes' own refusals: {by_route}");

    // Valid requests: without an engine there is nothing to look a container up in, and
    // each refused change is on record all the same.
    let logs = format!("{SOME_ID}/logs");
    for path in [IMAGES, SOME_ID, &logs, &format!("{logs}?lines=1000")] {
        let body = expect_error(
            clients.admin.get(path).await,
            StatusCode::SERVICE_UNAVAILABLE,
            UNAVAILABLE.1,
        )
        .await;
        assert_eq!(body["subsystem"], "docker", "{path}: {body}");
    }
    // Start and stop take no body: one sent, malformed, oversize or of another type, is
    // never read, and the request is answered as without it.
    let before = entries();
    let bodies = [
        "{}".to_string(),
        "{\"desired\": ".to_string(),
        json!({ "x": "y".repeat(200_000) }).to_string(),
        json!(["stopped"]).to_string(),
    ];
    for action in ["start", "stop"] {
        let path = format!("{SOME_ID}/{action}");
        for body in &bodies {
            let resp = clients
                .admin
                .send_body(Method::POST, &path, body.clone())
                .await;
            expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE.1).await;
        }
    }
    assert_eq!(
        entries() - before,
        2 * bodies.len() as i64,
        "one entry per refused start or stop"
    );

    // The data folders are this machine's: listed without an engine (none yet).
    let (status, body) = clients.admin.get_json(VOLUMES).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["volumes"], json!([]), "{body}");
    let resp = clients
        .admin
        .send_json(Method::POST, INSTALL, &json!({ "id": "files" }))
        .await;
    resp.text().await.unwrap();
    let (_, active) = clients.admin.get_json(ACTIVE).await;
    assert_eq!(
        active["services"][0]["desired_state"], "running",
        "{active}"
    );
    assert_no_internal_errors(&picd);
}
