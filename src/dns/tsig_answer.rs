//! TSIG on queries other than transfers (a secondary's SOA check before it transfers, or any
//! question asked with a key): the request is checked like a transfer request (the key bound
//! to the client's address, the time window, a replay refused) and the answer is signed with
//! the same key (RFC 8945 5.3), or refused with the TSIG error. A signed question is never
//! forwarded: keys are for the cell's secondaries, which ask the cell's own zones.

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};

use super::answer::{self, Outcome, Transport};
use super::snapshot::Snapshot;
use super::tsig::{self, Check, ResponseSigner};

const HEADER: usize = 12;
/// The TSIG record's type (RFC 8945).
const TSIG_TYPE: u16 = 250;

/// Whether the message's last record is a TSIG record: a cheap walk of the wire format, so
/// unsigned queries (nearly all) pay a header read, and those with only EDNS a short walk.
pub fn carries_tsig(bytes: &[u8]) -> bool {
    let count = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let (Some(questions), Some(additionals)) = (count(4), count(10)) else {
        return false;
    };
    if additionals == 0 {
        return false;
    }
    let records = [count(6), count(8)]
        .iter()
        .map(|c| usize::from(c.unwrap_or(0)))
        .sum::<usize>()
        + usize::from(additionals);
    let mut at = HEADER;
    for _ in 0..questions {
        let Some(end) = skip_name(bytes, at) else {
            return false;
        };
        at = end + 4;
    }
    let mut last_type = None;
    for _ in 0..records {
        let Some(end) = skip_name(bytes, at) else {
            return false;
        };
        let (Some(rtype), Some(rdlength)) = (count(end), count(end + 8)) else {
            return false;
        };
        last_type = Some(rtype);
        at = end + 10 + usize::from(rdlength);
    }
    last_type == Some(TSIG_TYPE) && at == bytes.len()
}

/// Where the name starting at `at` ends (labels, then a zero or a compression pointer).
fn skip_name(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *bytes.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return bytes.get(at + 1).map(|_| at + 2),
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// The answer to a query that carries a TSIG record: signed, or the NOTAUTH refusal RFC 8945
/// asks for. None when the message is not a decodable signed query (the usual path answers
/// it) or when nothing should be sent.
pub fn answer(
    snapshot: &Snapshot,
    bytes: &[u8],
    client: IpAddr,
    peer: bool,
    transport: Transport,
) -> Option<Option<Vec<u8>>> {
    let query = Message::from_vec(bytes).ok()?;
    query.signature()?;
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(client),
        v4 => v4,
    };
    let mut signer = match tsig::check(&snapshot.transfer_keys, &query, bytes, client) {
        Check::Unsigned => return None,
        Check::Refused(refusal) => {
            let response = skeleton(&query);
            return Some(super::transfer::refuse(response, refusal));
        }
        Check::Signed(signer) => signer,
    };
    let response = match answer::handle(snapshot, bytes, peer, transport) {
        Outcome::Reply(reply) => Message::from_vec(&reply).ok()?,
        Outcome::Forward(query) => {
            let mut response = skeleton(&query);
            response.metadata.response_code = ResponseCode::Refused;
            response
        }
        Outcome::Drop => return Some(None),
    };
    Some(sign_within_limit(&mut signer, response, &query, transport))
}

/// The signed answer, truncated and empty when signed it would not fit a UDP reply.
fn sign_within_limit(
    signer: &mut ResponseSigner,
    mut response: Message,
    query: &Message,
    transport: Transport,
) -> Option<Vec<u8>> {
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => query.edns.as_ref().map_or(512, |e| {
            usize::from(e.max_payload()).clamp(512, usize::from(answer::EDNS_PAYLOAD))
        }),
    };
    // The reply was encoded under the limit unsigned; the signature adds at most RESERVE.
    response.signature = None;
    let unsigned_len = response.to_vec().ok()?.len();
    if transport == Transport::Udp && unsigned_len + ResponseSigner::RESERVE > limit {
        response.metadata.truncation = true;
        response.answers.clear();
        response.authorities.clear();
        response.additionals.clear();
    }
    signer.sign(response)
}

/// A response skeleton (ID, first question) for a refused signed query.
fn skeleton(query: &Message) -> Message {
    let mut response = super::forward::Forwarder::response_to(query, ResponseCode::NoError);
    response.queries.truncate(1);
    response
}
