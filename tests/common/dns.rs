//! DNS test helpers: the real tools (`dig`, `kdig`, `named-checkzone`, `knotd`) and their
//! output, a picd whose DNS server listens where the test chooses, a standalone
//! `picd dns serve` (a zone to query, or an upstream resolver to forward to), a `knotd`
//! secondary, and a network namespace whose address is "the world" to picd.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod cell;
mod netns;
mod raw;
mod servers;

pub use cell::*;
pub use netns::*;
pub use raw::*;
pub use servers::*;

/// Where a missing tool or privilege is fixed.
pub use super::tools::{require_tool, require_tools, INSTALL_STEP};
/// How long a change made through the API may take to reach the DNS server (the snapshot is
/// rebuilt in the background after the response).
pub const PROPAGATION: Duration = Duration::from_secs(10);
/// How long a started DNS server (picd, standalone, knotd) may take to answer.
pub(crate) const SERVER_START: Duration = Duration::from_secs(20);

/// Network namespaces need root; a test that needs them fails without it.
pub fn require_root() {
    let out = Command::new("id").arg("-u").output().expect("running id");
    let uid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        uid, "0",
        "this test creates network namespaces and must run as root (see {INSTALL_STEP})"
    );
    require_tool("ip");
}

/// A port free for both UDP and TCP on `ip`, below the ephemeral range (see `ports`).
pub fn free_dns_port(ip: IpAddr) -> u16 {
    super::ports::free_port_on(ip)
}

/// One resource record as dig or kdig print it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rr {
    pub name: String,
    pub ttl: u32,
    pub rtype: String,
    pub data: String,
}

/// A DNS answer as dig or kdig printed it.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub text: String,
    pub status: String,
    pub flags: Vec<String>,
    /// The question's name exactly as printed (case kept).
    pub question: Option<String>,
    pub answer: Vec<Rr>,
    pub authority: Vec<Rr>,
    pub additional: Vec<Rr>,
    /// (version, UDP payload size) of the OPT record, when there is one.
    pub edns: Option<(u8, u16)>,
}

