//! Answering one DNS message: parse, choose the view by the client's address, answer from the
//! view's zones with the authoritative rules (AA, CNAME chains, NODATA and NXDOMAIN with the
//! SOA), or hand the query to the forwarder. Sizes follow EDNS(0): a UDP answer larger than the
//! client accepts is truncated (TC) and the client retries over TCP.

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};

use super::zone::{Lookup, Snapshot, View, MAX_CNAME_CHAIN};

/// The UDP payload size picd advertises (the DNS flag day 2020 value, safe from fragmentation).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Without EDNS, a UDP answer may be at most this long (RFC 1035).
const CLASSIC_UDP_LIMIT: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with a message.
pub enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Resolve through the upstream resolvers (peers' view only).
    Forward(Message),
    /// Say nothing (not a query, or too broken to answer).
    Drop,
}

fn response_to(query: &Message) -> Message {
    let mut response = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    response.metadata = Metadata::response_from_request(&query.metadata);
    // At most the first question: a reply that echoed hundreds of them (FORMERR for a
    // message with many) would multiply what a forged source receives.
    response.queries = query.queries.iter().take(1).cloned().collect();
    if let Some(edns) = &query.edns {
        let mut ours = Edns::new();
        ours.set_max_payload(EDNS_PAYLOAD);
        ours.set_version(0);
        ours.set_dnssec_ok(edns.flags().dnssec_ok);
        response.edns = Some(ours);
    }
    response
}

/// A header-only error answer for a message we could decode only partly.
fn header_error(bytes: &[u8], code: ResponseCode) -> Outcome {
    if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
        return Outcome::Drop;
    }
    let mut out = bytes[..12].to_vec();
    out[2] = 0x80 | (bytes[2] & 0x79); // QR, keep opcode and RD
    out[3] = code.low();
    out[4..12].fill(0);
    Outcome::Reply(out)
}

/// The largest answer the client accepts over this transport.
fn size_limit(query: &Message, transport: Transport) -> usize {
    match (transport, &query.edns) {
        (Transport::Tcp, _) => u16::MAX as usize,
        // Never more than the client accepts, nor more than picd advertises (no fragments).
        (Transport::Udp, Some(edns)) => {
            usize::from(edns.max_payload()).clamp(CLASSIC_UDP_LIMIT, usize::from(EDNS_PAYLOAD))
        }
        (Transport::Udp, None) => CLASSIC_UDP_LIMIT,
    }
}

/// Encodes a response, truncating it (TC, empty sections) when it is too long for UDP. The
/// limit holds for the final bytes: if even the truncated answer does not fit (a long question
/// with EDNS), the question goes too, and a message that still does not fit is not sent.
pub fn encode(mut response: Message, query: &Message, transport: Transport) -> Outcome {
    let limit = size_limit(query, transport);
    match response.to_vec() {
        Ok(bytes) if bytes.len() <= limit => return Outcome::Reply(bytes),
        Ok(_) if transport == Transport::Udp => response.metadata.truncation = true,
        _ => response.metadata.response_code = ResponseCode::ServFail,
    }
    response.answers.clear();
    response.authorities.clear();
    response.additionals.clear();
    match response.to_vec() {
        Ok(bytes) if bytes.len() <= limit => return Outcome::Reply(bytes),
        _ => response.queries.clear(),
    }
    match response.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Outcome::Reply(bytes),
        _ => Outcome::Drop,
    }
}

/// The reply RRL sends instead of dropping ("slip"): TC set, the first question only, no
/// records, so a real client retries over TCP and a forged source gains nothing.
pub fn slip(bytes: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(bytes).ok()?;
    let mut response = response_to(&query);
    response.metadata.truncation = true;
    match encode(response, &query, Transport::Udp) {
        Outcome::Reply(bytes) => Some(bytes),
        _ => None,
    }
}

