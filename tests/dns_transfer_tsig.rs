//! Zone transfers that hold: a zone of large records transfers whole (messages packed by size,
//! each under 64 KB, the closing SOA there), and TSIG (hmac-sha256) on transfers and NOTIFY,
//! with a real `knotd` as the secondary: the right key transfers, a wrong key is refused.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, RecordType, TSigner};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Knot transfers the zone on start and after a NOTIFY; both take well under this.
const TRANSFER: Duration = Duration::from_secs(30);
/// The records of the report: 24 TXT records of 3.8 KB made one 65,458-byte message.
const LARGE_RECORDS: usize = 24;
/// Strings of 255 bytes per TXT record: 15 make 3,825 bytes of text.
const STRINGS_PER_RECORD: usize = 15;
const KEY_NAME: &str = "knot-xfr";
/// A well-formed secret that is not the key's (32 zero bytes).
const WRONG_SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// kdig for a transfer larger than a pipe's buffer: its output goes to a file (the shared
/// helper reads the pipe only after kdig exits, and kdig would block writing it).
fn kdig_to_file(server: std::net::SocketAddr, name: &str, rtype: &str) -> Reply {
    let out = tempfile::NamedTempFile::new().expect("temporary file");
    let mut child = std::process::Command::new(require_tool("kdig"))
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=5", "+retry=0"])
        .args(["-q", name, "-t", rtype])
        .stdin(std::process::Stdio::null())
        .stdout(out.reopen().expect("reopen"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting kdig");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("kdig status").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kdig {rtype} ran longer than 30s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut reply = Reply::parse(&std::fs::read_to_string(out.path()).expect("kdig output"));
    // Errors (a refused transfer) go to stderr: kept for the messages.
    let mut errors = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut errors);
    }
    reply.text.push_str(&errors);
    reply
}

/// An AXFR request signed with the right key but a clock an hour behind, over TCP; the
/// answer's RCODE and TSIG error.
async fn axfr_signed_an_hour_ago(
    server: std::net::SocketAddr,
    secret: &str,
) -> (ResponseCode, Option<TsigError>) {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .expect("base64 secret");
    let key_name = Name::from_ascii(format!("{KEY_NAME}.")).expect("key name");
    let signer = TSigner::new(key, TsigAlgorithm::HmacSha256, key_name, 300).expect("signer");
    let mut query = Message::new(4242, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(
        Name::from_ascii(format!("{CELL_DOMAIN}.")).expect("zone"),
        RecordType::AXFR,
    ));
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 3600;
    query.finalize(&signer, an_hour_ago).expect("signing");
    let bytes = query.to_vec().expect("encoding");
    let mut stream = tokio::net::TcpStream::connect(server)
        .await
        .expect("connect");
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .expect("write");
    stream.write_all(&bytes).await.expect("write");
    let len = stream.read_u16().await.expect("answer length");
    let mut answer = vec![0u8; usize::from(len)];
    stream.read_exact(&mut answer).await.expect("answer");
    let answer = Message::from_vec(&answer).expect("a DNS answer");
    let error = answer.signature().and_then(|s| s.data.error);
    (answer.metadata.response_code, error)
}

fn head(text: &str) -> &str {
    &text[..text.len().min(1500)]
}

fn transferred(reply: &Reply) -> bool {
    reply.status == "NOERROR" && !reply.answer.is_empty()
}

fn large_txt(index: usize) -> String {
    let letter = char::from(b'a' + (index % 26) as u8);
    let string = format!("\"{}\"", letter.to_string().repeat(255));
    vec![string; STRINGS_PER_RECORD].join(" ")
}

