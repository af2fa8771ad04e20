//! BIND zone files: import ($ORIGIN and $TTL, parentheses, relative and absolute names, TTL
//! units) with an error per record instead of one for the whole file, and export that
//! `named-checkzone` accepts. Each record's text is read by picd's own reader (`text.rs`);
//! this module splits the file into records and keeps the context ($ORIGIN, $TTL, the
//! previous owner) that BIND carries from line to line. Every other directive ($INCLUDE,
//! $GENERATE, ...) is refused with its line: nothing here opens a file.

mod export;
mod record;
mod text;

pub use export::export;
pub use record::{parse_one, rdata_text};

use hickory_proto::rr::{Name, Record, RecordType};

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
            match entry.text.split_whitespace().nth(1).map(|n| {
                text::tokens(n).and_then(|t| match t.as_slice() {
                    [one] => text::name(one, &current_origin),
                    _ => Err("one name".into()),
                })
            }) {
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
            // Named only when it is one picd knows: the line's text is not echoed.
            let directive = ["$INCLUDE", "$GENERATE"]
                .into_iter()
                .find(|d| upper.starts_with(d))
                .unwrap_or("this directive");
            result.errors.push(ImportError {
                line: entry.line,
                text: directive.into(),
                error: format!("{directive} is not supported (picd reads no files)"),
            });
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
}
