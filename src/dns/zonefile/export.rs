//! Zone files out: what `named-checkzone` and secondaries read.

use hickory_proto::rr::{Name, Record, RecordType};

use super::rdata_text;

/// A zone file for `origin`: $ORIGIN and $TTL, the SOA first, then every record with names
/// relative to the origin where they can be.
pub fn export<'a>(
    origin: &Name,
    default_ttl: u32,
    soa: &Record,
    records: impl Iterator<Item = &'a Record>,
) -> String {
    let mut lines: Vec<(String, u16, String)> = records
        .filter(|r| r.record_type() != RecordType::SOA)
        .map(|r| {
            (
                relative(&r.name, origin),
                u16::from(r.record_type()),
                line(r, origin),
            )
        })
        .collect();
    lines.sort();
    let mut out = format!(
        "$ORIGIN {origin}\n$TTL {default_ttl}\n{}\n",
        line(soa, origin)
    );
    for (_, _, text) in lines {
        out.push_str(&text);
        out.push('\n');
    }
    out
}

fn relative(name: &Name, origin: &Name) -> String {
    if name == origin {
        return "@".into();
    }
    if origin.zone_of(name) {
        // Count labels by iterating: `num_labels` leaves out a leading `*` (RFC 4034's
        // label count), which would cut `*.apps` down to `*`.
        // A relative name built from the labels prints with hickory's escapes (`a\.b`).
        let keep = name.iter().count() - origin.iter().count();
        if let Ok(mut relative) = Name::from_labels(name.iter().take(keep)) {
            relative.set_fqdn(false);
            return relative.to_string();
        }
    }
    name.to_string()
}

fn line(record: &Record, origin: &Name) -> String {
    format!(
        "{}\t{}\tIN\t{}\t{}",
        relative(&record.name, origin),
        record.ttl,
        record.record_type(),
        rdata_text(&record.data)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::zonefile::{import, parse_one};

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    #[test]
    fn wildcards_below_the_apex_export_whole() {
        let soa = parse_one(
            &origin(),
            3600,
            "@ IN SOA ns1 hostmaster 1 3600 900 1209600 300",
        )
        .unwrap();
        let wildcard = parse_one(&origin(), 300, "*.apps IN A 192.0.2.1").unwrap();
        let text = export(&origin(), 3600, &soa, std::iter::once(&wildcard));
        assert!(text.contains("\n*.apps\t300\tIN\tA\t192.0.2.1\n"), "{text}");
    }

    #[test]
    fn export_round_trips() {
        let zone =
            "www 300 IN A 192.0.2.1\ntxt IN TXT \"say \\\"hi\\\"\" \"x\"\nmx IN MX 10 mail\n";
        let imported = import(zone, &origin(), 3600).unwrap();
        let soa = parse_one(
            &origin(),
            3600,
            "@ IN SOA ns1 hostmaster 1 3600 900 1209600 300",
        )
        .unwrap();
        let text = export(
            &origin(),
            3600,
            &soa,
            imported.records.iter().map(|(_, r)| r),
        );
        let again = import(&text, &origin(), 3600).unwrap();
        let a: Vec<&Record> = imported.records.iter().map(|(_, r)| r).collect();
        let mut b: Vec<&Record> = again.records.iter().map(|(_, r)| r).collect();
        b.sort_by_key(|r| a.iter().position(|x| x == r));
        assert_eq!(a, b, "{text}");
    }
}
