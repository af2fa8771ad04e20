//! Answering one DNS message: parse, choose the view by the client's address, answer from the
//! view's zones with the authoritative rules (AA, CNAME chains, NODATA and NXDOMAIN with the
//! SOA), or hand the query to the forwarder. Sizes follow EDNS(0): a UDP answer larger than the
//! client accepts is truncated (TC) and the client retries over TCP.

use std::net::IpAddr;

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

/// The client is a peer (the cell's WireGuard subnets or loopback) or the world.
pub fn is_peer(snapshot: &Snapshot, client: IpAddr) -> bool {
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(client),
        v4 => v4,
    };
    client.is_loopback()
        || snapshot
            .internal_subnets
            .iter()
            .any(|net| net.contains(&client))
}

fn response_to(query: &Message) -> Message {
    let mut response = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    response.metadata = Metadata::response_from_request(&query.metadata);
    response.queries = query.queries.clone();
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

/// Encodes a response, truncating it (TC, empty sections) when it is too long for UDP.
pub fn encode(mut response: Message, query: &Message, transport: Transport) -> Outcome {
    let limit = size_limit(query, transport);
    match response.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Outcome::Reply(bytes),
        Ok(_) if transport == Transport::Udp => {
            response.answers.clear();
            response.authorities.clear();
            response.additionals.clear();
            response.metadata.truncation = true;
            response
                .to_vec()
                .map(Outcome::Reply)
                .unwrap_or(Outcome::Drop)
        }
        _ => {
            response.answers.clear();
            response.authorities.clear();
            response.additionals.clear();
            response.metadata.response_code = ResponseCode::ServFail;
            response
                .to_vec()
                .map(Outcome::Reply)
                .unwrap_or(Outcome::Drop)
        }
    }
}

/// Handles one message from `client`.
pub fn handle(snapshot: &Snapshot, bytes: &[u8], client: IpAddr, transport: Transport) -> Outcome {
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
    let peer = is_peer(snapshot, client);
    let view = if peer {
        &snapshot.peers
    } else {
        &snapshot.world
    };
    if answer_from_view(view, question, &mut response) {
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
