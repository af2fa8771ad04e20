//! A damaged page of the main database file (not the WAL): `PRAGMA quick_check` fails at the
//! next start, and picd names it in /api/status and the log, keeps answering reads, and
//! refuses changes with 503 `storage_degraded` until the owner acknowledges the loss; the
//! acknowledgement holds over a restart. Every write route of the router is refused, and
//! only signing in and out and the acknowledgement stay open.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The changes that stay open while storage is degraded (src/health/write_guard.rs).
const OPEN_WHILE_DEGRADED: [&str; 3] = [
    "/api/auth/login",
    "/api/auth/logout",
    "/api/status/storage/acknowledge",
];
const WRITE_METHODS: [&str; 4] = ["post", "put", "delete", "patch"];

/// Every (method, path) of a write route that picd's sources declare with `.route("...",
/// ...)`, read from the sources so that a route added later is checked without a line here.
fn write_routes() -> Vec<(Method, String)> {
    let mut files = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut routes = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for declared in text.split(".route(").skip(1) {
            let Some(route) = declared.trim_start().strip_prefix('"') else {
                continue;
            };
            let (route, rest) = route.split_once('"').unwrap();
            let end = [".route(", ".merge(", ".fallback(", ".layer("]
                .iter()
                .filter_map(|marker| rest.find(marker))
                .min()
                .unwrap_or(rest.len());
            let handlers = &rest[..end];
            for method in WRITE_METHODS {
                let call = format!("{method}(");
                let declared_here = handlers.match_indices(&call).any(|(at, _)| {
                    let before = handlers[..at].chars().next_back();
                    !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if declared_here {
                    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                    routes.push((method, route.replace(['{', '}'], "")));
                }
            }
        }
    }
    routes.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
    routes
}

/// Rows of the table whose page is damaged: enough for a b-tree of several pages.
const FILLER_ROWS: i64 = 200;
const FILLER_ROW_BYTES: i64 = 500;
/// Bytes of the page's b-tree header flipped (its type, free block, cell count, ...).
const FLIPPED: usize = 8;

async fn storage_status(admin: &TestClient) -> (Value, Value) {
    let (status, body) = admin.get_json("/api/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let storage = body["subsystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "storage")
        .cloned()
        .unwrap_or_else(|| panic!("no storage subsystem: {body}"));
    (body, storage)
}

/// Adds a table picd never reads and damages a leaf page of its b-tree in the database
/// file itself, after a checkpoint has emptied the WAL: what a failing disk does to a page
/// nothing has read since. (A table of picd's own would be read by a driver at start and
/// fail there by chance; the point is what the start-up check finds.)
fn damage_a_page(db_path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db_path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE damaged_filler (id INTEGER PRIMARY KEY, data BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {FILLER_ROWS})
         INSERT INTO damaged_filler (data) SELECT randomblob({FILLER_ROW_BYTES}) FROM n;"
    ))
    .unwrap();
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE name = 'damaged_filler'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let (busy, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint was blocked");
    drop(conn);
    let mut bytes = std::fs::read(db_path).unwrap();
    // The root became an interior page as the table grew; the page after it is a leaf.
    let page = root + 1;
    let start = ((page - 1) * page_size) as usize;
    for byte in &mut bytes[start..start + FLIPPED] {
        *byte ^= 0xff;
    }
    std::fs::write(db_path, bytes).unwrap();
    page
}

