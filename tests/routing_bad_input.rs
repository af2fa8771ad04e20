//! The routing routes (`/api/routing/firewall`, `/api/routing/ip-list`,
//! `/api/routing/rate-limits`, `/api/routing/templates`, `/api/routing/peers`, the metrics with
//! their `port` and `peer` filters) refuse the wrong
//! actor, a missing CSRF token and bad bodies with the API's JSON error shape, never a 500,
//! and store nothing.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const UNAUTHORIZED: (u16, &str) = (401, "unauthorized");
const ADMIN_ONLY: (u16, &str) = (403, "admin_only");
const CSRF_INVALID: (u16, &str) = (403, "csrf_invalid");
const INSUFFICIENT_SCOPE: (u16, &str) = (403, "insufficient_scope");
const MALFORMED: (u16, &str) = (400, "malformed_json");
const INVALID_BODY: (u16, &str) = (422, "invalid_body");
const INVALID_FIELDS: (u16, &str) = (400, "validation_failed");
const TOO_LARGE: (u16, &str) = (413, "payload_too_large");
const NOT_FOUND: (u16, &str) = (404, "not_found");

const FIREWALL: &str = "/api/routing/firewall";
const IP_LIST: &str = "/api/routing/ip-list";
const RATE_LIMITS: &str = "/api/routing/rate-limits";
const TEMPLATES: &str = "/api/routing/templates";
const METRICS: &str = "/api/routing/metrics";
const SUMMARY: &str = "/api/routing/metrics/summary";
const APPLY: &str = "/api/routing/templates/udp-flood/apply";
const PEER_POLICIES: &str = "/api/routing/peers";
/// The one peer the test makes, so that a refused policy change has a peer to miss.
const PEER: &str = "alice";
const PEER_POLICY: &str = "/api/routing/peers/alice";

fn limit(extra: serde_json::Value) -> Body {
    let mut body = json!({ "name": "l", "protocol": "udp", "port_start": 9000,
                           "rule_type": "rate_limit", "max_pps": 10 });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    Body::Json(body)
}

fn rule(extra: serde_json::Value) -> Body {
    let mut body = json!({ "name": "r", "protocol": "tcp", "port_start": 80, "action": "drop" });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    Body::Json(body)
}

fn entry(extra: serde_json::Value) -> Body {
    let mut body = json!({ "list_type": "blacklist", "ip_address": "203.0.113.9" });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    Body::Json(body)
}

