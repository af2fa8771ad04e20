//! Writes committed in groups keep the audit promises: many concurrent mutating requests,
//! some failing after their change was made, each leave exactly one entry, a failed one's
//! change is rolled back without touching the others of its group, and the chain verifies.

mod common;

use std::collections::HashMap;

use common::*;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ZONE: &str = "group.test";
/// Concurrent requests; a multiple of the four kinds below.
const REQUESTS: usize = 64;
const KINDS: usize = 4;

/// The request `i` sends, and the status and audit entry (action, result) it must get.
fn request_for(i: usize, config: &Value) -> (Method, String, Value, StatusCode, (&str, &str)) {
    let bulk = format!("/api/dns/zones/{ZONE}/bulk");
    match i % KINDS {
        0 => (
            Method::POST,
            bulk,
            json!({ "operations": [
                { "op": "add", "name": format!("kept{i}"), "type": "A", "data": "192.0.2.1" } ] }),
            StatusCode::OK,
            ("dns.records.bulk", "success"),
        ),
        // The add is made inside the transaction, then the delete fails: the add must go.
        1 => (
            Method::POST,
            bulk,
            json!({ "operations": [
                { "op": "add", "name": format!("dropped{i}"), "type": "A", "data": "192.0.2.2" },
                { "op": "delete", "id": "no-such-id" } ] }),
            StatusCode::NOT_FOUND,
            ("dns.records.bulk", "failure"),
        ),
        2 => {
            let mut config = config.clone();
            config["dns"]["split_horizon"] = json!(i % 8 == 2);
            (
                Method::PUT,
                "/api/config".into(),
                config,
                StatusCode::OK,
                ("config.update", "success"),
            )
        }
        _ => {
            let mut bad = config.clone();
            bad["cell"]["domain"] = json!("not a domain");
            (
                Method::PUT,
                "/api/config".into(),
                bad,
                StatusCode::BAD_REQUEST,
                ("config.update", "failure"),
            )
        }
    }
}

fn entries_by_kind(picd: &Picd, after_seq: i64) -> HashMap<(String, String), usize> {
    let db = picd.db();
    let mut stmt = db
        .prepare("SELECT action, result FROM audit_log WHERE seq > ?1")
        .unwrap();
    let rows = stmt
        .query_map([after_seq], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    let mut counts = HashMap::new();
    for row in rows {
        *counts.entry(row.unwrap()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn concurrent_writes_each_leave_one_entry_and_the_chain_verifies() {
    let (picd, admin) = picd_with_admin().await;
    let resp = admin
        .send_json(Method::POST, "/api/dns/zones", &json!({ "name": ZONE }))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, config) = admin.get_json("/api/config").await;
    let token = admin.csrf_token().await;
    let last_seq = last_audit(&picd.db()).seq;

    let requests = (0..REQUESTS).map(|i| {
        let (method, path, body, status, entry) = request_for(i, &config);
        let send = admin
            .http
            .request(method, admin.url(&path))
            .header("x-csrf-token", &token)
            .json(&body)
            .send();
        async move {
            let resp = send.await.expect("request");
            let got = resp.status();
            let text = resp.text().await.unwrap_or_default();
            assert_eq!(got, status, "request {i}: {text}");
            entry
        }
    });
    let mut expected: HashMap<(String, String), usize> = HashMap::new();
    for (action, result) in join_all(requests).await {
        *expected
            .entry((action.to_string(), result.to_string()))
            .or_insert(0) += 1;
    }

    assert_eq!(entries_by_kind(&picd, last_seq), expected);
    let (min, max, count): (i64, i64, i64) = picd
        .db()
        .query_row(
            "SELECT MIN(seq), MAX(seq), COUNT(*) FROM audit_log WHERE seq > ?1",
            [last_seq],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (min, max, count),
        (last_seq + 1, last_seq + REQUESTS as i64, REQUESTS as i64)
    );

    let (status, records) = admin
        .get_json(&format!("/api/dns/zones/{ZONE}/records"))
        .await;
    assert_eq!(status, StatusCode::OK, "{records}");
    let names: Vec<String> = records
        .as_array()
        .or_else(|| records["records"].as_array())
        .expect("a list of records")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .map(|name| name.split('.').next().unwrap_or_default().to_string())
        .collect();
    for i in 0..REQUESTS {
        match i % KINDS {
            0 => assert!(
                names.contains(&format!("kept{i}")),
                "kept{i} missing from {names:?}"
            ),
            1 => assert!(
                !names.contains(&format!("dropped{i}")),
                "dropped{i} was stored: {names:?}"
            ),
            _ => {}
        }
    }

    let (status, report) = admin.get_json("/api/audit/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["valid"], true, "{report}");
}
