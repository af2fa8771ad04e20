//! BIND zone files: import (directives, parentheses, relative and absolute names, TTL units)
//! with an error per record instead of one for the whole file, and export that
//! `named-checkzone` accepts. Each record's text is parsed by hickory-proto's zone parser; this
//! module only splits the file into records and keeps the context ($ORIGIN, $TTL, the
//! previous owner) that BIND carries from line to line.

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

/// One record's text, with the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub line: usize,
    pub text: String,
    /// The line began with white space: the owner is the previous record's.
    pub inherits_owner: bool,
}

#[derive(Debug, Default)]
pub struct Imported {
    pub records: Vec<(usize, Record)>,
    pub errors: Vec<ImportError>,
    /// Records picd keeps to itself (the zone's SOA and apex NS), by line.
    pub ignored: Vec<(usize, String)>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportError {
    pub line: usize,
    pub text: String,
    pub error: String,
}

/// Splits zone text into logical entries: comments removed, parenthesised groups joined,
/// quoted strings kept whole.
pub fn split(text: &str) -> Result<Vec<Entry>, ImportError> {
    let mut entries = Vec::new();
    let (mut current, mut start, mut depth, mut inherits) = (String::new(), 0usize, 0usize, false);
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let mut in_quotes = false;
        let mut escaped = false;
        let mut cleaned = String::new();
        for ch in raw.chars() {
            if escaped {
                cleaned.push(ch);
                escaped = false;
                continue;
            }
            match ch {
                '\\' => {
                    escaped = true;
                    cleaned.push(ch);
                }
                '"' => {
                    in_quotes = !in_quotes;
                    cleaned.push(ch);
                }
                ';' if !in_quotes => break,
                '(' if !in_quotes => {
                    depth += 1;
                    cleaned.push(' ');
                }
                ')' if !in_quotes => {
                    if depth == 0 {
                        return Err(ImportError {
                            line: line_no,
                            text: raw.into(),
                            error: "unbalanced ')'".into(),
                        });
                    }
                    depth -= 1;
                    cleaned.push(' ');
                }
                _ => cleaned.push(ch),
            }
        }
        if current.is_empty() {
            if cleaned.trim().is_empty() {
                continue;
            }
            start = line_no;
            inherits = cleaned.starts_with([' ', '\t']);
        }
        current.push(' ');
        current.push_str(&cleaned);
        if depth == 0 {
            let text = squeeze_whitespace(&current);
            if !text.is_empty() {
                entries.push(Entry {
                    line: start,
                    text,
                    inherits_owner: inherits,
                });
            }
            current.clear();
        }
    }
    if depth > 0 {
        return Err(ImportError {
            line: start,
            text: current.trim().into(),
            error: "unclosed '('".into(),
        });
    }
    Ok(entries)
}

/// Collapses runs of white space to one space and trims the ends, outside quoted strings only:
/// `"a  b"` in a TXT record keeps both spaces.
fn squeeze_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_quotes, mut escaped, mut pending_space) = (false, false, false);
    for ch in text.chars() {
        if !in_quotes && !escaped && ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(ch);
        if escaped {
            escaped = false;
        } else if ch == '\\' {
            escaped = true;
        } else if ch == '"' {
            in_quotes = !in_quotes;
        }
    }
    out
}

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

