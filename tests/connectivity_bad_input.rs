//! The connectivity routes (`/api/connectivity/connections`, `/exits`, `/status`, `/peers`)
//! refuse the wrong actor, a missing CSRF token and bad bodies with the API's JSON error
//! shape, never a 500, and store nothing.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const UNAUTHORIZED: (u16, &str) = (401, "unauthorized");
const ADMIN_ONLY: (u16, &str) = (403, "admin_only");
const CSRF_INVALID: (u16, &str) = (403, "csrf_invalid");
const INSUFFICIENT_SCOPE: (u16, &str) = (403, "insufficient_scope");
const MALFORMED: (u16, &str) = (400, "malformed_json");
const INVALID_FIELDS: (u16, &str) = (400, "validation_failed");
const TOO_LARGE: (u16, &str) = (413, "payload_too_large");
const NOT_FOUND: (u16, &str) = (404, "not_found");
const UNSUPPORTED: (u16, &str) = (415, "unsupported_media_type");
const REFUSED_FILE: (u16, &str) = (422, "invalid_body");

const CONNECTIONS: &str = "/api/connectivity/connections";
const CONNECTION: &str = "/api/connectivity/connections/nope";
const HEALTH: &str = "/api/connectivity/connections/nope/health";
const EXITS: &str = "/api/connectivity/exits";
const STATUS: &str = "/api/connectivity/status";
const PEERS: &str = "/api/connectivity/peers";
/// The one peer the test makes, so that a refused change has a peer to miss.
const PEER: &str = "alice";
const EXIT: &str = "/api/connectivity/peers/alice/exit";
const FAIL_OPEN: &str = "/api/connectivity/peers/alice/failopen";
const KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

fn provider_file() -> String {
    format!(
        "[Interface]\nPrivateKey = {KEY}\nAddress = 10.64.0.2/32\n[Peer]\nPublicKey = {KEY}\n\
         Endpoint = 198.51.100.2:51820\nAllowedIPs = 0.0.0.0/0\n"
    )
}

fn connection(extra: Value) -> Body {
    let mut body = json!({ "name": "p", "type": "wireguard_ext", "config": provider_file() });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    Body::Json(body)
}

/// A provider's .ovpn (`extra` lines after `client`).
fn ovpn(extra: &str, fields: Value) -> Body {
    let config = format!(
        "client\n{extra}\nremote 198.51.100.2 1194\npeer-fingerprint AB:CD\n<key>\nK\n</key>\n"
    );
    let mut body = json!({ "name": "o", "type": "openvpn", "config": config });
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    Body::Json(body)
}

fn openvpn_rows(table: &mut Vec<Refused>) {
    let creds = json!({ "username": "u", "password": "p" });
    let bodies = [
        (ovpn("up /bin/sh", json!({})), REFUSED_FILE),
        (ovpn("script-security 2", json!({})), REFUSED_FILE),
        (ovpn("management 127.0.0.1 7505", json!({})), REFUSED_FILE),
        (ovpn("comp-lzo", json!({})), REFUSED_FILE),
        (ovpn("dev tap", json!({})), REFUSED_FILE),
        (ovpn("unknown-directive 1", json!({})), REFUSED_FILE),
        (
            ovpn("auth-user-pass /etc/creds", creds.clone()),
            REFUSED_FILE,
        ),
        (ovpn("auth-user-pass", json!({})), REFUSED_FILE),
        (ovpn("", creds.clone()), REFUSED_FILE),
        (ovpn("<ca>\nno end", json!({})), REFUSED_FILE),
        (ovpn(&"#".repeat(50_000), json!({})), REFUSED_FILE),
        (
            ovpn("auth-user-pass", json!({ "username": "u" })),
            INVALID_FIELDS,
        ),
        (
            ovpn("auth-user-pass", json!({ "username": 1, "password": "p" })),
            INVALID_FIELDS,
        ),
        (
            ovpn(
                "auth-user-pass",
                json!({ "username": "u", "password": "a\nb" }),
            ),
            INVALID_FIELDS,
        ),
        (
            ovpn("auth-user-pass", json!({ "username": "", "password": "p" })),
            INVALID_FIELDS,
        ),
        (
            ovpn(
                "auth-user-pass",
                json!({ "username": "x".repeat(300), "password": "p" }),
            ),
            INVALID_FIELDS,
        ),
        (ovpn("", json!({ "config": 5 })), INVALID_FIELDS),
        (connection(creds.clone()), INVALID_FIELDS),
    ];
    for (body, answer) in bodies {
        table.push(refused(Who::Admin, Method::POST, CONNECTIONS, body, answer));
    }
    for (body, answer) in [
        (Body::Json(creds), INVALID_FIELDS),
        (
            Body::Json(json!({ "type": "openvpn", "config": "up x" })),
            REFUSED_FILE,
        ),
        (
            Body::Json(json!({ "type": "openvpn", "password": null })),
            INVALID_FIELDS,
        ),
    ] {
        table.push(refused(Who::Admin, Method::PUT, CONNECTION, body, answer));
    }
}

