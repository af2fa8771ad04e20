//! Caddy in front of picd, with a real `caddy run` arranged as the package arranges it (its
//! admin API on a socket in a 0750 directory, picd on a socket of its own): the admin UI and
//! /health over https with a certificate from the cell's CA (curl trusts that CA only, no
//! -k); extra routes that make a backend reachable at its host name and unreachable once
//! deleted; a Caddy restarted empty or stopped for a while gets the cell's config back;
//! certificate status and renewal; a login through Caddy from another network namespace
//! records the client's real address and gets the `__Host-` session cookie. (Caddy's admin
//! API and the TLS key out of other users' reach: tests/caddy_admin.rs.)

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::caddy::*;
use common::netns::{eventually, ClientNamespace};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A host name under the cell's domain for the test backend.
const BACKEND_HOST: &str = "files.home.example";
/// A Caddy restarted empty gets picd's config within this (picd reconciles every second).
const REPAIR_WITHIN: Duration = Duration::from_secs(10);
/// An address that is not the test's own, sent as a forged X-Forwarded-For.
const FORGED_ADDR: &str = "198.51.100.66";

async fn add_route(admin: &TestClient, host: &str, upstream: &str) -> (StatusCode, Value) {
    let body = json!({ "host": host, "upstream": upstream });
    json_of(
        admin
            .send_json(Method::POST, "/api/caddy/routes", &body)
            .await,
    )
    .await
}

fn caddy_state(status: &Value) -> Value {
    let subsystems = status["subsystems"].as_array().expect("subsystems");
    let caddy = subsystems.iter().find(|s| s["name"] == "caddy");
    caddy.expect("a caddy subsystem").clone()
}

fn loads(caddy: &Caddy) -> usize {
    caddy.log().matches("\"msg\":\"load complete\"").count()
}

#[tokio::test]
async fn the_cell_is_served_over_https_with_a_certificate_from_its_ca() {
    let cell = CaddyCell::start("127.0.0.1").await;

    let health = cell.expect_served(CELL_DOMAIN, "/health", 200);
    assert_eq!(health.json()["setup_complete"], true, "{health:?}");
    let page = cell.expect_served(CELL_DOMAIN, "/", 200);
    let content_type = page.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{page:?}");
    assert!(page.body.contains("<html"), "not the admin UI: {page:?}");
    assert!(
        page.header("strict-transport-security").is_some(),
        "{page:?}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"), "{page:?}");

    // The certificate is the cell CA's (curl checked the chain); say so from the outside too.
    let ca_subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(&cell.ca_file)
        .output()
        .expect("openssl x509");
    let ca_subject = String::from_utf8_lossy(&ca_subject.stdout);
    let (_, issuer) = cell.served_certificate(CELL_DOMAIN);
    assert_eq!(
        ca_subject.trim().strip_prefix("subject="),
        Some(issuer.as_str())
    );

    // Plain http is redirected to the same host over https.
    let http = cell.curl_http(CELL_DOMAIN, "/login?x=1");
    assert_eq!(http.status, 308, "{http:?}");
    let https = format!("https://{CELL_DOMAIN}:{}/login?x=1", cell.https_port);
    assert_eq!(http.header("location"), Some(https.as_str()), "{http:?}");

    // Idempotent: picd reconciles every second, and an unchanged config is not loaded again.
    let before = loads(&cell.caddy);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(loads(&cell.caddy), before, "{}", cell.caddy.log());
    let (status, body) = cell.admin.get_json("/api/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(caddy_state(&body)["state"], "ok", "{body}");
}

