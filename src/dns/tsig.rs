//! TSIG (RFC 8945, hmac-sha256) for zone transfers and NOTIFY: the keys (names in SQLite,
//! secrets in the vault), which secondary must use which key, checking a signed transfer
//! request (a transfer's or any other query's, see `tsig_answer`) and signing the messages
//! that answer it, refusing a signed request seen before.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock};

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{make_tsig_record, TsigAlgorithm, TsigError, TSIG};
use hickory_proto::rr::{Name, TSigner};
use rusqlite::{Connection, OptionalExtension};

use crate::error::ApiError;
use crate::vault::Vault;

/// The one algorithm offered: RFC 8945 makes hmac-sha256 mandatory to implement.
pub const ALGORITHM: &str = "hmac-sha256";
/// Seconds a request's clock may differ from ours (RFC 8945 recommends 300).
const FUDGE: u16 = 300;
/// Generated secrets: as long as the hash output, as RFC 8945 section 6 advises.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// Where a key's secret is kept in the vault.
pub fn secret_name(key: &str) -> String {
    format!("dns/tsig/{key}")
}

/// A valid key name: a DNS name of lowercase letters, digits and hyphens, without the final
/// dot (the secondary's configuration names it the same way).
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The signer for a stored key.
pub fn signer(name: &str, secret: &[u8]) -> Option<TSigner> {
    let owner = Name::from_ascii(format!("{name}.")).ok()?;
    TSigner::new(secret.to_vec(), TsigAlgorithm::HmacSha256, owner, FUDGE).ok()
}

pub struct KeyRow {
    pub name: String,
    pub algorithm: String,
    pub created_at: String,
    pub secondaries: Vec<String>,
}

