//! Sessions: login and logout, a session that survives a restart, a new session id at login,
//! the cookie's flags, and the CSRF check on mutating routes.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WRONG_PASSWORD: &str = "not the admin's password";
/// A well-formed session id (22 characters of URL-safe base64) that no session has.
const PLANTED_SESSION_ID: &str = "AAAAAAAAAAAAAAAAAAAAAA";

/// The `Set-Cookie` header of the session cookie in a response.
fn session_set_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{SESSION_COOKIE}=")))
        .map(str::to_string)
}

fn has_attribute(cookie: &str, attribute: &str) -> bool {
    cookie
        .split(';')
        .map(str::trim)
        .any(|a| a.eq_ignore_ascii_case(attribute))
}

#[tokio::test]
async fn login_and_logout() {
    let (picd, _admin) = picd_with_admin().await;
    let client = picd.client();

    let wrong = expect_error(
        client.login(ADMIN_USER, WRONG_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    // An unknown user gets the very same answer: the API does not confirm usernames.
    let unknown = expect_error(
        client.login("nobody", WRONG_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong, unknown);
    let resp = client.get("/api/auth/me").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let resp = client.login(ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("argon2"), "a hash leaked: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["user"]["username"], ADMIN_USER);
    assert_eq!(body["user"]["role"], "admin");
    assert!(body["user"].get("password_hash").is_none());
    let (status, me) = client.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["username"], ADMIN_USER);
    assert!(me["session"]["absolute_expiry"].is_string(), "{me}");

    let (status, out) = json_of(client.logout().await).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let resp = client.get("/api/auth/me").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = client.post_json("/api/auth/logout", &json!({})).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn a_session_survives_a_restart_of_picd() {
    let (mut picd, admin) = picd_with_admin().await;
    let token = admin.csrf_token().await;
    let cookie = admin.session_cookie().expect("a session cookie");

    picd.restart().await;

    assert_eq!(admin.session_cookie().as_deref(), Some(cookie.as_str()));
    let (status, me) = admin.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["username"], ADMIN_USER);
    // The session's CSRF token was stored with it.
    assert_eq!(admin.csrf_token().await, token);
    let (_, config) = admin.get_json("/api/config").await;
    let resp = admin
        .http
        .put(admin.url("/api/config"))
        .header("x-csrf-token", &token)
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_session_id_changes_at_login() {
    let (picd, admin) = picd_with_admin().await;
    let before = admin.session_cookie().expect("the wizard's session");
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let after = admin.session_cookie().expect("a session after login");
    assert_ne!(before, after);
    let db = picd.db();
    assert!(session_stored(&db, &after));
    assert!(!session_stored(&db, &before), "the old session id lives on");
    let holder_of_old_id = picd.client();
    holder_of_old_id.set_session_cookie(&before);
    let resp = holder_of_old_id.get("/api/auth/me").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Session fixation: an id planted in the browser before login is not the one signed in.
    let victim = picd.client();
    victim.set_session_cookie(PLANTED_SESSION_ID);
    victim.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let signed_in = victim.session_cookie().expect("a session");
    assert_ne!(signed_in, PLANTED_SESSION_ID);
    assert!(!session_stored(&db, PLANTED_SESSION_ID));
    let attacker = picd.client();
    attacker.set_session_cookie(PLANTED_SESSION_ID);
    let resp = attacker.get("/api/auth/me").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn logout_destroys_the_session() {
    let (picd, admin) = picd_with_admin().await;
    let cookie = admin.session_cookie().expect("a session");
    assert!(session_stored(&picd.db(), &cookie));

    let resp = admin.logout().await;
    assert_eq!(resp.status(), StatusCode::OK);
    let removal = session_set_cookie(&resp).expect("the cookie is removed");
    assert!(has_attribute(&removal, "Max-Age=0"), "{removal}");

    assert!(!session_stored(&picd.db(), &cookie));
    // Someone who kept a copy of the cookie cannot use it any more.
    let copy = picd.client();
    copy.set_session_cookie(&cookie);
    let resp = copy.get("/api/config").await;
    // The stale cookie is also taken back from the browser that still sends it.
    let removal = session_set_cookie(&resp).expect("the stale cookie is removed");
    assert!(has_attribute(&removal, "Max-Age=0"), "{removal}");
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    copy.set_session_cookie(&cookie);
    let resp = copy.get("/api/auth/me").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn login_cookie(picd: &Picd, forwarded_proto: Option<&str>) -> String {
    let client = picd.client();
    let mut request = client
        .http
        .post(client.url("/api/auth/login"))
        .json(&json!({
            "username": ADMIN_USER, "password": ADMIN_PASSWORD
        }));
    if let Some(proto) = forwarded_proto {
        request = request.header("x-forwarded-proto", proto);
    }
    let resp = request.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    session_set_cookie(&resp).expect("login sets the session cookie")
}

#[tokio::test]
async fn the_cookie_is_httponly_strict_and_secure_behind_an_https_proxy() {
    let socket = common::socket::PicdSocket::new();
    let (picd, _admin) = picd_with_admin_using(socket.options(PicdOptions::default())).await;
    let plain = login_cookie(&picd, None).await;
    assert!(has_attribute(&plain, "HttpOnly"), "{plain}");
    assert!(has_attribute(&plain, "SameSite=Strict"), "{plain}");
    assert!(has_attribute(&plain, "Path=/"), "{plain}");
    assert!(!has_attribute(&plain, "Secure"), "{plain}");
    // Caddy's word (on picd's socket) that the browser used https counts: the cookie is then
    // the __Host- one.
    let credentials = json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }).to_string();
    let login = |proto: &str| {
        let header = format!("X-Forwarded-Proto: {proto}");
        let answer = socket.request("POST", "/api/auth/login", &[&header], Some(&credentials));
        assert_eq!(answer.status, 200, "{answer:?}");
        // The device cookie comes too; the session cookie is the one that is not it.
        let session = answer
            .header_values("set-cookie")
            .find(|c| !c.starts_with("picd_device="))
            .unwrap_or_default()
            .to_string();
        session
    };
    let https = login("https");
    assert!(
        https.starts_with(&format!("{SECURE_SESSION_COOKIE}=")),
        "{https}"
    );
    assert!(has_attribute(&https, "Secure"), "{https}");
    assert!(has_attribute(&https, "HttpOnly"), "{https}");
    assert!(has_attribute(&https, "SameSite=Strict"), "{https}");
    assert!(has_attribute(&https, "Path=/"), "{https}");
    let http = login("http");
    assert!(http.starts_with(&format!("{SESSION_COOKIE}=")), "{http}");
    assert!(!has_attribute(&http, "Secure"), "{http}");
}

#[tokio::test]
async fn forwarded_https_on_tcp_is_ignored() {
    // Not even from loopback listed as a proxy: on TCP any local process could claim it.
    let options = PicdOptions {
        env: vec![("PICD_TRUSTED_PROXIES".into(), "127.0.0.1".into())],
        ..PicdOptions::default()
    };
    let (picd, _admin) = picd_with_admin_using(options).await;
    let cookie = login_cookie(&picd, Some("https")).await;
    assert!(!has_attribute(&cookie, "Secure"), "{cookie}");
    assert!(has_attribute(&cookie, "HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn csrf_is_required_on_mutating_routes_but_login_and_setup() {
    let (picd, admin) = picd_with_admin().await;
    let (_, config) = admin.get_json("/api/config").await;
    let token = admin.csrf_token().await;
    let other = picd.client();
    let other_token = other.login_ok(ADMIN_USER, ADMIN_PASSWORD).await["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(token, other_token, "every session has its own token");

    let put = |token: Option<&str>| {
        let mut request = admin.http.put(admin.url("/api/config")).json(&config);
        if let Some(t) = token {
            request = request.header("x-csrf-token", t);
        }
        request.send()
    };
    for bad in [None, Some(""), Some("wrong"), Some(other_token.as_str())] {
        let resp = put(bad).await.unwrap();
        expect_error(resp, StatusCode::FORBIDDEN, "csrf_invalid").await;
    }
    assert_eq!(put(Some(&token)).await.unwrap().status(), StatusCode::OK);
    let resp = admin
        .http
        .post(admin.url("/api/no-such-route"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::FORBIDDEN, "csrf_invalid").await;
    let resp = admin
        .send_json(Method::POST, "/api/no-such-route", &json!({}))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;

    // /api/auth/* needs it too (all but login), with this session's token; the finished
    // wizard answers on its own terms.
    let users_before = users_snapshot(&picd.db());
    let change =
        json!({ "current_password": ADMIN_PASSWORD, "new_password": "a new long password" });
    let reset = json!({ "username": ADMIN_USER, "new_password": "a new long password" });
    for (path, body) in [
        ("/api/auth/logout", json!({})),
        ("/api/auth/change-password", change.clone()),
        ("/api/auth/admin/reset-password", reset),
    ] {
        for bad in [None, Some(other_token.as_str())] {
            let mut request = admin.http.post(admin.url(path)).json(&body);
            if let Some(t) = bad {
                request = request.header("x-csrf-token", t);
            }
            let resp = request.send().await.unwrap();
            expect_error(resp, StatusCode::FORBIDDEN, "csrf_invalid").await;
        }
    }
    assert_eq!(users_snapshot(&picd.db()), users_before);
    let (status, _) = admin.get_json("/api/auth/me").await;
    assert_eq!(status, StatusCode::OK, "a refused logout ended the session");
    let resp = admin.post_json("/api/setup/complete", &json!({})).await;
    expect_error(resp, StatusCode::CONFLICT, "setup_complete").await;
    // With the token, they work.
    let resp = admin
        .post_with_csrf(
            "/api/auth/change-password",
            &json!({ "current_password": WRONG_PASSWORD, "new_password": "a new long password" }),
        )
        .await;
    let body = expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(body["fields"]["current_password"].is_string(), "{body}");
    let resp = other.logout().await;
    assert_eq!(resp.status(), StatusCode::OK);
}
