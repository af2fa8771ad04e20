//! /api/dns in bulk and by search: atomic batches of up to 100 operations, search by exact IP,
//! CIDR and text; and a `dns`-scoped API key, which reaches /api/dns and nothing else.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ZONE: &str = "extra.test";

fn path(rest: &str) -> String {
    format!("/api/dns/zones/{ZONE}{rest}")
}

fn add_op(i: usize) -> Value {
    json!({ "op": "add", "name": format!("host{i}"), "type": "A", "data": format!("10.9.{}.{}", i / 250, i % 250 + 1) })
}

#[tokio::test]
async fn bulk_writes_are_all_or_nothing_and_at_most_100() {
    let cell = DnsCell::start().await;
    let s = cell.dns();
    cell.create_zone(ZONE).await;
    let serial0 = cell.serial_above(ZONE, 0).await;

    let hundred: Vec<Value> = (0..100).map(add_op).collect();
    let (status, body) = cell
        .send(
            Method::POST,
            &path("/bulk"),
            &json!({ "operations": hundred }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["applied"], 100);
    // One write, one serial step, one audit entry.
    let serial1 = cell.serial_above(ZONE, serial0).await;
    assert_eq!(
        dig(s, "host99.extra.test", "A", &[]).data("A"),
        ["10.9.0.100"],
        "serial {serial1}"
    );
    assert_eq!(cell.audit("dns.records.bulk").await.len(), 1);

    let (status, body) = cell
        .send(
            Method::POST,
            &path("/bulk"),
            &json!({ "operations": (100..201).map(add_op).collect::<Vec<_>>() }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "limit_exceeded", "{body}");
    assert_eq!(body["limit"], "dns_max_bulk_operations", "{body}");
    assert_eq!(body["max"], 100, "{body}");
    let (status, _) = cell
        .send(Method::POST, &path("/bulk"), &json!({ "operations": [] }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A mix of adds, an update and a delete with one bad operation: nothing is stored.
    let records = cell.records(ZONE).await;
    let first = records[0]["id"].as_str().expect("id").to_string();
    let second = records[1]["id"].as_str().expect("id").to_string();
    let mixed = json!({ "operations": [
        { "op": "add", "name": "new1", "type": "A", "data": "192.0.2.1" },
        { "op": "update", "id": first, "data": "192.0.2.200" },
        { "op": "delete", "id": second },
        { "op": "add", "name": "new2", "type": "A", "data": "not-an-address" },
    ]});
    let (status, body) = cell.send(Method::POST, &path("/bulk"), &mixed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["fields"]["operations[3].data"].is_string(), "{body}");
    assert_eq!(
        record_set(&cell.records(ZONE).await),
        record_set(&records),
        "unchanged"
    );
    // A delete of a missing id inside a batch: 404, nothing stored either.
    let (status, _) = cell
        .send(
            Method::POST,
            &path("/bulk"),
            &json!({ "operations": [
            { "op": "add", "name": "new3", "type": "A", "data": "192.0.2.3" },
            { "op": "delete", "id": "no-such-id" } ] }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(cell.records(ZONE).await.len(), 100);
    assert_eq!(
        cell.serial_above(ZONE, 0).await,
        serial1,
        "no serial step for refused batches"
    );
    assert_eq!(
        dig(s, "new1.extra.test", "A", &["+norec"]).status,
        "NXDOMAIN"
    );

    // The same batch without the bad operation goes through whole.
    let (status, body) = cell
        .send(
            Method::POST,
            &path("/bulk"),
            &json!({ "operations": [
            { "op": "add", "name": "new1", "type": "A", "data": "192.0.2.1" },
            { "op": "update", "id": first, "data": "192.0.2.200" },
            { "op": "delete", "id": second } ] }),
        )
        .await;
    assert_eq!(
        (status, body["applied"].as_u64()),
        (StatusCode::OK, Some(3)),
        "{body}"
    );
    cell.serial_above(ZONE, serial1).await;
    assert_eq!(dig(s, "new1.extra.test", "A", &[]).data("A"), ["192.0.2.1"]);
}

#[tokio::test]
async fn search_by_ip_cidr_and_text() {
    let cell = DnsCell::start().await;
    cell.create_zone(ZONE).await;
    for (name, rtype, data) in [
        ("web", "A", "192.0.2.10"),
        ("web", "AAAA", "2001:db8::10"),
        ("db", "A", "192.0.2.20"),
        ("far", "A", "198.51.100.1"),
        ("note", "TXT", "\"Backup server in rack 7\""),
    ] {
        cell.add_record(ZONE, json!({ "name": name, "type": rtype, "data": data }))
            .await;
    }
    cell.add_record(
        CELL_DOMAIN,
        json!({ "name": "web", "type": "A", "data": "192.0.2.10" }),
    )
    .await;
    let search = |query: &str| {
        let cell = &cell;
        let query = query.to_string();
        async move {
            let (status, body) = cell
                .admin
                .get_json(&format!("/api/dns/search?{query}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            let mut hits: Vec<String> = body["records"]
                .as_array()
                .expect("records")
                .iter()
                .map(|r| {
                    format!(
                        "{} {}",
                        r["name"].as_str().unwrap(),
                        r["type"].as_str().unwrap()
                    )
                })
                .collect();
            hits.sort();
            hits
        }
    };
    assert_eq!(
        search("ip=192.0.2.10").await,
        ["web.extra.test. A", "web.home.example. A"]
    );
    assert_eq!(search("ip=2001:db8::10").await, ["web.extra.test. AAAA"]);
    assert_eq!(
        search("cidr=192.0.2.0/27").await,
        [
            "db.extra.test. A",
            "web.extra.test. A",
            "web.home.example. A"
        ]
    );
    assert_eq!(search("cidr=2001:db8::/64").await, ["web.extra.test. AAAA"]);
    assert_eq!(search("q=RACK").await, ["note.extra.test. TXT"]);
    assert_eq!(
        search("q=web.extra").await,
        ["web.extra.test. A", "web.extra.test. AAAA"]
    );
    assert!(search("ip=203.0.113.99").await.is_empty());
    for bad in ["ip=nope", "cidr=192.0.2.0/99", "", "q="] {
        let (status, body) = cell.admin.get_json(&format!("/api/dns/search?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_dns_scoped_key_reaches_only_the_dns_api() {
    let cell = DnsCell::start().await;
    let (status, key) = cell
        .send(
            Method::POST,
            "/api/keys",
            &json!({ "name": "acme-client", "scopes": ["dns"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let token = key["token"].as_str().expect("token").to_string();
    let http = reqwest::Client::new();
    let with_key =
        |method: Method, p: &str| http.request(method, cell.admin.url(p)).bearer_auth(&token);

    let resp = with_key(Method::GET, "/api/dns/zones")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    // Writes need no CSRF token with a key; they are audited under the key's name.
    let resp = with_key(Method::POST, "/api/dns/zones/home.example/records")
        .json(&json!({ "name": "keyed", "type": "TXT", "data": "\"by key\"" }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let entries = cell.audit("dns.records.create").await;
    assert_eq!(entries[0]["actor"], "key:acme-client", "{entries:?}");
    ask_until(
        PROPAGATION,
        "the keyed record",
        || dig(cell.dns(), "keyed.home.example", "TXT", &[]),
        |r| r.data("TXT") == ["\"by key\""],
    )
    .await;
    for (method, p) in [
        (Method::GET, "/api/peers"),
        (Method::GET, "/api/config"),
        (Method::GET, "/api/audit"),
        (Method::POST, "/api/keys"),
    ] {
        let resp = with_key(method.clone(), p)
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        expect_error(resp, StatusCode::FORBIDDEN, "insufficient_scope").await;
    }
}
