//! Users and passwords: the peer role refused on admin routes, login throttling, password
//! change and resets (over the API and with `picd admin reset-password`).

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const NEW_ADMIN_PASSWORD: &str = "a brand new admin password";
const NEW_PEER_PASSWORD: &str = "alice's replacement password";
const WRONG_PASSWORD: &str = "certainly not the password";
/// Failed logins for one username before 429 (the default setting).
const FAILURES_PER_USER: usize = 5;

#[tokio::test]
async fn a_peer_is_refused_on_admin_routes() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    let users_before = users_snapshot(&picd.db());
    let (_, config_before) = admin.get_json("/api/config").await;

    for path in [
        "/api/status",
        "/api/config",
        "/api/health/history",
        "/api/audit",
        "/api/audit/export?format=csv",
        "/api/audit/verify",
        "/api/auth/users",
    ] {
        let resp = peer.get(path).await;
        expect_error(resp, StatusCode::FORBIDDEN, "admin_only").await;
    }
    let before = audit_count(&picd.db());
    let resp = peer
        .send_json(Method::PUT, "/api/config", &config_before)
        .await;
    expect_error(resp, StatusCode::FORBIDDEN, "admin_only").await;
    let resp = peer
        .send_json(
            Method::POST,
            "/api/auth/admin/reset-password",
            &json!({ "username": ADMIN_USER, "new_password": NEW_ADMIN_PASSWORD }),
        )
        .await;
    expect_error(resp, StatusCode::FORBIDDEN, "admin_only").await;
    let db = picd.db();
    assert_eq!(audit_count(&db), before + 2);
    let entry = last_audit(&db);
    assert_eq!(
        (entry.actor.as_str(), entry.result.as_str()),
        (PEER_USER, "denied")
    );

    // What a peer may use: its own account.
    let (status, me) = peer.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["role"], "peer");
    // And an admin is no peer.
    let resp = admin.get("/api/peer/profile").await;
    expect_error(resp, StatusCode::FORBIDDEN, "peer_only").await;

    assert_eq!(users_snapshot(&db), users_before);
    let (_, config_after) = admin.get_json("/api/config").await;
    assert_eq!(config_after, config_before);
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let (status, users) = admin.get_json("/api/auth/users").await;
    assert_eq!(status, StatusCode::OK);
    let text = users.to_string();
    assert!(
        text.contains(PEER_USER) && !text.contains("argon2"),
        "{text}"
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_per_username() {
    let (picd, admin, _peer) = picd_with_admin_and_peer().await;
    let client = picd.client();
    for _ in 0..FAILURES_PER_USER {
        let resp = client.login(ADMIN_USER, WRONG_PASSWORD).await;
        expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // Now even the right password is refused, for the name in any case.
    for name in [ADMIN_USER, "ADMIN"] {
        let resp = client.login(name, ADMIN_PASSWORD).await;
        let retry_after: u64 = resp
            .headers()
            .get("retry-after")
            .expect("Retry-After header")
            .to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let body = expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        assert_eq!(body["retry_after"], retry_after);
    }
    assert!(
        client.session_cookie().is_none(),
        "a throttled login signed in"
    );

    // Other usernames are unaffected, and so are sessions already open.
    let resp = client.login(PEER_USER, WRONG_PASSWORD).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    picd.client().login_ok(PEER_USER, PEER_PASSWORD).await;
    let (status, _) = admin.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    let entry = last_audit(&picd.db());
    assert_eq!(entry.action, "auth.login");
}

#[tokio::test]
async fn failed_logins_are_also_bounded_per_client_address() {
    const PER_ADDRESS: usize = 6;
    // Caddy's socket, where X-Forwarded-For names the client.
    let socket = common::socket::PicdSocket::new();
    let options = socket.options(PicdOptions {
        env: vec![(
            "PICD_LOGIN_FAILURES_PER_ADDRESS".into(),
            PER_ADDRESS.to_string(),
        )],
        ..PicdOptions::default()
    });
    let (picd, _admin) = picd_with_admin_using(options).await;
    let client = picd.client_from("127.0.0.2");
    for i in 0..PER_ADDRESS {
        let resp = client.login(&format!("guess{i}"), WRONG_PASSWORD).await;
        expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let resp = client.login(ADMIN_USER, ADMIN_PASSWORD).await;
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another client behind Caddy (on picd's socket) is another address.
    let credentials = json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }).to_string();
    let resp = socket.request(
        "POST",
        "/api/auth/login",
        &["X-Forwarded-For: 203.0.113.9"],
        Some(&credentials),
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(last_audit(&picd.db()).client_addr, "203.0.113.9");
    // Another client address on TCP is not throttled either.
    picd.client_from("127.0.0.3")
        .login_ok(ADMIN_USER, ADMIN_PASSWORD)
        .await;
    assert_eq!(last_audit(&picd.db()).client_addr, "127.0.0.3");
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    let (picd, admin) = picd_with_admin().await;
    let laptop = picd.client();
    laptop.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let change = async |current: &str, new: &str| {
        admin
            .post_with_csrf(
                "/api/auth/change-password",
                &json!({ "current_password": current, "new_password": new }),
            )
            .await
    };

    let body = expect_error(
        change(WRONG_PASSWORD, NEW_ADMIN_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["current_password"].is_string(), "{body}");
    let body = expect_error(
        change(ADMIN_PASSWORD, "short").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["new_password"].is_string(), "{body}");
    let (status, _) = laptop.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK, "a refused change ended a session");

    let (status, body) = json_of(change(ADMIN_PASSWORD, NEW_ADMIN_PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["other_sessions_ended"], 1);
    let (status, _) = admin.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK, "the changing session stays");
    let resp = laptop.get("/api/auth/me").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = laptop.login(ADMIN_USER, ADMIN_PASSWORD).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    laptop.login_ok(ADMIN_USER, NEW_ADMIN_PASSWORD).await;
    let entry = last_audit(&picd.db());
    assert_eq!(entry.action, "auth.login");
}

#[tokio::test]
async fn an_admin_resets_another_users_password() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    let reset = async |username: &str, password: &str| {
        admin
            .send_json(
                Method::POST,
                "/api/auth/admin/reset-password",
                &json!({ "username": username, "new_password": password }),
            )
            .await
    };
    let users_before = users_snapshot(&picd.db());
    // Not one's own: that is change-password, which asks for the current password.
    let resp = reset(ADMIN_USER, NEW_ADMIN_PASSWORD).await;
    expect_error(resp, StatusCode::FORBIDDEN, "use_change_password").await;
    let entry = last_audit(&picd.db());
    assert_eq!(
        (entry.action.as_str(), entry.result.as_str()),
        ("auth.admin.reset_password", "denied")
    );
    let resp = reset("nobody", NEW_PEER_PASSWORD).await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let body = expect_error(
        reset(PEER_USER, "short").await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(body["fields"]["new_password"].is_string(), "{body}");
    assert_eq!(users_snapshot(&picd.db()), users_before);

    let (status, body) = json_of(reset(PEER_USER, NEW_PEER_PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sessions_ended"], 1);
    let resp = peer.get("/api/auth/me").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = peer.login(PEER_USER, PEER_PASSWORD).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    peer.login_ok(PEER_USER, NEW_PEER_PASSWORD).await;
    // Only the peer's row changed.
    let after = users_snapshot(&picd.db());
    let admin_row = |rows: &Vec<Vec<String>>| rows.iter().find(|r| r[1] == ADMIN_USER).cloned();
    assert_eq!(admin_row(&after), admin_row(&users_before));
    assert_ne!(after, users_before);
}

#[tokio::test]
async fn picd_admin_reset_password_reads_the_password_from_stdin() {
    let (picd, admin) = picd_with_admin().await;
    let state = picd.state_dir();
    let state = state.to_str().unwrap();
    let reset = |user: &str, input: &str| {
        picd_cli(
            &["admin", "reset-password", user, "--state-dir", state],
            Some(input),
        )
    };
    let users_before = users_snapshot(&picd.db());
    let out = reset(ADMIN_USER, "short\n");
    assert!(!out.status.success(), "a short password was accepted");
    assert!(stderr_of(&out).contains("password"), "{}", stderr_of(&out));
    let out = reset("nobody", &format!("{NEW_ADMIN_PASSWORD}\n"));
    assert!(!out.status.success(), "an unknown user was accepted");
    assert!(stderr_of(&out).contains("not found"), "{}", stderr_of(&out));
    assert_eq!(users_snapshot(&picd.db()), users_before);
    let (status, _) = admin.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK);

    let out = reset(ADMIN_USER, &format!("{NEW_ADMIN_PASSWORD}\n"));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains(ADMIN_USER), "{}", stdout_of(&out));
    let entry = last_audit(&picd.db());
    assert_eq!(entry.action, "auth.admin.reset_password");
    assert_eq!(
        (entry.actor.as_str(), entry.result.as_str()),
        ("cli", "success")
    );
    assert!(!entry.detail.to_string().contains(NEW_ADMIN_PASSWORD));

    let resp = admin.get("/api/auth/me").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = admin.login(ADMIN_USER, ADMIN_PASSWORD).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    admin.login_ok(ADMIN_USER, NEW_ADMIN_PASSWORD).await;
}
