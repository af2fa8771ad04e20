//! `picd dns serve`: one BIND zone file served authoritatively by the same engine, with no
//! database and no setup.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use hickory_proto::rr::{Name, RecordType};

use super::limits::DnsLimits;
use super::server::{self, Shared};
use super::snapshot;
use super::zone::Zone;
use super::zonefile;
use crate::config::Settings;

pub async fn serve(zone_file: &Path, origin: &str, listen: SocketAddr) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(zone_file)
        .with_context(|| format!("reading {}", zone_file.display()))?;
    let origin = Name::from_ascii(if origin.ends_with('.') {
        origin.to_string()
    } else {
        format!("{origin}.")
    })
    .map_err(|e| anyhow::anyhow!("origin: {e}"))?;
    let zone = load(&text, &origin)?;
    let records = zone.len();
    let shared = Shared::new(
        DnsLimits::default(),
        &Settings::default().wireguard_interface,
    );
    shared.snapshot.store(Arc::new(snapshot::standalone(zone)));
    let shared = Arc::new(shared);
    let bound = server::start(shared, listen).with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%bound, %origin, records, "serving the zone");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The zone as written in the file: its own SOA and NS are kept (unlike an import into the
/// cell, where the cell's own take their place).
fn load(text: &str, origin: &Name) -> anyhow::Result<Zone> {
    let entries =
        zonefile::split(text).map_err(|e| anyhow::anyhow!("line {}: {}", e.line, e.error))?;
    let mut ttl = super::store::DEFAULT_TTL;
    let mut current = origin.clone();
    let mut previous = None;
    let mut records = Vec::new();
    for entry in entries {
        let upper = entry.text.to_ascii_uppercase();
        let arg = entry.text.split_whitespace().nth(1).unwrap_or("");
        if upper.starts_with("$TTL") {
            ttl = hickory_proto::serialize::txt::parse_ttl(arg)
                .map_err(|e| anyhow::anyhow!("line {}: {e}", entry.line))?;
            continue;
        }
        if upper.starts_with("$ORIGIN") {
            current = Name::parse(arg, Some(origin))
                .map_err(|e| anyhow::anyhow!("line {}: {e}", entry.line))?;
            continue;
        }
        if upper.starts_with('$') {
            bail!("line {}: directive not supported", entry.line);
        }
        let text = match (&previous, entry.inherits_owner) {
            (Some(owner), true) => format!("{owner} {}", entry.text),
            _ => entry.text.clone(),
        };
        let record = zonefile::parse_one(&current, ttl, &text)
            .map_err(|e| anyhow::anyhow!("line {}: {e}", entry.line))?;
        previous = Some(record.name.clone());
        records.push(record);
    }
    let soa = records
        .iter()
        .find(|r| r.record_type() == RecordType::SOA && &r.name == origin)
        .cloned()
        .with_context(|| format!("the zone file has no SOA for {origin}"))?;
    let mut zone = Zone::new(origin.clone(), soa);
    for record in records
        .into_iter()
        .filter(|r| r.record_type() != RecordType::SOA)
    {
        zone.insert(record);
    }
    Ok(zone)
}
