//! Building the server's in-memory picture (`Snapshot`) from the store: both views' zones,
//! which clients are peers, and where recursion goes. Rebuilt after every change and swapped
//! in atomically, so a query always sees one consistent state.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use ipnet::IpNet;
use rusqlite::Connection;

use super::names::{self, NameView, PublishedName};
use super::store::{self, ZoneRow};
use super::zone::{View, Zone};
use crate::cell::CellSettings;
use crate::error::ApiError;

pub use super::zone::Snapshot;

const SOA_REFRESH: i32 = 3600;
const SOA_RETRY: i32 = 900;
const SOA_EXPIRE: i32 = 1_209_600;
const SOA_MINIMUM: u32 = 300;

/// The zone's SOA: `ns` (the cell's name server) as the primary, `hostmaster.<zone>` as the
/// mailbox.
pub fn soa_record(zone: &ZoneRow, ns: &Name) -> Result<Record, ApiError> {
    let origin = zone.origin()?;
    let mbox = name_under(&origin, "hostmaster")?;
    let soa = SOA::new(
        ns.clone(),
        mbox,
        zone.serial,
        SOA_REFRESH,
        SOA_RETRY,
        SOA_EXPIRE,
        SOA_MINIMUM,
    );
    Ok(Record::from_rdata(
        origin,
        zone.default_ttl,
        RData::SOA(soa),
    ))
}

/// The one name server every zone of the cell names. When the public endpoint is an address:
/// `ns.<cell domain>`, with that address in the cell's zone (each zone naming its own
/// `ns.<zone>` would leave that name without an address in every other zone, and
/// `named-checkzone`, like any secondary loading the export, rejects an in-zone NS without
/// one). When the endpoint is a host name, that name itself: its addresses are kept wherever
/// the name lives. Before setup there is no cell and each zone names its own.
fn name_server(origin: &Name, cell: Option<&CellSettings>) -> Result<Name, ApiError> {
    let Some(cell) = cell else {
        return name_under(origin, "ns");
    };
    let endpoint_is_name = cell.public_endpoint.parse::<IpAddr>().is_err();
    let name = |text: &str| {
        Name::from_ascii(format!("{text}."))
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("name server: {e}")))
    };
    if endpoint_is_name {
        name(&cell.public_endpoint)
    } else {
        name_under(&name(&cell.domain)?, "ns")
    }
}

fn name_under(origin: &Name, label: &str) -> Result<Name, ApiError> {
    origin
        .prepend_label(label)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("zone name: {e}")))
}

fn address_record(name: &Name, ttl: u32, ip: IpAddr) -> Record {
    match ip {
        IpAddr::V4(v4) => Record::from_rdata(name.clone(), ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(v6))),
    }
}

/// Serves the names published for `view` under the cell's zone, each replacing whatever
/// addresses the zone's records gave that name.
fn publish_names(
    zone: &mut Zone,
    origin: &Name,
    names: &[PublishedName],
    view: NameView,
    ttl: u32,
) {
    for published in names.iter().filter(|n| n.view == view) {
        let name = if published.name == names::APEX {
            origin.clone()
        } else {
            match name_under(origin, &published.name) {
                Ok(name) => name,
                Err(_) => continue,
            }
        };
        zone.replace_addresses(&name, &published.addresses, ttl);
    }
}

/// Builds the snapshot from the store: every zone's public records for the world; for peers
/// (when split horizon is on) also the internal records and the names other domains published
/// for them (`names`: the peers' names, the cell's own name at its WireGuard addresses).
pub fn build(conn: &Connection) -> Result<Snapshot, ApiError> {
    let config = crate::cell::read_cell_config(conn)?;
    let names = names::list(conn)?;
    let mut world_zones = Vec::new();
    let mut peer_zones = Vec::new();
    for zone in store::zones(conn)? {
        let origin = zone.origin()?;
        let ns = name_server(&origin, config.as_ref().map(|c| &c.cell))?;
        let soa = soa_record(&zone, &ns)?;
        let mut world = Zone::new(origin.clone(), soa);
        world.insert(Record::from_rdata(
            origin.clone(),
            zone.default_ttl,
            RData::NS(NS(ns.clone())),
        ));
        let mut internal = Vec::new();
        for row in store::records(conn, &zone.name)? {
            let Ok(record) = row.to_record() else {
                tracing::warn!(zone = %zone.name, id = %row.id, "skipping a stored record that no longer parses");
                continue;
            };
            if row.view == "internal" {
                internal.push(record);
            } else {
                world.insert(record);
            }
        }
        let is_cell_zone = config
            .as_ref()
            .is_some_and(|c| format!("{}.", c.cell.domain) == zone.name);
        if let (true, Some(config)) = (is_cell_zone, &config) {
            // The world finds the cell at its public endpoint when that is an address and the
            // owner has not published other addresses for it.
            if let Ok(ip) = config.cell.public_endpoint.parse::<IpAddr>() {
                world.insert(address_record(&ns, zone.default_ttl, ip));
                let apex_type = if ip.is_ipv4() {
                    RecordType::A
                } else {
                    RecordType::AAAA
                };
                if !world.has(&origin, apex_type) {
                    world.insert(address_record(&origin, zone.default_ttl, ip));
                }
            }
        }
        if is_cell_zone {
            publish_names(
                &mut world,
                &origin,
                &names,
                NameView::Public,
                zone.default_ttl,
            );
        }
        let mut peers = world.clone();
        if config.as_ref().is_some_and(|c| c.dns.split_horizon) {
            for record in internal {
                peers.insert(record);
            }
            if is_cell_zone {
                publish_names(
                    &mut peers,
                    &origin,
                    &names,
                    NameView::Internal,
                    zone.default_ttl,
                );
            }
        }
        world_zones.push(world);
        peer_zones.push(peers);
    }
    let (internal_subnets, upstreams) = match &config {
        Some(c) => (
            vec![IpNet::V4(c.cell.subnet_v4), IpNet::V6(c.cell.subnet_v6)],
            c.dns.upstreams.iter().map(|u| u.0).collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(Snapshot {
        peers: View::new(peer_zones),
        world: View::new(world_zones),
        internal_subnets,
        upstreams,
        recursion: true,
        transfer_allow: store::transfer_allow(conn)?,
        transfer_keys: Default::default(),
    })
}

/// A snapshot serving one zone to everyone, without recursion (`picd dns serve`).
pub fn standalone(zone: Zone) -> Snapshot {
    let view = View::new(vec![zone]);
    Snapshot {
        peers: view.clone(),
        world: view,
        recursion: false,
        ..Snapshot::default()
    }
}
