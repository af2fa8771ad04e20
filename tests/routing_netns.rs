//! picd's routing applied for real, in a cell namespace the test made (picd runs inside it with
//! `ip netns exec`): the table `inet picd` holds NAT for the peers' subnet and the system
//! rules; a firewall rule drops what it says and counts it; a blocked address is dropped until
//! its expiry passes; a table deleted by hand comes back at the next reconcile.

mod common;

use std::time::Duration;

use common::netns::*;
use common::routing_lab::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// How long a block entry lasts in the expiry test.
const BLOCK_SECONDS: i64 = 4;

#[tokio::test]
async fn the_table_is_applied_with_nat_and_system_rules_and_status_is_ok() {
    let (lab, admin) = lab_with_routing().await;
    let found = comments(&lab);
    for comment in [
        "nat4",
        "nat6",
        "rule:system-input-invalid",
        "rule:system-input-established",
    ] {
        assert!(
            found.iter().any(|c| c == comment),
            "{comment} missing: {found:?}"
        );
    }
    let (status, body) = admin.get_json("/api/status").await;
    assert_eq!(status, StatusCode::OK);
    let nft = body["subsystems"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "nftables").cloned())
        .expect("nftables");
    assert_eq!(nft["state"], "ok", "{nft}");
    let (_, rules) = admin.get_json(FIREWALL).await;
    assert!(
        rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "active"),
        "{rules}"
    );
}

#[tokio::test]
async fn a_firewall_rule_drops_and_counts_and_its_deletion_lets_through() {
    let (lab, admin) = lab_with_routing().await;
    assert!(
        pings(&lab),
        "the cell does not answer pings before any rule"
    );
    let body =
        json!({ "name": "No pings", "chain": "input", "protocol": "icmp", "action": "drop" });
    let (status, rule) = json_of(admin.send_json(Method::POST, FIREWALL, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let id = rule["id"].as_str().unwrap().to_string();
    let comment = format!("rule:{id}");
    assert!(eventually(APPLY_TIMEOUT, || has_comment(&lab, &comment)));
    assert!(!pings(&lab), "a ping passed the drop rule");
    assert!(!pings(&lab), "a ping passed the drop rule");
    // Counters survive the rebuilds every reconcile makes, and show in the API.
    tokio::time::sleep(Duration::from_secs(2 * RECONCILE_SECONDS + 1)).await;
    let (_, rules) = admin.get_json(FIREWALL).await;
    let shown = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned()
        .expect("the rule");
    assert_eq!(shown["status"], "active", "{shown}");
    assert!(shown["packets_total"].as_u64().unwrap_or(0) >= 2, "{shown}");

    let resp = admin
        .send_json(Method::DELETE, &format!("{FIREWALL}/{id}"), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(eventually(APPLY_TIMEOUT, || !has_comment(&lab, &comment)));
    assert!(
        eventually(APPLY_TIMEOUT, || pings(&lab)),
        "pings still dropped"
    );
}

#[tokio::test]
async fn a_blocked_address_is_dropped_until_its_expiry_passes() {
    let (lab, admin) = lab_with_routing().await;
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(BLOCK_SECONDS);
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({ "list_type": "blacklist", "ip_address": test_side_addr(&lab),
                       "reason": "test", "expires_at": expires });
    let (status, entry) = json_of(admin.send_json(Method::POST, IP_LIST, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert!(
        eventually(Duration::from_secs(3), || !pings(&lab)),
        "the blocked address still reaches the cell"
    );
    let timeout = Duration::from_secs(BLOCK_SECONDS as u64 + 10);
    assert!(
        eventually(timeout, || pings(&lab)),
        "still blocked after the expiry"
    );
    let (status, listed) = admin.get_json(IP_LIST).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["entries"], json!([]), "{listed}");
}

/// Whether the kernel's set `name` of picd's table holds `addr`.
fn set_holds(lab: &Lab, name: &str, addr: &str) -> bool {
    let Some(table) = table_json(lab) else {
        return false;
    };
    table["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["set"]["name"] == name)
        .any(|item| {
            item["set"]["elem"]
                .to_string()
                .contains(&format!("\"{addr}\""))
        })
}

#[tokio::test]
async fn a_deleted_block_entry_is_removing_until_the_table_without_it_is_applied() {
    // Not the test's own address: its API requests come from there.
    const LISTED: &str = "203.0.113.9";
    let (lab, admin) = lab_with_routing().await;
    let body = json!({ "list_type": "blacklist", "ip_address": LISTED });
    let (status, entry) = json_of(admin.send_json(Method::POST, IP_LIST, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert!(
        eventually(APPLY_TIMEOUT, || set_holds(&lab, "block4", LISTED)),
        "the entry never reached the kernel's set: {:?}",
        table_json(&lab)
    );
    let path = format!("{IP_LIST}/{}", entry["id"].as_str().unwrap());
    let resp = admin.send_json(Method::DELETE, &path, &json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // Listed as being removed until the table without it is in the kernel, then forgotten.
    let deadline = std::time::Instant::now() + APPLY_TIMEOUT;
    loop {
        let (status, listed) = admin.get_json(IP_LIST).await;
        assert_eq!(status, StatusCode::OK);
        if listed["entries"] == json!([]) {
            break;
        }
        assert_eq!(listed["entries"][0]["status"], "pending_remove", "{listed}");
        assert!(
            std::time::Instant::now() < deadline,
            "the removed entry is still listed: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !set_holds(&lab, "block4", LISTED),
        "the entry was forgotten while the kernel still holds it"
    );
}

#[tokio::test]
async fn a_table_deleted_by_hand_comes_back_at_the_next_reconcile() {
    let (lab, _admin) = lab_with_routing().await;
    let before = comments(&lab);
    run(&format!(
        "ip netns exec {} nft delete table inet picd",
        lab.cell_ns
    ));
    assert!(
        eventually(APPLY_TIMEOUT, || comments(&lab) == before),
        "the table did not come back as it was: {:?} vs {before:?}",
        comments(&lab)
    );
    run(&format!(
        "ip netns exec {} nft flush table inet picd",
        lab.cell_ns
    ));
    assert!(
        eventually(APPLY_TIMEOUT, || comments(&lab) == before),
        "the flushed table did not come back"
    );
}

#[tokio::test]
async fn a_stopped_picd_leaves_its_table_and_a_restarted_one_builds_the_same() {
    let (mut lab, admin) = lab_with_routing().await;
    let body =
        json!({ "name": "Block Redis", "protocol": "tcp", "port_start": 6379, "action": "drop" });
    let (status, rule) = json_of(admin.send_json(Method::POST, FIREWALL, &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{rule}");
    let comment = format!("rule:{}", rule["id"].as_str().unwrap());
    assert!(eventually(APPLY_TIMEOUT, || has_comment(&lab, &comment)));
    let before = comments(&lab);
    // SIGTERM, or SIGKILL when it is slow to stop: either way the rules stay in the kernel
    // (picd never flushes to permissive on the way out). A clean stop is the WireGuard
    // tests' concern.
    let _ = lab.stop_picd();
    assert_eq!(
        comments(&lab),
        before,
        "the table changed when picd stopped"
    );
    lab.restart_picd().await;
    assert!(
        eventually(APPLY_TIMEOUT, || lab
            .picd_log()
            .contains("picd is listening")),
        "picd did not come back"
    );
    assert_eq!(
        comments(&lab),
        before,
        "a restarted picd built another table"
    );
}
