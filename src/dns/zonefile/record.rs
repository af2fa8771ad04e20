//! One record's text: parsed in its context ($ORIGIN, $TTL) by hickory-proto's zone parser,
//! with the BIND habits hickory reads differently (decimal escapes, `@` in name data)
//! settled first, and the presentation form of record data.

use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::txt::Parser;

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
    let text = expand_at_in_rdata(&decode_decimal_escapes(text)?, origin);
    let zone = format!("$ORIGIN {origin}\n$TTL {default_ttl}\n{text}\n");
    let (_, sets) = Parser::new(zone, None, Some(origin.clone()))
        .parse()
        .map_err(|e| clean_error(&e.to_string()))?;
    let mut records = sets
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>());
    let record = records
        .next()
        .ok_or_else(|| "no record on this line".to_string())?;
    if records.next().is_some() {
        return Err("more than one record on this line".into());
    }
    Ok(record)
}

/// Rewrites RFC 1035 `\DDD` escapes (a byte in decimal) into forms hickory-proto 0.26 reads
/// right: its lexer turns `\DDD` into the character `(D1 << 16) + (D2 << 8) + D3`, so `\027`
/// became U+0207 and an export with escapes did not import back. An ASCII byte becomes `\X`
/// (a letter or digit stays bare, a control byte raw: the lexer refuses `\` before those);
/// bytes from 128 up must spell UTF-8 together and become those characters, since a record's
/// text reaches the parser as a `str`.
fn decode_decimal_escapes(text: &str) -> Result<String, String> {
    if !text.contains('\\') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut high: Vec<u8> = Vec::new();
    let mut chars = text.chars().peekable();
    let flush = |high: &mut Vec<u8>, out: &mut String| -> Result<(), String> {
        if !high.is_empty() {
            let decoded = std::str::from_utf8(high)
                .map_err(|_| "\\DDD escapes above 127 must spell UTF-8 text".to_string())?;
            out.push_str(decoded);
            high.clear();
        }
        Ok(())
    };
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            flush(&mut high, &mut out)?;
            out.push(ch);
            continue;
        }
        let digits: String = chars.clone().take(3).collect();
        if digits.len() == 3 && digits.chars().all(|c| c.is_ascii_digit()) {
            let value: u32 = digits.parse().map_err(|_| "bad escape".to_string())?;
            let byte = u8::try_from(value).map_err(|_| format!("\\{digits} is not a byte"))?;
            for _ in 0..3 {
                chars.next();
            }
            if byte >= 0x80 {
                high.push(byte);
                continue;
            }
            flush(&mut high, &mut out)?;
            let c = char::from(byte);
            if !c.is_ascii_alphanumeric() && !c.is_ascii_control() {
                out.push('\\');
            }
            out.push(c);
            continue;
        }
        flush(&mut high, &mut out)?;
        out.push('\\');
        if let Some(next) = chars.next() {
            out.push(next);
        }
    }
    flush(&mut high, &mut out)?;
    Ok(out)
}

/// Record types whose data holds domain names (where BIND reads `@` as the origin); in other
/// types, such as TXT, an `@` is just text.
const NAME_DATA_TYPES: &[&str] = &[
    "CNAME", "DNAME", "NS", "PTR", "MX", "SRV", "SOA", "NAPTR", "HTTPS", "SVCB", "RP", "AFSDB",
    "KX",
];

/// BIND reads `@` in record data as the origin (`www IN CNAME @`); hickory's parser accepts it
/// only as the owner, so unquoted `@` tokens after the type become the origin's name.
fn expand_at_in_rdata(text: &str, origin: &Name) -> String {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    // owner [ttl] [class] type data: the type is the first token after the owner that is
    // neither a TTL (starts with a digit) nor a class.
    let Some(type_index) = tokens
        .iter()
        .skip(1)
        .position(|t| {
            !t.starts_with(|c: char| c.is_ascii_digit())
                && !["IN", "CH", "HS", "CS"].contains(&t.to_ascii_uppercase().as_str())
        })
        .map(|i| i + 1)
    else {
        return text.to_string();
    };
    if !NAME_DATA_TYPES.contains(&tokens[type_index].to_ascii_uppercase().as_str())
        || !tokens[type_index + 1..].contains(&"@")
    {
        return text.to_string();
    }
    let origin = origin.to_string();
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i > type_index && *t == "@" {
                origin.as_str()
            } else {
                t
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn clean_error(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or(message)
        .chars()
        .take(200)
        .collect()
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
        assert!(txt(r#"t IN TXT "\255""#).is_err(), "not UTF-8");
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
