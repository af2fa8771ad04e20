//! The mail service's alias and quota routes refuse bad input with JSON errors, each refused
//! change on record once; without mail they answer 404 not_installed; and mail installed
//! before the cell has a domain is refused with 409 setup_required.

use super::*;

const ALIASES: &str = "/api/email/aliases";
const QUOTA: &str = "/api/email/quota";
const MAILBOX_QUOTA: &str = "/api/email/mailboxes/peer1/quota";
const MAILBOXES: &str = "/api/email/mailboxes";
const STATUS: &str = "/api/email/status";
const INSUFFICIENT_SCOPE: (u16, &str) = (403, "insufficient_scope");
const SETUP_REQUIRED: (u16, &str) = (409, "setup_required");

/// The mail routes of aliases and quotas: the wrong actor, bad bodies, and while mail is not
/// installed a valid request answers 404 not_installed.
fn email_table() -> Vec<Refused> {
    use Who::*;
    let mut table = Vec::new();
    for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
        for path in [ALIASES, QUOTA, MAILBOXES, STATUS] {
            table.push(refused(who, Method::GET, path, Body::Empty, answer));
        }
    }
    let alias = || Body::Json(json!({ "alias": "info", "target": "peer1" }));
    let default = || Body::Json(json!({ "default_bytes": 1_048_576 }));
    let limit = || Body::Json(json!({ "limit_bytes": 1_048_576 }));
    let one = format!("{ALIASES}/info");
    for (who, answer) in [
        (Anonymous, UNAUTHORIZED),
        (Peer, ADMIN_ONLY),
        (AdminNoCsrf, CSRF_INVALID),
        (ReadOnlyKey, INSUFFICIENT_SCOPE),
    ] {
        table.push(refused(who, Method::POST, ALIASES, alias(), answer));
        table.push(refused(who, Method::DELETE, &one, Body::Empty, answer));
        table.push(refused(who, Method::PUT, QUOTA, default(), answer));
        table.push(refused(who, Method::PUT, MAILBOX_QUOTA, limit(), answer));
    }
    let bad_aliases = [
        (raw(JSON, "{\"alias\": "), MALFORMED),
        (
            Body::Json(json!({ "alias": 5, "target": "peer1" })),
            INVALID_BODY,
        ),
        (Body::Json(json!({ "alias": "info" })), INVALID_BODY),
        (
            Body::Json(json!({ "alias": "info", "target": "peer1", "x": 1 })),
            INVALID_BODY,
        ),
        (Body::Json(json!(["info"])), INVALID_BODY),
        (
            Body::Json(json!({ "alias": "Info", "target": "peer1" })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "alias": "a..b", "target": "peer1" })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "alias": "a\nb", "target": "peer1" })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "alias": "info", "target": "../x" })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "alias": "x".repeat(200_000), "target": "peer1" })),
            TOO_LARGE,
        ),
        (alias(), NOT_INSTALLED),
    ];
    for (body, answer) in bad_aliases {
        table.push(refused(Admin, Method::POST, ALIASES, body, answer));
    }
    for (path, answer) in [
        (format!("{ALIASES}/Bad"), NOT_FOUND),
        (format!("{ALIASES}/..%2Fx"), NOT_FOUND),
        (one.clone(), NOT_INSTALLED),
    ] {
        table.push(refused(Admin, Method::DELETE, &path, Body::Empty, answer));
    }
    let bad_defaults = [
        (raw(JSON, "{"), MALFORMED),
        (Body::Json(json!({ "default_bytes": "1G" })), INVALID_BODY),
        (Body::Json(json!({ "default_bytes": -1 })), INVALID_BODY),
        (Body::Json(json!({})), INVALID_BODY),
        (Body::Json(json!({ "default_bytes": 100 })), INVALID_FIELDS),
        (
            Body::Json(json!({ "default_bytes": 1u64 << 41 })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "default_bytes": 1, "x": "y".repeat(200_000) })),
            TOO_LARGE,
        ),
        (default(), NOT_INSTALLED),
    ];
    for (body, answer) in bad_defaults {
        table.push(refused(Admin, Method::PUT, QUOTA, body, answer));
    }
    let bad_limits = [
        (raw(JSON, "{\"limit_bytes\""), MALFORMED),
        (Body::Json(json!({ "limit_bytes": "x" })), INVALID_BODY),
        // null is a value (back to the default); a missing field is not.
        (Body::Json(json!({})), INVALID_BODY),
        (Body::Json(json!({ "limit_bytes": 10 })), INVALID_FIELDS),
        (Body::Json(json!({ "limit_bytes": null })), NOT_INSTALLED),
        (limit(), NOT_INSTALLED),
    ];
    for (body, answer) in bad_limits {
        table.push(refused(Admin, Method::PUT, MAILBOX_QUOTA, body, answer));
    }
    let wrong_name = "/api/email/mailboxes/..%2Fx/quota";
    table.push(refused(Admin, Method::PUT, wrong_name, limit(), NOT_FOUND));
    for path in [ALIASES, QUOTA] {
        table.push(refused(
            Admin,
            Method::GET,
            path,
            Body::Empty,
            NOT_INSTALLED,
        ));
    }
    table
}

#[tokio::test]
async fn email_routes_refuse_bad_input_and_answer_not_installed_without_mail() {
    let (picd, admin) = picd_with_admin_using(no_engine()).await;
    insert_user(&picd.db(), PEER_USER, "peer", PEER_PASSWORD);
    let peer = picd.client();
    peer.login_ok(PEER_USER, PEER_PASSWORD).await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    let table = email_table();
    let entries = || -> i64 {
        picd.db()
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
            .unwrap()
    };
    let before = entries();
    clients.check_all(&table).await;
    // Every refused change is on record exactly once (the guard's refusals by the audit
    // layer, the others by the route), and so is a peer's read of an admin route.
    let changes = table
        .iter()
        .filter(|r| r.method != Method::GET || matches!(r.who, Who::Peer))
        .count();
    assert_eq!(
        entries() - before,
        changes as i64,
        "one audit entry per refused change or peer's read"
    );
    let by_route: i64 = picd
        .db()
        .query_row(
            "SELECT COUNT(*) FROM audit_log
             WHERE target_type IN ('mail_alias', 'mail_quota') AND result = 'failure'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(by_route >= 10, "the routes' own refusals: {by_route}");
    let aliases: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM mail_aliases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(aliases, 0, "a refused request made an alias");
    assert_no_internal_errors(&picd);
}

/// Mail's certificate names mail.<cell domain>: an install before the domain is set (a cell
/// whose settings row is not written) is refused with 409 setup_required, nothing recorded.
#[tokio::test]
async fn mail_is_not_installed_before_the_cell_has_a_domain() {
    let (picd, admin) = picd_with_admin_using(no_engine()).await;
    picd.db()
        .execute("DELETE FROM cell_config WHERE id = 1", [])
        .unwrap();
    let resp = admin
        .send_json(Method::POST, INSTALL, &json!({ "id": "mail" }))
        .await;
    let (status, code) = SETUP_REQUIRED;
    let status = StatusCode::from_u16(status).unwrap();
    expect_error(resp, status, code).await;
    let installed: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM services_installed", [], |r| r.get(0))
        .unwrap();
    assert_eq!(installed, 0, "mail was installed without a domain");
    assert_no_internal_errors(&picd);
}
