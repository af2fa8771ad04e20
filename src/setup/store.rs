//! Where the wizard stands, its draft, and the cell's settings once it has completed.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::tls::{TlsMode, TlsSettings};
use super::validate::{CellSettings, DnsSettings};
use crate::auth::store::{self as users, Role, User};
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Admin,
    Cell,
    Dns,
    Tls,
    Review,
}

pub const STEPS: [Step; 5] = [Step::Admin, Step::Cell, Step::Dns, Step::Tls, Step::Review];

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Admin => "admin",
            Step::Cell => "cell",
            Step::Dns => "dns",
            Step::Tls => "tls",
            Step::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        STEPS.into_iter().find(|step| step.as_str() == s)
    }

    pub fn next(self) -> Step {
        match self {
            Step::Admin => Step::Cell,
            Step::Cell => Step::Dns,
            Step::Dns => Step::Tls,
            Step::Tls | Step::Review => Step::Review,
        }
    }
}

/// The admin account as the draft keeps it: the password is already hashed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminDraft {
    pub username: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Draft {
    pub admin: Option<AdminDraft>,
    pub cell: Option<CellSettings>,
    pub dns: Option<DnsSettings>,
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

pub struct SetupState {
    pub current_step: Step,
    pub draft: Draft,
    pub completed_at: Option<String>,
}

pub fn load(conn: &Connection) -> Result<SetupState, ApiError> {
    let (step, draft, completed_at): (String, String, Option<String>) = conn
        .prepare_cached("SELECT current_step, draft, completed_at FROM setup_state WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(SetupState {
        current_step: Step::parse(&step).unwrap_or(Step::Admin),
        draft: serde_json::from_str(&draft).unwrap_or_default(),
        completed_at,
    })
}

pub fn save(conn: &Connection, step: Step, draft: &Draft) -> Result<(), ApiError> {
    let draft = serde_json::to_string(draft).map_err(|e| ApiError::Internal(e.into()))?;
    conn.execute(
        "UPDATE setup_state SET current_step = ?1, draft = ?2 WHERE id = 1",
        params![step.as_str(), draft],
    )?;
    Ok(())
}

pub fn is_complete(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT completed_at IS NOT NULL FROM setup_state WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

pub fn already_complete() -> ApiError {
    ApiError::conflict("setup_complete", "setup has already been completed")
}

/// The hashes of the setup token and of the claiming session's secret, while setup is pending.
pub struct ClaimState {
    pub complete: bool,
    pub token_hash: Option<String>,
    pub claim_hash: Option<String>,
}

pub fn claim_state(conn: &Connection) -> rusqlite::Result<ClaimState> {
    conn.prepare_cached(
        "SELECT completed_at IS NOT NULL, token_hash, claim_hash FROM setup_state WHERE id = 1",
    )?
    .query_row([], |r| {
        Ok(ClaimState {
            complete: r.get(0)?,
            token_hash: r.get(1)?,
            claim_hash: r.get(2)?,
        })
    })
}

/// Records the token picd made at start. A new token (the file was lost) also ends any claim
/// made with the old one.
pub fn set_token_hash(conn: &Connection, token_hash: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE setup_state SET claim_hash = CASE WHEN token_hash IS ?1 THEN claim_hash END,
             token_hash = ?1
         WHERE id = 1 AND completed_at IS NULL",
        [token_hash],
    )?;
    Ok(())
}

/// Binds the wizard to the session holding the secret of `claim_hash`; returns whether it
/// took the wizard from another session.
pub fn set_claim_hash(conn: &Connection, claim_hash: &str) -> rusqlite::Result<bool> {
    let previous: Option<String> = conn
        .prepare_cached("SELECT claim_hash FROM setup_state WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    conn.execute(
        "UPDATE setup_state SET claim_hash = ?1 WHERE id = 1",
        [claim_hash],
    )?;
    Ok(previous.is_some())
}

