//! Recursion for peers: questions outside the cell's zones go to the configured upstream
//! resolvers, and answers are cached for their TTL (negative answers for the SOA's negative
//! TTL, RFC 2308), so a repeated question is answered without asking upstream again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};
use tokio::sync::broadcast;

use super::stats::{count, DnsStats};
use super::upstream::{UpstreamPool, FORWARD_BUDGET};

/// Bounds on how long anything stays cached.
const MAX_TTL: u32 = 86_400;
const MAX_NEGATIVE_TTL: u32 = 10_800;
/// Entries kept at most; when full, expired entries go first, then the oldest.
const MAX_ENTRIES: usize = 10_000;
/// How many of the oldest entries a full cache drops at once.
const EVICT_BATCH: usize = MAX_ENTRIES / 8;

type Key = (LowerName, RecordType, DNSClass);

struct Entry {
    response_code: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    stored: Instant,
    ttl: u32,
}

/// An upstream's answer, shared by every client that asked the same question meanwhile.
type Shared = Arc<(ResponseCode, Vec<Record>, Vec<Record>)>;

pub struct Forwarder {
    cache: Mutex<HashMap<Key, Entry>>,
    /// Questions being asked upstream now, and how to tell those waiting for the same.
    asking: Mutex<HashMap<Key, broadcast::Sender<Option<Shared>>>>,
    in_flight: AtomicUsize,
    max_in_flight: usize,
    pool: UpstreamPool,
    stats: Arc<DnsStats>,
}

impl Forwarder {
    pub fn new(max_in_flight: usize, stats: Arc<DnsStats>) -> Self {
        Forwarder {
            cache: Mutex::default(),
            asking: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight,
            pool: UpstreamPool::default(),
            stats,
        }
    }
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
            evict(&mut cache);
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

    /// A slot for one forwarded question, or `None` past the cap (the caller answers
    /// SERVFAIL). Counted until the permit drops, coalesced followers included.
    pub fn admit(self: &Arc<Self>) -> Option<Permit> {
        let taken = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if taken >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            count(&self.stats.forwards_over_cap);
            return None;
        }
        count(&self.stats.forwards);
        self.stats
            .forwards_in_flight
            .store(taken as u64 + 1, Ordering::Relaxed);
        Some(Permit(Arc::clone(self)))
    }

    /// The response skeleton for `query`: the client's ID and question, RA set.
    pub fn response_to(query: &Message, code: ResponseCode) -> Message {
        let mut response = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
        response.metadata.recursion_desired = query.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.metadata.response_code = code;
        response.queries = query.queries.iter().take(1).cloned().collect();
        if query.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(super::answer::EDNS_PAYLOAD);
            response.edns = Some(edns);
        }
        response
    }

    /// Answers `query` (a client's message) from the cache or the upstreams. The response
    /// carries the client's ID and question, with RA set. The caller holds a `Permit`.
    pub async fn resolve(&self, query: &Message, upstreams: &[SocketAddr]) -> Message {
        let mut response = Self::response_to(query, ResponseCode::ServFail);
        let Some(question) = query.queries.first() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return response;
        };
        let answer = match self.cached(question) {
            Some(answer) => Some(Arc::new(answer)),
            None => self.ask_once(question, upstreams).await,
        };
        if let Some(answer) = answer {
            let (code, answers, authorities) = &*answer;
            response.metadata.response_code = *code;
            response.answers = answers.clone();
            response.authorities = authorities.clone();
        }
        response
    }

    /// Asks the upstreams, or waits for the question already being asked: a burst of the
    /// same name costs one upstream query.
    async fn ask_once(&self, question: &Query, upstreams: &[SocketAddr]) -> Option<Shared> {
        let key = key(question);
        let joined = {
            let mut asking = lock(&self.asking);
            match asking.get(&key) {
                Some(sender) => Err(sender.subscribe()),
                None => {
                    let (sender, _) = broadcast::channel(1);
                    asking.insert(key.clone(), sender.clone());
                    Ok(sender)
                }
            }
        };
        let sender = match joined {
            Ok(sender) => sender,
            Err(mut receiver) => {
                count(&self.stats.forwards_coalesced);
                return receiver.recv().await.ok().flatten();
            }
        };
        // Followers learn the outcome even if this future is dropped midway (they get
        // nothing and answer SERVFAIL).
        let _asking = Asking {
            forwarder: self,
            key: key.clone(),
        };
        let mut outcome = None;
        let deadline = tokio::time::Instant::now() + FORWARD_BUDGET;
        for upstream in upstreams {
            let asked = tokio::time::timeout_at(deadline, self.ask(question, *upstream)).await;
            match asked.unwrap_or_else(|_| Err(anyhow::anyhow!("over the forwarding budget"))) {
                Ok(reply) => {
                    self.store(question, &reply);
                    outcome = Some(Arc::new((
                        reply.metadata.response_code,
                        reply.answers,
                        reply.authorities,
                    )));
                    break;
                }
                Err(e) => tracing::debug!(%upstream, error = %e, "upstream resolver failed"),
            }
        }
        lock(&self.asking).remove(&key);
        let _ = sender.send(outcome.clone());
        outcome
    }

    /// One question to one upstream through the pool, marked as picd's own.
    async fn ask(&self, question: &Query, upstream: SocketAddr) -> anyhow::Result<Message> {
        let mut request = Message::query();
        request.metadata.recursion_desired = true;
        request.add_query(question.clone());
        let mut edns = Edns::new();
        edns.set_max_payload(super::answer::EDNS_PAYLOAD);
        edns.options_mut().insert(super::marker::loop_marker());
        request.set_edns(edns);
        let wanted = key(question);
        self.pool
            .ask(&mut request, upstream, |reply| {
                reply.queries.first().map(key) == Some(wanted.clone())
            })
            .await
    }
}

/// A forwarded question's slot under the cap.
pub struct Permit(Arc<Forwarder>);

impl Drop for Permit {
    fn drop(&mut self) {
        let left = self.0.in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
        self.0
            .stats
            .forwards_in_flight
            .store(left as u64, Ordering::Relaxed);
    }
}

/// Removes the question from those being asked, however the asking ends.
struct Asking<'a> {
    forwarder: &'a Forwarder,
    key: Key,
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        lock(&self.forwarder.asking).remove(&self.key);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes room in a full cache: what has expired goes, then, if that freed less than a batch,
/// the oldest down to a batch below the bound. A scan of the whole cache runs once per
/// `EVICT_BATCH` inserts: dropping one entry per insert made every forward of a flood of
/// distinct names scan all of it under the cache lock (2,600 forwards/s at most).
fn evict(cache: &mut HashMap<Key, Entry>) {
    cache.retain(|_, e| e.stored.elapsed().as_secs() < u64::from(e.ttl));
    let keep = MAX_ENTRIES - EVICT_BATCH;
    if cache.len() <= keep {
        return;
    }
    let mut ages: Vec<Instant> = cache.values().map(|e| e.stored).collect();
    let excess = ages.len() - keep;
    let (_, cutoff, _) = ages.select_nth_unstable(excess - 1);
    let cutoff = *cutoff;
    cache.retain(|_, e| e.stored > cutoff);
}
