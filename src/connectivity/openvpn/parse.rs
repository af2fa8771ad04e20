//! A provider's .ovpn file, read line by line against an allow-list. OpenVPN's own parser
//! would accept anything it knows, and many of its directives run commands as root (`up`,
//! `route-up`, `tls-verify`, `plugin`, ...) or take over what is picd's (the device, the
//! management socket, logs, the working directory): a provider's file gets none of that. Only
//! directives that real client files carry and that change nothing but the tunnel itself are
//! kept; compression is refused (VORACLE: compressed then encrypted traffic leaks secrets
//! through its length); key material must be inline, and goes to the vault with the rest of
//! the sanitized file. Every refusal names its line.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::directives::{BLOCKS, COMPRESSION, DROPPED, FLAGS, REFUSED, REFUSED_PREFIXES, VALUED};

/// Client files with inline certificates are a few KiB; this leaves room for long chains
/// (and stays under picd's default request body limit of 64 KiB, so it is what answers).
pub const CONFIG_MAX_BYTES: usize = 48 * 1024;
const REMOTES_MAX: usize = 16;
const DNS_MAX: usize = 4;
const HOST_MAX: usize = 253;
const CREDENTIAL_MAX: usize = 256;
const DEFAULT_PORT: u16 = 1194;

/// A server the file names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    pub host: String,
    pub port: u16,
    pub proto: String,
}

/// What may be stored in the clear and shown: where the tunnel goes, never its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub remotes: Vec<Remote>,
    pub proto: String,
    pub port: u16,
    /// Whether the provider asks for a username and password (kept in the vault).
    pub auth_user_pass: bool,
    /// The exit's resolver: from the file's `dhcp-option DNS`, then what the server pushes.
    #[serde(default)]
    pub dns: Vec<IpAddr>,
}

/// The sanitized file (directives and inline blocks) and the credentials, wiped when dropped.
#[derive(Clone)]
pub struct Secrets {
    pub config: Zeroizing<String>,
    pub credentials: Option<(Zeroizing<String>, Zeroizing<String>)>,
}

#[derive(Default)]
struct Found {
    out: String,
    remotes: Vec<(String, Option<u16>, Option<String>)>,
    proto: Option<String>,
    port: Option<u16>,
    auth_user_pass: bool,
    dns: Vec<IpAddr>,
    blocks: Vec<String>,
    /// Whether the server can be verified: a <ca> or a peer fingerprint.
    verified: bool,
}

/// Parses and sanitizes a provider's file, with the username and password the owner gave;
/// Err names the line and what is wrong with it.
pub fn parse(
    text: &str,
    credentials: Option<(String, String)>,
) -> Result<(Settings, Secrets), String> {
    if text.len() > CONFIG_MAX_BYTES {
        return Err(format!("is longer than {CONFIG_MAX_BYTES} bytes"));
    }
    let mut found = Found::default();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let n = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('<').and_then(|l| l.strip_suffix('>')) {
            block(&mut found, name, n, &mut lines)?;
            continue;
        }
        let words = split(line).map_err(|e| format!("line {n}: {e}"))?;
        let (name, args) = words.split_first().ok_or(format!("line {n}: is empty"))?;
        directive(&mut found, name, args).map_err(|e| format!("line {n}: {name} {e}"))?;
    }
    finish(found, credentials)
}

/// An inline block `<name>` ... `</name>`, copied as it is into the sanitized file.
fn block<'a>(
    found: &mut Found,
    name: &str,
    n: usize,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<(), String> {
    if !BLOCKS.contains(&name) {
        return Err(format!(
            "line {n}: <{name}> is not an inline block picd accepts"
        ));
    }
    if found.blocks.iter().any(|b| b == name) {
        return Err(format!("line {n}: <{name}> comes twice"));
    }
    let end = format!("</{name}>");
    let mut body = String::new();
    for (_, raw) in lines.by_ref() {
        let line = raw.trim();
        if line == end {
            found.out.push_str(&format!("<{name}>\n{body}{end}\n"));
            found.verified |= name == "ca" || name == "peer-fingerprint";
            found.blocks.push(name.to_string());
            return Ok(());
        }
        // PEM, hex keys and fingerprints are printable ASCII: nothing else belongs here.
        if !line.chars().all(|c| c.is_ascii_graphic() || c == ' ') || line.starts_with('<') {
            return Err(format!(
                "line {n}: <{name}> holds a line that is not key material"
            ));
        }
        body.push_str(line);
        body.push('\n');
    }
    Err(format!("line {n}: <{name}> is never closed with {end}"))
}