pub fn list_keys(conn: &Connection) -> rusqlite::Result<Vec<KeyRow>> {
    let mut keys: Vec<KeyRow> = conn
        .prepare("SELECT name, algorithm, created_at FROM dns_tsig_keys ORDER BY name")?
        .query_map([], |r| {
            Ok(KeyRow {
                name: r.get(0)?,
                algorithm: r.get(1)?,
                created_at: r.get(2)?,
                secondaries: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    for (address, key) in bindings(conn)? {
        if let Some(row) = keys.iter_mut().find(|k| k.name == key) {
            row.secondaries.push(address);
        }
    }
    Ok(keys)
}

pub fn key_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM dns_tsig_keys WHERE name = ?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

/// (secondary address, key name) for every secondary that has a key.
fn bindings(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    conn.prepare("SELECT address, key_name FROM dns_secondary_tsig ORDER BY address")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Every secondary with a key, with its signer. A key whose secret is missing or unreadable is
/// left out of the signers but its secondaries stay bound, so they are refused rather than
/// let through unsigned.
fn bound_signers(
    conn: &Connection,
    vault: &Vault,
) -> Result<Vec<(SocketAddr, Option<TSigner>)>, ApiError> {
    let mut signers: HashMap<String, Option<TSigner>> = HashMap::new();
    let mut bound = Vec::new();
    for (address, key) in bindings(conn)? {
        let Some(addr) = super::store::parse_secondary(&address) else {
            continue;
        };
        if !signers.contains_key(&key) {
            // An unreadable secret refuses that key's secondaries; it never stops the server.
            let secret = vault.get(conn, &secret_name(&key)).ok().flatten();
            let made = secret.and_then(|s| signer(&key, &s));
            if made.is_none() {
                tracing::warn!(key = %key, "TSIG key has no usable secret; its secondaries are refused");
            }
            signers.insert(key.clone(), made);
        }
        bound.push((addr, signers[&key].clone()));
    }
    Ok(bound)
}

/// Which keys each secondary's address must sign its transfer requests with.
#[derive(Clone, Default)]
pub struct TransferKeys {
    by_ip: HashMap<IpAddr, Vec<TSigner>>,
    /// Addresses bound to a key, even one whose secret could not be read.
    required: Vec<IpAddr>,
}

impl std::fmt::Debug for TransferKeys {
    // Names only: the secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferKeys")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl TransferKeys {
    pub fn load(conn: &Connection, vault: &Vault) -> Result<TransferKeys, ApiError> {
        let mut keys = TransferKeys::default();
        for (addr, signer) in bound_signers(conn, vault)? {
            let ip = addr.ip();
            if !keys.required.contains(&ip) {
                keys.required.push(ip);
            }
            if let Some(signer) = signer {
                keys.by_ip.entry(ip).or_default().push(signer);
            }
        }
        Ok(keys)
    }

    /// Whether a client must sign: when any secondary at its address has a key (ports do not
    /// count: a transfer request comes from any port).
    pub fn required(&self, client: IpAddr) -> bool {
        self.required.contains(&client)
    }

    fn for_client(&self, client: IpAddr, name: &Name) -> Option<&TSigner> {
        self.by_ip
            .get(&client)?
            .iter()
            .find(|s| s.signer_name() == name)
    }
}

/// Where NOTIFY goes, each with the signer of the secondary's key when it has one.
pub fn notify_targets(
    conn: &Connection,
    vault: &Vault,
) -> Result<Vec<(SocketAddr, Option<TSigner>)>, ApiError> {
    let bound = bound_signers(conn, vault)?;
    Ok(super::store::secondaries(conn)?
        .into_iter()
        .map(|addr| {
            let signer = bound
                .iter()
                .find(|(a, _)| *a == addr)
                .and_then(|(_, s)| s.clone());
            (addr, signer)
        })
        .collect())
}

/// Seconds since the epoch, as TSIG counts time.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How a transfer request's signature was judged.
pub enum Check {
    /// Not signed, and no key is required from this client.
    Unsigned,
    /// Correctly signed: the answer is signed with the same key.
    Signed(ResponseSigner),
    /// Refused with NOTAUTH; the TSIG record (if any) to attach to the refusal.
    Refused(Option<Refusal>),
}

pub enum Refusal {
    /// BADKEY or BADSIG: an unsigned TSIG record naming the error.
    Unsigned(Box<hickory_proto::rr::Record<TSIG>>),
    /// BADTIME: signed with the key, carrying our clock.
    BadTime(ResponseSigner),
}

/// Checks the request's TSIG against the keys for `client` (RFC 8945 section 5.2).
pub fn check(keys: &TransferKeys, query: &Message, bytes: &[u8], client: IpAddr) -> Check {
    let Some(tsig) = query.signature() else {
        return match keys.required(client) {
            true => Check::Refused(None),
            false => Check::Unsigned,
        };
    };
    let id = query.metadata.id;
    let now = now();
    let stub = |error| {
        TSIG::new(
            TsigAlgorithm::HmacSha256,
            now,
            FUDGE,
            Vec::new(),
            id,
            Some(error),
            Vec::new(),
        )
    };
    let signer = match keys.for_client(client, &tsig.name) {
        Some(s) if tsig.data.algorithm == TsigAlgorithm::HmacSha256 => s.clone(),
        _ => {
            let record = make_tsig_record(tsig.name.clone(), stub(TsigError::BadKey));
            return Check::Refused(Some(Refusal::Unsigned(Box::new(record))));
        }
    };
    // hickory computes `time - fudge` unchecked: a Time Signed before the fudge (1970) would
    // overflow, so such a request is refused as badly signed before it gets there.
    let sane_time = tsig.data.time >= u64::from(tsig.data.fudge);
    let verified = sane_time
        .then(|| signer.verify_message_byte(bytes, None, true).ok())
        .flatten();
    let Some((request_mac, signed_at, window)) = verified else {
        let record = make_tsig_record(tsig.name.clone(), stub(TsigError::BadSig));
        return Check::Refused(Some(Refusal::Unsigned(Box::new(record))));
    };
    let responder = ResponseSigner {
        signer,
        previous_mac: request_mac,
        signed_at,
        id,
        first: true,
    };
    if !window.contains(&now) && window.end != now {
        return Check::Refused(Some(Refusal::BadTime(responder)));
    }
    if !first_sight(&tsig.name, &tsig.data.mac, signed_at, now) {
        // RFC 8945 5.2.3: a request signed in the window is valid for the whole window, so a
        // captured one could be sent again; it is refused as BADTIME like a stale one.
        return Check::Refused(Some(Refusal::BadTime(responder)));
    }
    Check::Signed(responder)
}

/// Signed requests remembered at most; only correctly signed ones are remembered, so only a
/// key holder can fill it.
const SEEN_MAX: usize = 16_384;

/// (key name, MAC) of the signed requests accepted, each until its time window closes.
type Seen = HashMap<(Name, Vec<u8>), u64>;

/// Whether this (key, MAC) is new within its window; remembers it. One table for the whole
/// process: answers come from several UDP threads and the TCP tasks, and a replay must be
/// caught whichever of them it reaches.
fn first_sight(key: &Name, mac: &[u8], signed_at: u64, now: u64) -> bool {
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if seen.len() >= SEEN_MAX {
        seen.retain(|_, until| *until >= now);
        if seen.len() >= SEEN_MAX {
            // Full of live entries: refusing is safe (the key holder retries later), while
            // forgetting would let a replay through.
            return false;
        }
    }
    let until = signed_at + u64::from(FUDGE);
    seen.insert((key.clone(), mac.to_vec()), until).is_none()
}

/// Signs the messages of one answer in order: the first over the request's MAC and the full
/// TSIG variables, each later one over the previous MAC and the timers (RFC 8945 5.3.1).
pub struct ResponseSigner {
    signer: TSigner,
    previous_mac: Vec<u8>,
    signed_at: u64,
    id: u16,
    first: bool,
}

impl ResponseSigner {
    /// Room a signature takes in a message: the key name, the algorithm name and the MAC.
    pub const RESERVE: usize = 400;

    /// `message` (without a TSIG record) signed: its bytes with the TSIG record appended.
    pub fn sign(&mut self, mut message: Message) -> Option<Vec<u8>> {
        let unsigned = message.to_vec().ok()?;
        let tsig = TSIG::new(
            TsigAlgorithm::HmacSha256,
            now(),
            FUDGE,
            Vec::new(),
            self.id,
            None,
            Vec::new(),
        );
        let mac = self.mac(&unsigned, &tsig)?;
        self.previous_mac = mac.clone();
        self.first = false;
        let name = self.signer.signer_name().clone();
        message.set_signature(Box::new(make_tsig_record(name, tsig.set_mac(mac))));
        message.to_vec().ok()
    }

    /// The BADTIME refusal: our clock in Other Data, the request's time as Time Signed.
    pub fn sign_bad_time(&mut self, mut message: Message) -> Option<Vec<u8>> {
        let unsigned = message.to_vec().ok()?;
        let clock = now().to_be_bytes()[2..].to_vec();
        let tsig = TSIG::new(
            TsigAlgorithm::HmacSha256,
            self.signed_at,
            FUDGE,
            Vec::new(),
            self.id,
            Some(TsigError::BadTime),
            clock,
        );
        let mac = self.mac(&unsigned, &tsig)?;
        let name = self.signer.signer_name().clone();
        message.set_signature(Box::new(make_tsig_record(name, tsig.set_mac(mac))));
        message.to_vec().ok()
    }

    fn mac(&self, unsigned: &[u8], tsig: &TSIG) -> Option<Vec<u8>> {
        let tbs = if self.first {
            self.signer
                .encode_response_tbs(&self.previous_mac, unsigned, tsig)
                .ok()?
        } else {
            let mut tbs = Vec::with_capacity(unsigned.len() + self.previous_mac.len() + 10);
            tbs.extend_from_slice(&(self.previous_mac.len() as u16).to_be_bytes());
            tbs.extend_from_slice(&self.previous_mac);
            tbs.extend_from_slice(unsigned);
            tbs.extend_from_slice(&tsig.time.to_be_bytes()[2..]);
            tbs.extend_from_slice(&tsig.fudge.to_be_bytes());
            tbs
        };
        self.signer.sign(&tbs).ok()
    }
}