#[tokio::test]
async fn cert_status_reports_the_certificate_and_cert_renew_replaces_it() {
    let cell = CaddyCell::start("127.0.0.1").await;
    let (status, before) = cell.admin.get_json("/api/caddy/cert-status").await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["mode"], "internal", "{before}");
    assert_eq!(before["domain"], CELL_DOMAIN, "{before}");
    assert_eq!(
        before["issuer"],
        format!("{CELL_NAME} cell root CA"),
        "{before}"
    );
    assert_eq!(before["hosts"], json!([CELL_DOMAIN]), "{before}");
    assert!(before["expires_at"].as_str().is_some(), "{before}");
    let days_left = before["days_left"].as_i64().expect("days_left");
    assert!((88..=90).contains(&days_left), "{before}");

    let (old_serial, _) = cell.served_certificate(CELL_DOMAIN);
    let resp = cell
        .admin
        .send_json(Method::POST, "/api/caddy/cert-renew", &json!({}))
        .await;
    let (status, after) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_ne!(after["issued_at"], before["issued_at"], "{after}");
    let renewed = eventually(Duration::from_secs(5), || {
        cell.served_certificate(CELL_DOMAIN).0 != old_serial
    });
    assert!(renewed, "Caddy still serves serial {old_serial}");
    cell.expect_served(CELL_DOMAIN, "/health", 200);
    let entry = last_audit(&cell.picd.db());
    assert_eq!(
        (entry.action.as_str(), entry.result.as_str()),
        ("caddy.cert_renew", "success"),
        "{entry:?}"
    );
    assert_eq!(entry.detail["hosts"], json!([CELL_DOMAIN]), "{entry:?}");
}