/// Handles one message from a client of the peers' view (`peer`) or the world's.
pub fn handle(snapshot: &Snapshot, bytes: &[u8], peer: bool, transport: Transport) -> Outcome {
    let query = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(_) => return header_error(bytes, ResponseCode::FormErr),
    };
    if query.metadata.message_type != MessageType::Query {
        return Outcome::Drop;
    }
    let mut response = response_to(&query);
    if query.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return encode(response, &query, transport);
    }
    if query.queries.len() != 1 {
        response.metadata.response_code = ResponseCode::FormErr;
        return encode(response, &query, transport);
    }
    if query.edns.as_ref().is_some_and(|e| e.version() > 0) {
        response.metadata.response_code = ResponseCode::BADVERS;
        return encode(response, &query, transport);
    }
    if super::forward::is_own_forward(&query) {
        // picd's own forwarded question came back (an upstream that is picd, directly or
        // through a resolver): answering it by forwarding again would loop until every file
        // descriptor is gone.
        response.metadata.response_code = ResponseCode::ServFail;
        return encode(response, &query, transport);
    }
    let question = &query.queries[0];
    if !matches!(question.query_class(), DNSClass::IN | DNSClass::ANY) {
        response.metadata.response_code = ResponseCode::Refused;
        return encode(response, &query, transport);
    }
    if matches!(question.query_type(), RecordType::AXFR | RecordType::IXFR) {
        // Zone transfers go to the configured secondaries only, over TCP (handled by the
        // server before this point); everyone else is refused.
        response.metadata.response_code = ResponseCode::Refused;
        return encode(response, &query, transport);
    }
    let view = if peer {
        &snapshot.peers
    } else {
        &snapshot.world
    };
    if answer_from_view(view, question, &mut response) {
        if question.query_type() == RecordType::ANY && transport == Transport::Udp {
            minimal_any(&mut response);
        }
        return encode(response, &query, transport);
    }
    if peer
        && snapshot.recursion
        && query.metadata.recursion_desired
        && !snapshot.upstreams.is_empty()
    {
        return Outcome::Forward(query);
    }
    response.metadata.response_code = ResponseCode::Refused;
    encode(response, &query, transport)
}

/// RFC 8482: over UDP, ANY is answered with one RRset of the name (the first one the zone
/// holds), never all of them, so ANY is no better for amplification than any other type. Over
/// TCP the full answer is given.
fn minimal_any(response: &mut Message) {
    let Some(first) = response.answers.first() else {
        return;
    };
    let (name, rtype) = (first.name.clone(), first.record_type());
    response
        .answers
        .retain(|r| r.name == name && r.record_type() == rtype);
}

/// Fills `response` from the view's zones; false when no zone of the view holds the name.
pub fn answer_from_view(view: &View, question: &Query, response: &mut Message) -> bool {
    let Some(zone) = view.zone_for(question.name()) else {
        return false;
    };
    response.metadata.authoritative = true;
    let qtype = question.query_type();
    let mut name: Name = question.name().clone();
    let mut zone = zone;
    for _ in 0..=MAX_CNAME_CHAIN {
        match zone.lookup(&name, qtype) {
            Lookup::Records(records) => {
                response.answers.extend(records);
                return true;
            }
            Lookup::Cname(cname) => {
                let cname = *cname;
                let target = match &cname.data {
                    hickory_proto::rr::RData::CNAME(c) => c.0.clone(),
                    _ => return true,
                };
                response.answers.push(cname);
                if qtype == RecordType::CNAME {
                    return true;
                }
                // Follow the alias while it stays inside this view's zones; past that the
                // client resolves the rest itself.
                match view.zone_for(&target) {
                    Some(next) => {
                        zone = next;
                        name = target;
                    }
                    None => return true,
                }
            }
            Lookup::NoData => {
                response.authorities.push(zone.negative_soa());
                return true;
            }
            Lookup::Referral { ns, glue } => {
                // Not authoritative for what lies below the cut (a CNAME before it stays).
                response.metadata.authoritative = !response.answers.is_empty();
                response.authorities.extend(ns);
                response.additionals.extend(glue);
                return true;
            }
            Lookup::NxDomain => {
                // After a CNAME the answer is still NOERROR for the alias (RFC 6604 keeps the
                // final rcode); a missing target is NXDOMAIN like any missing name.
                response.metadata.response_code = ResponseCode::NXDomain;
                response.authorities.push(zone.negative_soa());
                return true;
            }
        }
    }
    true
}
