//! SQL for the routing domain: firewall rules and the IP allow/block lists.

use rusqlite::{params, Connection, Row};
use serde::Serialize;

/// A firewall rule as stored; `port_start`/`port_end` 0 means any port, `limit_rate` 0 none.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FirewallRule {
    pub id: String,
    pub name: String,
    pub chain: String,
    pub protocol: String,
    pub port_start: u16,
    pub port_end: u16,
    pub action: String,
    pub limit_rate: u32,
    pub limit_unit: String,
    pub conntrack: String,
    pub is_system: bool,
    pub created_at: String,
}

impl FirewallRule {
    fn from_row(row: &Row) -> rusqlite::Result<Self> {
        Ok(FirewallRule {
            id: row.get(0)?,
            name: row.get(1)?,
            chain: row.get(2)?,
            protocol: row.get(3)?,
            port_start: row.get(4)?,
            port_end: row.get(5)?,
            action: row.get(6)?,
            limit_rate: row.get(7)?,
            limit_unit: row.get(8)?,
            conntrack: row.get(9)?,
            is_system: row.get(10)?,
            created_at: row.get(11)?,
        })
    }
}

/// An allow/block list entry; `ip_address` is an address or a network in canonical form.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IpEntry {
    pub id: String,
    pub list_type: String,
    pub ip_address: String,
    pub reason: String,
    pub status: String,
    pub expires_at: Option<String>,
    pub created_at: String,
}

impl IpEntry {
    fn from_row(row: &Row) -> rusqlite::Result<Self> {
        Ok(IpEntry {
            id: row.get(0)?,
            list_type: row.get(1)?,
            ip_address: row.get(2)?,
            reason: row.get(3)?,
            status: row.get(4)?,
            expires_at: row.get(5)?,
            created_at: row.get(6)?,
        })
    }
}

/// Every rule in the order the table evaluates them: system rules first, then by creation.
pub fn list_rules(conn: &Connection) -> rusqlite::Result<Vec<FirewallRule>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, chain, protocol, port_start, port_end, action, limit_rate, limit_unit,
                conntrack, is_system, created_at
         FROM routing_firewall_rules ORDER BY is_system DESC, position, id",
    )?;
    let rows = stmt.query_map([], FirewallRule::from_row)?;
    rows.collect()
}

/// Stores a new rule at the end of its chain; a duplicate is a unique violation.
pub fn insert_rule(conn: &Connection, rule: &FirewallRule) -> rusqlite::Result<()> {
    let position: i64 = conn.query_row(
        "SELECT COALESCE(MAX(position), 0) + 1 FROM routing_firewall_rules",
        [],
        |r| r.get(0),
    )?;
    conn.execute(
        "INSERT INTO routing_firewall_rules (id, name, chain, protocol, port_start, port_end,
             action, limit_rate, limit_unit, conntrack, is_system, position, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11, ?12)",
        params![
            rule.id,
            rule.name,
            rule.chain,
            rule.protocol,
            rule.port_start,
            rule.port_end,
            rule.action,
            rule.limit_rate,
            rule.limit_unit,
            rule.conntrack,
            position,
            rule.created_at
        ],
    )?;
    Ok(())
}

/// Whether the rule exists and is a system rule (None: no such rule).
pub fn rule_is_system(conn: &Connection, id: &str) -> rusqlite::Result<Option<bool>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT is_system FROM routing_firewall_rules WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .optional()
}

pub fn delete_rule(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM routing_firewall_rules WHERE id = ?1 AND is_system = 0",
        [id],
    )
}

/// Entries of the lists (one list, or both), expired ones left out: the kernel has already
/// dropped them, and the next reconcile removes them from the store. Entries being removed
/// are listed with their `pending_remove` status until the table without them is applied.
pub fn list_ip_entries(
    conn: &Connection,
    list_type: Option<&str>,
    now: &str,
) -> rusqlite::Result<Vec<IpEntry>> {
    let mut stmt = conn.prepare(
        "SELECT id, list_type, ip_address, reason, status, expires_at, created_at
         FROM routing_ip_list
         WHERE (?1 IS NULL OR list_type = ?1) AND (expires_at IS NULL OR expires_at > ?2)
         ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map(params![list_type, now], IpEntry::from_row)?;
    rows.collect()
}

/// What the next table holds and what it leaves out: the entries to apply, and the ids of
/// those deleted, to be forgotten once a table without them is in the kernel.
pub fn ip_entries_to_apply(
    conn: &Connection,
    now: &str,
) -> rusqlite::Result<(Vec<IpEntry>, Vec<String>)> {
    let (removing, applying) = list_ip_entries(conn, None, now)?
        .into_iter()
        .partition::<Vec<_>, _>(|e| e.status == PENDING_REMOVE);
    Ok((applying, removing.into_iter().map(|e| e.id).collect()))
}

/// Stores a new entry as pending_add. An entry of the same address on the same list that is
/// still being removed gives way to it (the kernel keeps the element: the next table holds
/// the new one); a live one makes this a unique violation.
pub fn insert_ip_entry(conn: &Connection, entry: &IpEntry) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM routing_ip_list
         WHERE list_type = ?1 AND ip_address = ?2 AND status = 'pending_remove'",
        params![entry.list_type, entry.ip_address],
    )?;
    conn.execute(
        "INSERT INTO routing_ip_list (id, list_type, ip_address, reason, status, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, 'pending_add', ?5, ?6)",
        params![
            entry.id,
            entry.list_type,
            entry.ip_address,
            entry.reason,
            entry.expires_at,
            entry.created_at
        ],
    )?;
    Ok(())
}

const PENDING_REMOVE: &str = "pending_remove";

/// Marks an entry deleted: it stays listed as pending_remove until a table without it is
/// applied. An entry already being removed is not found again.
pub fn delete_ip_entry(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE routing_ip_list SET status = 'pending_remove'
         WHERE id = ?1 AND status != 'pending_remove'",
        [id],
    )
}

/// After a table was applied that held the entries `applied` and left out `removed`: the
/// first are active, the second are gone (unless deleted and added again meanwhile, which
/// made a new row). Expired entries go.
pub fn note_applied(
    conn: &Connection,
    applied: &[String],
    removed: &[String],
    now: &str,
) -> rusqlite::Result<()> {
    for id in applied {
        conn.execute(
            "UPDATE routing_ip_list SET status = 'active' WHERE id = ?1 AND status = 'pending_add'",
            [id],
        )?;
    }
    for id in removed {
        conn.execute(
            "DELETE FROM routing_ip_list WHERE id = ?1 AND status = 'pending_remove'",
            [id],
        )?;
    }
    conn.execute(
        "DELETE FROM routing_ip_list WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        [now],
    )?;
    Ok(())
}