#[tokio::test]
async fn a_damaged_database_page_is_named_and_changes_wait_for_the_owner() {
    let (mut picd, admin, _peer) = picd_with_admin_and_peer().await;
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "before" }))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    picd.stop();
    let page = damage_a_page(&picd.db_path());

    picd.restart().await;
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    // Peers sign in too: the portal is read-only while degraded.
    let peer = picd.client();
    peer.login_ok(PEER_USER, PEER_PASSWORD).await;
    let (body, storage) = storage_status(&admin).await;
    assert_eq!(storage["state"], "degraded", "{storage}");
    assert_eq!(body["overall"], "degraded", "{body}");
    let reason = storage["reason"].as_str().unwrap();
    assert!(
        reason.contains("the database fails its integrity check")
            && reason.to_lowercase().contains(&format!("page {page}")),
        "{reason}"
    );
    assert!(reason.contains("backups/"), "{reason}");
    let log = picd.log();
    assert!(
        log.contains("storage is degraded") && log.contains("fails its integrity check"),
        "{log}"
    );
    eprintln!("page {page} damaged: {reason}");

    // Reads keep working.
    let (status, peers) = admin.get_json("/api/peers").await;
    assert_eq!(status, StatusCode::OK, "{peers}");
    assert!(peers.to_string().contains("\"before\""), "{peers}");
    let (status, _) = admin.get_json("/api/audit?limit=5").await;
    assert_eq!(status, StatusCode::OK);

    // Changes are refused, naming what to do, and nothing is written.
    for (method, path, body) in [
        (Method::POST, "/api/peers", json!({ "name": "refused" })),
        (Method::DELETE, "/api/peers/before", json!({})),
    ] {
        let resp = admin.send_json(method, path, &body).await;
        let refusal = expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "storage_degraded").await;
        let message = refusal["error"].as_str().unwrap();
        assert!(
            message.contains("backups/") && message.contains("/api/status/storage/acknowledge"),
            "{message}"
        );
    }
    // Every other write route too, whatever its domain (parameters filled with their names).
    let routes = write_routes();
    assert!(routes.len() > 30, "{routes:?}");
    let mut refused = 0;
    for (method, path) in &routes {
        if OPEN_WHILE_DEGRADED.contains(&path.as_str()) {
            continue;
        }
        // The portal's routes answer a peer only (an admin hears 403 before any write).
        let client = if path.starts_with("/api/peer/") {
            &peer
        } else {
            &admin
        };
        let resp = client.send_json(method.clone(), path, &json!({})).await;
        let (status, body) = json_of(resp).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("storage_degraded")),
            "{method} {path}: {body}"
        );
        refused += 1;
    }
    eprintln!("{refused} write routes refused while degraded");
    let peers: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM peers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(peers, 1);

    // Only an admin acknowledges.
    let anonymous = picd.client();
    let resp = anonymous
        .post_json("/api/status/storage/acknowledge", &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = admin
        .send_json(Method::POST, "/api/status/storage/acknowledge", &json!({}))
        .await;
    let (status, ack) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["acknowledged"], true);
    let (action, detail): (String, String) = picd
        .db()
        .query_row(
            "SELECT action, detail FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(action, "storage.acknowledge", "{detail}");
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "after" }))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let file = picd.state_dir().join("storage-acknowledged");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Still degraded after a restart, and still acknowledged.
    picd.restart().await;
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let (_, storage) = storage_status(&admin).await;
    assert_eq!(storage["state"], "degraded", "{storage}");
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "later" }))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert!(admin.logout().await.status().is_success());
}

#[tokio::test]
async fn picd_audit_reanchor_accepts_a_damaged_page_too() {
    let (mut picd, admin) = picd_with_admin().await;
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "before" }))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    picd.stop();
    damage_a_page(&picd.db_path());
    let state_dir = picd.state_dir();
    let out = picd_cli(
        &[
            "audit",
            "reanchor",
            "--state-dir",
            state_dir.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The damage is still named (a new anchor does not mend a page), but the owner accepted it.
    picd.restart().await;
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let (_, storage) = storage_status(&admin).await;
    assert_eq!(storage["state"], "degraded", "{storage}");
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "after" }))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
}

#[tokio::test]
async fn a_whole_store_refuses_nothing_and_has_nothing_to_acknowledge() {
    let (_picd, admin) = picd_with_admin().await;
    let resp = admin
        .send_json(Method::POST, "/api/status/storage/acknowledge", &json!({}))
        .await;
    let (status, ack) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["acknowledged"], false);
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "p" }))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    // The wizard ran (picd_with_admin claims and completes it) and sign-in works: nothing of a
    // healthy cell is refused.
    assert!(admin.logout().await.status().is_success());
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
}
