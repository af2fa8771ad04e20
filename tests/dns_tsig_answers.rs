//! TSIG on queries other than transfers: a secondary's signed SOA query (kdig -y, and a
//! message signed here) gets a signed answer over UDP and TCP, a wrong key or secret gets
//! NOTAUTH, and the same signed request sent again within its time window is refused as
//! BADTIME (RFC 8945 5.2.3), so a captured request cannot be replayed.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, RecordType, TSigner};
use reqwest::{Method, StatusCode};
use serde_json::json;

const KEY_NAME: &str = "secondary-key";
/// A well-formed secret that is not the key's (32 zero bytes).
const WRONG_SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// A cell with a key bound to a secondary on 127.0.0.1 (so every loopback client must use
/// it); the key's secret.
async fn cell_with_bound_key() -> (DnsCell, String) {
    let cell = DnsCell::start().await;
    let (status, created) = cell
        .send(
            Method::POST,
            "/api/dns/tsig-keys",
            &json!({ "name": KEY_NAME }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_string();
    let port = free_dns_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (status, body) = cell
        .send(
            Method::POST,
            "/api/dns/secondaries",
            &json!({ "address": format!("127.0.0.1:{port}") }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let bind = format!("/api/dns/secondaries/127.0.0.1:{port}/tsig-key");
    let (status, body) = cell
        .send(Method::PUT, &bind, &json!({ "key": KEY_NAME }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (cell, secret)
}

fn signer(secret: &str) -> TSigner {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .expect("base64 secret");
    let key_name = Name::from_ascii(format!("{KEY_NAME}.")).expect("key name");
    TSigner::new(key, TsigAlgorithm::HmacSha256, key_name, 300).expect("signer")
}

/// A SOA query for the cell's zone signed now: its bytes and its MAC. Each `id` gives another
/// MAC, even within the same second.
fn signed_soa(signer: &TSigner, id: u16) -> (Vec<u8>, Vec<u8>) {
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(
        Name::from_ascii(format!("{CELL_DOMAIN}.")).expect("zone"),
        RecordType::SOA,
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    query.finalize(signer, now).expect("signing");
    let mac = query.signature().expect("signed").data.mac.clone();
    (query.to_vec().expect("encoding"), mac)
}

fn exchange_udp(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    socket.send_to(bytes, server).expect("send");
    let mut buf = vec![0u8; 4096];
    let (n, _) = socket.recv_from(&mut buf).expect("an answer");
    buf.truncate(n);
    buf
}

#[tokio::test]
async fn signed_soa_queries_get_signed_answers_and_kdig_verifies_them() {
    require_tools(&["kdig"]);
    let (cell, secret) = cell_with_bound_key().await;
    let picd = cell.dns();
    let right = format!("hmac-sha256:{KEY_NAME}:{secret}");
    for transport in [&[][..], &["+tcp"][..]] {
        let mut options = vec!["-y", right.as_str()];
        options.extend_from_slice(transport);
        let signed = ask_until(
            PROPAGATION,
            "a signed SOA answered once the key is bound",
            || kdig(picd, CELL_DOMAIN, "SOA", &options),
            |r| r.status == "NOERROR",
        )
        .await;
        assert_eq!(signed.answer.len(), 1, "{transport:?}: {}", signed.text);
        assert_eq!(signed.answer[0].rtype, "SOA", "{}", signed.text);
        // kdig prints the answer's TSIG and warns when it is missing or does not verify.
        assert!(
            signed.text.contains("TSIG PSEUDOSECTION"),
            "{transport:?}: unsigned answer:\n{}",
            signed.text
        );
        assert!(
            !signed.text.contains("WARNING") && !signed.text.contains("failed"),
            "{transport:?}:\n{}",
            signed.text
        );
    }
    let wrong = format!("hmac-sha256:{KEY_NAME}:{WRONG_SECRET}");
    let refused = kdig(picd, CELL_DOMAIN, "SOA", &["-y", &wrong]);
    assert!(refused.answer.is_empty(), "{}", refused.text);
    assert!(
        refused.text.contains("NOTAUTH") || refused.text.contains("BADSIG"),
        "{}",
        refused.text
    );
    let other_key = format!("hmac-sha256:other-key:{secret}");
    let refused = kdig(picd, CELL_DOMAIN, "SOA", &["-y", &other_key]);
    assert!(refused.answer.is_empty(), "{}", refused.text);
    assert!(
        refused.text.contains("NOTAUTH") || refused.text.contains("BADKEY"),
        "{}",
        refused.text
    );
    // Unsigned questions other than transfers are answered as before.
    assert_eq!(kdig(picd, CELL_DOMAIN, "SOA", &[]).status, "NOERROR");
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn a_signed_request_sent_again_is_refused_as_badtime() {
    let (cell, secret) = cell_with_bound_key().await;
    let picd = cell.dns();
    let signer = signer(&secret);
    // The binding reaches the server's snapshot: a signed query is then answered signed.
    let deadline = std::time::Instant::now() + PROPAGATION;
    let mut id = 100;
    let (request, mac, reply) = loop {
        id += 1;
        let (request, mac) = signed_soa(&signer, id);
        let reply = exchange_udp(picd, &request);
        let message = Message::from_vec(&reply).expect("a DNS answer");
        if message.signature().is_some() && message.metadata.response_code == ResponseCode::NoError
        {
            break (request, mac, reply);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no signed answer: {message:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let message = Message::from_vec(&reply).expect("a DNS answer");
    assert_eq!(message.metadata.id, id);
    assert_eq!(message.answers.len(), 1, "{message:?}");
    // The answer's MAC covers the request's MAC (RFC 8945 5.3): it verifies with the key.
    signer
        .verify_message_byte(&reply, Some(&mac), true)
        .expect("the answer's signature verifies");

    // The same bytes again, within the window: refused, nothing of the zone.
    for transport in ["udp", "tcp"] {
        let again = match transport {
            "udp" => exchange_udp(picd, &request),
            _ => exchange_tcp(picd, &request).await,
        };
        let again = Message::from_vec(&again).expect("a DNS answer");
        assert_eq!(
            again.metadata.response_code,
            ResponseCode::NotAuth,
            "{transport}: {again:?}"
        );
        assert!(again.answers.is_empty(), "{transport}: {again:?}");
        assert_eq!(
            again.signature().and_then(|s| s.data.error),
            Some(TsigError::BadTime),
            "{transport}: a replay is BADTIME"
        );
    }
    // A fresh signature with the same key still works.
    let (fresh, _) = signed_soa(&signer, id + 1);
    let answer = Message::from_vec(&exchange_udp(picd, &fresh)).expect("a DNS answer");
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_no_internal_errors(&cell.picd);
}

async fn exchange_tcp(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server)
        .await
        .expect("connect");
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .expect("write");
    stream.write_all(bytes).await.expect("write");
    let len = stream.read_u16().await.expect("answer length");
    let mut answer = vec![0u8; usize::from(len)];
    stream.read_exact(&mut answer).await.expect("answer");
    answer
}
