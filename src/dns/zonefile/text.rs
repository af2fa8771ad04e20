//! picd's own reader of zone text: one record's tokens (owner, TTL, class, type, data) with
//! quoted strings and `\DDD` / `\X` escapes, built into hickory-proto record data directly.
//!
//! Security: no text picd did not write ever reaches a parser that understands directives.
//! hickory's zone-file parser honours `$INCLUDE` (it reads files on this machine), and an
//! escape such as `\010` decoded before it turned record data into a new line holding one.
//! Here escapes decode into bytes of a token and nothing re-reads them as text; raw control
//! characters are refused, a control byte from an escape is refused in names and kept only as
//! TXT data (shown again as `\DDD`); an unquoted token starting with `$` is refused. Error
//! messages are picd's own words and never quote the input.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::domain::Label;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};

/// Longest record text read (the API's record data is up to 4,000 bytes).
const MAX_TEXT: usize = 8192;

/// One token: its bytes after decoding, with which of them came from an escape (an escaped
/// dot stays inside its label).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub bytes: Vec<u8>,
    pub escaped: Vec<bool>,
    pub quoted: bool,
}

impl Token {
    fn is(&self, word: &str) -> bool {
        !self.quoted
            && !self.escaped.iter().any(|e| *e)
            && self.bytes.eq_ignore_ascii_case(word.as_bytes())
    }

    /// The token as plain text, when it holds no escape and no byte outside printable ASCII.
    fn plain(&self) -> Option<&str> {
        (!self.escaped.iter().any(|e| *e) && self.bytes.iter().all(|b| b.is_ascii_graphic()))
            .then(|| std::str::from_utf8(&self.bytes).ok())
            .flatten()
    }

    fn directive(&self) -> bool {
        !self.quoted && self.bytes.first() == Some(&b'$') && self.escaped.first() == Some(&false)
    }
}

/// Splits one record's text into tokens.
pub fn tokens(text: &str) -> Result<Vec<Token>, String> {
    if text.len() > MAX_TEXT {
        return Err(format!("the record text is longer than {MAX_TEXT} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err("control characters are not allowed (write them as \\DDD)".into());
    }
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ').is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(out);
        };
        let quoted = first == '"';
        if quoted {
            chars.next();
        }
        let mut token = Token {
            bytes: Vec::new(),
            escaped: Vec::new(),
            quoted,
        };
        let mut closed = !quoted;
        while let Some(ch) = chars.next() {
            match ch {
                '"' if quoted => {
                    closed = true;
                    if chars.peek().is_some_and(|c| *c != ' ') {
                        return Err("a quoted string must be followed by a space".into());
                    }
                    break;
                }
                '"' => return Err("a quote may only start a string".into()),
                ' ' if !quoted => break,
                '(' | ')' | ';' if !quoted => {
                    return Err("parentheses and comments are not record data".into())
                }
                '\\' => {
                    let byte = escape(&mut chars)?;
                    for b in byte {
                        token.bytes.push(b);
                        token.escaped.push(true);
                    }
                }
                other => {
                    let mut buf = [0u8; 4];
                    for b in other.encode_utf8(&mut buf).bytes() {
                        token.bytes.push(b);
                        token.escaped.push(false);
                    }
                }
            }
        }
        if !closed {
            return Err("a quoted string is not closed".into());
        }
        out.push(token);
    }
}

/// After a backslash: `\DDD` (a byte in decimal) or `\X` (X itself).
fn escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Vec<u8>, String> {
    let first = chars.next().ok_or("a backslash ends the text")?;
    if !first.is_ascii_digit() {
        let mut buf = [0u8; 4];
        return Ok(first.encode_utf8(&mut buf).as_bytes().to_vec());
    }
    let mut value = first.to_digit(10).unwrap_or(0);
    for _ in 0..2 {
        let digit = chars
            .next()
            .and_then(|c| c.to_digit(10))
            .ok_or("a \\DDD escape needs three digits")?;
        value = value * 10 + digit;
    }
    let byte = u8::try_from(value).map_err(|_| "a \\DDD escape above 255 is not a byte")?;
    Ok(vec![byte])
}

