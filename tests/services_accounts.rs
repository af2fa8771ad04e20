//! Accounts in the files service, end to end: a real Docker engine runs the service, a real
//! Caddy serves it at files.<cell domain> with the cell's CA, and curl speaks WebDAV to it
//! with the credentials picd provisioned. Each peer sees only its own folder; a deleted peer's
//! login stops working at once and its files wait in the archive; a purge forgets everything.

mod common;

use std::time::{Duration, Instant};

use common::caddy::{Answer, CaddyCell};
use common::docker::{build_images, Dockerd};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ACCOUNTS: &str = "/api/services/catalog/files/accounts";
const CALENDAR_ACCOUNTS: &str = "/api/services/catalog/calendar/accounts";
const GONE_WITHIN: Duration = Duration::from_secs(10);

fn files_host() -> String {
    format!("files.{CELL_DOMAIN}")
}

fn calendar_host() -> String {
    format!("calendar.{CELL_DOMAIN}")
}

async fn provision(admin: &TestClient, body: Value) -> Value {
    provision_in(admin, ACCOUNTS, body).await
}

async fn provision_in(admin: &TestClient, accounts: &str, body: Value) -> Value {
    let resp = admin.send_json(Method::POST, accounts, &body).await;
    let (status, answer) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        answer["live"], true,
        "the service never accepted the login: {answer}"
    );
    answer
}

async fn password_of(admin: &TestClient, user: &str) -> String {
    password_in(admin, ACCOUNTS, &files_host(), user).await
}

async fn password_in(admin: &TestClient, accounts: &str, host: &str, user: &str) -> String {
    let (status, body) = admin
        .get_json(&format!("{accounts}/{user}/credentials"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], user);
    assert_eq!(body["url"], format!("https://{host}/"));
    body["password"].as_str().expect("password").to_string()
}

/// A cell behind Caddy on the shared engine, with the service images built and two peers.
/// How a test cell gets its service images: the command line, or the store page's route.
#[derive(PartialEq)]
enum Build {
    Command,
    Api,
}

async fn start_cell_with_peers(dockerd: &Dockerd, service: &str, build: Build) -> CaddyCell {
    let socket = dockerd.socket().display().to_string();
    let cache = common::docker::image_cache_dir().display().to_string();
    let cell = CaddyCell::start_with_env(&[
        ("PICD_DOCKER_SOCKET", socket),
        ("PICD_SERVICES_IMAGE_CACHE", cache),
    ])
    .await;
    if build == Build::Command {
        let built = build_images(&cell.picd.state_dir(), dockerd);
        assert!(
            built.contains(&format!("{service}: image sha256:")),
            "{built}"
        );
    } else {
        build_through_the_api(&cell.admin, service).await;
    }
    for name in ["alice", "bob"] {
        let resp = cell
            .admin
            .send_json(Method::POST, "/api/peers", &json!({ "name": name }))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "adding peer {name}");
    }
    cell
}

