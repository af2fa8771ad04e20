//! picd's unix socket for Caddy (`serve --listen-socket`, `listen_socket`), with the real
//! binary and `curl --unix-socket` standing in for Caddy: X-Forwarded-For and
//! X-Forwarded-Proto count there and only there (on TCP a forged address does not reach the
//! audit log, even with loopback in `trusted_proxies`); over https the session cookie is
//! `__Host-picd_session` (Secure, Path=/, no Domain), over http `picd_session`, and neither
//! side accepts the other's cookie (a `picd_session` planted by a sibling subdomain does not
//! authenticate an https request); the socket is mode 0660, a stale one is replaced at start,
//! anything else at its path makes picd refuse to start, and it is removed at shutdown; odd
//! forwarded headers never get a 500. Forged forwarded addresses over TCP dodge neither login
//! bound (per address, per username), and `cookie_secure = "never"` with a socket is warned
//! about at start.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use common::socket::PicdSocket;
use common::*;
use reqwest::StatusCode;
use serde_json::json;

/// An address a local process claims to be, on TCP.
const FORGED_ADDR: &str = "198.51.100.66";
/// The client Caddy names on the socket.
const FORWARDED_CLIENT: &str = "203.0.113.77";
/// The address of a socket request that names no client: the local proxy.
const LOCAL_PROXY: &str = "127.0.0.1";
const SOCKET_MODE: u32 = 0o660;

/// A set-up picd serving on a socket too, and the admin's (TCP) client.
struct SocketCell {
    picd: Picd,
    admin: TestClient,
    socket: PicdSocket,
}

async fn start() -> SocketCell {
    let socket = PicdSocket::new();
    let options = socket.options(PicdOptions {
        // Loopback among the trusted proxies must not make TCP clients proxies.
        env: vec![("PICD_TRUSTED_PROXIES".into(), "127.0.0.1,::1".into())],
        ..PicdOptions::default()
    });
    let (picd, admin) = picd_with_admin_using(options).await;
    SocketCell {
        picd,
        admin,
        socket,
    }
}

fn login_body() -> String {
    json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }).to_string()
}

/// The session cookie's name and value in a Set-Cookie header, and its attributes.
/// The session cookie among those a login sets (a good login also sets the device cookie).
fn skip_device_cookie<'a>(mut cookies: impl Iterator<Item = &'a str>) -> &'a str {
    cookies
        .find(|c| !c.starts_with("picd_device="))
        .unwrap_or_default()
}

fn session_cookie(set_cookie: &str) -> (String, String, Vec<String>) {
    let mut parts = set_cookie.split(';').map(|p| p.trim().to_string());
    let pair = parts.next().unwrap_or_default();
    let (name, value) = pair.split_once('=').unwrap_or_default();
    (name.to_string(), value.to_string(), parts.collect())
}

#[tokio::test]
async fn forwarded_headers_are_ignored_on_tcp() {
    let cell = start().await;
    let resp = cell
        .picd
        .client()
        .http
        .post(format!("{}/api/auth/login", cell.picd.base_url()))
        .header("x-forwarded-for", FORGED_ADDR)
        .header("x-forwarded-proto", "https")
        .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::OK);
    let (name, _, attributes) = session_cookie(skip_device_cookie(
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| c.to_str().ok()),
    ));
    assert_eq!(name, SESSION_COOKIE, "{attributes:?}");
    assert!(
        !attributes.iter().any(|a| a.eq_ignore_ascii_case("secure")),
        "{attributes:?}"
    );
    let entry = last_audit(&cell.picd.db());
    assert_eq!(entry.action, "auth.login", "{entry:?}");
    assert_eq!(entry.client_addr, "127.0.0.1", "{entry:?}");
}

/// Failed logins per username and per client address within a minute before 429 (README
/// `login_failures_per_user` and `login_failures_per_address`, the defaults).
const FAILURES_PER_USER: usize = 5;
const FAILURES_PER_ADDRESS: usize = 20;

/// A wrong login over TCP claiming to come from `forged` (X-Forwarded-For and -Proto).
async fn wrong_login_as(client: &TestClient, username: &str, forged: &str) -> reqwest::Response {
    client
        .http
        .post(client.url("/api/auth/login"))
        .header("x-forwarded-for", forged)
        .header("x-forwarded-proto", "https")
        .json(&json!({ "username": username, "password": "not the password" }))
        .send()
        .await
        .expect("login")
}