fn table() -> Vec<Refused> {
    use Who::*;
    let mut table = Vec::new();
    for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
        for path in [
            FIREWALL,
            IP_LIST,
            RATE_LIMITS,
            TEMPLATES,
            METRICS,
            SUMMARY,
            PEER_POLICIES,
        ] {
            table.push(refused(who, Method::GET, path, Body::Empty, answer));
        }
    }
    for (who, answer) in [
        (Anonymous, UNAUTHORIZED),
        (Peer, ADMIN_ONLY),
        (AdminNoCsrf, CSRF_INVALID),
        (ReadOnlyKey, INSUFFICIENT_SCOPE),
    ] {
        table.push(refused(
            who,
            Method::POST,
            FIREWALL,
            rule(json!({})),
            answer,
        ));
        table.push(refused(
            who,
            Method::POST,
            IP_LIST,
            entry(json!({})),
            answer,
        ));
        table.push(refused(
            who,
            Method::DELETE,
            &format!("{FIREWALL}/x"),
            Body::Empty,
            answer,
        ));
        table.push(refused(
            who,
            Method::DELETE,
            &format!("{IP_LIST}/x"),
            Body::Empty,
            answer,
        ));
        table.push(refused(
            who,
            Method::POST,
            RATE_LIMITS,
            limit(json!({})),
            answer,
        ));
        table.push(refused(
            who,
            Method::DELETE,
            &format!("{RATE_LIMITS}/x"),
            Body::Empty,
            answer,
        ));
        table.push(refused(
            who,
            Method::POST,
            APPLY,
            Body::Json(json!({ "port": 9001 })),
            answer,
        ));
        table.push(refused(
            who,
            Method::PUT,
            PEER_POLICY,
            Body::Json(json!({ "internet": false })),
            answer,
        ));
    }
    peer_policy_rows(&mut table);
    let bad_limits = [
        (raw(JSON, "{\"name\": "), MALFORMED),
        (limit(json!({ "max_pps": "many" })), INVALID_BODY),
        (limit(json!({ "max_pps": -1 })), INVALID_BODY),
        (limit(json!({ "max_pps": 20_000_000 })), INVALID_FIELDS),
        (limit(json!({ "max_port_pps": 20_000_000 })), INVALID_FIELDS),
        (limit(json!({ "surprise": true })), INVALID_BODY),
        (limit(json!({ "rule_type": "xdp" })), INVALID_FIELDS),
        (limit(json!({ "protocol": "sctp" })), INVALID_FIELDS),
        (limit(json!({ "protocol": "icmp" })), INVALID_FIELDS),
        (limit(json!({ "max_pps": 0 })), INVALID_FIELDS),
        (limit(json!({ "rule_type": "block" })), INVALID_FIELDS),
        (
            limit(json!({ "rule_type": "block", "max_pps": 0, "port_start": null })),
            INVALID_FIELDS,
        ),
        (
            limit(json!({ "rule_type": "allow_only", "max_pps": 0, "port_start": null })),
            INVALID_FIELDS,
        ),
        (
            limit(json!({ "port_start": 9000, "port_end": 8000 })),
            INVALID_FIELDS,
        ),
        (
            limit(json!({ "name": "a\"; flush ruleset; \"" })),
            INVALID_FIELDS,
        ),
        (limit(json!({ "name": "x".repeat(200_000) })), TOO_LARGE),
    ];
    for (body, answer) in bad_limits {
        table.push(refused(Admin, Method::POST, RATE_LIMITS, body, answer));
    }
    for (path, body, answer) in [
        (APPLY, raw(JSON, "{\"port\": "), MALFORMED),
        (APPLY, Body::Json(json!({ "port": "ssh" })), INVALID_BODY),
        (APPLY, Body::Json(json!({ "port": 70000 })), INVALID_BODY),
        (APPLY, Body::Json(json!({ "port": 0 })), INVALID_FIELDS),
        (APPLY, Body::Json(json!({})), INVALID_FIELDS),
        (
            APPLY,
            Body::Json(json!({ "port": 1, "x": 1 })),
            INVALID_BODY,
        ),
        (
            "/api/routing/templates/nope/apply",
            Body::Json(json!({})),
            NOT_FOUND,
        ),
    ] {
        table.push(refused(Admin, Method::POST, path, body, answer));
    }
    const INVALID_QUERY: (u16, &str) = (400, "invalid_query");
    for (query, answer) in [
        ("/summary?window=2d", INVALID_FIELDS),
        ("/summary?window=1h&x=1", INVALID_QUERY),
        ("?interval=7m", INVALID_FIELDS),
        ("?from=yesterday", INVALID_FIELDS),
        ("?to=2026-13-01T00:00:00Z", INVALID_FIELDS),
        (
            "?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            INVALID_FIELDS,
        ),
        (
            "?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&interval=1m",
            INVALID_FIELDS,
        ),
        ("?port=70000", INVALID_QUERY),
        ("?port=-1", INVALID_QUERY),
        ("?port=ssh", INVALID_QUERY),
        ("?peer=Not_A_Label!", INVALID_FIELDS),
        ("?peer=", INVALID_FIELDS),
        ("?peer=alice&port=80", INVALID_FIELDS),
        ("?peer=alice&interval=7m", INVALID_FIELDS),
        ("?peer=nobody", NOT_FOUND),
        ("?peer=alice&peer=bob", INVALID_QUERY),
    ] {
        let path = format!("{METRICS}{query}");
        table.push(refused(Admin, Method::GET, &path, Body::Empty, answer));
    }
    let long_peer = format!("{METRICS}?peer={}", "x".repeat(300));
    table.push(refused(
        Admin,
        Method::GET,
        &long_peer,
        Body::Empty,
        INVALID_FIELDS,
    ));
    for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
        let path = format!("{METRICS}?peer={PEER}");
        table.push(refused(who, Method::GET, &path, Body::Empty, answer));
    }
    table.push(refused(
        Admin,
        Method::GET,
        "/api/routing/templates?category=Gaming&x=1",
        Body::Empty,
        (400, "invalid_query"),
    ));
    let bad_rules = [
        (raw(JSON, "{\"name\": "), MALFORMED),
        (Body::Json(json!(["r"])), INVALID_BODY),
        (rule(json!({ "port_start": "eighty" })), INVALID_BODY),
        (rule(json!({ "port_start": 70000 })), INVALID_BODY),
        (rule(json!({ "port_start": -1 })), INVALID_BODY),
        (rule(json!({ "surprise": 1 })), INVALID_BODY),
        (rule(json!({ "chain": "prerouting" })), INVALID_FIELDS),
        (rule(json!({ "protocol": "sctp" })), INVALID_FIELDS),
        (rule(json!({ "protocol": "icmp" })), INVALID_FIELDS),
        (rule(json!({ "protocol": "any" })), INVALID_FIELDS),
        (rule(json!({ "action": "masquerade" })), INVALID_FIELDS),
        (
            rule(json!({ "port_start": 90, "port_end": 80 })),
            INVALID_FIELDS,
        ),
        (
            rule(json!({ "port_start": 0, "port_end": 80 })),
            INVALID_FIELDS,
        ),
        (rule(json!({ "action": "limit" })), INVALID_FIELDS),
        (
            rule(json!({ "action": "limit", "limit_rate": 0, "limit_unit": "second" })),
            INVALID_FIELDS,
        ),
        (
            rule(json!({ "action": "limit", "limit_rate": 5, "limit_unit": "fortnight" })),
            INVALID_FIELDS,
        ),
        (
            rule(json!({ "limit_rate": 5, "limit_unit": "second" })),
            INVALID_FIELDS,
        ),
        (rule(json!({ "conntrack": "new,invalid" })), INVALID_FIELDS),
        (
            rule(json!({ "conntrack": "x".repeat(100) })),
            INVALID_FIELDS,
        ),
        (rule(json!({ "name": "" })), INVALID_FIELDS),
        (
            rule(json!({ "name": "a\"; flush ruleset; \"" })),
            INVALID_FIELDS,
        ),
        (rule(json!({ "name": "x".repeat(65) })), INVALID_FIELDS),
        (rule(json!({ "name": "x".repeat(200_000) })), TOO_LARGE),
    ];
    for (body, answer) in bad_rules {
        table.push(refused(Admin, Method::POST, FIREWALL, body, answer));
    }
    let bad_entries = [
        (raw(JSON, "{\"list_type\": "), MALFORMED),
        (entry(json!({ "list_type": "greylist" })), INVALID_FIELDS),
        (
            entry(json!({ "ip_address": "not an address" })),
            INVALID_FIELDS,
        ),
        (
            entry(json!({ "ip_address": "203.0.113.9/33" })),
            INVALID_FIELDS,
        ),
        (entry(json!({ "ip_address": "0.0.0.0/0" })), INVALID_FIELDS),
        (entry(json!({ "ip_address": "::/0" })), INVALID_FIELDS),
        (
            entry(json!({ "ip_address": "1".repeat(100) })),
            INVALID_FIELDS,
        ),
        (entry(json!({ "ip_address": 7 })), INVALID_BODY),
        (entry(json!({ "expires_at": "tomorrow" })), INVALID_FIELDS),
        (
            entry(json!({ "expires_at": "2001-01-01T00:00:00Z" })),
            INVALID_FIELDS,
        ),
        (
            entry(json!({ "expires_at": "9999-01-01T00:00:00Z" })),
            INVALID_FIELDS,
        ),
        (
            entry(json!({ "list_type": "whitelist", "expires_at": "2099-01-01T00:00:00Z" })),
            INVALID_FIELDS,
        ),
        (entry(json!({ "reason": "r".repeat(201) })), INVALID_FIELDS),
        (entry(json!({ "reason": "a\nb" })), INVALID_FIELDS),
    ];
    for (body, answer) in bad_entries {
        table.push(refused(Admin, Method::POST, IP_LIST, body, answer));
    }
    let long = "x".repeat(300);
    for path in [
        format!("{FIREWALL}/nope"),
        format!("{FIREWALL}/{long}"),
        format!("{IP_LIST}/nope"),
        format!("{IP_LIST}/{long}"),
        format!("{RATE_LIMITS}/nope"),
        format!("{RATE_LIMITS}/{long}"),
    ] {
        table.push(refused(
            Admin,
            Method::DELETE,
            &path,
            Body::Empty,
            NOT_FOUND,
        ));
    }
    for (query, answer) in [
        ("?type=greylist", INVALID_FIELDS),
        ("?type=blacklist&other=1", (400, "invalid_query")),
    ] {
        let path = format!("{IP_LIST}{query}");
        table.push(refused(Admin, Method::GET, &path, Body::Empty, answer));
    }
    table
}