/// A domain name from a token: `@` is the origin; a name without a final dot is relative to
/// it. Control bytes are refused, also from escapes.
pub fn name(token: &Token, origin: &Name) -> Result<Name, String> {
    if token.quoted {
        return Err("a domain name is not quoted".into());
    }
    if token.is("@") {
        return Ok(origin.clone());
    }
    if token.bytes.iter().any(|b| *b < 0x20 || *b == 0x7f) {
        return Err("a domain name cannot hold control characters".into());
    }
    if token.is(".") {
        return Ok(Name::root());
    }
    let mut labels: Vec<Vec<u8>> = vec![Vec::new()];
    for (b, escaped) in token.bytes.iter().zip(&token.escaped) {
        if *b == b'.' && !escaped {
            labels.push(Vec::new());
        } else if let Some(label) = labels.last_mut() {
            label.push(*b);
        }
    }
    let absolute = labels.len() > 1 && labels.last().is_some_and(Vec::is_empty);
    if absolute {
        labels.pop();
    }
    if labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return Err("each label of a name has 1 to 63 characters".into());
    }
    let labels = labels
        .iter()
        .map(|l| Label::from_raw_bytes(l))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "not a valid domain name".to_string())?;
    let mut name = Name::from_labels(labels).map_err(|_| "the name is too long".to_string())?;
    if absolute {
        return Ok(name);
    }
    name.set_fqdn(false);
    name.append_domain(origin)
        .map_err(|_| "the name is too long".to_string())
}

fn number<T: std::str::FromStr>(token: Option<&Token>, what: &str) -> Result<T, String> {
    token
        .and_then(Token::plain)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("expected {what}"))
}

fn time(token: Option<&Token>, what: &str) -> Result<u32, String> {
    token
        .and_then(Token::plain)
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        .and_then(|t| hickory_proto::serialize::txt::parse_ttl(t).ok())
        .ok_or_else(|| format!("expected {what} (such as 3600, 1h or 1d2h)"))
}

/// The types picd stores (the API's list; this module stands alone, also in `fuzz/`).
const STORED: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR"];

/// One record: `owner [ttl] [class] type data...` (TTL and class in either order).
pub fn record(origin: &Name, default_ttl: u32, text: &str) -> Result<Record, String> {
    let tokens = tokens(text)?;
    if tokens.iter().any(Token::directive) {
        return Err("directives ($INCLUDE, $ORIGIN, $TTL, ...) are not record data".into());
    }
    let mut rest = tokens.iter();
    let owner = name(rest.next().ok_or("no owner name")?, origin)?;
    let mut ttl = None;
    let mut rtype = None;
    for token in rest.by_ref() {
        if token.is("IN") {
            continue;
        }
        if ["CH", "HS", "CS"].iter().any(|c| token.is(c)) {
            return Err("only class IN is served".into());
        }
        if ttl.is_none()
            && token
                .plain()
                .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        {
            ttl = Some(time(Some(token), "a TTL")?);
            continue;
        }
        rtype = Some(token);
        break;
    }
    let rtype = rtype
        .and_then(Token::plain)
        .map(str::to_ascii_uppercase)
        .ok_or("no record type")?;
    let data: Vec<&Token> = rest.collect();
    let rdata = rdata(&rtype, &data, origin)?;
    Ok(Record::from_rdata(owner, ttl.unwrap_or(default_ttl), rdata))
}

fn rdata(rtype: &str, data: &[&Token], origin: &Name) -> Result<RData, String> {
    let expect = |n: usize| {
        if data.len() == n {
            Ok(())
        } else {
            Err(format!("{rtype} data has {n} field(s)"))
        }
    };
    let at = |i: usize| data.get(i).copied();
    let name_at = |i: usize| {
        at(i)
            .ok_or_else(|| "expected a domain name".to_string())
            .and_then(|t| name(t, origin))
    };
    Ok(match rtype {
        "A" => {
            expect(1)?;
            RData::A(A(number::<Ipv4Addr>(at(0), "an IPv4 address")?))
        }
        "AAAA" => {
            expect(1)?;
            RData::AAAA(AAAA(number::<Ipv6Addr>(at(0), "an IPv6 address")?))
        }
        "CNAME" => {
            expect(1)?;
            RData::CNAME(CNAME(name_at(0)?))
        }
        "NS" => {
            expect(1)?;
            RData::NS(NS(name_at(0)?))
        }
        "PTR" => {
            expect(1)?;
            RData::PTR(PTR(name_at(0)?))
        }
        "MX" => {
            expect(2)?;
            RData::MX(MX::new(number(at(0), "a preference")?, name_at(1)?))
        }
        "SRV" => {
            expect(4)?;
            RData::SRV(SRV::new(
                number(at(0), "a priority")?,
                number(at(1), "a weight")?,
                number(at(2), "a port")?,
                name_at(3)?,
            ))
        }
        "TXT" => txt(data)?,
        "CAA" => caa(data)?,
        "SOA" => {
            expect(7)?;
            let signed = |i: usize, what: &str| {
                time(at(i), what)
                    .and_then(|v| i32::try_from(v).map_err(|_| format!("{what} is too large")))
            };
            RData::SOA(SOA::new(
                name_at(0)?,
                name_at(1)?,
                number(at(2), "a serial")?,
                signed(3, "a refresh time")?,
                signed(4, "a retry time")?,
                signed(5, "an expiry time")?,
                time(at(6), "a minimum TTL")?,
            ))
        }
        other if other.parse::<RecordType>().is_ok() => {
            return Err(format!(
                "{other} records are not stored; types: {}",
                STORED.join(", ")
            ))
        }
        _ => return Err("unknown record type".into()),
    })
}

