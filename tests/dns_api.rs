//! /api/dns zones and records: create, list, update and delete by id, the CNAME and duplicate
//! rules and field errors; every write audited and visible in the served zone (dig) with a new
//! serial.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ZONE: &str = "extra.test";

fn path(rest: &str) -> String {
    format!("/api/dns/zones/{ZONE}{rest}")
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
    let created = cell.audit("dns.zones").await;
    let deleted = cell.audit("dns.zones.delete").await;
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
        let entries = cell.audit(action).await;
        assert!(
            entries
                .iter()
                .any(|e| e["result"] == "success" && e["target_id"] == "extra.test."),
            "{action}: {entries:?}"
        );
    }
    assert_eq!(cell.audit("dns.records.delete").await.len(), 3);
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
    let failures: Vec<Value> = cell
        .audit("dns.records.create")
        .await
        .into_iter()
        .filter(|e| e["result"] != "success")
        .collect();
    assert_eq!(failures.len(), 17, "{failures:?}");
    assert_no_internal_errors(&cell.picd);
}
