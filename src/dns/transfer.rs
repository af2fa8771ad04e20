//! Zone transfers to the cell's secondaries: AXFR (and IXFR answered with the full zone, which
//! RFC 1995 allows) over TCP, to the allow-listed addresses only, and NOTIFY to them when a
//! zone changes, so Knot, NSD or BIND can serve the public zone worldwide. A secondary bound
//! to a TSIG key must sign its requests; the answer and the NOTIFY to it are signed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, Record, RecordType, TSigner};
use hickory_proto::serialize::binary::BinEncodable;

use super::snapshot::Snapshot;
use super::tsig::{self, Check, Refusal, ResponseSigner};

/// A DNS message over TCP is at most 65,535 bytes (its length is a u16).
const TCP_MESSAGE_MAX: usize = u16::MAX as usize;

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
    // At most the one question: a transfer request has one, and a reply never grows with the
    // request.
    response.queries = vec![question.clone()];
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
    let mut signer = match tsig::check(&snapshot.transfer_keys, &query, bytes, client) {
        Check::Unsigned => None,
        Check::Signed(signer) => Some(signer),
        Check::Refused(refusal) => return Some(vec![refuse(response, refusal)?]),
    };
    response.metadata.authoritative = true;
    let mut records: Vec<Record> = zone.records().cloned().collect();
    records.push(zone.soa.clone());
    pack(&response, records, signer.as_mut())
}

/// NOTAUTH, with the TSIG record RFC 8945 asks for: unsigned for BADKEY and BADSIG, signed
/// for BADTIME, none for a request that should have been signed and was not.
pub(super) fn refuse(mut response: Message, refusal: Option<Refusal>) -> Option<Vec<u8>> {
    response.metadata.response_code = ResponseCode::NotAuth;
    match refusal {
        None => response.to_vec().ok(),
        Some(Refusal::Unsigned(record)) => {
            response.set_signature(record);
            response.to_vec().ok()
        }
        Some(Refusal::BadTime(mut signer)) => signer.sign_bad_time(response),
    }
}

/// The records in messages packed by encoded size: each message stays under the TCP limit
/// whatever the records' sizes (a record's size alone, without name compression, is an upper
/// bound of what it adds), with room kept for a signature.
fn pack(
    template: &Message,
    records: Vec<Record>,
    mut signer: Option<&mut ResponseSigner>,
) -> Option<Vec<Vec<u8>>> {
    let reserve = signer.as_ref().map_or(0, |_| ResponseSigner::RESERVE);
    let budget = TCP_MESSAGE_MAX - reserve;
    let base = template.to_vec().ok()?.len();
    let mut messages = Vec::new();
    let mut part = template.clone();
    let mut size = base;
    let mut finish = |part: Message| -> Option<()> {
        let bytes = match signer.as_deref_mut() {
            Some(signer) => signer.sign(part)?,
            None => part.to_vec().ok()?,
        };
        // Packing by upper bounds makes this hold; checked so a surprise is an error, never a
        // length prefix that wrapped.
        (bytes.len() <= TCP_MESSAGE_MAX).then(|| messages.push(bytes))
    };
    for record in records {
        let record_size = record.to_bytes().ok()?.len();
        if size + record_size > budget && !part.answers.is_empty() {
            finish(std::mem::replace(&mut part, template.clone()))?;
            size = base;
        }
        size += record_size;
        part.answers.push(record);
    }
    finish(part)?;
    Some(messages)
}

/// Tells each secondary that `zone` changed (RFC 1996), signed with the secondary's key when
/// it has one. Best effort: a secondary that misses it still refreshes on the SOA's timer.
pub async fn notify(zone: Name, secondaries: Vec<(SocketAddr, Option<TSigner>)>) {
    for (target, signer) in secondaries {
        let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Notify);
        message.metadata.authoritative = true;
        message.add_query(Query::query(zone.clone(), RecordType::SOA));
        if let Some(signer) = &signer {
            if message.finalize(signer, tsig::now()).is_err() {
                continue;
            }
        }
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
