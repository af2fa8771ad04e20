//! The ACME challenge routes (`/api/dns/acme/present`, `/cleanup`, `/cleanup-stale`), which a
//! certificate client drives, refuse the wrong actor (a read-only API key included), a missing
//! CSRF token and bad bodies with the API's JSON error shape, never a 500, and publish nothing.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const UNAUTHORIZED: (u16, &str) = (401, "unauthorized");
const ADMIN_ONLY: (u16, &str) = (403, "admin_only");
const CSRF_INVALID: (u16, &str) = (403, "csrf_invalid");
const INSUFFICIENT_SCOPE: (u16, &str) = (403, "insufficient_scope");
const MALFORMED: (u16, &str) = (400, "malformed_json");
const INVALID_BODY: (u16, &str) = (422, "invalid_body");
const INVALID_FIELDS: (u16, &str) = (400, "validation_failed");
const TOO_LARGE: (u16, &str) = (413, "payload_too_large");
const NOT_FOUND: (u16, &str) = (404, "not_found");

const PRESENT: &str = "/api/dns/acme/present";
const CLEANUP: &str = "/api/dns/acme/cleanup";
const CLEANUP_STALE: &str = "/api/dns/acme/cleanup-stale";
const DIGEST: &str = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";

fn challenge() -> Body {
    Body::Json(json!({ "domain": CELL_DOMAIN, "value": DIGEST }))
}

fn table() -> Vec<Refused> {
    use Who::*;
    let mut table = Vec::new();
    for (who, answer) in [
        (Anonymous, UNAUTHORIZED),
        (Peer, ADMIN_ONLY),
        (AdminNoCsrf, CSRF_INVALID),
        (ReadOnlyKey, INSUFFICIENT_SCOPE),
    ] {
        for path in [PRESENT, CLEANUP] {
            table.push(refused(who, Method::POST, path, challenge(), answer));
        }
        let stale = Body::Json(json!({ "max_age_minutes": 0 }));
        table.push(refused(who, Method::POST, CLEANUP_STALE, stale, answer));
    }
    let bad_challenges = [
        (raw(JSON, "{\"domain\": "), MALFORMED),
        (Body::Json(json!([CELL_DOMAIN, DIGEST])), INVALID_FIELDS),
        (
            Body::Json(json!({ "domain": 5, "value": DIGEST })),
            INVALID_BODY,
        ),
        (
            Body::Json(json!({ "domain": CELL_DOMAIN, "value": 7 })),
            INVALID_BODY,
        ),
        (Body::Json(json!({ "value": DIGEST })), INVALID_BODY),
        (
            Body::Json(json!({ "domain": CELL_DOMAIN, "value": DIGEST, "ttl": 1 })),
            INVALID_BODY,
        ),
        (
            Body::Json(json!({ "domain": CELL_DOMAIN, "value": "not base64url!" })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "domain": CELL_DOMAIN, "value": "A".repeat(513) })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "domain": CELL_DOMAIN, "value": "A".repeat(200_000) })),
            TOO_LARGE,
        ),
        (
            Body::Json(json!({ "domain": "elsewhere.test", "value": DIGEST })),
            NOT_FOUND,
        ),
    ];
    for (body, answer) in bad_challenges {
        table.push(refused(Admin, Method::POST, PRESENT, body, answer));
    }
    table.push(refused(
        Admin,
        Method::POST,
        CLEANUP,
        raw(JSON, "{\"domain\": tru"),
        MALFORMED,
    ));
    for (body, answer) in [
        (Body::Json(json!({ "max_age_minutes": -1 })), INVALID_BODY),
        (
            Body::Json(json!({ "max_age_minutes": "old" })),
            INVALID_BODY,
        ),
        (Body::Json(json!({ "dry_run": "yes" })), INVALID_BODY),
        (Body::Json(json!({ "everything": true })), INVALID_BODY),
        (Body::Json(json!([1])), INVALID_FIELDS),
    ] {
        table.push(refused(Admin, Method::POST, CLEANUP_STALE, body, answer));
    }
    table
}

#[tokio::test]
async fn acme_routes_refuse_with_json_errors_and_publish_nothing() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    let records = || -> i64 {
        picd.db()
            .query_row("SELECT COUNT(*) FROM dns_records", [], |r| r.get(0))
            .unwrap()
    };
    let before = records();
    let clients = Clients::signed_in(&picd, admin, peer).await;
    clients.check_all(&table()).await;
    assert_eq!(records(), before, "a refused request changed the records");
    let challenges: i64 = picd
        .db()
        .query_row(
            "SELECT COUNT(*) FROM dns_records WHERE name LIKE '_acme-challenge.%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(challenges, 0, "a refused request published a challenge");
    // The admin's own request still works: the table refused for the reasons it names.
    let resp = clients
        .admin
        .post_with_csrf(PRESENT, &json!({ "domain": CELL_DOMAIN, "value": DIGEST }))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_no_internal_errors(&picd);
}
