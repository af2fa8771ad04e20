//! A zone held in memory for answering: records by owner name and type, the names that exist
//! only because something below them does (empty non-terminals), and the lookup of RFC 1034
//! section 4.3.2 with wildcards (RFC 4592); the views of zones and the snapshot the server
//! answers from. Nothing here touches the store, so the fuzz targets compile it on its own.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

/// The most CNAME links followed inside the cell's zones before giving up (a loop guard).
pub const MAX_CNAME_CHAIN: usize = 8;

#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: LowerName,
    pub soa: Record,
    nodes: HashMap<LowerName, HashMap<RecordType, Vec<Record>>>,
    non_terminals: HashSet<LowerName>,
    /// Names below the origin with NS records: delegations, whose data the zone does not own.
    cuts: HashSet<LowerName>,
}

/// What a zone says about one name and type.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The records (owner already set to the query name for wildcard answers).
    Records(Vec<Record>),
    /// The name is an alias: follow the CNAME (boxed: a record is large beside a Vec).
    Cname(Box<Record>),
    /// The name exists but has no records of this type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The name is at or below a delegation: a referral to the child zone's servers, with
    /// the addresses of those inside this zone (glue).
    Referral { ns: Vec<Record>, glue: Vec<Record> },
}

impl Zone {
    pub fn new(origin: Name, soa: Record) -> Self {
        let mut zone = Zone {
            origin: LowerName::new(&origin),
            soa: soa.clone(),
            nodes: HashMap::new(),
            non_terminals: HashSet::new(),
            cuts: HashSet::new(),
        };
        zone.insert(soa);
        zone
    }

    /// Adds a record; names outside the zone are ignored.
    pub fn insert(&mut self, record: Record) {
        let owner = LowerName::new(&record.name);
        if !self.origin.zone_of(&owner) {
            return;
        }
        let mut ancestor = owner.base_name();
        while self.origin.zone_of(&ancestor) && ancestor != self.origin {
            self.non_terminals.insert(ancestor.clone());
            ancestor = ancestor.base_name();
        }
        if record.record_type() == RecordType::NS && owner != self.origin {
            self.cuts.insert(owner.clone());
        }
        let rrset = self
            .nodes
            .entry(owner)
            .or_default()
            .entry(record.record_type())
            .or_insert_with(|| Vec::with_capacity(1));
        if !rrset.iter().any(|r| r.data == record.data) {
            rrset.push(record);
        }
    }

    /// Whether `name` has records of `rtype`.
    pub fn has(&self, name: &Name, rtype: RecordType) -> bool {
        self.nodes
            .get(&LowerName::new(name))
            .is_some_and(|t| t.get(&rtype).is_some_and(|r| !r.is_empty()))
    }

    /// Sets a name's A and AAAA records to exactly `addresses` (internal names win over
    /// public ones in the peers' view).
    pub fn replace_addresses(&mut self, name: &Name, addresses: &[std::net::IpAddr], ttl: u32) {
        if let Some(types) = self.nodes.get_mut(&LowerName::new(name)) {
            types.remove(&RecordType::A);
            types.remove(&RecordType::AAAA);
        }
        for ip in addresses {
            let rdata = match ip {
                std::net::IpAddr::V4(v4) => RData::A(hickory_proto::rr::rdata::A(*v4)),
                std::net::IpAddr::V6(v6) => RData::AAAA(hickory_proto::rr::rdata::AAAA(*v6)),
            };
            self.insert(Record::from_rdata(name.clone(), ttl, rdata));
        }
    }

    pub fn contains(&self, name: &LowerName) -> bool {
        self.origin.zone_of(name)
    }

    /// Gives back the room left over from building: a record set starts with space for
    /// four records (a record is a few hundred bytes) and most names hold one or two.
    fn shrink_to_fit(&mut self) {
        for types in self.nodes.values_mut() {
            types.values_mut().for_each(Vec::shrink_to_fit);
            types.shrink_to_fit();
        }
        self.nodes.shrink_to_fit();
        self.non_terminals.shrink_to_fit();
        self.cuts.shrink_to_fit();
    }

