//! The hash chain: appending an entry inside the caller's transaction, and verifying the
//! whole log. Each entry's hash is SHA-256 over a canonical, length-prefixed encoding of all
//! its fields and the previous entry's hash, so no field can be edited, no row deleted and no
//! two rows swapped without the chain breaking.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry as stored (and as the API returns it).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredEntry {
    pub id: i64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub result: String,
    pub client_addr: String,
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The fields of an entry that the chain covers, borrowed.
pub struct EntryFields<'a> {
    pub seq: i64,
    pub time: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub result: &'a str,
    pub client_addr: &'a str,
    pub detail: &'a str,
    pub prev_hash: &'a str,
}

/// The canonical encoding: every field as a big-endian u32 length and its bytes, in a fixed
/// order. Length prefixes make the encoding unambiguous ("ab"+"c" differs from "a"+"bc").
pub fn entry_hash(fields: &EntryFields<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let seq = fields.seq.to_string();
    for part in [
        seq.as_str(),
        fields.time,
        fields.actor,
        fields.action,
        fields.target_type,
        fields.target_id,
        fields.result,
        fields.client_addr,
        fields.detail,
        fields.prev_hash,
    ] {
        hasher.update((part.len() as u32).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// What to append; `seq`, `prev_hash` and `hash` are filled in from the chain's head.
pub struct NewEntry<'a> {
    pub time: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub result: &'a str,
    pub client_addr: &'a str,
    pub detail: &'a str,
}

/// Appends one entry inside `tx` and moves the head. The caller's transaction must have been
/// begun IMMEDIATE so that no other writer can read the same head.
pub fn append(tx: &Transaction<'_>, entry: &NewEntry<'_>) -> rusqlite::Result<i64> {
    let (head_seq, head_hash): (i64, String) = tx
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let seq = head_seq + 1;
    let hash = hex::encode(entry_hash(&EntryFields {
        seq,
        time: entry.time,
        actor: entry.actor,
        action: entry.action,
        target_type: entry.target_type,
        target_id: entry.target_id,
        result: entry.result,
        client_addr: entry.client_addr,
        detail: entry.detail,
        prev_hash: &head_hash,
    }));
    tx.prepare_cached(
        "INSERT INTO audit_log (seq, time, actor, action, target_type, target_id, result,
                                client_addr, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        seq,
        entry.time,
        entry.actor,
        entry.action,
        entry.target_type,
        entry.target_id,
        entry.result,
        entry.client_addr,
        entry.detail,
        head_hash,
        hash
    ])?;
    tx.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")?
        .execute(params![seq, hash])?;
    Ok(seq)
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifyReport {
    pub valid: bool,
    pub checked: u64,
    /// The id of the first entry that does not hold; for entries missing at the end of the
    /// log, the first missing id.
    pub first_bad_id: Option<i64>,
    pub reason: Option<String>,
}

/// Walks the whole log in order and checks every link and hash, then the head.
pub fn verify(conn: &Connection) -> rusqlite::Result<VerifyReport> {
    let mut stmt = conn.prepare(
        "SELECT seq, time, actor, action, target_type, target_id, result, client_addr, detail,
                prev_hash, hash
         FROM audit_log ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut expected_prev = GENESIS_HASH.to_string();
    let mut expected_seq = 1i64;
    let mut checked = 0u64;
    let bad = |seq: i64, checked: u64, reason: &str| VerifyReport {
        valid: false,
        checked,
        first_bad_id: Some(seq),
        reason: Some(reason.to_string()),
    };
    let mut computed = [0u8; 64];
    while let Some(row) = rows.next()? {
        checked += 1;
        let seq: i64 = row.get(0)?;
        let text = |i: usize| row.get_ref(i).map(|v| v.as_str().unwrap_or(""));
        let prev_hash = text(9)?;
        let hash = text(10)?;
        if seq != expected_seq {
            return Ok(bad(
                expected_seq.min(seq),
                checked,
                "entry missing from the sequence",
            ));
        }
        if prev_hash != expected_prev {
            return Ok(bad(seq, checked, "link to the previous entry is broken"));
        }
        let digest = entry_hash(&EntryFields {
            seq,
            time: text(1)?,
            actor: text(2)?,
            action: text(3)?,
            target_type: text(4)?,
            target_id: text(5)?,
            result: text(6)?,
            client_addr: text(7)?,
            detail: text(8)?,
            prev_hash,
        });
        hex::encode_to_slice(digest, &mut computed).expect("64 bytes for 32");
        if hash.as_bytes() != computed {
            return Ok(bad(seq, checked, "entry content does not match its hash"));
        }
        expected_prev.clear();
        expected_prev.push_str(hash);
        expected_seq += 1;
    }
    let head: Option<(i64, String)> = conn
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match head {
        Some((seq, hash)) if seq == expected_seq - 1 && hash == expected_prev => Ok(VerifyReport {
            valid: true,
            checked,
            first_bad_id: None,
            reason: None,
        }),
        Some((seq, _)) if seq >= expected_seq => Ok(bad(
            expected_seq,
            checked,
            "entries missing at the end of the log",
        )),
        _ => Ok(bad(
            expected_seq - 1,
            checked,
            "chain head does not match the last entry",
        )),
    }
}