fn refused_reason(name: &str) -> Option<&'static str> {
    if COMPRESSION.contains(&name) || name == "allow-compression" {
        return Some("is refused: compression before encryption leaks what is sent (VORACLE)");
    }
    let takes_over =
        REFUSED.contains(&name) || REFUSED_PREFIXES.iter().any(|p| name.starts_with(p));
    takes_over.then_some(
        "is refused: picd runs no commands from a provider's file and keeps the device, \
         routes, management and logs itself",
    )
}

fn directive(found: &mut Found, name: &str, args: &[String]) -> Result<(), String> {
    if let Some(reason) = refused_reason(name) {
        if name == "allow-compression" && args == ["no"] {
            return Ok(());
        }
        return Err(reason.into());
    }
    match name {
        "remote" => remote(found, args)?,
        "proto" => found.proto = Some(proto(one(args)?)?),
        "port" | "rport" => found.port = Some(port(one(args)?)?),
        "auth-user-pass" if args.is_empty() => found.auth_user_pass = true,
        "auth-user-pass" => {
            return Err("must come without a file: picd passes the username and password".into())
        }
        "dhcp-option" => dhcp_option(found, args)?,
        "peer-fingerprint" => {
            let fp = one(args)?;
            plain(fp)?;
            found.verified = true;
            keep(found, name, args);
        }
        _ if DROPPED.contains(&name) => dropped(name, args)?,
        _ if FLAGS.contains(&name) => {
            if !args.is_empty() {
                return Err("takes no arguments".into());
            }
            keep(found, name, args);
        }
        _ if VALUED.contains(&name) => {
            if args.is_empty() || args.len() > 3 {
                return Err("takes one to three arguments".into());
            }
            for arg in args {
                // verify-x509-name takes a subject with spaces and commas; the rest are words.
                if name != "verify-x509-name" {
                    plain(arg)?;
                }
            }
            keep(found, name, args);
        }
        _ if BLOCKS.contains(&name) => {
            return Err("must be an inline block (<name> ... </name>), not a file".into())
        }
        _ => return Err("is not a directive picd accepts in a provider's file".into()),
    }
    Ok(())
}

/// What the dropped directives may say: `dev tun` (picd names its own device), never a tap
/// device or another device's name.
fn dropped(name: &str, args: &[String]) -> Result<(), String> {
    match name {
        "dev" | "dev-type" if args != ["tun"] => {
            Err("must be tun: picd makes the exit's tun device itself".into())
        }
        _ => Ok(()),
    }
}

fn keep(found: &mut Found, name: &str, args: &[String]) {
    found.out.push_str(name);
    for arg in args {
        found.out.push(' ');
        found.out.push_str(&quote(arg));
    }
    found.out.push('\n');
}

fn one(args: &[String]) -> Result<&str, String> {
    match args {
        [one] => Ok(one),
        _ => Err("takes one argument".into()),
    }
}

/// A word without quoting trouble: letters, digits and a few separators.
fn plain(arg: &str) -> Result<(), String> {
    let ok = !arg.is_empty()
        && arg.len() <= 512
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:,+/=@".contains(c));
    match ok {
        true => Ok(()),
        false => Err(format!("has an argument picd does not accept: {arg:?}")),
    }
}

fn proto(value: &str) -> Result<String, String> {
    const PROTOS: [&str; 7] = ["udp", "udp4", "udp6", "tcp", "tcp4", "tcp6", "tcp-client"];
    match PROTOS.contains(&value) {
        true => Ok(value.to_string()),
        false => Err("must be udp or tcp (udp4, udp6, tcp4, tcp6, tcp-client)".into()),
    }
}

fn port(value: &str) -> Result<u16, String> {
    value
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| "must be a port from 1 to 65535".to_string())
}

