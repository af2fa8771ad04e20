//! Record data and zone imports as an attacker writes them (issue 25): every escape that
//! decodes to a control character, `$INCLUDE` of a readable file and of /dev/zero through
//! escapes and as a line, caps refused with the limit named, and picd's own address refused
//! as an upstream in the wizard, the answers file and /api/config. All against the real
//! binary.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ZONE: &str = "text.test";
/// A word the readable file holds; it must appear in no answer.
const SECRET: &str = "hunter2-zone-secret";
/// How much picd's resident memory may grow across the attack requests.
const RSS_SLACK_KB: u64 = 64 * 1024;

/// Control bytes an escape can spell: 0 to 31 and 127.
fn control_bytes() -> impl Iterator<Item = u8> {
    (0u8..32).chain([127])
}

async fn import(cell: &DnsCell, zone: &str, text: &str) -> (StatusCode, Value) {
    let token = cell.admin.csrf_token().await;
    let resp = cell
        .admin
        .http
        .post(cell.admin.url(&format!("/api/dns/zones/{zone}/import")))
        .header("x-csrf-token", token)
        .header("content-type", "text/plain")
        .body(text.to_string())
        .send()
        .await
        .expect("import");
    json_of(resp).await
}

fn secret_file() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(file.path(), format!("{SECRET} IN A 192.0.2.66\n")).expect("write");
    file
}

#[tokio::test]
async fn escapes_to_control_characters_never_reach_a_directive_parser() {
    let cell = DnsCell::start().await;
    cell.create_zone(ZONE).await;
    let rss_before = cell.picd.proc_status("VmRSS");
    let file = secret_file();
    let path = file.path().display().to_string();
    let add = |data: String, name: &str, rtype: &str| json!({ "name": name, "type": rtype, "data": data });
    let records = format!("/api/dns/zones/{ZONE}/records");

    // The attack as seen: newline and tab escapes around $INCLUDE, of a readable file and of
    // /dev/zero. Either refused or kept as TXT bytes; never a file read.
    for target in [path.as_str(), "/dev/zero"] {
        let data = format!(r#""a" \010$INCLUDE\009{target}\010"#);
        let (status, body) = cell
            .send(Method::POST, &records, &add(data, "inc", "TXT"))
            .await;
        assert!(!body.to_string().contains(SECRET), "{body}");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(
            body["data"],
            format!(r#""a" "\010$INCLUDE\009{target}\010""#),
            "kept as escaped data"
        );
        // An unescaped directive token is refused outright.
        let (status, body) = cell
            .send(
                Method::POST,
                &records,
                &add(format!("\"a\" $INCLUDE {target}"), "inc2", "TXT"),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["fields"]["data"].is_string(), "{body}");
        assert!(!body.to_string().contains(SECRET), "{body}");
    }

    // Every control byte, as \DDD: refused in names and CAA values, kept as TXT data.
    for byte in control_bytes() {
        let escape = format!("\\{byte:03}");
        for (name, rtype, data) in [
            (format!("a{escape}b"), "A", "192.0.2.1".to_string()),
            ("c".to_string(), "CNAME", format!("x{escape}y.other.test.")),
            ("m".to_string(), "MX", format!("10 x{escape}.other.test.")),
            (
                "q".to_string(),
                "CAA",
                format!("0 issue \"ca{escape}.example\""),
            ),
        ] {
            let (status, body) = cell
                .send(Method::POST, &records, &add(data.clone(), &name, rtype))
                .await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{rtype} {name} {data}: {body}"
            );
            assert_eq!(body["code"], "validation_failed", "{body}");
        }
        let (status, body) = cell
            .send(
                Method::POST,
                &records,
                &add(format!("\"x{escape}y\""), &format!("t{byte}"), "TXT"),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "TXT {escape}: {body}");
        assert_eq!(body["data"], format!("\"x{escape}y\""), "{body}");
    }
    // A raw control character is refused before any decoding.
    let (status, _) = cell
        .send(
            Method::POST,
            &records,
            &add("\"a\nb\"".into(), "raw", "TXT"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The same as import lines: each refused on its own line, nothing of the file read.
    let mut text = format!("$INCLUDE {path}\n$include /dev/zero\n$GENERATE 1-9 h$ A 192.0.2.$\n");
    text.push_str(&format!("imp IN TXT \"a\" \\010$INCLUDE\\009{path}\\010\n"));
    for byte in control_bytes() {
        text.push_str(&format!("n\\{byte:03}x IN A 192.0.2.2\n"));
    }
    text.push_str("kept IN A 192.0.2.7\n$ORIGIN sub.text.test.\nunder IN A 192.0.2.8\n");
    let (status, body) = import(&cell, ZONE, &text).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{body}");
    assert!(!body.to_string().contains(SECRET), "{body}");
    let lines: Vec<u64> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect();
    let expected: Vec<u64> = [1, 2, 3].into_iter().chain(5..5 + 33).collect();
    assert_eq!(lines, expected, "{body}");
    assert_eq!(body["errors"][0]["text"], "$INCLUDE", "{body}");
    assert_eq!(body["imported"], 3, "{body}");
    let names: Vec<String> = record_set(&cell.records(ZONE).await)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert!(
        names.contains(&"under.sub.text.test.".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("hunter2")), "{names:?}");

    let rss_after = cell.picd.proc_status("VmRSS");
    assert!(
        rss_after < rss_before + RSS_SLACK_KB,
        "RSS grew from {rss_before} kB to {rss_after} kB"
    );
}

/// A picd with small DNS caps, its DNS server on loopback.
async fn capped_cell() -> DnsCell {
    let port = free_dns_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut options = PicdOptions::default()
        .with_dns_listen(&SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port).to_string());
    for (key, value) in [
        ("PICD_DNS_MAX_RECORDS_PER_ZONE", "8"),
        ("PICD_DNS_MAX_IMPORT_RECORDS", "5"),
        ("PICD_DNS_MAX_BULK_OPERATIONS", "3"),
        ("PICD_DNS_MAX_IMPORT_BYTES", "2048"),
    ] {
        options.env.push((key.into(), value.into()));
    }
    let picd = Picd::start_with(options).await;
    let admin = picd.client();
    admin.run_setup().await;
    DnsCell { picd, admin, port }
}

fn assert_limit(status: StatusCode, body: &Value, expected: StatusCode, limit: &str, max: u64) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], "limit_exceeded", "{body}");
    assert_eq!(body["limit"], limit, "{body}");
    assert_eq!(body["max"], max, "{body}");
    assert!(
        body["error"].as_str().unwrap_or_default().contains(limit),
        "{body}"
    );
}

