//! `openvpn` connections on a picd whose routing is off: the .ovpn's inline key and the
//! username and password go to the vault, and are never in a response, the row or the audit
//! log; a PUT with a new file and credentials replaces them; the answer shows where the tunnel
//! goes (remotes, proto, port); a refused file stores nothing and is audited as a failure.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CONNECTIONS: &str = "/api/connectivity/connections";
const KEY_MATERIAL: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "another secret entirely";

fn ovpn(extra: &str) -> String {
    format!(
        "client\ndev tun\nproto tcp\nport 443\nremote vpn1.example.net\nremote 198.51.100.9 1194 udp\n\
         auth-user-pass\n{extra}\npeer-fingerprint AB:CD:EF\n\
         <key>\n-----BEGIN PRIVATE KEY-----\n{KEY_MATERIAL}\n-----END PRIVATE KEY-----\n</key>\n"
    )
}

async fn send(admin: &TestClient, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    json_of(admin.send_json(method, path, &body).await).await
}

fn assert_no_secret(text: &str, what: &str) {
    for secret in [KEY_MATERIAL, PASSWORD, NEW_PASSWORD] {
        assert!(!text.contains(secret), "{what} holds a secret: {text}");
    }
}

fn audit_text(picd: &Picd) -> String {
    let db = picd.db();
    let mut stmt = db.prepare("SELECT detail FROM audit_log").unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.join("\n")
}

#[tokio::test]
async fn an_openvpn_connection_keeps_its_keys_and_credentials_in_the_vault_only() {
    let (picd, admin) = picd_with_admin().await;
    let body = json!({ "name": "vpn", "type": "openvpn", "config": ovpn(""),
                       "username": "customer1", "password": PASSWORD });
    let (status, created) = send(&admin, Method::POST, CONNECTIONS, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_no_secret(&created.to_string(), "the answer");
    assert_eq!(created["type"], "openvpn");
    assert_eq!(
        created["settings"]["remotes"],
        json!([{ "host": "vpn1.example.net", "port": 443, "proto": "tcp" },
               { "host": "198.51.100.9", "port": 1194, "proto": "udp" }])
    );
    assert_eq!(
        (&created["settings"]["proto"], &created["settings"]["port"]),
        (&json!("tcp"), &json!(443))
    );
    assert_eq!(created["settings"]["auth_user_pass"], json!(true));
    let id = created["id"].as_str().expect("id").to_string();
    let audit = last_audit(&picd.db());
    assert_eq!(
        (audit.result.as_str(), audit.target_id.as_str()),
        ("success", id.as_str())
    );

    let (_, listed) = admin.get_json(CONNECTIONS).await;
    assert_no_secret(&listed.to_string(), "the listing");
    let (_, exits) = admin.get_json("/api/connectivity/exits").await;
    assert_no_secret(&exits.to_string(), "the exits");
    let row: String = picd
        .db()
        .query_row("SELECT settings FROM connectivity_connections", [], |r| {
            r.get(0)
        })
        .expect("the row");
    assert_no_secret(&row, "the row");
    let names = |picd: &Picd| -> Vec<String> {
        let db = picd.db();
        let mut stmt = db
            .prepare("SELECT name FROM secrets WHERE name LIKE 'connectivity.%' ORDER BY name")
            .unwrap();
        let names = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        names
    };
    let suffixes: Vec<String> = names(&picd)
        .iter()
        .map(|n| n.rsplit('.').next().unwrap().to_string())
        .collect();
    assert_eq!(suffixes, ["ovpn", "password", "username"]);

    // A new file and password through PUT; a file without auth-user-pass drops the credentials.
    let path = format!("{CONNECTIONS}/{id}");
    let body =
        json!({ "config": ovpn("cipher AES-256-GCM"), "username": "c", "password": NEW_PASSWORD });
    let (status, changed) = send(&admin, Method::PUT, &path, body).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_no_secret(&changed.to_string(), "the PUT answer");
    let plain = ovpn("").replace("auth-user-pass\n", "");
    let (status, changed) = send(&admin, Method::PUT, &path, json!({ "config": plain })).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["settings"]["auth_user_pass"], json!(false));
    assert_eq!(
        names(&picd).len(),
        1,
        "the credentials stayed: {:?}",
        names(&picd)
    );
    let (status, refused) = send(
        &admin,
        Method::PUT,
        &path,
        json!({ "type": "wireguard_ext", "config": "[Interface]" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

    // A refused file: 422 naming the line, audited as a failure, nothing stored.
    let evil = ovpn("up \"/bin/sh -c id\"");
    let body = json!({ "name": "evil", "type": "openvpn", "config": evil, "username": "u", "password": PASSWORD });
    let (status, refused) = send(&admin, Method::POST, CONNECTIONS, body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("line 8: up is refused"),
        "{refused}"
    );
    assert_eq!(last_audit(&picd.db()).result, "failure");
    let count: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM connectivity_connections", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(count, 1, "the refused connection was stored");
    assert_no_secret(&audit_text(&picd), "the audit log");
    assert_no_secret(&picd.log(), "picd's log");

    let (status, _) = send(&admin, Method::DELETE, &path, json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(names(&picd).is_empty(), "secrets left: {:?}", names(&picd));
}