/// POST /api/store/build-images: per service a rootfs step then its image, then done.
async fn build_through_the_api(admin: &TestClient, service: &str) {
    // A cold cache builds three root filesystems: minutes, past the client's usual timeout.
    let resp = admin
        .http
        .post(admin.url("/api/store/build-images"))
        .header("x-csrf-token", admin.csrf_token().await)
        .json(&json!({}))
        .timeout(Duration::from_secs(20 * 60))
        .send()
        .await
        .expect("POST /api/store/build-images");
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    let events: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect();
    let last = events.last().expect("events");
    assert_eq!(last["step"], "done", "{events:?}");
    let steps: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["service"] == service)
        .map(|e| (e["step"].as_str().unwrap(), e["service"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [("rootfs", service), ("image", service)],
        "{events:?}"
    );
    let (_, store) = admin.get_json("/api/store").await;
    let built = store["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == service)
        .and_then(|s| s["image_id"].as_str())
        .map(str::to_string);
    assert!(built.is_some_and(|id| id.starts_with("sha256:")), "{store}");
}

async fn install(admin: &TestClient, id: &str) {
    let resp = admin
        .send_json(Method::POST, "/api/store/install", &json!({ "id": id }))
        .await;
    let body = resp.text().await.unwrap();
    assert!(body.contains(r#""step":"done""#), "{body}");
}

/// A WebDAV request through Caddy to the files service with basic credentials.
fn dav(
    cell: &CaddyCell,
    user: &str,
    password: &str,
    method: &str,
    path: &str,
    extra: &[&str],
) -> Answer {
    dav_at(cell, &files_host(), (user, password), method, path, extra)
}

fn dav_at(
    cell: &CaddyCell,
    host: &str,
    (user, password): (&str, &str),
    method: &str,
    path: &str,
    extra: &[&str],
) -> Answer {
    let login = format!("{user}:{password}");
    let mut args = vec!["-u", login.as_str(), "-X", method];
    args.extend(extra);
    cell.curl(host, path, &args)
}

/// The folders in a service's archive, once there are any (the account pass rewrites the
/// account file first, so a login ends a moment before the folder moves).
fn archived_folders(archive: &std::path::Path) -> Vec<std::path::PathBuf> {
    let started = Instant::now();
    loop {
        let found: Vec<_> = std::fs::read_dir(archive)
            .map(|list| list.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        if !found.is_empty() || started.elapsed() > GONE_WITHIN {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn put(cell: &CaddyCell, user: &str, password: &str, path: &str, text: &str) -> Answer {
    dav(cell, user, password, "PUT", path, &["--data-binary", text])
}

fn wait_for_status(cell: &CaddyCell, user: &str, password: &str, status: u16) -> Answer {
    let started = Instant::now();
    loop {
        let answer = dav(cell, user, password, "PROPFIND", "/", &["-H", "Depth: 0"]);
        if answer.status == status || started.elapsed() > GONE_WITHIN {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn each_peer_gets_a_private_folder_whose_login_ends_with_the_peer() {
    let dockerd = Dockerd::shared();
    let cell = start_cell_with_peers(&dockerd, "files", Build::Command).await;
    let admin = &cell.admin;

    // No account before the service is installed.
    let resp = admin
        .send_json(Method::POST, ACCOUNTS, &json!({ "peer": "alice" }))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;

    install(admin, "files").await;
    cell.expect_served(&files_host(), "/", 401);

    let alice = provision(admin, json!({ "peer": "alice" })).await;
    assert_eq!(alice["username"], "alice");
    provision(admin, json!({ "peer": "bob" })).await;
    let owner = provision(admin, json!({ "owner": true })).await;
    assert_eq!(owner["peer_name"], Value::Null);
    let resp = admin
        .send_json(Method::POST, ACCOUNTS, &json!({ "peer": "alice" }))
        .await;
    expect_error(resp, StatusCode::CONFLICT, "account_exists").await;
    let (alice_pw, bob_pw) = (
        password_of(admin, "alice").await,
        password_of(admin, "bob").await,
    );

    // The peer's own view of its credentials holds the same, filled.
    let (_, listed) = admin.get_json("/api/peers/alice/service-credentials").await;
    let creds = &listed["credentials"][0];
    assert_eq!(creds["service"], "files", "{listed}");
    assert_eq!(creds["password"], alice_pw.as_str());
    assert_eq!(creds["protocol"], "WebDAV");

    // Alice writes and lists her folder through Caddy; Bob does not see her file.
    assert_eq!(
        put(
            &cell,
            "alice",
            &alice_pw,
            "/notes/hello.txt",
            "hi from alice"
        )
        .status,
        201
    );
    let listing = dav(
        &cell,
        "alice",
        &alice_pw,
        "PROPFIND",
        "/notes/",
        &["-H", "Depth: 1"],
    );
    assert_eq!(listing.status, 207, "{listing:?}");
    assert!(listing.body.contains("hello.txt"), "{listing:?}");
    let get = dav(&cell, "alice", &alice_pw, "GET", "/notes/hello.txt", &[]);
    assert_eq!((get.status, get.body.as_str()), (200, "hi from alice"));
    let theirs = dav(&cell, "bob", &bob_pw, "GET", "/notes/hello.txt", &[]);
    assert_eq!(theirs.status, 404, "bob reached alice's file: {theirs:?}");
    assert_eq!(
        dav(&cell, "alice", &bob_pw, "GET", "/notes/hello.txt", &[]).status,
        401
    );

    // The files API: usage per account and a listing, never outside the account's folder.
    let (_, users) = admin.get_json("/api/files/users").await;
    let alice_usage = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .map(|u| u["usage"].clone())
        .unwrap_or_else(|| panic!("{users}"));
    assert_eq!(alice_usage["bytes"], 13, "{users}");
    assert_eq!(alice_usage["files"], 1, "{users}");
    let (status, listed) = admin
        .get_json("/api/files/users/alice/files?path=/notes")
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["entries"][0]["name"], "hello.txt", "{listed}");
    assert_eq!(listed["entries"][0]["bytes"], 13, "{listed}");
    let resp = admin.get("/api/files/users/alice/files?path=../bob").await;
    expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;

    // Alice is deleted: her login stops working at once, her files wait in the archive.
    let resp = admin
        .send_json(Method::DELETE, "/api/peers/alice", &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let after = wait_for_status(&cell, "alice", &alice_pw, 401);
    assert_eq!(after.status, 401, "alice's login outlived her: {after:?}");
    let archive = cell.picd.state_dir().join("services/files/archive");
    let archived = archived_folders(&archive);
    assert_eq!(archived.len(), 1, "{archived:?}");
    let kept = std::fs::read_to_string(archived[0].join("notes/hello.txt")).unwrap();
    assert_eq!(kept, "hi from alice");
    let (status, _) = admin
        .get_json(&format!("{ACCOUNTS}/alice/credentials"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(wait_for_status(&cell, "bob", &bob_pw, 207).status, 207);

    // Bob's account is taken away by itself: his login ends too.
    let resp = admin
        .send_json(Method::DELETE, &format!("{ACCOUNTS}/bob"), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(wait_for_status(&cell, "bob", &bob_pw, 401).status, 401);
    let (_, list) = admin.get_json(ACCOUNTS).await;
    let names: Vec<&str> = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, [owner["username"].as_str().unwrap()]);

    // A purge forgets the remaining accounts, their passwords and the archive.
    let resp = admin
        .send_json(
            Method::POST,
            "/api/store/remove",
            &json!({ "id": "files", "purge": true }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let db = cell.picd.db();
    let left: i64 = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM service_accounts)
                  + (SELECT COUNT(*) FROM secrets WHERE name LIKE 'service-account/%')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    assert!(!archive.exists(), "the archive outlived the purge");
    assert_no_internal_errors(&cell.picd);
}

const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//picd test//EN\r\n\
BEGIN:VEVENT\r\nUID:picnic-1\r\nDTSTAMP:20261207T120000Z\r\n\
DTSTART:20261224T180000Z\r\nDTEND:20261224T200000Z\r\nSUMMARY:Picnic at the lake\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n";

const CARD: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob-card\r\nFN:Bob Example\r\n\
N:Example;Bob;;;\r\nEND:VCARD\r\n";

const CALENDAR_QUERY: &str = r#"<?xml version="1.0"?>
<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
  <d:prop><c:calendar-data/></d:prop>
  <c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter></c:filter>
</c:calendar-query>"#;

const ADDRESS_BOOK: &str = r#"<?xml version="1.0"?>
<d:mkcol xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav">
  <d:set><d:prop><d:resourcetype><d:collection/><card:addressbook/></d:resourcetype></d:prop></d:set>
</d:mkcol>"#;

#[tokio::test]
async fn each_peer_keeps_calendars_and_contacts_only_it_can_read() {
    // Its own engine: the files test's cell runs at the same time.
    let dockerd = Dockerd::private();
    // The calendar's images come through the store page's build route.
    let cell = start_cell_with_peers(&dockerd, "calendar", Build::Api).await;
    let admin = &cell.admin;
    install(admin, "calendar").await;
    let host = calendar_host();
    cell.expect_served(&host, "/", 302);
    provision_in(admin, CALENDAR_ACCOUNTS, json!({ "peer": "alice" })).await;
    provision_in(admin, CALENDAR_ACCOUNTS, json!({ "peer": "bob" })).await;
    let alice_pw = password_in(admin, CALENDAR_ACCOUNTS, &host, "alice").await;
    let bob_pw = password_in(admin, CALENDAR_ACCOUNTS, &host, "bob").await;
    let alice = ("alice", alice_pw.as_str());

    // CalDAV: a calendar, an event in it, and a query that finds the event.
    let made = dav_at(&cell, &host, alice, "MKCALENDAR", "/alice/cal/", &[]);
    assert_eq!(made.status, 201, "{made:?}");
    let ics = [
        "-H",
        "Content-Type: text/calendar; charset=utf-8",
        "--data-binary",
        EVENT,
    ];
    let put = dav_at(&cell, &host, alice, "PUT", "/alice/cal/picnic.ics", &ics);
    assert_eq!(put.status, 201, "{put:?}");
    let query = [
        "-H",
        "Depth: 1",
        "-H",
        "Content-Type: application/xml",
        "--data-binary",
        CALENDAR_QUERY,
    ];
    let found = dav_at(&cell, &host, alice, "REPORT", "/alice/cal/", &query);
    assert_eq!(found.status, 207, "{found:?}");
    assert!(found.body.contains("Picnic at the lake"), "{found:?}");

    // CardDAV: an address book and a card.
    let book = [
        "-H",
        "Content-Type: application/xml",
        "--data-binary",
        ADDRESS_BOOK,
    ];
    let made = dav_at(&cell, &host, alice, "MKCOL", "/alice/contacts/", &book);
    assert_eq!(made.status, 201, "{made:?}");
    let vcf = ["-H", "Content-Type: text/vcard", "--data-binary", CARD];
    let put = dav_at(&cell, &host, alice, "PUT", "/alice/contacts/bob.vcf", &vcf);
    assert_eq!(put.status, 201, "{put:?}");

    // The calendar API sees what Alice made.
    let (_, users) = admin.get_json("/api/calendar/users").await;
    let theirs = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .cloned()
        .unwrap_or_else(|| panic!("{users}"));
    assert_eq!(theirs["calendars"][0]["name"], "cal", "{users}");
    assert_eq!(theirs["calendars"][0]["items"], 1, "{users}");
    assert_eq!(theirs["address_books"][0]["name"], "contacts", "{users}");
    assert_eq!(theirs["address_books"][0]["items"], 1, "{users}");

    // Owner-only rights: Bob can neither query nor read Alice's collections.
    let bob = ("bob", bob_pw.as_str());
    let peek = dav_at(&cell, &host, bob, "REPORT", "/alice/cal/", &query);
    assert_eq!(peek.status, 403, "bob read alice's calendar: {peek:?}");
    let get = dav_at(&cell, &host, bob, "GET", "/alice/cal/picnic.ics", &[]);
    assert_eq!(get.status, 403, "{get:?}");

    // Alice's account is taken away: her login ends, her collections wait in the archive.
    let resp = admin
        .send_json(
            Method::DELETE,
            &format!("{CALENDAR_ACCOUNTS}/alice"),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let after = dav_at(&cell, &host, alice, "PROPFIND", "/", &["-H", "Depth: 0"]);
    assert_eq!(after.status, 401, "{after:?}");
    let archive = cell.picd.state_dir().join("services/calendar/archive");
    let kept = archived_folders(&archive);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].join("cal/picnic.ics").is_file(), "{kept:?}");
    assert_no_internal_errors(&cell.picd);
}
