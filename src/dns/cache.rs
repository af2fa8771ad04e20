//! Answers encoded once per snapshot, for the UDP loop. A repeated question is answered by
//! copying the bytes of the answer it got before and patching the message ID and the case of
//! the name, with no decoding, lookup or encoding. The key is the client's view and the query
//! after its ID with the name lowercased, so everything else that shapes an answer (flags,
//! type, class, EDNS and its payload size and DO bit) is part of it.
//!
//! Only authoritative answers (AA) are kept: never a forwarded one, never an error the query
//! itself caused. The cache belongs to one snapshot and empties itself when the server swaps
//! in another, and it never holds more than `MAX_ENTRIES` answers. Each UDP thread has its
//! own, so nothing here is shared or locked.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::op::Message;

use super::answer::{self, Outcome, Transport};
use super::zone::Snapshot;

/// At most this many answers (a few MB at worst); past it the cache starts again empty, so a
/// flood of distinct questions costs the slow path, never memory.
pub const MAX_ENTRIES: usize = 4096;
/// Longer queries (large EDNS options) are answered without the cache.
const MAX_QUERY: usize = 512;
/// The DNS header; the question's name starts right after it.
const HEADER: usize = 12;
/// The name's largest wire length (RFC 1035 section 3.1).
const MAX_NAME: usize = 255;

/// What became of one UDP message.
pub enum Udp {
    /// The answer is in the caller's buffer.
    Reply,
    /// Resolve through the upstream resolvers (never cached).
    Forward(Message),
    /// Say nothing.
    Drop,
}

struct Entry {
    reply: Box<[u8]>,
    /// Whether the answer to the same question in another case is this one with the name
    /// patched (checked when the entry was made); if not, only the same case is answered.
    case_patchable: bool,
}

/// The answers one UDP thread has given for the current snapshot.
pub struct AnswerCache {
    snapshot: Option<Arc<Snapshot>>,
    entries: HashMap<Box<[u8]>, Entry, foldhash::fast::RandomState>,
    key: Vec<u8>,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache {
            snapshot: None,
            entries: HashMap::default(),
            key: Vec::with_capacity(MAX_QUERY),
        }
    }
}

impl AnswerCache {
    /// Answers one UDP message from a client of the peers' view (`peer`) or the world's
    /// exactly as `answer::handle` would, writing the answer into `reply`.
    pub fn answer(
        &mut self,
        snapshot: &Arc<Snapshot>,
        query: &[u8],
        peer: bool,
        reply: &mut Vec<u8>,
    ) -> Udp {
        self.follow(snapshot);
        let Some(name_end) = cacheable_name_end(query) else {
            return answered(answer::handle(snapshot, query, peer, Transport::Udp), reply);
        };
        self.key.clear();
        self.key.push(u8::from(peer));
        self.key.extend_from_slice(&query[2..]);
        // The name sits at HEADER in the query, one byte further in the key (the view).
        self.key[HEADER - 1..name_end - 1].make_ascii_lowercase();
        let name = &query[HEADER..name_end];
        if let Some(entry) = self.entries.get(self.key.as_slice()) {
            if entry.case_patchable || &entry.reply[HEADER..name_end] == name {
                reply.clear();
                reply.extend_from_slice(&entry.reply);
                reply[..2].copy_from_slice(&query[..2]);
                reply[HEADER..name_end].copy_from_slice(name);
                return Udp::Reply;
            }
        }
        let outcome = answer::handle(snapshot, query, peer, Transport::Udp);
        if let Outcome::Reply(bytes) = &outcome {
            if is_keepable(bytes, name) {
                let case_patchable = case_patchable(snapshot, query, peer, bytes, name_end);
                if self.entries.len() >= MAX_ENTRIES {
                    self.entries.clear();
                }
                let entry = Entry {
                    reply: bytes.clone().into_boxed_slice(),
                    case_patchable,
                };
                self.entries
                    .insert(self.key.clone().into_boxed_slice(), entry);
            }
        }
        answered(outcome, reply)
    }

