//! The setup wizard over HTTP, driven by the session that claimed it with the setup code: the
//! full flow, field-level errors that keep the wizard on its step, order, completion, and the
//! gate that refuses everything else until setup is done. (Who may claim: setup_claim.rs.)

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A password that must never come back in a response.
const SHORT_PASSWORD: &str = "tiny-pw";

async fn current_step(client: &TestClient) -> String {
    let (status, body) = client.get_json("/api/setup/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["current_step"].as_str().expect("current_step").into()
}

async fn post_step(client: &TestClient, step: &str, data: Value) -> reqwest::Response {
    client
        .setup_post("/api/setup/step", &json!({ "step": step, "data": data }))
        .await
}

#[tokio::test]
async fn the_full_wizard_creates_the_admin_and_the_cell() {
    let picd = Picd::start().await;
    let client = picd.client();
    client.claim_setup().await;

    let (status, body) = client.get_json("/api/setup/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["complete"], false);
    assert_eq!(body["current_step"], "admin");
    assert_eq!(
        body["steps"],
        json!(["admin", "cell", "dns", "tls", "review"])
    );
    assert_eq!(body["completed_steps"], json!([]));
    assert_eq!(body["claimed"], true, "{body}");

    for (step, data, next) in [
        ("admin", admin_step(), "cell"),
        ("cell", cell_step(), "dns"),
        ("dns", dns_step(), "tls"),
        ("tls", tls_step(), "review"),
    ] {
        let (status, body) = json_of(post_step(&client, step, data).await).await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
        assert_eq!(body["accepted"], true);
        assert_eq!(body["current_step"], next, "{body}");
    }

    // The review shows everything entered, never the password.
    let resp = client.get("/api/setup/step?step=review").await;
    let text = resp.text().await.unwrap();
    assert!(!text.contains(ADMIN_PASSWORD), "{text}");
    let review: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(review["data"]["admin"]["username"], ADMIN_USER);
    assert_eq!(review["data"]["cell"], cell_step());
    assert_eq!(review["data"]["dns"], dns_step());
    assert_eq!(review["data"]["tls"], tls_step());
    assert_eq!(
        review["completed_steps"],
        json!(["admin", "cell", "dns", "tls"])
    );

    let (status, done) = json_of(client.setup_post("/api/setup/complete", &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["complete"], true);
    assert_eq!(done["user"]["username"], ADMIN_USER);
    assert_eq!(done["user"]["role"], "admin");
    assert!(done["csrf_token"].as_str().is_some_and(|t| t.len() >= 32));

    // The wizard ends signed in as the new admin.
    let (status, me) = client.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["username"], ADMIN_USER);
    let (_, status_body) = client.get_json("/api/setup/status").await;
    assert_eq!(status_body["complete"], true);
    assert!(status_body["completed_at"].is_string());
    assert!(status_body.get("claimed").is_none(), "{status_body}");

    let (status, config) = client.get_json("/api/config").await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["cell"], cell_step());
    assert_eq!(config["dns"], dns_step());

    let db = picd.db();
    let (role, hash): (String, String) = db
        .query_row(
            "SELECT role, password_hash FROM users WHERE username = ?1",
            [ADMIN_USER],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(role, "admin");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    // The draft held the password hash until completion; it must be gone now.
    let draft: String = db
        .query_row("SELECT draft FROM setup_state", [], |r| r.get(0))
        .unwrap();
    assert_eq!(draft, "{}");
    let actions: Vec<(String, String, String)> = db
        .prepare("SELECT action, actor, result FROM audit_log ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let step = |actor: &str| ("setup.step".into(), actor.into(), "success".into());
    assert_eq!(
        actions,
        vec![
            ("setup.claim".into(), "setup".into(), "success".into()),
            step("setup"),
            step("setup"),
            step("setup"),
            step("setup"),
            ("setup.complete".into(), ADMIN_USER.into(), "success".into()),
        ]
    );
}

#[tokio::test]
async fn bad_step_input_is_refused_field_by_field_and_the_wizard_stays() {
    let picd = Picd::start().await;
    let client = picd.client();
    client.claim_setup().await;

    let resp = post_step(
        &client,
        "admin",
        json!({ "username": "Bad User", "password": SHORT_PASSWORD }),
    )
    .await;
    let text = resp.text().await.unwrap();
    assert!(!text.contains(SHORT_PASSWORD), "password echoed: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], "validation_failed", "{body}");
    assert_eq!(field_names(&body), ["password", "username"]);
    assert_eq!(current_step(&client).await, "admin");
    let resp = post_step(&client, "admin", json!("not an object")).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(current_step(&client).await, "admin");

    let resp = post_step(&client, "admin", admin_step()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let bad_cell = json!({
        "name": "Not A Label", "domain": "x", "public_endpoint": "127.0.0.1",
        "wireguard_port": 70000, "subnet_v4": "8.8.8.0/24", "subnet_v6": "2001:db8::/64",
        "extra": 1
    });
    let body = expect_error(
        post_step(&client, "cell", bad_cell).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(
        field_names(&body),
        [
            "domain",
            "extra",
            "name",
            "public_endpoint",
            "subnet_v4",
            "subnet_v6",
            "wireguard_port"
        ]
    );
    assert_eq!(current_step(&client).await, "cell");
    let mut missing_port = cell_step();
    missing_port
        .as_object_mut()
        .unwrap()
        .remove("wireguard_port");
    let body = expect_error(
        post_step(&client, "cell", missing_port).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(field_names(&body), ["wireguard_port"]);
    assert_eq!(current_step(&client).await, "cell");

    assert_eq!(post_step(&client, "cell", cell_step()).await.status(), 200);
    let body = expect_error(
        post_step(
            &client,
            "dns",
            json!({ "upstreams": ["nope"], "split_horizon": 1 }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(field_names(&body), ["split_horizon", "upstreams[0]"]);
    assert_eq!(current_step(&client).await, "dns");

    // Nothing was created by the refused steps.
    let users: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 0);
    let (_, status) = client.get_json("/api/setup/status").await;
    assert_eq!(status["complete"], false);
}

#[tokio::test]
async fn steps_out_of_order_are_a_conflict() {
    let picd = Picd::start().await;
    let client = picd.client();
    client.claim_setup().await;
    for step in ["cell", "dns", "review"] {
        let resp = post_step(&client, step, json!({})).await;
        expect_error(resp, StatusCode::CONFLICT, "step_out_of_order").await;
    }
    let resp = client.setup_post("/api/setup/complete", &json!({})).await;
    expect_error(resp, StatusCode::CONFLICT, "setup_incomplete").await;
    assert_eq!(current_step(&client).await, "admin");

    assert_eq!(
        post_step(&client, "admin", admin_step()).await.status(),
        200
    );
    let resp = post_step(&client, "dns", dns_step()).await;
    expect_error(resp, StatusCode::CONFLICT, "step_out_of_order").await;
    assert_eq!(current_step(&client).await, "cell");
    let resp = client.setup_post("/api/setup/complete", &json!({})).await;
    expect_error(resp, StatusCode::CONFLICT, "setup_incomplete").await;
}

#[tokio::test]
async fn after_completion_the_wizard_changes_nothing() {
    let (picd, admin) = picd_with_admin().await;
    let users_before = users_snapshot(&picd.db());
    let (_, config_before) = admin.get_json("/api/config").await;

    let resp = admin.setup_post("/api/setup/complete", &json!({})).await;
    expect_error(resp, StatusCode::CONFLICT, "setup_complete").await;
    let intruder = json!({ "username": "mallory", "password": "mallory's new password" });
    let resp = post_step(&admin, "admin", intruder.clone()).await;
    expect_error(resp, StatusCode::CONFLICT, "setup_complete").await;
    let mut other_cell = cell_step();
    other_cell["name"] = json!("other");
    let resp = post_step(&admin, "cell", other_cell).await;
    expect_error(resp, StatusCode::CONFLICT, "setup_complete").await;
    // A stranger without a session gets the same answer.
    let stranger = picd.client();
    let resp = post_step(&stranger, "admin", intruder).await;
    expect_error(resp, StatusCode::CONFLICT, "setup_complete").await;
    let resp = stranger.get("/api/setup/step").await;
    expect_error(resp, StatusCode::CONFLICT, "setup_complete").await;

    assert_eq!(users_snapshot(&picd.db()), users_before);
    let (_, config_after) = admin.get_json("/api/config").await;
    assert_eq!(config_after, config_before);
    stranger.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let resp = stranger.login("mallory", "mallory's new password").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn before_completion_everything_else_answers_setup_required() {
    let picd = Picd::start().await;
    let client = picd.client();
    let routes = [
        (Method::POST, "/api/auth/login"),
        (Method::POST, "/api/auth/logout"),
        (Method::GET, "/api/auth/me"),
        (Method::GET, "/api/auth/csrf-token"),
        (Method::POST, "/api/auth/change-password"),
        (Method::POST, "/api/auth/admin/reset-password"),
        (Method::GET, "/api/auth/users"),
        (Method::GET, "/api/status"),
        (Method::GET, "/api/config"),
        (Method::PUT, "/api/config"),
        (Method::GET, "/api/health/history"),
        (Method::GET, "/api/audit"),
        (Method::GET, "/api/audit/export?format=csv"),
        (Method::GET, "/api/audit/verify"),
        (Method::GET, "/api/no-such-thing"),
        (Method::DELETE, "/api/peers/alice"),
    ];
    for (method, path) in routes {
        let resp = client
            .http
            .request(method.clone(), client.url(path))
            .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }))
            .send()
            .await
            .unwrap();
        let body = expect_error(resp, StatusCode::FORBIDDEN, "setup_required").await;
        assert!(body.get("fields").is_none(), "{method} {path}: {body}");
    }

    // What stays open: /health, the wizard's page and API, and the pages it needs.
    let (status, health) = client.get_json("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["setup_complete"], false);
    for page in ["/setup", "/login"] {
        let resp = client.get(page).await;
        assert_eq!(resp.status(), StatusCode::OK, "{page}");
        let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.starts_with("text/html"), "{page}: {kind}");
    }
    let resp = client.get("/").await;
    assert_eq!(resp.url().path(), "/setup", "/ leads to the wizard");
    assert_eq!(current_step(&client).await, "admin");
}

#[tokio::test]
async fn setup_step_query_is_validated() {
    let picd = Picd::start().await;
    let client = picd.client();
    client.claim_setup().await;
    let resp = client.get("/api/setup/step?step=bogus").await;
    let body = expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(field_names(&body), ["step"]);
    let resp = client.get("/api/setup/step?nonsense=1").await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_query").await;
    let (status, body) = client.get_json("/api/setup/step").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["step"], "admin");
    assert_eq!(body["data"], Value::Null);
}

#[tokio::test]
async fn the_tls_step_refuses_lets_encrypt_for_a_private_domain_and_keeps_the_choice() {
    let picd = Picd::start().await;
    let client = picd.client();
    client.claim_setup().await;
    for (step, data) in [
        ("admin", admin_step()),
        ("cell", cell_step()),
        ("dns", dns_step()),
    ] {
        assert_eq!(post_step(&client, step, data).await.status(), 200, "{step}");
    }
    // home.example is not a public domain: Let's Encrypt would never issue for it.
    let body = expect_error(
        post_step(&client, "tls", json!({ "mode": "acme" })).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(field_names(&body), ["mode"]);
    let body = expect_error(
        post_step(
            &client,
            "tls",
            json!({ "mode": "acme", "acme_email": "not an address", "acme_ca": "ftp://ca" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(field_names(&body), ["acme_ca", "acme_email"]);
    assert_eq!(current_step(&client).await, "tls");

    // The cell's own ACME CA may issue for it.
    let own_ca = json!({
        "mode": "acme",
        "acme_email": "ops@home.example",
        "acme_ca": "https://ca.home.example/acme/directory",
    });
    assert_eq!(
        post_step(&client, "tls", own_ca.clone()).await.status(),
        200
    );
    let (status, done) = json_of(client.setup_post("/api/setup/complete", &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let (_, config) = client.get_json("/api/config").await;
    assert_eq!(config["tls"], own_ca);
}