async fn add_secondary(cell: &DnsCell, port: u16) {
    let (status, body) = cell
        .send(
            Method::POST,
            "/api/dns/secondaries",
            &json!({ "address": format!("127.0.0.1:{port}") }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn assert_whole(axfr: &Reply, records: usize) {
    let soas = axfr.answer.iter().filter(|r| r.rtype == "SOA").count();
    assert_eq!(soas, 2, "SOA first and last:\n{}", axfr.text);
    assert_eq!(axfr.answer.last().map(|r| r.rtype.as_str()), Some("SOA"));
    let txts = axfr.answer.iter().filter(|r| r.rtype == "TXT").count();
    assert_eq!(txts, records, "every large record:\n{}", head(&axfr.text));
}

#[tokio::test]
async fn a_zone_of_large_records_transfers_whole_to_knot() {
    require_tools(&["knotd", "kdig"]);
    let cell = DnsCell::start().await;
    let picd = cell.dns();
    for i in 0..LARGE_RECORDS {
        cell.add_record(
            CELL_DOMAIN,
            json!({ "name": format!("big{i}"), "type": "TXT", "data": large_txt(i) }),
        )
        .await;
    }
    let knot_port = free_dns_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    add_secondary(&cell, knot_port).await;

    // The new secondary is allowed once the DNS server's snapshot has it (eventual, as for
    // records): until then the transfer is refused.
    let axfr = ask_until(
        PROPAGATION,
        "the transfer allowed to the new secondary",
        || kdig_to_file(picd, CELL_DOMAIN, "AXFR"),
        |r| !r.answer.is_empty(),
    )
    .await;
    assert_whole(&axfr, LARGE_RECORDS);
    // More than one message: 24 x 3.8 KB do not fit in one.
    let tail = &axfr.text[axfr.text.len().saturating_sub(400)..];
    assert!(
        tail.contains("messages") && !tail.contains("(1 messages"),
        "{tail}"
    );

    let knot = KnotSecondary::start(CELL_DOMAIN, picd, knot_port).await;
    let last = format!("big{}.{CELL_DOMAIN}", LARGE_RECORDS - 1);
    let txt = ask_until(
        TRANSFER,
        "knot serving the large records",
        || kdig(knot.addr, &last, "TXT", &["+norec", "+tcp"]),
        transferred,
    )
    .await;
    assert_eq!(txt.answer.len(), 1, "{}\n{}", txt.text, knot.log());
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn tsig_keys_guard_transfers_and_sign_notify_with_knot() {
    require_tools(&["knotd", "kdig"]);
    let cell = DnsCell::start().await;
    let picd = cell.dns();
    cell.add_record(
        CELL_DOMAIN,
        json!({ "name": "www", "type": "A", "data": "192.0.2.80" }),
    )
    .await;

    // A key: its secret shown once, never listed.
    let (status, created) = cell
        .send(
            Method::POST,
            "/api/dns/tsig-keys",
            &json!({ "name": KEY_NAME }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_string();
    assert_eq!(created["algorithm"], "hmac-sha256");
    let (status, body) = cell
        .send(
            Method::POST,
            "/api/dns/tsig-keys",
            &json!({ "name": KEY_NAME }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    for bad in [
        json!({ "name": "Bad Name" }),
        json!({ "name": "ok", "algorithm": "hmac-md5" }),
        json!({ "name": "ok", "secret": "c2hvcnQ=" }),
        json!({ "name": "ok", "secret": "x".repeat(5000) }),
    ] {
        let (status, body) = cell.send(Method::POST, "/api/dns/tsig-keys", &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (_, list) = cell.admin.get_json("/api/dns/tsig-keys").await;
    assert_eq!(list["keys"][0]["name"], KEY_NAME, "{list}");
    assert!(
        !list.to_string().contains(&secret),
        "the secret is never listed"
    );

    let knot_port = free_dns_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let address = format!("127.0.0.1:{knot_port}");
    add_secondary(&cell, knot_port).await;
    let bind = format!("/api/dns/secondaries/{address}/tsig-key");
    let (status, body) = cell
        .send(Method::PUT, &bind, &json!({ "key": "no-such-key" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = cell
        .send(Method::PUT, &bind, &json!({ "key": KEY_NAME }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = cell
        .send(
            Method::DELETE,
            &format!("/api/dns/tsig-keys/{KEY_NAME}"),
            &json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a key in use stays: {body}");

    // Unsigned, wrong key name, wrong secret: refused, nothing of the zone.
    let right = format!("hmac-sha256:{KEY_NAME}:{secret}");
    let wrong_secret = format!("hmac-sha256:{KEY_NAME}:{WRONG_SECRET}");
    let wrong_name = format!("hmac-sha256:other-key:{secret}");
    let unsigned = ask_until(
        PROPAGATION,
        "unsigned transfers refused once the key is bound",
        || kdig(picd, CELL_DOMAIN, "AXFR", &[]),
        |r| r.text.contains("NOTAUTH"),
    )
    .await;
    assert!(unsigned.answer.is_empty(), "{}", unsigned.text);
    let bad_sig = kdig(picd, CELL_DOMAIN, "AXFR", &["-y", &wrong_secret]);
    assert!(bad_sig.answer.is_empty(), "{}", bad_sig.text);
    assert!(
        bad_sig.text.contains("BADSIG") || bad_sig.text.contains("NOTAUTH"),
        "{}",
        bad_sig.text
    );
    let bad_key = kdig(picd, CELL_DOMAIN, "AXFR", &["-y", &wrong_name]);
    assert!(bad_key.answer.is_empty(), "{}", bad_key.text);
    assert!(
        bad_key.text.contains("BADKEY") || bad_key.text.contains("NOTAUTH"),
        "{}",
        bad_key.text
    );
    let (rcode, error) = axfr_signed_an_hour_ago(picd, &secret).await;
    assert_eq!(rcode, ResponseCode::NotAuth);
    assert_eq!(
        error,
        Some(TsigError::BadTime),
        "a stale signature is BADTIME"
    );
    let signed = kdig(picd, CELL_DOMAIN, "AXFR", &["-y", &right]);
    let soas = signed.answer.iter().filter(|r| r.rtype == "SOA").count();
    assert_eq!(soas, 2, "a signed request transfers:\n{}", signed.text);

    // knotd with the wrong key: refused, serves nothing.
    let wrong_knot =
        KnotSecondary::start_with_key(CELL_DOMAIN, picd, knot_port, Some((KEY_NAME, WRONG_SECRET)))
            .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let www = kdig(wrong_knot.addr, "www.home.example", "A", &["+norec"]);
    assert!(
        www.data("A").is_empty(),
        "{}\n{}",
        www.text,
        wrong_knot.log()
    );
    assert!(
        wrong_knot.log().contains("TSIG"),
        "knot names the failed signature:\n{}",
        wrong_knot.log()
    );
    drop(wrong_knot);

    // knotd with the right key: transfers, and follows a signed NOTIFY.
    let knot =
        KnotSecondary::start_with_key(CELL_DOMAIN, picd, knot_port, Some((KEY_NAME, &secret)))
            .await;
    let at_knot = |name: &str, rtype: &str| kdig(knot.addr, name, rtype, &["+norec"]);
    let www = ask_until(
        TRANSFER,
        "knot serving the zone transferred with TSIG",
        || at_knot("www.home.example", "A"),
        transferred,
    )
    .await;
    assert_eq!(www.data("A"), ["192.0.2.80"], "{}", knot.log());
    let serial = cell.serial();
    cell.add_record(
        CELL_DOMAIN,
        json!({ "name": "new", "type": "TXT", "data": "\"after signed notify\"" }),
    )
    .await;
    cell.serial_above(CELL_DOMAIN, serial).await;
    let fresh = ask_until(
        TRANSFER,
        "knot picking up the change after a signed NOTIFY",
        || at_knot("new.home.example", "TXT"),
        transferred,
    )
    .await;
    assert_eq!(
        fresh.data("TXT"),
        ["\"after signed notify\""],
        "{}",
        knot.log()
    );
    drop(knot);

    // Unbound, the key can go; its secret goes with it and unsigned transfers work again.
    let (status, body) = cell.send(Method::PUT, &bind, &json!({ "key": null })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = cell
        .send(
            Method::DELETE,
            &format!("/api/dns/tsig-keys/{KEY_NAME}"),
            &json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, list) = cell.admin.get_json("/api/dns/tsig-keys").await;
    assert_eq!(list["keys"], json!([]), "{list}");
    ask_until(
        PROPAGATION,
        "unsigned transfers allowed again",
        || kdig(picd, CELL_DOMAIN, "AXFR", &[]),
        |r| r.answer.iter().filter(|a| a.rtype == "SOA").count() == 2,
    )
    .await;
    assert_no_internal_errors(&cell.picd);
}
