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
const GONE_WITHIN: Duration = Duration::from_secs(10);

fn files_host() -> String {
    format!("files.{CELL_DOMAIN}")
}

async fn provision(admin: &TestClient, body: Value) -> Value {
    let resp = admin.send_json(Method::POST, ACCOUNTS, &body).await;
    let (status, answer) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        answer["live"], true,
        "the service never accepted the login: {answer}"
    );
    answer
}

async fn password_of(admin: &TestClient, user: &str) -> String {
    let (status, body) = admin
        .get_json(&format!("{ACCOUNTS}/{user}/credentials"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], user);
    assert_eq!(body["url"], format!("https://{}/", files_host()));
    body["password"].as_str().expect("password").to_string()
}

/// A WebDAV request through Caddy with basic credentials.
fn dav(
    cell: &CaddyCell,
    user: &str,
    password: &str,
    method: &str,
    path: &str,
    extra: &[&str],
) -> Answer {
    let login = format!("{user}:{password}");
    let mut args = vec!["-u", login.as_str(), "-X", method];
    args.extend(extra);
    cell.curl(&files_host(), path, &args)
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
    let socket = dockerd.socket().display().to_string();
    let cell = CaddyCell::start_with_env(&[("PICD_DOCKER_SOCKET", socket)]).await;
    let admin = &cell.admin;
    let built = build_images(&cell.picd.state_dir(), &dockerd);
    assert!(built.contains("files: image sha256:"), "{built}");
    for name in ["alice", "bob"] {
        let resp = admin
            .send_json(Method::POST, "/api/peers", &json!({ "name": name }))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "adding peer {name}");
    }

    // No account before the service is installed.
    let resp = admin
        .send_json(Method::POST, ACCOUNTS, &json!({ "peer": "alice" }))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;

    let resp = admin
        .send_json(
            Method::POST,
            "/api/store/install",
            &json!({ "id": "files" }),
        )
        .await;
    let body = resp.text().await.unwrap();
    assert!(body.contains(r#""step":"done""#), "{body}");
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

    // Alice is deleted: her login stops working at once, her files wait in the archive.
    let resp = admin
        .send_json(Method::DELETE, "/api/peers/alice", &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let after = wait_for_status(&cell, "alice", &alice_pw, 401);
    assert_eq!(after.status, 401, "alice's login outlived her: {after:?}");
    let archive = cell.picd.state_dir().join("services/files/archive");
    let archived: Vec<_> = std::fs::read_dir(&archive)
        .expect("an archive")
        .map(|e| e.unwrap().path())
        .collect();
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