fn with_line(line: &str) -> Body {
    let config = provider_file().replace("[Peer]", &format!("{line}\n[Peer]"));
    connection(json!({ "config": config }))
}

fn actor_rows(table: &mut Vec<Refused>) {
    use Who::*;
    for (who, answer) in [(Anonymous, UNAUTHORIZED), (Peer, ADMIN_ONLY)] {
        for path in [CONNECTIONS, EXITS, STATUS, PEERS, HEALTH] {
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
            CONNECTIONS,
            connection(json!({})),
            answer,
        ));
        let rename = Body::Json(json!({ "name": "q" }));
        table.push(refused(who, Method::PUT, CONNECTION, rename, answer));
        table.push(refused(
            who,
            Method::DELETE,
            CONNECTION,
            Body::Empty,
            answer,
        ));
        let direct = Body::Json(json!({ "connection": null }));
        table.push(refused(who, Method::PUT, EXIT, direct, answer));
        let open = Body::Json(json!({ "fail_open": true }));
        table.push(refused(who, Method::PUT, FAIL_OPEN, open, answer));
    }
}

fn connection_rows(table: &mut Vec<Refused>) {
    let bodies = [
        (raw(JSON, "{\"name\": "), MALFORMED),
        (raw(None, "{}"), UNSUPPORTED),
        (Body::Json(json!(["p"])), INVALID_FIELDS),
        (connection(json!({ "name": 7 })), INVALID_FIELDS),
        (connection(json!({ "name": "" })), INVALID_FIELDS),
        (connection(json!({ "name": "a\"b" })), INVALID_FIELDS),
        (
            connection(json!({ "name": "x".repeat(65) })),
            INVALID_FIELDS,
        ),
        (connection(json!({ "type": "openvpn" })), REFUSED_FILE),
        (connection(json!({ "type": "tor" })), INVALID_FIELDS),
        (connection(json!({ "type": null })), INVALID_FIELDS),
        (connection(json!({ "config": 1 })), INVALID_FIELDS),
        (connection(json!({ "config": "" })), INVALID_FIELDS),
        (connection(json!({ "surprise": true })), INVALID_FIELDS),
        (with_line("PostUp = iptables -F"), INVALID_FIELDS),
        (with_line("PreDown = rm -rf /"), INVALID_FIELDS),
        (with_line("Table = off"), INVALID_FIELDS),
        (with_line("MTU = 70000"), INVALID_FIELDS),
        (with_line("DNS = resolver.example"), INVALID_FIELDS),
        (with_line("Address = 10.64.0.2/40"), INVALID_FIELDS),
        (with_line("[Peer]\nPublicKey = x"), INVALID_FIELDS),
        (
            connection(json!({ "config": "x".repeat(9000) })),
            INVALID_FIELDS,
        ),
        (
            connection(json!({ "config": "x".repeat(200_000) })),
            TOO_LARGE,
        ),
    ];
    for (body, answer) in bodies {
        table.push(refused(Who::Admin, Method::POST, CONNECTIONS, body, answer));
    }
    let long = format!("{CONNECTIONS}/{}", "x".repeat(300));
    for path in [CONNECTION, &long] {
        let rename = Body::Json(json!({ "name": "q" }));
        table.push(refused(Who::Admin, Method::PUT, path, rename, NOT_FOUND));
        table.push(refused(
            Who::Admin,
            Method::DELETE,
            path,
            Body::Empty,
            NOT_FOUND,
        ));
    }
    for (body, answer) in [
        (raw(JSON, "{\"name\": "), MALFORMED),
        (Body::Json(json!({})), INVALID_FIELDS),
        (Body::Json(json!({ "type": "tor" })), INVALID_FIELDS),
        (
            Body::Json(json!({ "config": "[Interface]" })),
            INVALID_FIELDS,
        ),
    ] {
        table.push(refused(Who::Admin, Method::PUT, CONNECTION, body, answer));
    }
}

fn proxy(extra: Value) -> Body {
    let mut body = json!({ "name": "px", "type": "socks5", "host": "198.51.100.2", "port": 1080,
                           "username": "u", "password": "p", "dns": ["203.0.113.53"] });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    Body::Json(body)
}