impl Reply {
    pub fn parse(text: &str) -> Reply {
        let mut reply = Reply {
            text: text.to_string(),
            ..Reply::default()
        };
        let mut section = "";
        // Transfers print bare records, without section headers: those are the answer.
        let mut seen_header = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(rest) = trimmed.split("status: ").nth(1) {
                reply.status = rest
                    .split([',', ';', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
            let lower = trimmed.to_ascii_lowercase();
            if let Some(rest) = lower.strip_prefix(";; flags:") {
                reply.flags = rest
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
            }
            if let Some(edns) = parse_edns(&lower) {
                reply.edns = Some(edns);
            }
            if trimmed.starts_with(";;") && trimmed.ends_with("SECTION:") {
                seen_header = true;
                section = if trimmed.contains("QUESTION") {
                    "question"
                } else if trimmed.contains("ANSWER") {
                    "answer"
                } else if trimmed.contains("AUTHORITY") {
                    "authority"
                } else if trimmed.contains("ADDITIONAL") {
                    "additional"
                } else {
                    ""
                };
                continue;
            }
            if trimmed.is_empty() {
                section = "";
                continue;
            }
            if section == "question" {
                let name = trimmed.trim_start_matches(';').split_whitespace().next();
                reply.question = name.map(str::to_string);
                continue;
            }
            if trimmed.starts_with(';') {
                continue;
            }
            let Some(rr) = parse_rr(trimmed) else {
                continue;
            };
            match section {
                "" if !seen_header => reply.answer.push(rr),
                "answer" => reply.answer.push(rr),
                "authority" => reply.authority.push(rr),
                "additional" => reply.additional.push(rr),
                _ => {}
            }
        }
        reply
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The data of the answer's records of `rtype`, sorted.
    pub fn data(&self, rtype: &str) -> Vec<String> {
        let mut data: Vec<String> = self
            .answer
            .iter()
            .filter(|r| r.rtype.eq_ignore_ascii_case(rtype))
            .map(|r| r.data.clone())
            .collect();
        data.sort();
        data
    }

    /// The serial of the SOA in the answer or the authority section.
    pub fn soa_serial(&self) -> Option<u32> {
        self.answer
            .iter()
            .chain(&self.authority)
            .find(|r| r.rtype == "SOA")
            .and_then(|r| r.data.split_whitespace().nth(2)?.parse().ok())
    }

    /// The authority section's SOA, asserted to be there.
    pub fn negative_soa(&self) -> &Rr {
        self.authority
            .iter()
            .find(|r| r.rtype == "SOA")
            .unwrap_or_else(|| panic!("no SOA in the authority section:\n{}", self.text))
    }
}

fn parse_edns(lower: &str) -> Option<(u8, u16)> {
    // dig: "; EDNS: version: 0, flags:; udp: 1232"; kdig: ";; Version: 0; flags: ; UDP size: 1232 B; ..."
    let version_text = lower
        .strip_prefix("; edns: version:")
        .or_else(|| lower.strip_prefix(";; version:"))?;
    let version = version_text
        .trim()
        .split([',', ';'])
        .next()?
        .trim()
        .parse()
        .ok()?;
    let udp = lower
        .split("udp:")
        .nth(1)
        .or_else(|| lower.split("udp size:").nth(1))?
        .split_whitespace()
        .next()?
        .trim_end_matches(';')
        .parse()
        .ok()?;
    Some((version, udp))
}

fn parse_rr(line: &str) -> Option<Rr> {
    let mut parts = line.split_whitespace();
    let name = parts.next()?.to_string();
    let ttl = parts.next()?.parse().ok()?;
    let class = parts.next()?;
    if class != "IN" {
        return None;
    }
    let rtype = parts.next()?.to_string();
    let data = parts.collect::<Vec<_>>().join(" ");
    Some(Rr {
        name,
        ttl,
        rtype,
        data,
    })
}

/// Runs a command with a hard time limit (the tools' own timeouts bound it already; this is
/// the backstop) and returns its output.
pub fn run_bounded(command: &mut Command, limit: Duration) -> Output {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what} ran longer than {limit:?}; stdout:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Which client asks, and from where.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tool {
    Dig,
    Kdig,
}

/// Asks `server` one question with dig or kdig (UDP unless `+tcp` is among `options`),
/// optionally from inside a network namespace.
pub fn ask(
    tool: Tool,
    netns: Option<&str>,
    server: SocketAddr,
    name: &str,
    rtype: &str,
    options: &[&str],
) -> Reply {
    let binary = match tool {
        Tool::Dig => require_tool("dig"),
        Tool::Kdig => require_tool("kdig"),
    };
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new(require_tool("ip"));
            c.args(["netns", "exec", ns]).arg(&binary);
            c
        }
        None => Command::new(&binary),
    };
    command
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string());
    match tool {
        Tool::Dig => command.args(["+time=2", "+tries=2", "+nocookie"]),
        Tool::Kdig => command.args(["+time=2", "+retry=1"]),
    };
    command.args(options).args(["-q", name, "-t", rtype]);
    let out = run_bounded(&mut command, Duration::from_secs(20));
    let mut reply = Reply::parse(&String::from_utf8_lossy(&out.stdout));
    // Errors (a refused transfer, a timeout) go to stderr; keep them for checks and messages.
    reply.text.push_str(&String::from_utf8_lossy(&out.stderr));
    reply
}

pub fn dig(server: SocketAddr, name: &str, rtype: &str, options: &[&str]) -> Reply {
    ask(Tool::Dig, None, server, name, rtype, options)
}

pub fn kdig(server: SocketAddr, name: &str, rtype: &str, options: &[&str]) -> Reply {
    ask(Tool::Kdig, None, server, name, rtype, options)
}

/// Asks until `check` accepts the reply, or fails after `limit` with the last reply.
pub async fn ask_until(
    limit: Duration,
    what: &str,
    mut query: impl FnMut() -> Reply,
    check: impl Fn(&Reply) -> bool,
) -> Reply {
    let deadline = Instant::now() + limit;
    loop {
        let reply = query();
        if check(&reply) {
            return reply;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not seen within {limit:?}; last reply:\n{}",
                reply.text
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
