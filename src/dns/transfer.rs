//! Zone transfers to the cell's secondaries: AXFR (and IXFR answered with the full zone, which
//! RFC 1995 allows) over TCP, to the allow-listed addresses only, and NOTIFY to them when a
//! zone changes, so Knot, NSD or BIND can serve the public zone worldwide.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, Record, RecordType};

use super::snapshot::Snapshot;

/// Records per transfer message: well under the 64 KiB TCP message limit.
const RECORDS_PER_MESSAGE: usize = 200;

/// The TCP answer to a transfer request; None when the message is not one.
pub fn answer(snapshot: &Snapshot, bytes: &[u8], client: IpAddr) -> Option<Vec<Vec<u8>>> {
    let query = Message::from_vec(bytes).ok()?;
    let question = query.queries.first()?;
    if !matches!(question.query_type, RecordType::AXFR | RecordType::IXFR)
        || query.metadata.op_code != OpCode::Query
    {
        return None;
    }
    let mut response = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    response.queries = query.queries.clone();
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(client),
        v4 => v4,
    };
    let origin = LowerName::new(&question.name);
    // Only the public view is ever transferred: internal names never leave the cell.
    let zone = snapshot.world.zones().iter().find(|z| z.origin == origin);
    let (Some(zone), true) = (zone, snapshot.transfer_allow.contains(&client)) else {
        response.metadata.response_code = if zone.is_none() {
            ResponseCode::NotAuth
        } else {
            ResponseCode::Refused
        };
        return response.to_vec().ok().map(|b| vec![b]);
    };
    response.metadata.authoritative = true;
    let mut records: Vec<Record> = zone.records().cloned().collect();
    records.push(zone.soa.clone());
    let mut messages = Vec::new();
    for chunk in records.chunks(RECORDS_PER_MESSAGE) {
        let mut part = response.clone();
        part.answers = chunk.to_vec();
        messages.push(part.to_vec().ok()?);
    }
    Some(messages)
}

/// Tells each secondary that `zone` changed (RFC 1996). Best effort: a secondary that misses
/// it still refreshes on the SOA's timer.
pub async fn notify(zone: Name, secondaries: Vec<SocketAddr>) {
    for target in secondaries {
        let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Notify);
        message.metadata.authoritative = true;
        message.add_query(Query::query(zone.clone(), RecordType::SOA));
        let Ok(bytes) = message.to_vec() else {
            continue;
        };
        let bind = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sent = async {
            let socket = tokio::net::UdpSocket::bind(bind).await?;
            socket.send_to(&bytes, target).await?;
            let mut buf = [0u8; 512];
            tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf)).await??;
            Ok::<_, anyhow::Error>(())
        };
        if let Err(e) = sent.await {
            tracing::debug!(%target, error = %e, "NOTIFY got no answer");
        }
    }
}