/// Finishes the wizard inside the caller's transaction: the admin user, the cell's settings,
/// the cell's root CA and the completion mark, all or nothing.
pub fn complete(
    conn: &Connection,
    draft: &Draft,
    vault: &crate::vault::Vault,
) -> Result<User, ApiError> {
    if is_complete(conn)? {
        return Err(already_complete());
    }
    let (Some(admin), Some(cell), Some(dns)) = (&draft.admin, &draft.cell, &draft.dns) else {
        return Err(ApiError::conflict(
            "setup_incomplete",
            "every wizard step must be submitted first",
        ));
    };
    // A TLS step from before the domain was changed is checked against the final domain.
    let tls = draft.tls.clone().unwrap_or_default();
    super::tls::fits_domain(&tls, &cell.domain).map_err(|m| ApiError::invalid("tls.mode", m))?;
    let user = users::create(conn, &admin.username, Role::Admin, &admin.password_hash)?;
    write_cell_config(conn, cell, dns, &tls)?;
    crate::vault::ca::ensure_ca(conn, vault, &cell.name, &ca_scope(cell))?;
    crate::wireguard::ensure_server_key(conn, vault)?;
    // The draft held the admin's password hash; it is in the users table now. The setup
    // token and the claim are spent: nothing can claim or drive the wizard any more.
    conn.execute(
        "UPDATE setup_state SET current_step = 'review', draft = '{}', completed_at = ?1,
             token_hash = NULL, claim_hash = NULL
         WHERE id = 1",
        [crate::time::now_rfc3339()],
    )?;
    Ok(user)
}

/// What the cell's CA may vouch for: the cell's domain and subnets.
pub fn ca_scope(cell: &CellSettings) -> crate::vault::ca::CaScope {
    crate::vault::ca::CaScope::new(&cell.domain, cell.subnet_v4, cell.subnet_v6)
}

/// The cell's settings as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CellConfig {
    pub cell: CellSettings,
    pub dns: DnsSettings,
    pub tls: TlsSettings,
    pub updated_at: String,
}

pub fn write_cell_config(
    conn: &Connection,
    cell: &CellSettings,
    dns: &DnsSettings,
    tls: &TlsSettings,
) -> Result<(), ApiError> {
    let upstreams =
        serde_json::to_string(&dns.upstreams).map_err(|e| ApiError::Internal(e.into()))?;
    conn.prepare_cached(
        "INSERT INTO cell_config (id, name, domain, public_endpoint, wireguard_port, subnet_v4, subnet_v6,
                                  dns_upstreams, split_horizon, updated_at, tls_mode, acme_email, acme_ca)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(id) DO UPDATE SET name = ?1, domain = ?2, public_endpoint = ?3, wireguard_port = ?4,
             subnet_v4 = ?5, subnet_v6 = ?6, dns_upstreams = ?7, split_horizon = ?8, updated_at = ?9,
             tls_mode = ?10, acme_email = ?11, acme_ca = ?12",
    )?
    .execute(params![
            cell.name,
            cell.domain,
            cell.public_endpoint,
            cell.wireguard_port,
            cell.subnet_v4.to_string(),
            cell.subnet_v6.to_string(),
            upstreams,
            dns.split_horizon,
            crate::time::now_rfc3339(),
            tls.mode.as_str(),
            tls.acme_email,
            tls.acme_ca
    ])?;
    Ok(())
}

pub fn read_cell_config(conn: &Connection) -> Result<Option<CellConfig>, ApiError> {
    let corrupt = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("stored cell config: bad {what}").into(),
        )
    };
    let config = conn
        .prepare_cached(
            "SELECT name, domain, public_endpoint, wireguard_port, subnet_v4, subnet_v6, dns_upstreams,
                    split_horizon, updated_at, tls_mode, acme_email, acme_ca
             FROM cell_config WHERE id = 1",
        )?
        .query_row([], |r| {
                let text = |i: usize| r.get::<_, String>(i);
                Ok(CellConfig {
                    cell: CellSettings {
                        name: text(0)?,
                        domain: text(1)?,
                        public_endpoint: text(2)?,
                        wireguard_port: r.get(3)?,
                        subnet_v4: text(4)?.parse().map_err(|_| corrupt(4, "subnet_v4"))?,
                        subnet_v6: text(5)?.parse().map_err(|_| corrupt(5, "subnet_v6"))?,
                    },
                    dns: DnsSettings {
                        upstreams: serde_json::from_str(&text(6)?)
                            .map_err(|_| corrupt(6, "dns_upstreams"))?,
                        split_horizon: r.get(7)?,
                    },
                    updated_at: text(8)?,
                    tls: TlsSettings {
                        mode: TlsMode::parse(&text(9)?).ok_or_else(|| corrupt(9, "tls_mode"))?,
                        acme_email: text(10)?,
                        acme_ca: text(11)?,
                    },
                })
            })
        .optional()?;
    Ok(config)
}
