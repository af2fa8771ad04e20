//! /api/dns zones and records: create, list, update and delete by id, the CNAME and duplicate
//! rules, field errors, atomic bulk writes, search; every write audited and visible in the
//! served zone (dig) with a new serial; a `dns`-scoped API key reaches only /api/dns.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ZONE: &str = "extra.test";

fn path(rest: &str) -> String {
    format!("/api/dns/zones/{ZONE}{rest}")
}

async fn audit_actions(cell: &DnsCell, action: &str) -> Vec<Value> {
    let (status, body) = cell
        .admin
        .get_json(&format!("/api/audit?action={action}&limit=100"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["entries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn zones_are_listed_created_and_deleted_but_not_the_cells() {
    let cell = DnsCell::start().await;
    let s = cell.dns();
    cell.create_zone(ZONE).await;
    let (status, body) = cell.admin.get_json("/api/dns/zones").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["zones"]
        .as_array()
        .expect("zones")
        .iter()
        .filter_map(|z| z["name"].as_str())
        .collect();
    assert_eq!(names, ["extra.test.", "home.example."], "{body}");
    let served = ask_until(
        PROPAGATION,
        "the new zone served",
        || dig(s, ZONE, "SOA", &["+norec"]),
        |r| r.status == "NOERROR",
    )
    .await;
    assert!(served.has_flag("aa"), "{}", served.text);

    let (status, body) = cell
        .send(
            Method::POST,
            "/api/dns/zones",
            &json!({ "name": "Extra.Test." }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_exists"))
    );
    let (status, body) = cell
        .send(
            Method::POST,
            "/api/dns/zones",
            &json!({ "name": "not a zone" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["fields"]["zone"].is_string(), "{body}");

    let (status, body) = cell
        .send(Method::DELETE, "/api/dns/zones/home.example", &json!(null))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("cell_zone")),
        "{body}"
    );
    let (status, _) = cell
        .send(Method::DELETE, "/api/dns/zones/nothere.test", &json!(null))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = cell
        .send(
            Method::DELETE,
            &format!("/api/dns/zones/{ZONE}"),
            &json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ask_until(
        PROPAGATION,
        "the deleted zone no longer served",
        || dig(s, ZONE, "SOA", &["+norec"]),
        |r| r.status == "REFUSED",
    )
    .await;
    let created = audit_actions(&cell, "dns.zones").await;
    let deleted = audit_actions(&cell, "dns.zones.delete").await;
    let results = |entries: &[Value]| -> Vec<String> {
        let mut r: Vec<String> = entries
            .iter()
            .map(|e| e["result"].as_str().unwrap_or_default().to_string())
            .collect();
        r.sort();
        r
    };
    assert_eq!(created.len(), 3, "{created:?}");
    assert_eq!(deleted.len(), 3, "{deleted:?}");
    assert!(
        results(&deleted).iter().any(|r| r == "success"),
        "{deleted:?}"
    );
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn records_are_added_updated_and_deleted_by_id() {
    let cell = DnsCell::start().await;
    let s = cell.dns();
    cell.create_zone(ZONE).await;
    let serial0 = cell.serial_above(ZONE, 0).await;

    let one = cell
        .add_record(
            ZONE,
            json!({ "name": "www", "type": "A", "data": "192.0.2.1", "ttl": 300 }),
        )
        .await;
    let two = cell
        .add_record(
            ZONE,
            json!({ "name": "WWW.extra.test.", "type": "a", "data": "192.0.2.2" }),
        )
        .await;
    assert_eq!(one["name"], "www.extra.test.", "{one}");
    assert_eq!(
        (two["type"].as_str(), two["ttl"].as_u64()),
        (Some("A"), Some(3600)),
        "{two}"
    );
    let serial1 = cell.serial_above(ZONE, serial0).await;
    let both = dig(s, "www.extra.test", "A", &[]);
    assert_eq!(both.data("A"), ["192.0.2.1", "192.0.2.2"], "{}", both.text);

    // Update keeps the id; the served data and the serial follow.
    let id = one["id"].as_str().expect("id");
    let (status, updated) = cell
        .send(
            Method::PUT,
            &path(&format!("/records/{id}")),
            &json!({ "data": "192.0.2.9", "ttl": 120 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["id"].as_str(), updated["ttl"].as_u64()),
        (Some(id), Some(120))
    );
    let serial2 = cell.serial_above(ZONE, serial1).await;
    let after = dig(s, "www.extra.test", "A", &[]);
    assert_eq!(
        after.data("A"),
        ["192.0.2.2", "192.0.2.9"],
        "serial {serial2}:\n{}",
        after.text
    );

    // Deleting one record of the RRset leaves the other.
    let (status, body) = cell
        .send(
            Method::DELETE,
            &path(&format!("/records/{id}")),
            &json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let serial3 = cell.serial_above(ZONE, serial2).await;
    assert_eq!(
        dig(s, "www.extra.test", "A", &[]).data("A"),
        ["192.0.2.2"],
        "serial {serial3}"
    );
    // Deleting it again, or an id that never was: 404, nothing else touched.
    for missing in [id, "0190b2a4-0000-7000-8000-000000000000"] {
        let (status, body) = cell
            .send(
                Method::DELETE,
                &path(&format!("/records/{missing}")),
                &json!(null),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
    }
    assert_eq!(cell.records(ZONE).await.len(), 1);

    // Every write has its audit entry.
    for action in [
        "dns.records.create",
        "dns.records.update",
        "dns.records.delete",
    ] {
        let entries = audit_actions(&cell, action).await;
        assert!(
            entries
                .iter()
                .any(|e| e["result"] == "success" && e["target_id"] == "extra.test."),
            "{action}: {entries:?}"
        );
    }
    assert_eq!(audit_actions(&cell, "dns.records.delete").await.len(), 3);
}

#[tokio::test]
async fn conflicts_and_bad_input_are_refused_with_reasons() {
    let cell = DnsCell::start().await;
    cell.create_zone(ZONE).await;
    cell.add_record(
        ZONE,
        json!({ "name": "www", "type": "A", "data": "192.0.2.1" }),
    )
    .await;
    cell.add_record(
        ZONE,
        json!({ "name": "alias", "type": "CNAME", "data": "www" }),
    )
    .await;
    let add = |record: Value| {
        let cell = &cell;
        async move { cell.send(Method::POST, &path("/records"), &record).await }
    };
    for (record, code) in [
        (
            json!({ "name": "www", "type": "CNAME", "data": "other" }),
            "cname_conflict",
        ),
        (
            json!({ "name": "alias", "type": "TXT", "data": "\"x\"" }),
            "cname_conflict",
        ),
        (
            json!({ "name": "alias", "type": "CNAME", "data": "elsewhere" }),
            "cname_conflict",
        ),
        (
            json!({ "name": "www", "type": "A", "data": "192.0.2.1" }),
            "already_exists",
        ),
    ] {
        let (status, body) = add(record.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some(code)),
            "{record}: {body}"
        );
    }
    for (record, fields) in [
        (
            json!({ "name": "a", "type": "A", "data": "300.1.1.1" }),
            &["data"][..],
        ),
        (
            json!({ "name": "a", "type": "AAAA", "data": "192.0.2.1" }),
            &["data"],
        ),
        (
            json!({ "name": "a", "type": "MX", "data": "mail" }),
            &["data"],
        ),
        (
            json!({ "name": "a", "type": "SOA", "data": "x" }),
            &["type"],
        ),
        (
            json!({ "name": "a", "type": "BOGUS", "data": "x" }),
            &["type"],
        ),
        (
            json!({ "name": "bad name!", "type": "A", "data": "192.0.2.1" }),
            &["name"],
        ),
        (
            json!({ "name": "www.other.org.", "type": "A", "data": "192.0.2.1" }),
            &["name"],
        ),
        (
            json!({ "name": "a", "type": "A", "data": "192.0.2.1", "ttl": 0 }),
            &["ttl"],
        ),
        (
            json!({ "name": "a", "type": "A", "data": "192.0.2.1", "ttl": 99999999 }),
            &["ttl"],
        ),
        (
            json!({ "name": "a", "type": "A", "data": "192.0.2.1", "view": "secret" }),
            &["view"],
        ),
        (
            json!({ "name": "a", "type": "TXT", "data": "x ( y" }),
            &["data"],
        ),
        (
            json!({ "name": "@", "type": "NS", "data": "ns.other.org." }),
            &["name"],
        ),
        (
            json!({ "name": "bad name!", "type": "BOGUS", "data": "", "ttl": 0 }),
            &["data", "name", "ttl", "type"],
        ),
    ] {
        let (status, body) = add(record.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("validation_failed")),
            "{record}: {body}"
        );
        let mut named: Vec<&str> = body["fields"]
            .as_object()
            .expect("fields")
            .keys()
            .map(String::as_str)
            .collect();
        named.sort();
        assert_eq!(named, fields, "{record}: {body}");
    }
    assert_eq!(cell.records(ZONE).await.len(), 2, "nothing more stored");
    // Each refusal was audited as a failure.
    let failures: Vec<Value> = audit_actions(&cell, "dns.records.create")
        .await
        .into_iter()
        .filter(|e| e["result"] != "success")
        .collect();
    assert_eq!(failures.len(), 17, "{failures:?}");
    assert_no_internal_errors(&cell.picd);
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
    assert_eq!(audit_actions(&cell, "dns.records.bulk").await.len(), 1);

    let (status, body) = cell
        .send(
            Method::POST,
            &path("/bulk"),
            &json!({ "operations": (100..201).map(add_op).collect::<Vec<_>>() }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["fields"]["operations"].is_string(), "{body}");
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
    let entries = audit_actions(&cell, "dns.records.create").await;
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