/// Parses a whole zone file for `origin`. Directives other than $ORIGIN and $TTL are refused
/// ($INCLUDE would read files on this machine).
pub fn import(text: &str, origin: &Name, default_ttl: u32) -> Result<Imported, ImportError> {
    let mut result = Imported::default();
    let mut current_origin = origin.clone();
    let mut ttl = default_ttl;
    let mut previous_owner: Option<Name> = None;
    for entry in split(text)? {
        let fail = |error: String| ImportError {
            line: entry.line,
            text: entry.text.clone(),
            error,
        };
        let upper = entry.text.to_ascii_uppercase();
        if upper.starts_with("$ORIGIN") {
            match entry
                .text
                .split_whitespace()
                .nth(1)
                .map(|n| absolute(n, &current_origin))
            {
                Some(Ok(name)) => current_origin = name,
                _ => result
                    .errors
                    .push(fail("$ORIGIN needs a domain name".into())),
            }
            continue;
        }
        if upper.starts_with("$TTL") {
            match entry
                .text
                .split_whitespace()
                .nth(1)
                .map(hickory_proto::serialize::txt::parse_ttl)
            {
                Some(Ok(t)) => ttl = t,
                _ => result
                    .errors
                    .push(fail("$TTL needs a time such as 3600, 1h or 1d2h".into())),
            }
            continue;
        }
        if upper.starts_with('$') {
            let directive = entry
                .text
                .split_whitespace()
                .next()
                .unwrap_or("$")
                .to_string();
            result
                .errors
                .push(fail(format!("{directive} is not supported")));
            continue;
        }
        let text = match (&previous_owner, entry.inherits_owner) {
            (Some(owner), true) => format!("{owner} {}", entry.text),
            (None, true) => {
                result
                    .errors
                    .push(fail("no owner name and no previous record".into()));
                continue;
            }
            (_, false) => entry.text.clone(),
        };
        match parse_one(&current_origin, ttl, &text) {
            Ok(record) => {
                previous_owner = Some(record.name.clone());
                if !origin.zone_of(&record.name) {
                    result.errors.push(fail(format!(
                        "{} is outside the zone {origin}",
                        &record.name
                    )));
                } else if record.record_type() == RecordType::SOA
                    || (record.record_type() == RecordType::NS && &record.name == origin)
                {
                    result.ignored.push((
                        entry.line,
                        format!("{} (the cell serves its own)", record.record_type()),
                    ));
                } else {
                    result.records.push((entry.line, record));
                }
            }
            Err(error) => result.errors.push(fail(error)),
        }
    }
    Ok(result)
}

fn absolute(name: &str, origin: &Name) -> Result<Name, String> {
    let parsed = Name::parse(name, Some(origin)).map_err(|e| e.to_string())?;
    Ok(parsed)
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

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    #[test]
    fn bind_features_parse() {
        let zone = "$ORIGIN example.com.\n$TTL 1h\n@ IN SOA ns1 hostmaster (\n  2024010101 ; serial\n  1h 15m 1w 5m )\n\
                    @ IN NS ns1\nwww 300 IN A 192.0.2.1\n    IN AAAA 2001:db8::1\nmail.example.com. IN MX 10 mx.other.net.\n\
                    txt IN TXT \"a;b\" \"c\"\n$ORIGIN sub.example.com.\nhost 2d IN A 192.0.2.9\n";
        let imported = import(zone, &origin(), 3600).unwrap();
        assert!(imported.errors.is_empty(), "{:?}", imported.errors);
        assert_eq!(imported.ignored.len(), 2);
        let names: Vec<String> = imported
            .records
            .iter()
            .map(|(_, r)| format!("{} {} {}", &r.name, r.ttl, r.record_type()))
            .collect();
        assert_eq!(
            names,
            [
                "www.example.com. 300 A",
                "www.example.com. 3600 AAAA",
                "mail.example.com. 3600 MX",
                "txt.example.com. 3600 TXT",
                "host.sub.example.com. 172800 A"
            ]
        );
    }

    #[test]
    fn bad_records_are_reported_per_line() {
        let zone = "www IN A 192.0.2.1\nbad IN A not-an-ip\n$INCLUDE /etc/passwd\nout.other.org. IN A 192.0.2.2\nok IN CNAME www\n";
        let imported = import(zone, &origin(), 3600).unwrap();
        assert_eq!(imported.records.len(), 2);
        let lines: Vec<usize> = imported.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4]);
    }

    #[test]
    fn at_in_name_data_is_the_origin_and_text_keeps_its_spaces() {
        let zone =
            "$ORIGIN sub.example.com.\nwww IN CNAME @\n@ IN MX 10 @\nt IN TXT \"@  two  spaces\"\n";
        let imported = import(zone, &origin(), 3600).unwrap();
        assert!(imported.errors.is_empty(), "{:?}", imported.errors);
        let data: Vec<String> = imported
            .records
            .iter()
            .map(|(_, r)| rdata_text(&r.data))
            .collect();
        assert_eq!(
            data,
            [
                "sub.example.com.",
                "10 sub.example.com.",
                "\"@  two  spaces\""
            ]
        );
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
