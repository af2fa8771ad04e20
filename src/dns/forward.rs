//! Recursion for peers: questions outside the cell's zones go to the configured upstream
//! resolvers, and answers are cached for their TTL (negative answers for the SOA's negative
//! TTL, RFC 2308), so a repeated question is answered without asking upstream again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Bounds on how long anything stays cached.
const MAX_TTL: u32 = 86_400;
const MAX_NEGATIVE_TTL: u32 = 10_800;
/// Entries kept at most; when full, expired entries go first, then the oldest.
const MAX_ENTRIES: usize = 10_000;

type Key = (LowerName, RecordType, DNSClass);

struct Entry {
    response_code: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    stored: Instant,
    ttl: u32,
}

#[derive(Default)]
pub struct Forwarder {
    cache: Mutex<HashMap<Key, Entry>>,
}

fn key(query: &Query) -> Key {
    (
        LowerName::new(&query.name),
        query.query_type,
        query.query_class,
    )
}

/// How long a response may be cached: the smallest TTL of its answers; for NXDOMAIN and
/// NODATA the SOA's negative TTL; SERVFAIL and the like are not cached.
fn cache_ttl(response: &Message) -> Option<u32> {
    match response.metadata.response_code {
        ResponseCode::NoError if !response.answers.is_empty() => response
            .answers
            .iter()
            .map(|r| r.ttl)
            .min()
            .map(|t| t.min(MAX_TTL)),
        ResponseCode::NoError | ResponseCode::NXDomain => response
            .authorities
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })
            .map(|t| t.min(MAX_NEGATIVE_TTL)),
        _ => None,
    }
}

impl Forwarder {
    /// The cached answer to `query`, with TTLs reduced by the time spent in the cache.
    fn cached(&self, query: &Query) -> Option<(ResponseCode, Vec<Record>, Vec<Record>)> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cache.get(&key(query))?;
        let age = entry.stored.elapsed().as_secs() as u32;
        if age >= entry.ttl {
            return None;
        }
        let age_records = |records: &[Record]| -> Vec<Record> {
            records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.ttl = r.ttl.saturating_sub(age);
                    r
                })
                .collect()
        };
        Some((
            entry.response_code,
            age_records(&entry.answers),
            age_records(&entry.authorities),
        ))
    }

    fn store(&self, query: &Query, response: &Message) {
        let Some(ttl) = cache_ttl(response).filter(|t| *t > 0) else {
            return;
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, e| e.stored.elapsed().as_secs() < u64::from(e.ttl));
            if cache.len() >= MAX_ENTRIES {
                if let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, e)| e.stored)
                    .map(|(k, _)| k.clone())
                {
                    cache.remove(&oldest);
                }
            }
        }
        cache.insert(
            key(query),
            Entry {
                response_code: response.metadata.response_code,
                answers: response.answers.clone(),
                authorities: response.authorities.clone(),
                stored: Instant::now(),
                ttl,
            },
        );
    }

    /// Answers `query` (a client's message) from the cache or the upstreams. The response
    /// carries the client's ID and question, with RA set.
    pub async fn resolve(&self, query: &Message, upstreams: &[SocketAddr]) -> Message {
        let mut response = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
        response.metadata.recursion_desired = query.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.queries = query.queries.clone();
        if query.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(super::answer::EDNS_PAYLOAD);
            response.edns = Some(edns);
        }
        let Some(question) = query.queries.first() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return response;
        };
        if let Some((code, answers, authorities)) = self.cached(question) {
            response.metadata.response_code = code;
            response.answers = answers;
            response.authorities = authorities;
            return response;
        }
        for upstream in upstreams {
            match ask(question, *upstream).await {
                Ok(upstream_response) => {
                    self.store(question, &upstream_response);
                    response.metadata.response_code = upstream_response.metadata.response_code;
                    response.answers = upstream_response.answers;
                    response.authorities = upstream_response.authorities;
                    return response;
                }
                Err(e) => tracing::debug!(%upstream, error = %e, "upstream resolver failed"),
            }
        }
        response.metadata.response_code = ResponseCode::ServFail;
        response
    }
}

/// One question to one upstream: UDP first, TCP when the answer is truncated.
async fn ask(question: &Query, upstream: SocketAddr) -> anyhow::Result<Message> {
    let mut request = Message::query();
    request.metadata.recursion_desired = true;
    request.add_query(question.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(super::answer::EDNS_PAYLOAD);
    request.set_edns(edns);
    let id = request.metadata.id;
    let bytes = request.to_vec()?;
    let bind: SocketAddr = if upstream.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(upstream).await?;
    socket.send(&bytes).await?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + UPSTREAM_TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await??;
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        // Only the answer to our own question counts (spoofed or late packets are ignored).
        if reply.metadata.id != id || reply.queries.first().map(key) != Some(key(question)) {
            continue;
        }
        if reply.metadata.truncation {
            return ask_tcp(&bytes, id, upstream).await;
        }
        return Ok(reply);
    }
}

async fn ask_tcp(bytes: &[u8], id: u16, upstream: SocketAddr) -> anyhow::Result<Message> {
    let work = async {
        let mut stream = TcpStream::connect(upstream).await?;
        stream
            .write_all(&(bytes.len() as u16).to_be_bytes())
            .await?;
        stream.write_all(bytes).await?;
        let len = stream.read_u16().await? as usize;
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        let reply = Message::from_vec(&buf)?;
        anyhow::ensure!(reply.metadata.id == id, "mismatched answer");
        Ok(reply)
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, work).await?
}