    /// Every record, for export and transfers (SOA first).
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        std::iter::once(&self.soa).chain(
            self.nodes
                .values()
                .flat_map(|types| types.values().flatten())
                .filter(|r| r.record_type() != RecordType::SOA),
        )
    }

    pub fn len(&self) -> usize {
        self.nodes
            .values()
            .map(|t| t.values().map(Vec::len).sum::<usize>())
            .sum()
    }

    fn exists(&self, name: &LowerName) -> bool {
        self.nodes.contains_key(name) || self.non_terminals.contains(name)
    }

    fn from_node(
        types: &HashMap<RecordType, Vec<Record>>,
        qtype: RecordType,
        owner: Option<&Name>,
    ) -> Lookup {
        // (owner is None only for callers that want stored names, e.g. transfers)
        let rename = |records: &[Record]| -> Vec<Record> {
            records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if let Some(owner) = owner {
                        r.name = owner.clone();
                    }
                    r
                })
                .collect()
        };
        if qtype == RecordType::ANY {
            let all: Vec<Record> = types.values().flat_map(|rs| rename(rs)).collect();
            return if all.is_empty() {
                Lookup::NoData
            } else {
                Lookup::Records(all)
            };
        }
        if let Some(records) = types.get(&qtype).filter(|r| !r.is_empty()) {
            return Lookup::Records(rename(records));
        }
        if let Some(cname) = types.get(&RecordType::CNAME).and_then(|r| r.first()) {
            return Lookup::Cname(Box::new(rename(std::slice::from_ref(cname)).remove(0)));
        }
        Lookup::NoData
    }

    /// Looks a name up. `qname` keeps the query's case; synthesised wildcard answers take it
    /// as their owner.
    pub fn lookup(&self, qname: &Name, qtype: RecordType) -> Lookup {
        let lower = LowerName::new(qname);
        if let Some(referral) = self.referral(&lower, qtype) {
            return referral;
        }
        if let Some(types) = self.nodes.get(&lower) {
            // Answers carry the owner name in the query's case.
            return Self::from_node(types, qtype, Some(qname));
        }
        if self.non_terminals.contains(&lower) {
            return Lookup::NoData;
        }
        // The closest encloser is the nearest existing ancestor; only its wildcard applies.
        let mut ancestor = lower.base_name();
        while self.origin.zone_of(&ancestor) {
            if self.exists(&ancestor) || ancestor == self.origin {
                let wildcard = LowerName::new(
                    &Name::from(ancestor.clone())
                        .prepend_label("*")
                        .unwrap_or_else(|_| Name::root()),
                );
                return match self.nodes.get(&wildcard) {
                    Some(types) => Self::from_node(types, qtype, Some(qname)),
                    None => Lookup::NxDomain,
                };
            }
            ancestor = ancestor.base_name();
        }
        Lookup::NxDomain
    }

    /// RFC 1034 4.3.2 step 3b: a name at or below a zone cut belongs to the child zone; the
    /// answer is a referral from the topmost cut above it. (DS at the cut itself is the
    /// parent's.) Zones without delegations skip the walk.
    fn referral(&self, name: &LowerName, qtype: RecordType) -> Option<Lookup> {
        if self.cuts.is_empty() {
            return None;
        }
        let mut topmost = None;
        let mut current = name.clone();
        while current != self.origin && self.origin.zone_of(&current) {
            if self.cuts.contains(&current) && !(&current == name && qtype == RecordType::DS) {
                topmost = Some(current.clone());
            }
            current = current.base_name();
        }
        let cut = topmost?;
        let ns = self.nodes.get(&cut)?.get(&RecordType::NS)?.clone();
        let glue = ns
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(target) => self.nodes.get(&LowerName::new(&target.0)),
                _ => None,
            })
            .flat_map(|types| {
                [RecordType::A, RecordType::AAAA]
                    .iter()
                    .filter_map(|t| types.get(t))
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        Some(Lookup::Referral { ns, glue })
    }

    /// The SOA for the authority section of a negative answer: its TTL is the smaller of the
    /// SOA's own TTL and its MINIMUM field (RFC 2308 section 3).
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(data) = &soa.data {
            let ttl = soa.ttl.min(data.minimum);
            soa.ttl = ttl;
        }
        soa
    }
}

/// The zones of one view, most specific origin first.
#[derive(Debug, Clone, Default)]
pub struct View {
    zones: Vec<Zone>,
}

impl View {
    pub fn new(mut zones: Vec<Zone>) -> Self {
        zones.sort_by_key(|z| std::cmp::Reverse(z.origin.num_labels()));
        zones.iter_mut().for_each(Zone::shrink_to_fit);
        View { zones }
    }

    /// The zone with the longest origin that contains `name`.
    pub fn zone_for(&self, name: &Name) -> Option<&Zone> {
        let lower = LowerName::new(name);
        self.zones.iter().find(|z| z.contains(&lower))
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }
}

/// The server's in-memory picture: both views' zones, which clients are peers, and where
/// recursion goes (built by `snapshot::build` from the store, swapped in atomically).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub peers: View,
    pub world: View,
    pub internal_subnets: Vec<IpNet>,
    pub upstreams: Vec<SocketAddr>,
    pub recursion: bool,
    /// Secondaries allowed to transfer the public zones.
    pub transfer_allow: Vec<IpAddr>,
    /// The TSIG keys those secondaries must sign with (filled in by the driver).
    pub transfer_keys: super::tsig::TransferKeys,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::SOA;

    #[test]
    fn a_view_keeps_no_spare_room_in_record_sets() {
        let origin = Name::from_ascii("cell.example.").unwrap();
        let soa = SOA::new(origin.clone(), origin.clone(), 1, 3600, 600, 86400, 60);
        let mut zone = Zone::new(
            origin.clone(),
            Record::from_rdata(origin, 60, RData::SOA(soa)),
        );
        for i in 0..50u8 {
            let name = Name::from_ascii(format!("p{i}.cell.example.")).unwrap();
            let addresses = [IpAddr::from([10, 0, 0, i]), IpAddr::from([10, 0, 1, i])];
            zone.replace_addresses(&name, &addresses, 60);
        }
        let before = zone
            .nodes
            .values()
            .flat_map(HashMap::values)
            .map(Vec::capacity)
            .sum::<usize>();
        let view = View::new(vec![zone]);
        let zone = &view.zones()[0];
        let rrsets = || zone.nodes.values().flat_map(HashMap::values);
        assert!(
            before > zone.len(),
            "building leaves spare room: {before} slots"
        );
        assert_eq!(rrsets().map(Vec::capacity).sum::<usize>(), zone.len());
        assert_eq!(zone.len(), 101);
    }
}