    /// How many answers are kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Answers belong to the snapshot they were made from: a new one empties the cache. (The
    /// cache holds the snapshot, so its address cannot be reused by the next one.)
    fn follow(&mut self, snapshot: &Arc<Snapshot>) {
        if !self
            .snapshot
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, snapshot))
        {
            self.entries.clear();
            self.snapshot = Some(Arc::clone(snapshot));
        }
    }
}

fn answered(outcome: Outcome, reply: &mut Vec<u8>) -> Udp {
    match outcome {
        Outcome::Reply(bytes) => {
            *reply = bytes;
            Udp::Reply
        }
        Outcome::Forward(query) => Udp::Forward(query),
        Outcome::Drop => Udp::Drop,
    }
}

/// Where the question's name ends, for a plain query the cache may key: one question, nothing
/// in the answer and authority sections, at most one additional record (OPT), and a name of
/// labels only (a query's first name never holds a compression pointer).
fn cacheable_name_end(query: &[u8]) -> Option<usize> {
    if query.len() < HEADER + 5 || query.len() > MAX_QUERY {
        return None;
    }
    let count = |at: usize| u16::from_be_bytes([query[at], query[at + 1]]);
    let is_query = query[2] & 0x80 == 0 && (query[2] >> 3) & 0x0f == 0;
    if !is_query || count(4) != 1 || count(6) != 0 || count(8) != 0 || count(10) > 1 {
        return None;
    }
    let mut at = HEADER;
    loop {
        let len = usize::from(*query.get(at)?);
        if len & 0xc0 != 0 || at - HEADER + len + 1 > MAX_NAME {
            return None;
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    // Type and class follow the name.
    (at + 4 <= query.len()).then_some(at)
}

/// Whether an answer may be kept: authoritative, echoing the one question's name as asked.
fn is_keepable(reply: &[u8], name: &[u8]) -> bool {
    let name_end = HEADER + name.len();
    reply.len() >= name_end
        && reply[2] & 0x04 != 0
        && reply[4..6] == [0, 1]
        && &reply[HEADER..name_end] == name
}

/// Whether the answer to this question in another case is `reply` with only the name in the
/// question changed. It is when every other appearance of the name in `reply` points at the
/// question (the answers' owners), and no name from the zone shares letters with it through
/// compression. Asking the question again with every letter's case swapped proves it: any
/// such sharing would compress differently and the two answers would differ.
fn case_patchable(
    snapshot: &Snapshot,
    query: &[u8],
    peer: bool,
    reply: &[u8],
    name_end: usize,
) -> bool {
    let mut swapped = query.to_vec();
    for byte in &mut swapped[HEADER..name_end] {
        if byte.is_ascii_alphabetic() {
            *byte ^= 0x20;
        }
    }
    if swapped == query {
        return true;
    }
    let Outcome::Reply(expected) = answer::handle(snapshot, &swapped, peer, Transport::Udp) else {
        return false;
    };
    let mut patched = reply.to_vec();
    patched[HEADER..name_end].copy_from_slice(&swapped[HEADER..name_end]);
    patched == expected
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, CNAME, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    use super::super::zone::{View, Zone};
    use super::*;

    /// The cell itself on loopback: the peers' view.
    const LOOPBACK: bool = true;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("name")
    }

    fn snapshot(www: Ipv4Addr) -> Arc<Snapshot> {
        let origin = name("t.test.");
        let soa = SOA::new(
            name("ns1.t.test."),
            name("hostmaster.t.test."),
            1,
            3600,
            900,
            604800,
            120,
        );
        let mut zone = Zone::new(
            origin.clone(),
            Record::from_rdata(origin, 3600, RData::SOA(soa)),
        );
        zone.insert(Record::from_rdata(
            name("www.t.test."),
            300,
            RData::A(A(www)),
        ));
        zone.insert(Record::from_rdata(
            name("alias.t.test."),
            300,
            RData::CNAME(CNAME(name("www.t.test."))),
        ));
        let view = View::new(vec![zone]);
        Arc::new(Snapshot {
            peers: view.clone(),
            world: view,
            ..Snapshot::default()
        })
    }

    fn query(id: u16, qname: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.queries.push(Query::query(name(qname), rtype));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            message.edns = Some(e);
        }
        message.to_vec().expect("encode")
    }

    fn ask(cache: &mut AnswerCache, snapshot: &Arc<Snapshot>, bytes: &[u8]) -> Vec<u8> {
        let mut reply = Vec::new();
        match cache.answer(snapshot, bytes, LOOPBACK, &mut reply) {
            Udp::Reply => reply,
            _ => panic!("no reply"),
        }
    }

    fn uncached(snapshot: &Snapshot, bytes: &[u8]) -> Vec<u8> {
        match answer::handle(snapshot, bytes, LOOPBACK, Transport::Udp) {
            Outcome::Reply(reply) => reply,
            _ => panic!("no reply"),
        }
    }

    #[test]
    fn a_repeated_question_gets_its_own_id_and_case() {
        let snapshot = snapshot(Ipv4Addr::new(192, 0, 2, 1));
        let mut cache = AnswerCache::default();
        for (qname, rtype) in [
            ("www.t.test.", RecordType::A),
            ("alias.t.test.", RecordType::A),
            ("nothere.t.test.", RecordType::A),
            ("www.t.test.", RecordType::TXT),
        ] {
            for edns in [false, true] {
                let first = query(1, qname, rtype, edns);
                assert_eq!(
                    ask(&mut cache, &snapshot, &first),
                    uncached(&snapshot, &first)
                );
                for (id, case) in [(2, qname.to_string()), (0xbeef, mixed_case(qname))] {
                    let again = query(id, &case, rtype, edns);
                    let reply = ask(&mut cache, &snapshot, &again);
                    assert_eq!(reply, uncached(&snapshot, &again), "{case} {rtype}");
                    let decoded = Message::from_vec(&reply).expect("decode");
                    assert_eq!(decoded.metadata.id, id);
                    assert_eq!(decoded.queries[0].name().to_string(), case);
                }
            }
        }
        // One entry per question (case is not part of the key), the EDNS form apart.
        assert_eq!(cache.len(), 8);
        // A plain answer is patched, not recomputed, for another case.
        let mut cache = AnswerCache::default();
        ask(
            &mut cache,
            &snapshot,
            &query(1, "www.t.test.", RecordType::A, false),
        );
        assert!(cache.entries.values().all(|e| e.case_patchable));
    }

    fn mixed_case(text: &str) -> String {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    #[test]
    fn a_new_snapshot_is_answered_from_at_once() {
        let before = snapshot(Ipv4Addr::new(192, 0, 2, 1));
        let after = snapshot(Ipv4Addr::new(192, 0, 2, 2));
        let mut cache = AnswerCache::default();
        let bytes = query(7, "www.t.test.", RecordType::A, false);
        ask(&mut cache, &before, &bytes);
        assert_eq!(ask(&mut cache, &before, &bytes), uncached(&before, &bytes));
        let reply = ask(&mut cache, &after, &bytes);
        assert_eq!(reply, uncached(&after, &bytes));
        assert_ne!(reply, uncached(&before, &bytes));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_stays_bounded_and_keeps_only_authoritative_answers() {
        let snapshot = snapshot(Ipv4Addr::new(192, 0, 2, 1));
        let mut cache = AnswerCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            ask(
                &mut cache,
                &snapshot,
                &query(1, &format!("n{i}.t.test."), RecordType::A, false),
            );
            assert!(cache.len() <= MAX_ENTRIES);
        }
        let mut cache = AnswerCache::default();
        // Outside the zone: REFUSED (no recursion here), not authoritative, not kept.
        ask(
            &mut cache,
            &snapshot,
            &query(1, "example.org.", RecordType::A, false),
        );
        assert!(cache.is_empty());
    }
}