fn remote(found: &mut Found, args: &[String]) -> Result<(), String> {
    let (host, rest) = args.split_first().ok_or("names no server")?;
    if rest.len() > 2 {
        return Err("takes a host, a port and a protocol at most".into());
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if host.parse::<IpAddr>().is_err() && !(host.len() <= HOST_MAX && labels_ok) {
        return Err("must name a host name or an IP address".into());
    }
    if found.remotes.len() == REMOTES_MAX {
        return Err(format!("comes more than {REMOTES_MAX} times"));
    }
    let port = rest.first().map(|p| port(p)).transpose()?;
    let proto = rest.get(1).map(|p| proto(p)).transpose()?;
    found.remotes.push((host.clone(), port, proto));
    Ok(())
}

fn dhcp_option(found: &mut Found, args: &[String]) -> Result<(), String> {
    match args {
        // DNS6 names the tunnel's IPv6 resolver (the peers' DNS over IPv6 goes there).
        [kind, value] if kind == "DNS" || kind == "DNS6" => {
            let ip = value
                .parse::<IpAddr>()
                .map_err(|_| "DNS must be an IP address".to_string())?;
            if found.dns.len() == DNS_MAX {
                return Err(format!("DNS comes more than {DNS_MAX} times"));
            }
            found.dns.push(ip);
            Ok(())
        }
        [kind, value] if kind == "DOMAIN" => plain(value),
        _ => Err("may only give DNS, DNS6 or DOMAIN".into()),
    }
}

fn finish(
    mut found: Found,
    credentials: Option<(String, String)>,
) -> Result<(Settings, Secrets), String> {
    if found.remotes.is_empty() {
        return Err("names no server (a remote line)".into());
    }
    if !found.verified {
        return Err("has no <ca> or peer-fingerprint: the server could not be verified".into());
    }
    let credentials = match (found.auth_user_pass, credentials) {
        (true, None) => return Err("asks for auth-user-pass: give username and password".into()),
        (false, Some(_)) => {
            return Err("has no auth-user-pass line, yet a username and password came".into())
        }
        (_, c) => c,
    };
    let proto = found.proto.clone().unwrap_or_else(|| "udp".into());
    let port = found.port.unwrap_or(DEFAULT_PORT);
    let remotes: Vec<Remote> = found
        .remotes
        .iter()
        .map(|(host, p, pr)| Remote {
            host: host.clone(),
            port: p.unwrap_or(port),
            proto: pr.clone().unwrap_or_else(|| proto.clone()),
        })
        .collect();
    for r in &remotes {
        keep(
            &mut found,
            "remote",
            &[r.host.clone(), r.port.to_string(), r.proto.clone()],
        );
    }
    let settings = Settings {
        remotes,
        proto,
        port,
        auth_user_pass: found.auth_user_pass,
        dns: found.dns,
    };
    let secrets = Secrets {
        config: Zeroizing::new(found.out),
        credentials: credentials.map(|(u, p)| (Zeroizing::new(u), Zeroizing::new(p))),
    };
    Ok((settings, secrets))
}

/// A username or password as OpenVPN's auth file holds it: one line, printable.
pub fn credential(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.chars().count() <= CREDENTIAL_MAX
        && !value.chars().any(char::is_control);
    match ok {
        true => Ok(value.to_string()),
        false => Err(format!(
            "must be 1 to {CREDENTIAL_MAX} characters on one line"
        )),
    }
}

/// Splits a line into words the way OpenVPN does: whitespace, double or single quotes, and
/// backslash escapes inside double quotes.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' || c == ';' {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            match c {
                _ if c.is_whitespace() => break,
                '"' | '\'' => {
                    chars.next();
                    loop {
                        match chars.next() {
                            None => return Err("has an unclosed quote".into()),
                            Some(q) if q == c => break,
                            Some('\\') if c == '"' => {
                                word.push(chars.next().ok_or("ends in a backslash")?)
                            }
                            Some(x) => word.push(x),
                        }
                    }
                }
                _ => {
                    chars.next();
                    word.push(c);
                }
            }
        }
        if word.chars().any(char::is_control) {
            return Err("holds a control character".into());
        }
        words.push(word);
    }
    Ok(words)
}

/// A word written back so OpenVPN reads it as one.
fn quote(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:,+/=@".contains(c))
    {
        return word.to_string();
    }
    format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests;