#[tokio::test]
async fn forged_forwarded_addresses_do_not_dodge_the_login_throttle_on_tcp() {
    let cell = start().await;
    // One local process, a new forged address on every guess, a new username too (so that
    // only the per-address bound can stop it): still one address, 429 on the 21st.
    let guesser = cell.picd.client_from("127.0.0.2");
    for i in 0..FAILURES_PER_ADDRESS {
        let resp = wrong_login_as(&guesser, &format!("guess{i}"), &format!("198.51.100.{i}")).await;
        expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let resp = wrong_login_as(&guesser, "guess-last", "198.51.100.200").await;
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another local address is another client: not throttled by the first one's guesses.
    let other = cell.picd.client_from("127.0.0.3");
    let resp = wrong_login_as(&other, "guess-other", "198.51.100.201").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    // One username, forged addresses rotating: 429 on the 6th, and the admin's right password
    // from yet another forged address waits too (the lock is the username's, not an address's).
    let rotating = cell.picd.client_from("127.0.0.4");
    for i in 0..FAILURES_PER_USER {
        let resp = wrong_login_as(&rotating, ADMIN_USER, &format!("203.0.113.{i}")).await;
        expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let resp = wrong_login_as(&rotating, ADMIN_USER, "203.0.113.99").await;
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // No forged address reached the audit log.
    let forged: i64 = cell
        .picd
        .db()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE client_addr LIKE '198.51.100.%'
             OR client_addr LIKE '203.0.113.%'",
            [],
            |r| r.get(0),
        )
        .expect("counting audit entries");
    assert_eq!(forged, 0);
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn on_the_socket_forwarded_headers_name_the_client_and_https_gets_the_host_cookie() {
    let cell = start().await;
    let forwarded = format!("X-Forwarded-For: {FORWARDED_CLIENT}");
    let https = "X-Forwarded-Proto: https";
    let login = cell.socket.request(
        "POST",
        "/api/auth/login",
        &[&forwarded, https],
        Some(&login_body()),
    );
    assert_eq!(login.status, 200, "{login:?}");
    let (name, secure_session, attributes) =
        session_cookie(skip_device_cookie(login.header_values("set-cookie")));
    assert_eq!(name, SECURE_SESSION_COOKIE, "{login:?}");
    assert!(attributes.iter().any(|a| a == "Secure"), "{attributes:?}");
    assert!(attributes.iter().any(|a| a == "Path=/"), "{attributes:?}");
    assert!(
        !attributes
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain")),
        "{attributes:?}"
    );
    let entry = last_audit(&cell.picd.db());
    assert_eq!(
        (entry.action.as_str(), entry.result.as_str()),
        ("auth.login", "success"),
        "{entry:?}"
    );
    assert_eq!(entry.client_addr, FORWARDED_CLIENT, "{entry:?}");

    // The __Host- cookie counts over https on the socket, and nowhere else.
    let host_cookie = format!("Cookie: {SECURE_SESSION_COOKIE}={secure_session}");
    let me = cell
        .socket
        .request("GET", "/api/auth/me", &[&host_cookie, https], None);
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.json()["user"]["username"], ADMIN_USER, "{me:?}");
    let me = cell
        .socket
        .request("GET", "/api/auth/me", &[&host_cookie], None);
    assert_eq!(me.status, 401, "the __Host- cookie over plain http: {me:?}");
    let tcp = cell.picd.client();
    let resp = tcp
        .http
        .get(tcp.url("/api/auth/me"))
        .header(
            "cookie",
            format!("{SECURE_SESSION_COOKIE}={secure_session}"),
        )
        .send()
        .await
        .expect("me over TCP");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // A plain picd_session cookie (as a sibling subdomain could plant it) does not
    // authenticate an https request, even with a live session in it.
    let plain_session = cell
        .admin
        .session_cookie()
        .expect("the admin's TCP session");
    let planted = format!("Cookie: {SESSION_COOKIE}={plain_session}");
    let me = cell
        .socket
        .request("GET", "/api/auth/me", &[&planted, https], None);
    assert_eq!(me.status, 401, "a planted picd_session over https: {me:?}");
    let me = cell
        .socket
        .request("GET", "/api/auth/me", &[&planted], None);
    assert_eq!(me.status, 200, "the same cookie over plain http: {me:?}");

    // Logging out over https takes the __Host- cookie back; a browser accepts the removal
    // only with the same attributes (Secure, Path=/).
    let token = cell
        .socket
        .request("GET", "/api/auth/csrf-token", &[&host_cookie, https], None);
    assert_eq!(token.status, 200, "{token:?}");
    let csrf = format!(
        "X-CSRF-Token: {}",
        token.json()["csrf_token"].as_str().unwrap_or_default()
    );
    let logout = cell.socket.request(
        "POST",
        "/api/auth/logout",
        &[&host_cookie, https, &csrf],
        Some("{}"),
    );
    assert_eq!(logout.status, 200, "{logout:?}");
    let (name, value, attributes) = session_cookie(logout.header("set-cookie").unwrap_or_default());
    assert_eq!(
        (name.as_str(), value.as_str()),
        (SECURE_SESSION_COOKIE, ""),
        "{logout:?}"
    );
    for attribute in ["Secure", "Path=/", "Max-Age=0"] {
        assert!(
            attributes.iter().any(|a| a == attribute),
            "no {attribute}: {attributes:?}"
        );
    }
    let me = cell
        .socket
        .request("GET", "/api/auth/me", &[&host_cookie, https], None);
    assert_eq!(me.status, 401, "the session outlived its logout: {me:?}");

    // Over plain http on the socket, with no client named: the plain cookie, the local proxy.
    let login = cell
        .socket
        .request("POST", "/api/auth/login", &[], Some(&login_body()));
    assert_eq!(login.status, 200, "{login:?}");
    let (name, _, attributes) =
        session_cookie(skip_device_cookie(login.header_values("set-cookie")));
    assert_eq!(name, SESSION_COOKIE, "{login:?}");
    assert!(
        !attributes.iter().any(|a| a.eq_ignore_ascii_case("secure")),
        "{attributes:?}"
    );
    assert_eq!(last_audit(&cell.picd.db()).client_addr, LOCAL_PROXY);
    assert_no_internal_errors(&cell.picd);
}

/// The start-up warning of `cookie_secure = "never"` behind Caddy.
const PLAIN_COOKIES_WARNING: &str = "cookie_secure = \"never\" while listen_socket is set";

#[tokio::test]
async fn plain_cookies_behind_caddy_are_warned_about_at_start() {
    let never = || vec![("PICD_COOKIE_SECURE".to_string(), "never".to_string())];
    let socket = PicdSocket::new();
    let mut picd = Picd::start_with(socket.options(PicdOptions {
        env: never(),
        ..PicdOptions::default()
    }))
    .await;
    let log = picd.log();
    let warning = log
        .lines()
        .find(|l| l.contains(PLAIN_COOKIES_WARNING))
        .unwrap_or_else(|| panic!("no warning in the log: {log}"));
    assert!(warning.contains("WARN"), "{warning}");
    picd.stop();

    // Neither setting alone is worth a warning.
    let mut plain_http = Picd::start_with(PicdOptions {
        env: never(),
        ..PicdOptions::default()
    })
    .await;
    assert!(!plain_http.log().contains(PLAIN_COOKIES_WARNING));
    plain_http.stop();
    let cell = start().await;
    assert!(!cell.picd.log().contains(PLAIN_COOKIES_WARNING));
}

#[tokio::test]
async fn odd_forwarded_headers_on_the_socket_get_no_500() {
    let cell = start().await;
    let long = format!("X-Forwarded-For: {}", "1.2.3.4, ".repeat(1000));
    let odd = [
        "X-Forwarded-For: not-an-address",
        "X-Forwarded-For: 203.0.113.5:4711",
        "X-Forwarded-For: ",
        "X-Forwarded-For: ,,,",
        "X-Forwarded-For: [2001:db8::1]",
        "X-Forwarded-Proto: gopher",
        "X-Forwarded-Proto: https, http",
        long.as_str(),
    ];
    for header in odd {
        let wrong = json!({ "username": ADMIN_USER, "password": "not the password" }).to_string();
        let login = cell
            .socket
            .request("POST", "/api/auth/login", &[header], Some(&wrong));
        assert!((400..500).contains(&login.status), "{header}: {login:?}");
        assert_error_shape(&login.json(), header);
        let health = cell.socket.request("GET", "/health", &[header], None);
        assert_eq!(health.status, 200, "{header}: {health:?}");
    }
    // An address that does not parse names no client: the entry has the local proxy's.
    let entry = last_audit(&cell.picd.db());
    assert_eq!(entry.client_addr, LOCAL_PROXY, "{entry:?}");
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn the_socket_is_private_replaced_when_stale_and_removed_at_shutdown() {
    let mut cell = start().await;
    let meta = std::fs::metadata(&cell.socket.path).expect("the socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, SOCKET_MODE);

    let (_, status) = cell.picd.terminate().expect("picd stops on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!cell.socket.path.exists(), "the socket outlived picd");

    // A socket nobody listens on (picd was killed): replaced at start.
    drop(std::os::unix::net::UnixListener::bind(&cell.socket.path).expect("a stale socket"));
    assert!(cell.socket.path.exists());
    cell.picd.restart().await;
    let health = cell.socket.request("GET", "/health", &[], None);
    assert_eq!(health.status, 200, "{health:?}");
    cell.picd.stop();
}

#[test]
fn picd_refuses_to_start_on_what_is_not_its_stale_socket() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // A regular file: never removed.
    let file = dir.path().join("file.sock");
    std::fs::write(&file, "data").expect("a file");
    let env = [("PICD_LISTEN_SOCKET", file.to_str().expect("path"))];
    let stderr = stderr_of(&serve_expecting_failure("", &env));
    assert!(stderr.contains("is not a socket"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).expect("the file"), "data");

    // A socket that another process listens on: left to it.
    let taken = dir.path().join("taken.sock");
    let listener = std::os::unix::net::UnixListener::bind(&taken).expect("a live socket");
    let env = [("PICD_LISTEN_SOCKET", taken.to_str().expect("path"))];
    let stderr = stderr_of(&serve_expecting_failure("", &env));
    assert!(stderr.contains("in use"), "{stderr}");
    std::os::unix::net::UnixStream::connect(&taken).expect("the other listener still has it");
    drop(listener);

    // Settings the kernel or Caddy could not use.
    for bad in ["relative.sock".to_string(), format!("/{}", "s".repeat(120))] {
        let config = format!("listen_socket = \"{bad}\"\n");
        let stderr = stderr_of(&serve_expecting_failure(&config, &[]));
        assert!(
            stderr.contains("listen_socket must be an absolute path"),
            "{bad}: {stderr}"
        );
    }
}
