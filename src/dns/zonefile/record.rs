//! One record's text: read in its context (origin, default TTL) by picd's own reader
//! (`text.rs`, which understands no directives), checked to survive the export, and the
//! presentation form of record data.

use hickory_proto::rr::{Name, RData, Record};

/// Parses one record's text in a context. `text` must start with the owner.
pub fn parse_one(origin: &Name, default_ttl: u32, text: &str) -> Result<Record, String> {
    let record = parse_text(origin, default_ttl, text)?;
    // What is stored must survive the export: hickory accepts some data its own presentation
    // cannot express (a CAA value ending in a quote), and a zone file with such a line would
    // fail `named-checkzone` and every secondary. Refuse those here, once.
    let written = format!(
        "{} {} IN {} {}",
        record.name,
        record.ttl,
        record.record_type(),
        rdata_text(&record.data)
    );
    match parse_text(origin, default_ttl, &written) {
        Ok(again) if again == record => Ok(record),
        _ => Err(format!(
            "this {} data cannot be written back to a zone file",
            record.record_type()
        )),
    }
}

fn parse_text(origin: &Name, default_ttl: u32, text: &str) -> Result<Record, String> {
    super::text::record(origin, default_ttl, text)
}

/// The presentation form of a record's data, as zone files and the API show it.
pub fn rdata_text(rdata: &RData) -> String {
    match rdata {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| {
                let mut out = String::from("\"");
                for &b in s.iter() {
                    match b {
                        b'"' | b'\\' => {
                            out.push('\\');
                            out.push(b as char);
                        }
                        0x20..=0x7e => out.push(b as char),
                        _ => out.push_str(&format!("\\{b:03}")),
                    }
                }
                out.push('"');
                out
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    #[test]
    fn decimal_escapes_read_as_bytes() {
        let txt = |text: &str| match parse_one(&origin(), 60, text).map(|r| r.data) {
            Ok(RData::TXT(t)) => Ok(t.txt_data.iter().map(|s| s.to_vec()).collect::<Vec<_>>()),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(txt(r#"t IN TXT "a\027b""#).unwrap(), [b"a\x1bb".to_vec()]);
        assert_eq!(
            txt(r#"t IN TXT "caf\195\169" "\034q\034""#).unwrap(),
            ["café".as_bytes().to_vec(), b"\"q\"".to_vec()]
        );
        assert_eq!(
            txt(r#"t IN TXT "back\\123""#).unwrap(),
            [b"back\\123".to_vec()]
        );
        assert_eq!(txt(r#"t IN TXT "\255""#).unwrap(), [vec![255u8]]);
        assert!(txt(r#"t IN TXT "\999""#).is_err());
        // An escaped dot stays inside its label.
        let name = parse_one(&origin(), 60, r"a\046b IN A 192.0.2.1")
            .unwrap()
            .name;
        assert_eq!(name.iter().next(), Some(&b"a.b"[..]));
        // And the export's escapes come back as the same bytes.
        let record = parse_one(&origin(), 60, r#"t IN TXT "tab\009 caf\195\169 \"q\"""#).unwrap();
        let line = format!("t 60 IN TXT {}", rdata_text(&record.data));
        assert_eq!(parse_one(&origin(), 60, &line).unwrap(), record, "{line}");
    }
}
