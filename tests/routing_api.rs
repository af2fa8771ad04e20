//! `/api/routing/firewall` and `/api/routing/ip-list` on a picd whose routing is off (it runs
//! in the machine's own namespace): desired state is recorded and audited, duplicates get a
//! 409, system rules stay; and `nftables` is `unavailable` in /api/status when picd has no
//! CAP_NET_ADMIN, with the change still recorded.

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const FIREWALL: &str = "/api/routing/firewall";
const IP_LIST: &str = "/api/routing/ip-list";
const SYSTEM_RULES: usize = 3;
const BLOCKED: &str = "203.0.113.42";

fn block_redis() -> Value {
    json!({ "name": "Block Redis", "chain": "input", "protocol": "tcp",
            "port_start": 6379, "port_end": 6379, "action": "drop" })
}

async fn nftables_status(admin: &TestClient) -> Value {
    let (status, body) = admin.get_json("/api/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found = body["subsystems"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "nftables").cloned());
    found.unwrap_or_else(|| panic!("no nftables subsystem in {body}"))
}

#[tokio::test]
async fn firewall_rules_are_recorded_deduplicated_and_system_rules_stay() {
    let (picd, admin) = picd_with_admin().await;
    let (status, body) = admin.get_json(FIREWALL).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rules = body["rules"].as_array().expect("rules").clone();
    assert_eq!(rules.len(), SYSTEM_RULES, "{body}");
    assert!(rules.iter().all(|r| r["is_system"] == true), "{body}");

    let resp = admin
        .send_json(Method::POST, FIREWALL, &block_redis())
        .await;
    let (status, created) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "pending_add", "{created}");
    assert_eq!(created["is_system"], false);
    let id = created["id"].as_str().expect("id").to_string();
    let audit = last_audit(&picd.db());
    assert_eq!(
        (audit.target_type.as_str(), audit.result.as_str()),
        ("firewall_rule", "success")
    );
    assert_eq!(audit.target_id, id);

    let again = admin
        .send_json(Method::POST, FIREWALL, &block_redis())
        .await;
    expect_error(again, StatusCode::CONFLICT, "already_exists").await;

    // conntrack states in another order are the same rule.
    let limit = |conntrack: &str| {
        json!({ "name": "SSH", "protocol": "tcp", "port_start": 22, "action": "limit",
                "limit_rate": 5, "limit_unit": "minute", "conntrack": conntrack })
    };
    let resp = admin
        .send_json(Method::POST, FIREWALL, &limit("new,established"))
        .await;
    let (status, ssh) = json_of(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{ssh}");
    assert_eq!(ssh["conntrack"], "new,established");
    assert_eq!(ssh["port_end"], 22, "one port given is a range of one");
    let dup = admin
        .send_json(Method::POST, FIREWALL, &limit("established, new"))
        .await;
    expect_error(dup, StatusCode::CONFLICT, "already_exists").await;

    let system = admin
        .send_json(
            Method::DELETE,
            &format!("{FIREWALL}/system-input-invalid"),
            &json!({}),
        )
        .await;
    expect_error(system, StatusCode::FORBIDDEN, "system_rule").await;

    let path = format!("{FIREWALL}/{id}");
    let resp = admin.send_json(Method::DELETE, &path, &json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let gone = admin.send_json(Method::DELETE, &path, &json!({})).await;
    expect_error(gone, StatusCode::NOT_FOUND, "not_found").await;
    let (_, body) = admin.get_json(FIREWALL).await;
    assert_eq!(
        body["rules"].as_array().map(Vec::len),
        Some(SYSTEM_RULES + 1),
        "{body}"
    );
    assert_no_internal_errors(&picd);
}

#[tokio::test]
async fn ip_list_entries_are_normalised_deduplicated_and_expire() {
    let (picd, admin) = picd_with_admin().await;
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({ "list_type": "blacklist", "ip_address": BLOCKED,
                       "reason": "UDP flood", "expires_at": expires });
    let (status, entry) = json_of(admin.send_json(Method::POST, IP_LIST, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["status"], "pending_add");
    let dup = admin.send_json(Method::POST, IP_LIST, &body).await;
    expect_error(dup, StatusCode::CONFLICT, "already_exists").await;

    // A network is stored by its prefix: two spellings are one entry.
    let net = |addr: &str| json!({ "list_type": "whitelist", "ip_address": addr });
    let (status, wl) = json_of(
        admin
            .send_json(Method::POST, IP_LIST, &net("198.51.100.7/24"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{wl}");
    assert_eq!(wl["ip_address"], "198.51.100.0/24");
    let dup = admin
        .send_json(Method::POST, IP_LIST, &net("198.51.100.0/24"))
        .await;
    expect_error(dup, StatusCode::CONFLICT, "already_exists").await;

    let (_, listed) = admin.get_json(&format!("{IP_LIST}?type=whitelist")).await;
    assert_eq!(
        listed["entries"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    // An entry past its expiry is not listed, and the next reconcile removes it.
    picd.db()
        .execute(
            "UPDATE routing_ip_list SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE ip_address = ?1",
            [BLOCKED],
        )
        .unwrap();
    let (_, listed) = admin.get_json(&format!("{IP_LIST}?type=blacklist")).await;
    assert_eq!(listed["entries"], json!([]), "{listed}");

    let path = format!("{IP_LIST}/{}", wl["id"].as_str().unwrap());
    let resp = admin.send_json(Method::DELETE, &path, &json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let audit = last_audit(&picd.db());
    assert_eq!(
        (audit.target_type.as_str(), audit.result.as_str()),
        ("ip_list_entry", "success")
    );
    // No table is applied here (routing is off): the deleted entry stays, being removed,
    // since the kernel may still hold it.
    let (_, listed) = admin.get_json(&format!("{IP_LIST}?type=whitelist")).await;
    assert_eq!(listed["entries"][0]["status"], "pending_remove", "{listed}");
    let again = admin.send_json(Method::DELETE, &path, &json!({})).await;
    expect_error(again, StatusCode::NOT_FOUND, "not_found").await;
    // Added again meanwhile, the address is a new entry, and the one being removed gives way.
    let (status, readded) = json_of(
        admin
            .send_json(Method::POST, IP_LIST, &net("198.51.100.0/24"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{readded}");
    let (_, listed) = admin.get_json(&format!("{IP_LIST}?type=whitelist")).await;
    let entries = listed["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(
        (&entries[0]["id"], &entries[0]["status"]),
        (&readded["id"], &json!("pending_add")),
        "{listed}"
    );
    assert_no_internal_errors(&picd);
}

#[tokio::test]
async fn routing_off_says_so_in_status() {
    let (_picd, admin) = picd_with_admin().await;
    let nft = nftables_status(&admin).await;
    assert_eq!(nft["state"], "unavailable", "{nft}");
    assert!(
        nft["reason"]
            .as_str()
            .unwrap_or("")
            .contains("routing_mode"),
        "{nft}"
    );
}

/// picd with routing on, run by `setpriv` with CAP_NET_ADMIN out of its bounding set: as root
/// it can change nothing of the machine's nftables.
struct WithoutNetAdmin {
    child: Child,
    _root: tempfile::TempDir,
    port: u16,
}

impl Drop for WithoutNetAdmin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn picd_without_net_admin() -> WithoutNetAdmin {
    require_tools(&["setpriv"]);
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(root.path().join("picd.log")).unwrap();
    let template = clean_command();
    let mut command = std::process::Command::new("setpriv");
    command
        .args([
            "--bounding-set",
            "-net_admin",
            "--inh-caps",
            "-net_admin",
            "--",
        ])
        .arg(PICD)
        .args(["serve", "--state-dir"])
        .arg(root.path().join("state"))
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    for (key, value) in template.get_envs() {
        match value {
            Some(v) => command.env(key, v),
            None => command.env_remove(key),
        };
    }
    command
        .env("PICD_ROUTING_MODE", "apply")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let child = command.spawn().expect("setpriv picd");
    let picd = WithoutNetAdmin {
        child,
        _root: root,
        port,
    };
    let url = format!("http://127.0.0.1:{port}/health");
    for _ in 0..400 {
        if let Ok(resp) = reqwest::get(&url).await {
            if resp.status() == StatusCode::OK {
                return picd;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("picd without CAP_NET_ADMIN did not start");
}

#[tokio::test]
async fn without_net_admin_nftables_is_unavailable_and_changes_are_recorded() {
    let picd = picd_without_net_admin().await;
    let admin = TestClient::new(&format!("http://127.0.0.1:{}", picd.port))
        .with_state_dir(picd._root.path().join("state"));
    admin.run_setup().await;
    let nft = nftables_status(&admin).await;
    assert_eq!(nft["state"], "unavailable", "{nft}");
    assert!(
        nft["reason"]
            .as_str()
            .unwrap_or("")
            .contains("CAP_NET_ADMIN"),
        "{nft}"
    );
    let resp = admin
        .send_json(Method::POST, FIREWALL, &block_redis())
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, body) = admin.get_json(FIREWALL).await;
    let names: Vec<&str> = body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&"Block Redis"), "{body}");
}

const PEER_POLICY: &str = "/api/routing/peers";

/// The policy GET /api/routing/peers shows for `peer` (Null when it is not listed).
async fn shown_policy(admin: &TestClient, peer: &str) -> Value {
    let (status, body) = admin.get_json(PEER_POLICY).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found = body["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["peer"] == peer).cloned());
    found.unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_peer_policy_starts_open_changes_one_field_at_a_time_is_audited_and_goes_with_its_peer() {
    let (picd, admin) = picd_with_admin().await;
    common::netns::create_peer(&admin, json!({ "name": "alice" })).await;
    let shown = shown_policy(&admin, "alice").await;
    assert_eq!(
        (
            &shown["internet"],
            &shown["peer_to_peer"],
            &shown["updated_at"]
        ),
        (&json!(true), &json!(true), &Value::Null),
        "{shown}"
    );
    assert!(shown["address_v4"].is_string(), "{shown}");

    let path = format!("{PEER_POLICY}/alice");
    let resp = admin
        .send_json(Method::PUT, &path, &json!({ "internet": false }))
        .await;
    let (status, changed) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (&changed["internet"], &changed["peer_to_peer"]),
        (&json!(false), &json!(true))
    );
    let audit = last_audit(&picd.db());
    assert_eq!(
        (
            audit.target_type.as_str(),
            audit.target_id.as_str(),
            audit.result.as_str()
        ),
        ("peer_policy", "alice", "success")
    );
    assert_eq!(audit.detail["internet"], false, "{:?}", audit.detail);

    // A second change keeps the field it does not name.
    let resp = admin
        .send_json(Method::PUT, &path, &json!({ "peer_to_peer": false }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let shown = shown_policy(&admin, "alice").await;
    assert_eq!(
        (&shown["internet"], &shown["peer_to_peer"]),
        (&json!(false), &json!(false))
    );
    assert!(shown["updated_at"].is_string(), "{shown}");

    let resp = admin
        .send_json(Method::DELETE, "/api/peers/alice", &json!({}))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(shown_policy(&admin, "alice").await, Value::Null);
    let rows: i64 = picd
        .db()
        .query_row("SELECT COUNT(*) FROM routing_peer_policy", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "the policy row outlived its peer");
    let resp = admin
        .send_json(Method::PUT, &path, &json!({ "internet": true }))
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let audit = last_audit(&picd.db());
    assert_eq!(
        (audit.target_id.as_str(), audit.result.as_str()),
        ("alice", "failure")
    );
}
