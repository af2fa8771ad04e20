//! DNS messages built and sent by hand, for the tests that ask as an attacker would: raw UDP
//! exchanges, the server's defence counters, a loopback upstream stand-in that answers slowly
//! and counts what it was asked.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::DnsCell;

/// A query for `name`/`rtype` with RD set and, when `edns`, a 4096-byte EDNS payload.
pub fn raw_query(id: u16, name: &str, rtype: RecordType, edns: bool) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message
        .queries
        .push(Query::query(Name::from_ascii(name).expect("name"), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(4096);
        message.edns = Some(e);
    }
    message
}

/// Sends `bytes` from `socket` and waits briefly for one datagram back.
pub fn udp_exchange(socket: &UdpSocket, server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    socket.send_to(bytes, server).expect("send");
    let mut buf = vec![0u8; 65_535];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// `GET /api/dns/stats`: the defences' counters and the limits in force.
pub async fn dns_stats(cell: &DnsCell) -> Value {
    let (status, body) = cell.admin.get_json("/api/dns/stats").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Makes `upstream` the cell's only upstream resolver through `/api/config`.
pub async fn set_dns_upstream(cell: &DnsCell, upstream: SocketAddr) {
    let (status, mut config) = cell.admin.get_json("/api/config").await;
    assert_eq!(status, StatusCode::OK, "{config}");
    config["dns"]["upstreams"] = json!([upstream.to_string()]);
    let (status, body) = cell.send(Method::PUT, "/api/config", &config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The address every question to `SlowUpstream` is answered with.
pub const SLOW_UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

/// An upstream resolver stand-in on loopback: it counts every question that reaches it and
/// answers each (an A record, `SLOW_UPSTREAM_ANSWER`) after `delay`. Stops on drop.
pub struct SlowUpstream {
    pub addr: SocketAddr,
    questions: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl SlowUpstream {
    pub fn start(delay: Duration) -> SlowUpstream {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind"));
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let questions = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counted, stopped) = (Arc::clone(&questions), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !stopped.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(question) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let socket = Arc::clone(&socket);
                // Each answer waits on its own, so the stand-in is slow, not serial.
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    let _ = socket.send_to(&slow_answer(&question), from);
                });
            }
        });
        SlowUpstream {
            addr,
            questions,
            stop,
        }
    }

    /// Questions received so far.
    pub fn questions(&self) -> usize {
        self.questions.load(Ordering::SeqCst)
    }
}

impl Drop for SlowUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn slow_answer(question: &Message) -> Vec<u8> {
    let mut answer = Message::new(question.metadata.id, MessageType::Response, OpCode::Query);
    answer.metadata.recursion_desired = question.metadata.recursion_desired;
    answer.metadata.recursion_available = true;
    answer.queries = question.queries.clone();
    if let Some(q) = question.queries.first() {
        answer.answers.push(Record::from_rdata(
            q.name.clone(),
            300,
            RData::A(SLOW_UPSTREAM_ANSWER.into()),
        ));
    }
    answer.to_vec().expect("encode")
}