/// PUT /api/routing/peers/{peer}: booleans `internet` and `peer_to_peer` only, at least one,
/// for a peer that exists.
fn peer_policy_rows(table: &mut Vec<Refused>) {
    let bodies = [
        (raw(JSON, "{\"internet\": "), MALFORMED),
        (Body::Json(json!({})), INVALID_FIELDS),
        (Body::Json(json!(["internet"])), INVALID_FIELDS),
        (Body::Json(json!({ "internet": "no" })), INVALID_FIELDS),
        (Body::Json(json!({ "internet": 0 })), INVALID_FIELDS),
        (Body::Json(json!({ "internet": null })), INVALID_FIELDS),
        (Body::Json(json!({ "peer_to_peer": "off" })), INVALID_FIELDS),
        (
            Body::Json(json!({ "internet": false, "exit": "tor" })),
            INVALID_FIELDS,
        ),
        (
            Body::Json(json!({ "internet": false, "pad": "x".repeat(200_000) })),
            TOO_LARGE,
        ),
    ];
    for (body, answer) in bodies {
        table.push(refused(Who::Admin, Method::PUT, PEER_POLICY, body, answer));
    }
    let long = format!("{PEER_POLICIES}/{}", "x".repeat(300));
    for path in [format!("{PEER_POLICIES}/nobody"), long] {
        let body = Body::Json(json!({ "internet": false }));
        table.push(refused(Who::Admin, Method::PUT, &path, body, NOT_FOUND));
    }
}

#[tokio::test]
async fn routing_routes_refuse_with_json_errors_and_store_nothing() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    common::netns::create_peer(&admin, json!({ "name": PEER })).await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    clients.check_all(&table()).await;
    let count = |sql: &str| -> i64 { picd.db().query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT COUNT(*) FROM routing_firewall_rules WHERE is_system = 0"),
        0,
        "a refused request stored a rule"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM routing_ip_list"),
        0,
        "a refused request stored an entry"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM routing_rate_limits"),
        0,
        "a refused request stored a rate-limit rule"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM routing_peer_policy"),
        0,
        "a refused request stored a peer policy"
    );
    assert_no_internal_errors(&picd);
}
