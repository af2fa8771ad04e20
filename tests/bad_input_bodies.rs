//! Bad request bodies on every endpoint that takes one: malformed JSON, wrong JSON types,
//! missing and unknown fields, a wrong content type and an oversize body. Each is answered
//! with a 4xx and the API's JSON error shape, never a 500, and nothing stored changes.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

const NEW_PASSWORD: &str = "a perfectly good new password";
const WRONG_PASSWORD: &str = "not anybody's password";

const MALFORMED: (u16, &str) = (400, "malformed_json");
const UNSUPPORTED: (u16, &str) = (415, "unsupported_media_type");
const INVALID_BODY: (u16, &str) = (422, "invalid_body");
const INVALID_FIELDS: (u16, &str) = (400, "validation_failed");
const CSRF_INVALID: (u16, &str) = (403, "csrf_invalid");

/// JSON nested past serde_json's recursion limit.
fn deeply_nested() -> Body {
    raw(JSON, format!("{}{}", "[".repeat(1000), "]".repeat(1000)))
}

/// What every JSON endpoint must refuse the same way, whatever it expects; `good` is a body
/// it would parse, sent with the wrong content type.
fn bad_bodies(who: Who, method: Method, path: &str, good: &Value) -> Vec<Refused> {
    let good = good.to_string();
    let oversize = format!("\"{}\"", "x".repeat(DEFAULT_BODY_LIMIT));
    let form = Some("application/x-www-form-urlencoded");
    [
        (raw(JSON, "{\"unterminated"), MALFORMED),
        (raw(JSON, ""), MALFORMED),
        (raw(JSON, b"{\"\xff\xfe\": 1}"), MALFORMED),
        (raw(Some("text/plain"), &good), UNSUPPORTED),
        (raw(None, &good), UNSUPPORTED),
        (raw(form, "username=admin"), UNSUPPORTED),
        (raw(JSON, oversize), (413, "payload_too_large")),
    ]
    .into_iter()
    .map(|(body, answer)| refused(who, method.clone(), path, body, answer))
    .collect()
}

/// Endpoints with a typed body: wrong types, missing and unknown fields are 422.
fn typed_bodies(who: Who, path: &str, fields: &[&str]) -> Vec<Refused> {
    let full: Map<String, Value> = fields
        .iter()
        .map(|f| (f.to_string(), json!(NEW_PASSWORD)))
        .collect();
    let mut bodies = vec![json!([]), json!(null), json!("a string"), json!(42)];
    for field in fields {
        let mut wrong_type = full.clone();
        wrong_type.insert(field.to_string(), json!(12345));
        bodies.push(Value::Object(wrong_type));
        let mut missing = full.clone();
        missing.remove(*field);
        bodies.push(Value::Object(missing));
    }
    let mut unknown = full.clone();
    unknown.insert("is_admin".into(), json!(true));
    bodies.push(Value::Object(unknown));

    let mut table = bad_bodies(who, Method::POST, path, &Value::Object(full));
    for body in bodies {
        table.push(refused(
            who,
            Method::POST,
            path,
            Body::Json(body),
            INVALID_BODY,
        ));
    }
    // A typed body refuses an array at its first element, before any depth is reached.
    table.push(refused(
        who,
        Method::POST,
        path,
        deeply_nested(),
        INVALID_BODY,
    ));
    table
}

/// PUT /api/config validates field by field: 400 with the fields named.
fn config_bodies(config: &Value) -> Vec<Refused> {
    let mut bodies = Vec::new();
    for (pointer, value) in [
        ("/cell/wireguard_port", json!("51820")),
        ("/cell/wireguard_port", json!(-1)),
        ("/cell/wireguard_port", json!(1e300)),
        ("/cell/subnet_v4", json!(["10.77.0.0/24"])),
        ("/cell/name", json!(null)),
        ("/dns/split_horizon", json!("true")),
        ("/dns/upstreams", json!("127.0.0.1:9")),
        ("/cell", json!("home")),
    ] {
        let mut body = config.clone();
        *body.pointer_mut(pointer).expect(pointer) = value;
        bodies.push(body);
    }
    let mut without_dns = config.clone();
    without_dns.as_object_mut().unwrap().remove("dns");
    let mut without_domain = config.clone();
    without_domain["cell"]
        .as_object_mut()
        .unwrap()
        .remove("domain");
    let mut unknown = config.clone();
    unknown["owner"] = json!("mallory");
    let mut unknown_in_cell = config.clone();
    unknown_in_cell["cell"]["mtu"] = json!(1420);
    bodies.extend([
        without_dns,
        without_domain,
        unknown,
        unknown_in_cell,
        json!([]),
        json!(null),
    ]);

    let path = "/api/config";
    let mut table = bad_bodies(Who::Admin, Method::PUT, path, config);
    for body in bodies {
        table.push(refused(
            Who::Admin,
            Method::PUT,
            path,
            Body::Json(body),
            INVALID_FIELDS,
        ));
    }
    table.push(refused(
        Who::Admin,
        Method::PUT,
        path,
        deeply_nested(),
        MALFORMED,
    ));
    table
}