/// `socks5` and `http` bodies: each wrong field, a wrong actor, and a body too large.
fn proxy_rows(table: &mut Vec<Refused>) {
    use Who::*;
    for (who, answer) in [
        (Anonymous, UNAUTHORIZED),
        (Peer, ADMIN_ONLY),
        (AdminNoCsrf, CSRF_INVALID),
        (ReadOnlyKey, INSUFFICIENT_SCOPE),
    ] {
        table.push(refused(
            who,
            Method::POST,
            CONNECTIONS,
            proxy(json!({})),
            answer,
        ));
    }
    let bodies = [
        (raw(JSON, "{\"type\": \"socks5\", "), MALFORMED),
        (proxy(json!({ "type": "socks4" })), INVALID_FIELDS),
        (proxy(json!({ "host": 1 })), INVALID_FIELDS),
        (proxy(json!({ "host": "2001:db8::1" })), INVALID_FIELDS),
        (proxy(json!({ "host": "-bad-.example" })), INVALID_FIELDS),
        (proxy(json!({ "host": "0.0.0.0" })), INVALID_FIELDS),
        (proxy(json!({ "port": 0 })), INVALID_FIELDS),
        (proxy(json!({ "port": 65536 })), INVALID_FIELDS),
        (proxy(json!({ "port": "1080" })), INVALID_FIELDS),
        (proxy(json!({ "username": "" })), INVALID_FIELDS),
        (proxy(json!({ "username": "a\"b" })), INVALID_FIELDS),
        (
            proxy(json!({ "password": "x".repeat(256) })),
            INVALID_FIELDS,
        ),
        (proxy(json!({ "password": "back\\slash" })), INVALID_FIELDS),
        (proxy(json!({ "password": null })), INVALID_FIELDS),
        (proxy(json!({ "dns": "203.0.113.53" })), INVALID_FIELDS),
        (
            proxy(json!({ "dns": ["resolver.example"] })),
            INVALID_FIELDS,
        ),
        (proxy(json!({ "dns": ["127.0.0.1"] })), INVALID_FIELDS),
        (
            proxy(json!({ "dns": vec!["192.0.2.1"; 5] })),
            INVALID_FIELDS,
        ),
        (proxy(json!({ "probe_target": "no-port" })), INVALID_FIELDS),
        (proxy(json!({ "config": "[Interface]" })), INVALID_FIELDS),
        (
            proxy(json!({ "type": "http", "password": "x".repeat(200_000) })),
            TOO_LARGE,
        ),
    ];
    for (body, answer) in bodies {
        table.push(refused(Admin, Method::POST, CONNECTIONS, body, answer));
    }
    let missing = Body::Json(json!({ "name": "px", "type": "http" }));
    table.push(refused(
        Admin,
        Method::POST,
        CONNECTIONS,
        missing,
        INVALID_FIELDS,
    ));
}

fn tor(extra: Value) -> Body {
    let mut body = json!({ "name": "t", "type": "tor" });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    Body::Json(body)
}

/// `tor` bodies: a wrong actor, each wrong field, options tor connections do not have, and a
/// body too large. PUTs on a stored tor connection: `tor_connection_changes_refuse_bad_bodies`.
fn tor_rows(table: &mut Vec<Refused>) {
    use Who::*;
    for (who, answer) in [
        (Anonymous, UNAUTHORIZED),
        (Peer, ADMIN_ONLY),
        (AdminNoCsrf, CSRF_INVALID),
        (ReadOnlyKey, INSUFFICIENT_SCOPE),
    ] {
        table.push(refused(
            who,
            Method::POST,
            CONNECTIONS,
            tor(json!({})),
            answer,
        ));
    }
    let bodies = [
        (raw(JSON, "{\"type\": \"tor\", "), MALFORMED),
        (Body::Json(json!({ "type": "tor" })), INVALID_FIELDS),
        (tor(json!({ "name": 7 })), INVALID_FIELDS),
        (tor(json!({ "name": "" })), INVALID_FIELDS),
        (tor(json!({ "name": "a\nb" })), INVALID_FIELDS),
        (tor(json!({ "name": "x".repeat(65) })), INVALID_FIELDS),
        (
            tor(json!({ "bridges": ["obfs4 192.0.2.1:443"] })),
            INVALID_FIELDS,
        ),
        (tor(json!({ "exit_country": "de" })), INVALID_FIELDS),
        (tor(json!({ "config": "SocksPort 9050" })), INVALID_FIELDS),
        (Body::Json(json!(["tor"])), INVALID_FIELDS),
        (tor(json!({ "name": "x".repeat(200_000) })), TOO_LARGE),
    ];
    for (body, answer) in bodies {
        table.push(refused(Admin, Method::POST, CONNECTIONS, body, answer));
    }
}

