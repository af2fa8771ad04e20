//! BIND zone files through /api/dns: the export passes `named-checkzone` and imports back to
//! the same records; a hand-written BIND zone (directives, parentheses, units, inherited
//! owners, quoted text) and a BunnyDNS-style export import; bad lines give 206 with an error
//! per line while the good ones are stored; `$INCLUDE` is refused.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Imports `text` as a text/plain body.
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

async fn export(cell: &DnsCell, zone: &str) -> String {
    let resp = cell
        .admin
        .get(&format!("/api/dns/zones/{zone}/export"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.expect("zone text")
}

/// `named-checkzone ORIGIN FILE` must accept the text.
fn check_zone(origin: &str, text: &str) {
    let tool = require_tool("named-checkzone");
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("zone");
    std::fs::write(&file, text).expect("writing the export");
    let out = run_bounded(
        Command::new(tool).arg(origin).arg(&file),
        Duration::from_secs(20),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("OK"),
        "named-checkzone refused the export:\n{said}{}\n--- zone ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const ROUND_TRIP: &str = "rt.test";

fn round_trip_records() -> Vec<Value> {
    [
        ("@", "A", "192.0.2.1"),
        ("@", "AAAA", "2001:db8::1"),
        ("@", "MX", "10 mail.rt.test."),
        ("@", "MX", "20 backup.example.org."),
        ("@", "TXT", "\"v=spf1 mx -all\""),
        ("@", "CAA", "0 issue \"letsencrypt.org\""),
        ("mail", "A", "192.0.2.25"),
        ("www", "CNAME", "rt.test."),
        (
            "txt",
            "TXT",
            "\"semi;colon\" \"say \\\"hi\\\"\" \"back\\\\slash\"",
        ),
        ("long", "TXT", "\"part one\" \"part two\""),
        ("spaced", "TXT", "\"two  spaces, kept\""),
        ("home", "CNAME", "@"),
        ("_sip._tcp", "SRV", "10 60 5060 sip.rt.test."),
        ("sip", "AAAA", "2001:db8::5060"),
        ("*.apps", "A", "192.0.2.80"),
        ("sub", "NS", "ns1.example.org."),
        ("10", "PTR", "host.example.org."),
    ]
    .iter()
    .map(|(name, rtype, data)| json!({ "name": name, "type": rtype, "data": data, "ttl": 900 }))
    .collect()
}

#[tokio::test]
async fn export_passes_named_checkzone_and_imports_back_the_same() {
    let cell = DnsCell::start().await;
    cell.create_zone(ROUND_TRIP).await;
    for record in round_trip_records() {
        cell.add_record(ROUND_TRIP, record).await;
    }
    // Internal records never leave the cell.
    cell.add_record(
        ROUND_TRIP,
        json!({ "name": "secret", "type": "A", "data": "10.77.0.9", "view": "internal" }),
    )
    .await;
    let original: Vec<Value> = cell
        .records(ROUND_TRIP)
        .await
        .into_iter()
        .filter(|r| r["view"] == "public")
        .collect();
    let text = ask_until(
        PROPAGATION,
        "the zone loaded",
        || dig(cell.dns(), "mail.rt.test", "A", &[]),
        |r| !r.answer.is_empty(),
    )
    .await;
    drop(text);
    let exported = export(&cell, ROUND_TRIP).await;
    assert!(!exported.contains("secret"), "{exported}");
    check_zone("rt.test", &exported);
    // The cell's own zone too (its name server's address comes from the public endpoint).
    check_zone(CELL_DOMAIN, &export(&cell, CELL_DOMAIN).await);

    let (status, _) = cell
        .send(Method::DELETE, "/api/dns/zones/rt.test", &json!(null))
        .await;
    assert_eq!(status, StatusCode::OK);
    cell.create_zone(ROUND_TRIP).await;
    let (status, body) = import(&cell, ROUND_TRIP, &exported).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{exported}");
    assert_eq!(body["imported"], original.len(), "{body}");
    // The SOA and the apex NS are the cell's own: reported as ignored, not imported.
    let ignored: Vec<&str> = body["ignored"]
        .as_array()
        .expect("ignored")
        .iter()
        .filter_map(|i| i["record"].as_str())
        .collect();
    assert_eq!(ignored.len(), 2, "{body}");
    assert_eq!(
        record_set(&cell.records(ROUND_TRIP).await),
        record_set(&original)
    );
    // And the second export is the first one, serial aside.
    let again = export(&cell, ROUND_TRIP).await;
    let without_soa = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.contains("SOA"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(without_soa(&again), without_soa(&exported));
    // Importing the same file again stores nothing twice.
    let (status, body) = import(&cell, ROUND_TRIP, &exported).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["imported"].as_u64(), body["skipped_existing"].as_u64()),
        (Some(0), Some(original.len() as u64))
    );
}

const BIND_ZONE: &str = r#"; example.net, as a BIND user would keep it
$TTL 1h
$ORIGIN example.net.
@       IN      SOA     ns1.example.net. hostmaster.example.net. (
                        2024031501 ; serial
                        1d         ; refresh
                        2h         ; retry
                        4w         ; expire
                        1h )       ; negative caching
        IN      NS      ns1
        IN      NS      ns2.example.org.
        IN      MX      10 mail
        IN      MX      20 mail.backup.example.org.
        IN      TXT     "v=spf1 mx include:_spf.example.org ~all"
        IN      A       192.0.2.10
ns1             IN      A       192.0.2.2
mail    2d      IN      A       192.0.2.25
                IN      AAAA    2001:db8::25
www     300     IN      CNAME   @
ftp.example.net.        IN      CNAME   www
quoted          IN      TXT     "key=value; with a semicolon" "and (parens)"
_xmpp-server._tcp 1w IN SRV     5 0 5269 mail.example.net.
@               IN      CAA     0 issue "letsencrypt.org"
$ORIGIN lab.example.net.
printer         IN      A       192.0.2.50
scanner 30m     IN      A       192.0.2.51 ; trailing comment
$TTL 2d
nas             IN      A       192.0.2.52
"#;

#[tokio::test]
async fn a_bind_zone_with_the_usual_habits_imports() {
    let cell = DnsCell::start().await;
    cell.create_zone("example.net").await;
    let (status, body) = import(&cell, "example.net", BIND_ZONE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["errors"], json!([]), "{body}");
    // SOA and the two apex NS records are the cell's own.
    assert_eq!(body["ignored"].as_array().map(Vec::len), Some(3), "{body}");
    let got: Vec<(String, String, u64, String)> = record_set(&cell.records("example.net").await);
    let want: Vec<(String, String, u64, String)> = {
        let mut w: Vec<_> = [
            ("example.net.", "MX", 3600, "10 mail.example.net."),
            ("example.net.", "MX", 3600, "20 mail.backup.example.org."),
            (
                "example.net.",
                "TXT",
                3600,
                "\"v=spf1 mx include:_spf.example.org ~all\"",
            ),
            ("example.net.", "A", 3600, "192.0.2.10"),
            ("ns1.example.net.", "A", 3600, "192.0.2.2"),
            ("mail.example.net.", "A", 172800, "192.0.2.25"),
            ("mail.example.net.", "AAAA", 3600, "2001:db8::25"),
            ("www.example.net.", "CNAME", 300, "example.net."),
            ("ftp.example.net.", "CNAME", 3600, "www.example.net."),
            (
                "quoted.example.net.",
                "TXT",
                3600,
                "\"key=value; with a semicolon\" \"and (parens)\"",
            ),
            (
                "_xmpp-server._tcp.example.net.",
                "SRV",
                604800,
                "5 0 5269 mail.example.net.",
            ),
            ("example.net.", "CAA", 3600, "0 issue \"letsencrypt.org\""),
            ("printer.lab.example.net.", "A", 3600, "192.0.2.50"),
            ("scanner.lab.example.net.", "A", 1800, "192.0.2.51"),
            ("nas.lab.example.net.", "A", 172800, "192.0.2.52"),
        ]
        .iter()
        .map(|(n, t, ttl, d)| (n.to_string(), t.to_string(), *ttl, d.to_string()))
        .collect();
        w.sort();
        w
    };
    assert_eq!(got, want);
    // Served as imported.
    let s = cell.dns();
    let mx = ask_until(
        PROPAGATION,
        "the imported MX",
        || dig(s, "example.net", "MX", &[]),
        |r| r.answer.len() == 2,
    )
    .await;
    assert_eq!(
        mx.data("MX"),
        ["10 mail.example.net.", "20 mail.backup.example.org."]
    );
    let quoted = kdig(s, "quoted.example.net", "TXT", &[]);
    assert_eq!(
        quoted.data("TXT"),
        ["\"key=value; with a semicolon\" \"and (parens)\""],
        "{}",
        quoted.text
    );
    let ftp = dig(s, "ftp.example.net", "A", &[]);
    assert_eq!(ftp.data("A"), ["192.0.2.10"], "{}", ftp.text);
    check_zone("example.net", &export(&cell, "example.net").await);
}

/// One record per line, absolute names, explicit TTLs and class, as BunnyDNS exports.
const BUNNY_EXPORT: &str = "; Zone file exported from bunny.net DNS for shop.example\n\
$ORIGIN shop.example.\n\
shop.example.\t300\tIN\tSOA\tkiki.bunny.net. hostmaster.bunny.net. 1717000000 7200 3600 1209600 300\n\
shop.example.\t300\tIN\tNS\tkiki.bunny.net.\n\
shop.example.\t300\tIN\tNS\tcoco.bunny.net.\n\
shop.example.\t300\tIN\tA\t203.0.113.80\n\
shop.example.\t300\tIN\tAAAA\t2001:db8:80::1\n\
www.shop.example.\t300\tIN\tCNAME\tshop.b-cdn.net.\n\
shop.example.\t3600\tIN\tMX\t10 mx1.mailhost.example.\n\
shop.example.\t3600\tIN\tTXT\t\"google-site-verification=abc123\"\n\
_dmarc.shop.example.\t3600\tIN\tTXT\t\"v=DMARC1; p=none; rua=mailto:dmarc@shop.example\"\n\
_sip._tls.shop.example.\t3600\tIN\tSRV\t100 1 443 sip.mailhost.example.\n\
shop.example.\t3600\tIN\tCAA\t0 issuewild \";\"\n\
cdn.shop.example.\t60\tIN\tCNAME\tshop-cdn.b-cdn.net.\n";

#[tokio::test]
async fn a_bunny_dns_export_imports() {
    let cell = DnsCell::start().await;
    cell.create_zone("shop.example").await;
    let (status, body) = import(&cell, "shop.example", BUNNY_EXPORT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["imported"], 9, "{body}");
    assert_eq!(body["ignored"].as_array().map(Vec::len), Some(3), "{body}");
    let records = cell.records("shop.example").await;
    let dmarc = records
        .iter()
        .find(|r| r["name"] == "_dmarc.shop.example.")
        .expect("dmarc");
    assert_eq!(
        dmarc["data"],
        "\"v=DMARC1; p=none; rua=mailto:dmarc@shop.example\""
    );
    let s = cell.dns();
    let www = ask_until(
        PROPAGATION,
        "the imported CNAME",
        || dig(s, "www.shop.example", "CNAME", &[]),
        |r| !r.answer.is_empty(),
    )
    .await;
    assert_eq!(www.answer[0].ttl, 300);
    assert_eq!(www.data("CNAME"), ["shop.b-cdn.net."]);
    let caa = dig(s, "shop.example", "CAA", &[]);
    assert_eq!(caa.data("CAA"), ["0 issuewild \";\""], "{}", caa.text);
}

const WITH_BAD_LINES: &str = "$ORIGIN part.test.\n\
good1 IN A 192.0.2.1\n\
bad1 IN A 192.0.2.300\n\
good2 IN TXT \"fine\"\n\
bad2 IN MX mail-without-preference\n\
outside.other.org. IN A 192.0.2.3\n\
$TTL soon\n\
bad3 IN NOSUCHTYPE x\n\
good3 IN AAAA 2001:db8::3\n\
good1 IN CNAME elsewhere\n\
old IN HINFO \"pc\" \"linux\"\n\
forever 999999999 IN A 192.0.2.9\n";

#[tokio::test]
async fn bad_lines_are_reported_and_the_good_ones_stored() {
    let cell = DnsCell::start().await;
    cell.create_zone("part.test").await;
    let serial = cell.serial_above("part.test", 0).await;
    let (status, body) = import(&cell, "part.test", WITH_BAD_LINES).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{body}");
    assert_eq!(body["imported"], 3, "{body}");
    let lines: Vec<u64> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect();
    // Line 10 breaks the CNAME rule; 11 and 12 are what a single write refuses too (a type
    // picd does not store, a TTL beyond a week).
    assert_eq!(lines, [3, 5, 6, 7, 8, 10, 11, 12], "{body}");
    for error in body["errors"].as_array().expect("errors") {
        assert!(
            !error["error"].as_str().unwrap_or_default().is_empty(),
            "{error}"
        );
    }
    let names: Vec<String> = record_set(&cell.records("part.test").await)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(
        names,
        ["good1.part.test.", "good2.part.test.", "good3.part.test."]
    );
    cell.serial_above("part.test", serial).await;
    ask_until(
        PROPAGATION,
        "an imported record",
        || dig(cell.dns(), "good3.part.test", "AAAA", &[]),
        |r| !r.answer.is_empty(),
    )
    .await;
    let (status, entries) = cell
        .admin
        .get_json("/api/audit?action=dns.zones.import&limit=5")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entries["entries"][0]["detail"]["imported"], 3, "{entries}");
}

/// An import larger than one writer job (each stops after a few milliseconds of inserts, and a
/// debug build inserts far fewer than 3,000 records in that time) keeps every record across
/// the jobs' boundaries, reports a bad line near the end, and writes one audit entry.
#[tokio::test]
async fn an_import_written_in_many_writer_jobs_keeps_every_record() {
    const COUNT: usize = 3000;
    let cell = DnsCell::start().await;
    cell.create_zone("many.test").await;
    let mut text: String = (0..COUNT)
        .map(|i| format!("h{i} 300 IN A 10.1.{}.{}\n", i / 250, i % 250 + 1))
        .collect();
    text.push_str("h0 300 IN CNAME elsewhere.test.\n");
    let (status, body) = import(&cell, "many.test", &text).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{body}");
    assert_eq!(body["imported"], COUNT, "{body}");
    let lines: Vec<u64> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, [COUNT as u64 + 1], "{body}");
    // The export is served from the DNS snapshot, rebuilt after the import.
    let last = format!("h{}.many.test", COUNT - 1);
    ask_until(
        PROPAGATION,
        "the last imported record",
        || dig(cell.dns(), &last, "A", &[]),
        |r| !r.answer.is_empty(),
    )
    .await;
    let exported = export(&cell, "many.test").await;
    let names: std::collections::BTreeSet<&str> = exported
        .lines()
        .filter(|l| l.contains("\tA\t") || l.contains(" A "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names.len(),
        COUNT,
        "import said {body}; exported:\n{exported}"
    );
    for i in [0, 1, COUNT / 2, COUNT - 1] {
        assert!(names.contains(format!("h{i}").as_str()), "h{i} missing");
    }
    let (status, entries) = cell
        .admin
        .get_json("/api/audit?action=dns.zones.import&limit=5")
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = entries["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["detail"]["imported"], COUNT, "{entries:?}");
}

#[tokio::test]
async fn include_is_refused_and_reads_nothing() {
    let cell = DnsCell::start().await;
    cell.create_zone("inc.test").await;
    let secret = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(secret.path(), "stolen IN A 192.0.2.66\n").expect("write");
    let text = format!(
        "$INCLUDE {}\nkept IN A 192.0.2.7\n",
        secret.path().display()
    );
    let (status, body) = import(&cell, "inc.test", &text).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{body}");
    assert_eq!(body["errors"][0]["line"], 1, "{body}");
    assert!(
        body["errors"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("$INCLUDE"),
        "{body}"
    );
    let names: Vec<String> = record_set(&cell.records("inc.test").await)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(names, ["kept.inc.test."]);
    // As a JSON body, and with a zone file that is only broken: still no 500.
    let (status, body) = cell
        .send(
            Method::POST,
            "/api/dns/zones/inc.test/import",
            &json!({ "content": "a IN A 192.0.2.1\n( unbalanced\n" }),
        )
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn a_host_name_endpoint_is_the_name_server_of_the_cells_zones() {
    let cell = DnsCell::start().await;
    let (_, mut config) = cell.admin.get_json("/api/config").await;
    config["cell"]["public_endpoint"] = json!("vpn.other.org");
    let (status, body) = cell.send(Method::PUT, "/api/config", &config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ask_until(
        PROPAGATION,
        "the endpoint as name server",
        || dig(cell.dns(), CELL_DOMAIN, "NS", &[]),
        |r| r.data("NS") == ["vpn.other.org."],
    )
    .await;
    // No in-zone name server without an address: secondaries load the export.
    let exported = export(&cell, CELL_DOMAIN).await;
    assert!(exported.contains("\tNS\tvpn.other.org."), "{exported}");
    check_zone(CELL_DOMAIN, &exported);
}