#[tokio::test]
async fn bad_bodies_are_a_json_4xx_and_change_nothing() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    let (_, config) = clients.admin.get_json("/api/config").await;
    let users = users_snapshot(&picd.db());

    let mut table = typed_bodies(Who::Anonymous, "/api/auth/login", &["username", "password"]);
    let change = ["current_password", "new_password"];
    table.extend(typed_bodies(
        Who::Admin,
        "/api/auth/change-password",
        &change,
    ));
    let reset = ["username", "new_password"];
    table.extend(typed_bodies(
        Who::Admin,
        "/api/auth/admin/reset-password",
        &reset,
    ));
    table.extend(config_bodies(&config));
    clients.check_all(&table).await;

    let (status, after) = clients.admin.get_json("/api/config").await;
    assert_eq!(status, StatusCode::OK, "the admin's session is gone");
    assert_eq!(after, config);
    assert_eq!(users_snapshot(&picd.db()), users);
    let (status, _) = clients.peer.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK, "the peer's session is gone");
    // The password is unchanged, and refused bodies did not count as failed logins.
    picd.client().login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let resp = picd.client().login(ADMIN_USER, WRONG_PASSWORD).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_no_internal_errors(&picd);
}

#[tokio::test]
async fn bad_bodies_to_the_wizard_are_a_json_4xx_and_change_nothing() {
    let picd = Picd::start().await;
    let clients = Clients::before_setup(&picd).await;
    let setup_state = || -> (String, String) {
        picd.db()
            .query_row("SELECT current_step, draft FROM setup_state", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
    };
    let before = setup_state();

    let path = "/api/setup/step";
    let step = json!({ "step": "admin", "data": admin_step() });
    let mut table = bad_bodies(Who::Admin, Method::POST, path, &step);
    for (body, answer) in [
        (json!({ "step": 5, "data": admin_step() }), INVALID_FIELDS),
        (
            json!({ "step": "admin", "data": admin_step(), "extra": 1 }),
            INVALID_FIELDS,
        ),
        (json!({ "step": "admin" }), INVALID_FIELDS),
        (
            json!({ "step": "admin", "data": { "username": ADMIN_USER } }),
            INVALID_FIELDS,
        ),
        (
            json!({ "step": "admin", "data": { "username": 7, "password": [] } }),
            INVALID_FIELDS,
        ),
        (json!({ "step": "nonsense", "data": {} }), INVALID_FIELDS),
        (json!([]), INVALID_FIELDS),
        (
            json!({ "step": "cell", "data": cell_step() }),
            (409, "step_out_of_order"),
        ),
    ] {
        table.push(refused(
            Who::Admin,
            Method::POST,
            path,
            Body::Json(body),
            answer,
        ));
    }
    table.push(refused(
        Who::Admin,
        Method::POST,
        path,
        deeply_nested(),
        MALFORMED,
    ));
    let complete = "/api/setup/complete";
    let incomplete = (409, "setup_incomplete");
    table.push(refused(
        Who::Admin,
        Method::POST,
        complete,
        Body::Empty,
        incomplete,
    ));
    // Whoever has not claimed the wizard gets no further, whatever the body; the owner's
    // session without the claim's CSRF token neither.
    let unclaimed = (401, "setup_token_required");
    for (who, answer) in [
        (Who::Anonymous, unclaimed),
        (Who::AdminNoCsrf, CSRF_INVALID),
    ] {
        table.push(refused(
            who,
            Method::POST,
            path,
            Body::Json(step.clone()),
            answer,
        ));
        table.push(refused(
            who,
            Method::POST,
            path,
            raw(JSON, "{\"bad"),
            answer,
        ));
        table.push(refused(who, Method::POST, complete, Body::Empty, answer));
    }
    // The claim itself: typed body, bad JSON, and codes that cannot be right (a few: they
    // count towards the per-address throttle).
    table.extend(typed_bodies(Who::Anonymous, "/api/setup/claim", &["token"]));
    for token in ["", "not-a-code", &"7".repeat(10_000)] {
        table.push(refused(
            Who::Anonymous,
            Method::POST,
            "/api/setup/claim",
            Body::Json(json!({ "token": token })),
            (403, "invalid_setup_token"),
        ));
    }
    clients.check_all(&table).await;

    assert_eq!(setup_state(), before);
    let users: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 0);
    assert_no_internal_errors(&picd);
}