fn peer_rows(table: &mut Vec<Refused>) {
    for (path, body, answer) in [
        (EXIT, raw(JSON, "{\"connection\": "), MALFORMED),
        (EXIT, Body::Json(json!({})), INVALID_FIELDS),
        (EXIT, Body::Json(json!({ "connection": 7 })), INVALID_FIELDS),
        (
            EXIT,
            Body::Json(json!({ "connection": "" })),
            INVALID_FIELDS,
        ),
        (
            EXIT,
            Body::Json(json!({ "connection": "nope" })),
            INVALID_FIELDS,
        ),
        (
            EXIT,
            Body::Json(json!({ "connection": null, "x": 1 })),
            INVALID_FIELDS,
        ),
        (
            EXIT,
            Body::Json(json!({ "connection": "x".repeat(200_000) })),
            TOO_LARGE,
        ),
        (FAIL_OPEN, raw(JSON, "{\"fail_open\": "), MALFORMED),
        (
            FAIL_OPEN,
            Body::Json(json!({ "fail_open": "yes" })),
            INVALID_FIELDS,
        ),
        (
            FAIL_OPEN,
            Body::Json(json!({ "fail_open": null })),
            INVALID_FIELDS,
        ),
        (FAIL_OPEN, Body::Json(json!([true])), INVALID_FIELDS),
    ] {
        table.push(refused(Who::Admin, Method::PUT, path, body, answer));
    }
    let long = format!("{PEERS}/{}/exit", "x".repeat(300));
    for path in [format!("{PEERS}/nobody/exit"), long] {
        let body = Body::Json(json!({ "connection": null }));
        table.push(refused(Who::Admin, Method::PUT, &path, body, NOT_FOUND));
    }
}

#[tokio::test]
async fn connectivity_routes_refuse_with_json_errors_and_store_nothing() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    common::netns::create_peer(&admin, json!({ "name": PEER })).await;
    let clients = Clients::signed_in(&picd, admin, peer).await;
    let mut table = Vec::new();
    actor_rows(&mut table);
    connection_rows(&mut table);
    proxy_rows(&mut table);
    tor_rows(&mut table);
    openvpn_rows(&mut table);
    peer_rows(&mut table);
    clients.check_all(&table).await;
    let count = |sql: &str| -> i64 { picd.db().query_row(sql, [], |r| r.get(0)).unwrap() };
    for (sql, what) in [
        (
            "SELECT COUNT(*) FROM connectivity_connections",
            "a connection",
        ),
        (
            "SELECT COUNT(*) FROM connectivity_peer_exits",
            "a peer's exit",
        ),
        (
            "SELECT COUNT(*) FROM secrets WHERE name LIKE 'connectivity.%'",
            "a secret",
        ),
    ] {
        assert_eq!(count(sql), 0, "a refused request stored {what}");
    }
    assert_no_internal_errors(&picd);
}

/// PUT on a stored tor connection: each bad body is refused with a JSON error and an audit
/// entry of its own, and the connection keeps its name and type.
#[tokio::test]
async fn tor_connection_changes_refuse_bad_bodies() {
    let (picd, admin, peer) = picd_with_admin_and_peer().await;
    let created = admin
        .send_json(
            Method::POST,
            CONNECTIONS,
            &json!({ "name": "t", "type": "tor" }),
        )
        .await;
    let (status, created) = json_of(created).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["settings"], json!({}), "{created}");
    let path = format!("{CONNECTIONS}/{}", created["id"].as_str().unwrap());
    let clients = Clients::signed_in(&picd, admin, peer).await;
    let mut table = Vec::new();
    for (who, body, answer) in [
        (Who::Peer, tor(json!({})), ADMIN_ONLY),
        (Who::AdminNoCsrf, tor(json!({})), CSRF_INVALID),
        (Who::Admin, raw(JSON, "{\"name\": "), MALFORMED),
        (Who::Admin, Body::Json(json!({})), INVALID_FIELDS),
        (Who::Admin, tor(json!({ "type": "socks5" })), INVALID_FIELDS),
        (Who::Admin, tor(json!({ "name": false })), INVALID_FIELDS),
        (Who::Admin, tor(json!({ "bridges": [] })), INVALID_FIELDS),
        (
            Who::Admin,
            tor(json!({ "name": "x".repeat(200_000) })),
            TOO_LARGE,
        ),
    ] {
        table.push(refused(who, Method::PUT, &path, body, answer));
    }
    let audited = |picd: &Picd| -> i64 {
        let sql = "SELECT COUNT(*) FROM audit_log WHERE target_type = 'connection'";
        picd.db().query_row(sql, [], |r| r.get(0)).unwrap()
    };
    let before = audited(&picd);
    clients.check_all(&table).await;
    let stored: (String, String) = picd
        .db()
        .query_row("SELECT name, type FROM connectivity_connections", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(stored, ("t".to_string(), "tor".to_string()));
    // One entry per refusal that reached the handler (the body checks; not the actor's).
    assert_eq!(
        audited(&picd) - before,
        4,
        "audit entries of the refused changes"
    );
    assert_no_internal_errors(&picd);
}