#[tokio::test]
async fn caps_are_refused_with_the_limit_named() {
    let cell = capped_cell().await;
    cell.create_zone(ZONE).await;
    let lines = |n: usize, prefix: &str| -> String {
        (0..n)
            .map(|i| format!("{prefix}{i} IN A 192.0.2.{}\n", i + 1))
            .collect()
    };
    let (status, body) = import(&cell, ZONE, &lines(6, "a")).await;
    assert_limit(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "dns_max_import_records",
        5,
    );
    let big = format!("; {}\n", "x".repeat(3000));
    let (status, body) = import(&cell, ZONE, &big).await;
    assert_limit(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "dns_max_import_bytes",
        2048,
    );
    assert!(cell.records(ZONE).await.is_empty());

    let (status, body) = import(&cell, ZONE, &lines(5, "a")).await;
    assert_eq!(
        (status, &body["imported"]),
        (StatusCode::OK, &json!(5)),
        "{body}"
    );
    let op = |i: usize| json!({ "op": "add", "name": format!("b{i}"), "type": "A", "data": "192.0.2.9" });
    let bulk = format!("/api/dns/zones/{ZONE}/bulk");
    let (status, body) = cell
        .send(
            Method::POST,
            &bulk,
            &json!({ "operations": (0..4).map(op).collect::<Vec<_>>() }),
        )
        .await;
    assert_limit(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "dns_max_bulk_operations",
        3,
    );
    let (status, body) = cell
        .send(
            Method::POST,
            &bulk,
            &json!({ "operations": (0..3).map(op).collect::<Vec<_>>() }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Eight records now: one more, by any route, is past the zone's cap.
    let (status, body) = cell
        .send(Method::POST, &bulk, &json!({ "operations": [op(9)] }))
        .await;
    assert_limit(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "dns_max_records_per_zone",
        8,
    );
    let (status, body) = import(&cell, ZONE, &lines(1, "c")).await;
    assert_limit(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "dns_max_records_per_zone",
        8,
    );
    assert_eq!(cell.records(ZONE).await.len(), 8);
    // Refusals are audited.
    assert!(!cell.audit("dns.records.bulk").await.is_empty());
}

#[tokio::test]
async fn picds_own_address_is_refused_as_an_upstream() {
    let cell = capped_cell().await;
    let own = cell.dns().to_string();
    let (_, config) = cell.admin.get_json("/api/config").await;
    for upstream in [own.as_str(), "127.0.0.1", "[::1]:53", "127.0.0.5"] {
        let mut changed = config.clone();
        changed["dns"]["upstreams"] = json!([upstream]);
        let (status, body) = json_of(
            cell.admin
                .send_json(Method::PUT, "/api/config", &changed)
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{upstream}: {body}");
        assert!(
            body["fields"]["dns.upstreams[0]"].is_string(),
            "{upstream}: {body}"
        );
    }
    // A loopback stand-in on another port is a fine upstream.
    let mut changed = config.clone();
    changed["dns"]["upstreams"] = json!(["127.0.0.1:9"]);
    let (status, body) = json_of(
        cell.admin
            .send_json(Method::PUT, "/api/config", &changed)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The wizard, on a fresh picd listening on its own port.
    let port = free_dns_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let own = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port).to_string();
    let fresh = Picd::start_with(PicdOptions::default().with_dns_listen(&own)).await;
    let client = fresh.client();
    client.claim_setup().await;
    for (step, data) in [("admin", admin_step()), ("cell", cell_step())] {
        let resp = client
            .setup_post("/api/setup/step", &json!({ "step": step, "data": data }))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{step}");
    }
    let (status, body) = json_of(
        client
            .setup_post(
                "/api/setup/step",
                &json!({ "step": "dns", "data": { "upstreams": [own], "split_horizon": true } }),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["fields"]["upstreams[0]"].is_string(), "{body}");

    // The answers file: the default listener is [::]:53, so this machine on 53 is picd.
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("state");
    let answers = answers_toml().replace(
        &format!(
            "upstreams = [\"{}\", \"{}\"]",
            DNS_UPSTREAMS[0], DNS_UPSTREAMS[1]
        ),
        "upstreams = [\"127.0.0.1\"]",
    );
    assert!(answers.contains("\"127.0.0.1\""));
    let file = dir.path().join("answers.toml");
    std::fs::write(&file, answers).expect("answers");
    let out = picd_cli(
        &[
            "setup",
            "--answers",
            file.to_str().expect("path"),
            "--state-dir",
            state.to_str().expect("path"),
        ],
        None,
    );
    assert!(!out.status.success(), "{}", stdout_of(&out));
    assert!(
        stderr_of(&out).contains("upstreams[0]"),
        "{}",
        stderr_of(&out)
    );
}