#[tokio::test]
async fn a_route_makes_its_backend_reachable_until_it_is_deleted() {
    let cell = CaddyCell::start("127.0.0.1").await;
    let backend = Backend::start();
    let (status, body) = add_route(&cell.admin, BACKEND_HOST, &backend.upstream).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body,
        json!({ "host": BACKEND_HOST, "upstream": backend.upstream })
    );

    // The certificate is issued again to cover the new host; the cell stays served.
    let page = cell.expect_served(BACKEND_HOST, "/", 200);
    assert_eq!(page.body, BACKEND_PAGE, "{page:?}");
    cell.expect_served(CELL_DOMAIN, "/health", 200);
    let (_, cert) = cell.admin.get_json("/api/caddy/cert-status").await;
    assert_eq!(cert["hosts"], json!([BACKEND_HOST, CELL_DOMAIN]), "{cert}");
    let (_, routes) = cell.admin.get_json("/api/caddy/routes").await;
    assert_eq!(routes["routes"], json!([body]), "{routes}");

    let path = format!("/api/caddy/routes/{BACKEND_HOST}");
    let (status, body) = json_of(
        cell.admin
            .send_json(Method::DELETE, &path, &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    cell.expect_not_served(BACKEND_HOST);
    let running = cell.caddy.config().expect("Caddy's config").to_string();
    assert!(!running.contains(BACKEND_HOST), "{running}");
    cell.expect_served(CELL_DOMAIN, "/health", 200);
}

#[tokio::test]
async fn caddy_restarted_empty_or_stopped_gets_the_cells_config_back() {
    let mut cell = CaddyCell::start("127.0.0.1").await;

    cell.caddy.stop();
    cell.caddy.spawn();
    let started = Instant::now();
    cell.expect_served(CELL_DOMAIN, "/health", 200);
    let took = started.elapsed();
    assert!(
        took < REPAIR_WITHIN,
        "Caddy got its config back after {took:?}"
    );

    // Stopped: unavailable with a reason; a route added meanwhile is kept as desired state.
    cell.caddy.stop();
    let (status, body) = cell.admin.get_json("/api/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let caddy = caddy_state(&body);
    assert_eq!(caddy["state"], "unavailable", "{body}");
    let reason = caddy["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&cell.caddy.admin), "{body}");
    let backend = Backend::start();
    let (status, body) = add_route(&cell.admin, BACKEND_HOST, &backend.upstream).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    cell.caddy.spawn();
    let page = cell.expect_served(BACKEND_HOST, "/", 200);
    assert_eq!(page.body, BACKEND_PAGE);
    cell.expect_served(CELL_DOMAIN, "/health", 200);
    let (_, body) = cell.admin.get_json("/api/status").await;
    assert_eq!(caddy_state(&body)["state"], "ok", "{body}");
}

#[tokio::test]
async fn a_login_through_caddy_records_the_clients_real_address() {
    let client = ClientNamespace::create();
    let cell = CaddyCell::start(&client.root_addr).await;
    let credentials = json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }).to_string();
    let forged = format!("X-Forwarded-For: {FORGED_ADDR}");
    let login = cell.curl_in(
        &client.exec(),
        CELL_DOMAIN,
        "/api/auth/login",
        &[
            "-H",
            "content-type: application/json",
            "-H",
            &forged,
            "--data",
            &credentials,
        ],
    );
    assert_eq!(login.status, 200, "{login:?}");
    // The session cookie, beside the device cookie that a good login also sets.
    let session_prefix = format!("{SECURE_SESSION_COOKIE}=");
    let cookie = login
        .header_values("set-cookie")
        .find(|c| c.starts_with(&session_prefix))
        .unwrap_or_default();
    // Over https the cookie has the __Host- prefix: Secure, Path=/, no Domain.
    assert!(
        cookie.starts_with(&format!("{SECURE_SESSION_COOKIE}=")),
        "{login:?}"
    );
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(
        attributes.contains(&"Secure"),
        "no Secure over https: {cookie}"
    );
    assert!(attributes.contains(&"Path=/"), "{cookie}");
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");

    // Caddy connects on picd's socket and names the client in X-Forwarded-For; what the
    // client claimed itself Caddy does not pass on.
    let (status, audit) = cell
        .admin
        .get_json("/api/audit?action=auth.login&limit=1")
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entry = &audit["entries"][0];
    assert_eq!(entry["result"], "success", "{audit}");
    assert_eq!(entry["client_addr"], client.addr.as_str(), "{audit}");

    // Directly over plain http the same login gets the plain name and no Secure flag.
    let direct = cell.picd.client().login(ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(direct.status(), StatusCode::OK);
    let session_prefix = format!("{SESSION_COOKIE}=");
    let cookie = direct
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with(&session_prefix))
        .expect("a session cookie");
    assert!(!cookie.to_ascii_lowercase().contains("secure"), "{cookie}");
}

#[tokio::test]
async fn bad_routes_are_refused_with_json_errors() {
    let (picd, admin) = picd_with_admin().await;
    let (status, body) = add_route(&admin, BACKEND_HOST, "127.0.0.1:8080").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let route = |host: &str, upstream: &str| json!({ "host": host, "upstream": upstream });
    let bad_bodies = [
        (
            route("not a host", "127.0.0.1:8080"),
            400,
            "validation_failed",
        ),
        (
            route("localhost", "127.0.0.1:8080"),
            400,
            "validation_failed",
        ),
        (
            route("x.home.example", "127.0.0.1"),
            400,
            "validation_failed",
        ),
        (
            route("x.home.example", "127.0.0.1:0"),
            400,
            "validation_failed",
        ),
        (
            route("x.home.example", "127.0.0.1:99999"),
            400,
            "validation_failed",
        ),
        (route("x.home.example", "a b:80"), 400, "validation_failed"),
        (
            route("x.home.example", "http://x/:80"),
            400,
            "validation_failed",
        ),
        (route(BACKEND_HOST, "127.0.0.1:9090"), 409, "already_exists"),
        (json!({ "host": "x.home.example" }), 422, "invalid_body"),
        (
            json!({ "host": "x.home.example", "upstream": 80 }),
            422,
            "invalid_body",
        ),
        (
            json!({ "host": "x.home.example", "upstream": "127.0.0.1:80", "tls": true }),
            422,
            "invalid_body",
        ),
    ];
    for (body, status, code) in bad_bodies {
        let resp = admin
            .send_json(Method::POST, "/api/caddy/routes", &body)
            .await;
        let status = StatusCode::from_u16(status).expect("status");
        let error = expect_error(resp, status, code).await;
        if code == "validation_failed" {
            assert!(error["fields"].is_object(), "{body}: {error}");
        }
    }
    let resp = admin
        .send_json(
            Method::DELETE,
            "/api/caddy/routes/nothere.home.example",
            &json!({}),
        )
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let (_, routes) = admin.get_json("/api/caddy/routes").await;
    assert_eq!(
        routes["routes"].as_array().map(Vec::len),
        Some(1),
        "{routes}"
    );
    // No Caddy answers this picd: the renewal is stored, and the answer says Caddy lacks it.
    let resp = admin
        .send_json(Method::POST, "/api/caddy/cert-renew", &json!({}))
        .await;
    let error = expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert_eq!(error["subsystem"], "caddy", "{error}");
    assert_no_internal_errors(&picd);
}