/// TXT: one or more character strings, each up to 255 bytes. A control byte from an escape
/// stays data (the presentation writes it back as `\DDD`).
fn txt(data: &[&Token]) -> Result<RData, String> {
    if data.is_empty() {
        return Err("TXT data needs at least one string".into());
    }
    if data.iter().any(|t| t.bytes.len() > 255) {
        return Err("each TXT string is at most 255 bytes".into());
    }
    Ok(RData::TXT(TXT::from_bytes(
        data.iter().map(|t| t.bytes.as_slice()).collect(),
    )))
}

/// CAA: `flags tag "value"`, encoded as wire data and read by hickory's decoder (which knows
/// the issuer syntax); the value may not hold control bytes.
fn caa(data: &[&Token]) -> Result<RData, String> {
    let [flags, tag, value] = data else {
        return Err("CAA data is flags, tag and value".into());
    };
    let flags: u8 = number(Some(flags), "CAA flags from 0 to 255")?;
    let tag = tag
        .plain()
        .filter(|t| !t.is_empty() && t.len() < 16 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or("a CAA tag is letters and digits")?;
    if value.bytes.iter().any(|b| *b < 0x20 || *b == 0x7f) {
        return Err("a CAA value cannot hold control characters".into());
    }
    let mut wire = vec![flags, tag.len() as u8];
    wire.extend_from_slice(tag.to_ascii_lowercase().as_bytes());
    wire.extend_from_slice(&value.bytes);
    let length = u16::try_from(wire.len()).map_err(|_| "the CAA value is too long")?;
    let mut decoder = BinDecoder::new(&wire);
    RData::read(&mut decoder, RecordType::CAA, Restrict::new(length))
        .map_err(|_| "not valid CAA data".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    #[test]
    fn escapes_never_become_lines_or_directives() {
        // The attack of issue 25: newline and tab escapes around a directive.
        let text = r#"t IN TXT "a" \010$INCLUDE\009/etc/passwd\010"#;
        let record = record(&origin(), 60, text).unwrap();
        let RData::TXT(txt) = record.data else {
            panic!("not TXT")
        };
        assert_eq!(txt.txt_data[1].as_ref(), b"\n$INCLUDE\t/etc/passwd\n");
        for bad in [
            "t IN TXT \"a\"\n$INCLUDE /etc/passwd",
            "t IN TXT $INCLUDE",
            "$INCLUDE /etc/passwd",
            "t\\010x IN A 192.0.2.1",
            "t IN CNAME a\\000b",
            "t IN CAA 0 issue \"ca\\010.example\"",
        ] {
            assert!(super::record(&origin(), 60, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_ttls_and_types() {
        let r = record(&origin(), 60, r"a\046b 1h IN MX 10 @").unwrap();
        assert_eq!(r.name.iter().next(), Some(&b"a.b"[..]));
        assert_eq!(r.ttl, 3600);
        assert_eq!(r.data.to_string(), "10 example.com.");
        let r = record(&origin(), 60, "s IN 30 SRV 1 2 443 host.other.net.").unwrap();
        assert_eq!(
            (r.ttl, r.data.to_string()),
            (30, "1 2 443 host.other.net.".into())
        );
        assert!(record(&origin(), 60, "x IN HINFO a b").is_err());
        assert!(record(&origin(), 60, "x IN A 192.0.2.1 extra").is_err());
    }
}
